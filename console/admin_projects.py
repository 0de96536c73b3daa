"""Administration > Projects (global admins): all projects with counts, create, delete.

Creating and deleting call ``server.tenancy.services`` like ``/api/v1/projects`` does; deleting
(cascade, cache drop and the Redis clean-up job) asks for the project's name typed out.
"""

from __future__ import annotations

from typing import Any

from litestar import Request, get, post
from litestar.params import FromPath

from console.flash import done
from console.forms import field_errors, form_data
from console.paging import search_page
from console.render import Page, render
from console.shell import CurrentViewer, Need, needs
from server.errors import DomainError, Invalid
from server.tenancy import services
from server.tenancy.queries import project_overview
from server.web_state import queue_of, redis_of

TEMPLATE = "console/admin_projects.html"
PATH = "/console/admin/projects"


async def _page(
    request: Request[Any, Any, Any],
    *,
    errors: dict[str, str] | None = None,
    values: dict[str, Any] | None = None,
    status_code: int = 200,
) -> Page:
    projects, paging = await search_page(request, project_overview)
    context = {
        "section": "admin-projects",
        "projects": projects,
        **paging,
        "errors": errors or {},
        "values": values or {},
    }
    return render(request, TEMPLATE, context, status_code=status_code)


@get("/admin/projects", name="console:admin-projects", opt=needs(Need.ADMIN))
async def projects_page(request: Request[Any, Any, Any], viewer: CurrentViewer) -> Page:
    return await _page(request)


@post("/admin/projects", opt=needs(Need.ADMIN))
async def create_project(request: Request[Any, Any, Any], viewer: CurrentViewer) -> Any:
    data = await form_data(request)
    origins = [line for line in data.get("allowed_origins", "").splitlines() if line.strip()]
    try:
        if len(data.get("name", "")) > 200:
            raise Invalid("The name is too long.", fields={"name": "Must be at most 200 characters"})
        project = await services.create_project(data.get("name", ""), origins)
    except DomainError as error:
        return await _page(request, errors=field_errors(error), values=data, status_code=422)
    return done(request, f"/console/projects/{project.id}/settings", f"Project {project.name} created.")


@get("/admin/projects/{project_id:int}/delete", name="console:admin-project-delete", opt=needs(Need.ADMIN))
async def delete_page(
    request: Request[Any, Any, Any], viewer: CurrentViewer, project_id: FromPath[int]
) -> Page:
    project = await services.get_project(project_id)
    context = {"section": "admin-projects", "project": project, "errors": {}}
    return render(request, "console/admin_project_delete.html", context)


@post("/admin/projects/{project_id:int}/delete", opt=needs(Need.ADMIN))
async def delete_project(
    request: Request[Any, Any, Any], viewer: CurrentViewer, project_id: FromPath[int]
) -> Any:
    project = await services.get_project(project_id)
    if (await form_data(request)).get("confirm", "").strip() != project.name.strip():
        errors = {"confirm": "Type the project's name exactly to confirm.", "form": "Nothing was deleted."}
        context = {"section": "admin-projects", "project": project, "errors": errors}
        return render(request, "console/admin_project_delete.html", context, status_code=422)
    await services.delete_project(redis_of(request.app), queue_of(request.app), project_id)
    return done(request, PATH, f"Project {project.name} and all its data were deleted.")


route_handlers = [projects_page, create_project, delete_page, delete_project]
