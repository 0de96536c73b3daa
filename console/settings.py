"""Project settings (managers): name, allowed origins, widget appearance.

Every change goes through :func:`server.tenancy.services.update_project` with the REST API's own
:class:`ProjectUpdate`, so the origin rule, the limits and the widget-cache invalidation are the
API's; a refused value comes back as an inline error next to its field.

The appearance card's preview is the real widget: ``settings/preview`` is a page of its own,
framed by the Settings page, that runs ``/widget.js`` in preview mode (the real loader and
panel, no session, no socket, no storage); ``static/js/widget-preview.js`` feeds it the form's
current values as the manager types (``postMessage`` within our origin).
"""

from __future__ import annotations

from typing import Any

from litestar import Request, get, post
from litestar.params import FromPath

from console.flash import done
from console.forms import convert, field_errors, form_data
from console.render import Page, render
from console.security import content_security_policy
from console.shell import CurrentViewer, Need, needs
from server.errors import DomainError
from server.tenancy import services
from server.tenancy.schemas import ProjectUpdate
from server.tenancy.tables import Project
from server.web_state import redis_of, settings_of

TEMPLATE = "console/settings.html"


PREVIEW_TEMPLATE = "console/settings_preview.html"


def settings_path(project_id: int) -> str:
    return f"/console/projects/{project_id}/settings"


async def _page(
    request: Request[Any, Any, Any],
    project: Project,
    *,
    form: str = "",
    errors: dict[str, str] | None = None,
    values: dict[str, Any] | None = None,
    status_code: int = 200,
) -> Page:
    context = {
        "section": "settings",
        "project": project,
        "form": form,
        "errors": errors or {},
        "values": values or {},
    }
    return render(request, TEMPLATE, context, status_code=status_code)


@get("/projects/{project_id:int}/settings", name="console:settings", opt=needs(Need.MANAGER))
async def settings_page(
    request: Request[Any, Any, Any], viewer: CurrentViewer, project_id: FromPath[int]
) -> Page:
    return await _page(request, await services.get_project(project_id))


async def _update(
    request: Request[Any, Any, Any], project_id: int, form: str, values: dict[str, Any], message: str
) -> Any:
    try:
        changes = convert(values, ProjectUpdate)
        await services.update_project(redis_of(request.app), project_id, changes)
    except DomainError as error:
        project = await services.get_project(project_id)
        shown = {key: value for key, value in values.items() if isinstance(value, str)}
        return await _page(
            request, project, form=form, errors=field_errors(error), values=shown, status_code=422
        )
    return done(request, settings_path(project_id), message)


def preview_headers(policy: str) -> dict[str, str]:
    """The console's policy, except that our own Settings page may frame this one."""
    framable = policy.replace("frame-ancestors 'none'", "frame-ancestors 'self'")
    return {"Content-Security-Policy": framable, "X-Frame-Options": "SAMEORIGIN"}


@get("/projects/{project_id:int}/settings/preview", name="console:settings-preview", opt=needs(Need.MANAGER))
async def settings_preview(
    request: Request[Any, Any, Any], viewer: CurrentViewer, project_id: FromPath[int]
) -> Page:
    project = await services.get_project(project_id)
    policy = content_security_policy(settings_of(request.app))
    return render(request, PREVIEW_TEMPLATE, {"project": project}, headers=preview_headers(policy))


@post("/projects/{project_id:int}/settings/general", opt=needs(Need.MANAGER))
async def save_general(
    request: Request[Any, Any, Any], viewer: CurrentViewer, project_id: FromPath[int]
) -> Any:
    data = await form_data(request)
    return await _update(
        request, project_id, "general", {"name": data.get("name", "")}, "Project name saved."
    )


@post("/projects/{project_id:int}/settings/appearance", opt=needs(Need.MANAGER))
async def save_appearance(
    request: Request[Any, Any, Any], viewer: CurrentViewer, project_id: FromPath[int]
) -> Any:
    data = await form_data(request)
    names = ("widget_color", "greeting_text", "offline_text", "launcher_position")
    values = {name: data.get(name, "") for name in names}
    return await _update(request, project_id, "appearance", values, "Widget appearance saved.")


@post("/projects/{project_id:int}/settings/screenshots", opt=needs(Need.MANAGER))
async def save_screenshots(
    request: Request[Any, Any, Any], viewer: CurrentViewer, project_id: FromPath[int]
) -> Any:
    data = await form_data(request)
    enabled = data.get("dom_snapshots") == "on"
    message = "DOM snapshots turned on." if enabled else "DOM snapshots turned off."
    return await _update(request, project_id, "screenshots", {"dom_snapshots": enabled}, message)


@post("/projects/{project_id:int}/settings/origins/add", opt=needs(Need.MANAGER))
async def add_origin(
    request: Request[Any, Any, Any], viewer: CurrentViewer, project_id: FromPath[int]
) -> Any:
    data = await form_data(request)
    origin = data.get("origin", "")
    project = await services.get_project(project_id)
    if not origin.strip():
        error = {"allowed_origins": "Type an origin such as https://shop.example", "form": "Nothing to add."}
        return await _page(request, project, form="origins", errors=error, values=data, status_code=422)
    origins = [*(project.allowed_origins or []), origin]
    result = await _update(request, project_id, "origins", {"allowed_origins": origins}, "Origin added.")
    if isinstance(result, Page):
        result.context["values"] = {"origin": origin}
    return result


@post("/projects/{project_id:int}/settings/origins/remove", opt=needs(Need.MANAGER))
async def remove_origin(
    request: Request[Any, Any, Any], viewer: CurrentViewer, project_id: FromPath[int]
) -> Any:
    data = await form_data(request)
    project = await services.get_project(project_id)
    origins = [origin for origin in (project.allowed_origins or []) if origin != data.get("origin")]
    return await _update(request, project_id, "origins", {"allowed_origins": origins}, "Origin removed.")


route_handlers = [
    settings_page,
    settings_preview,
    save_general,
    save_appearance,
    save_screenshots,
    add_origin,
    remove_origin,
]
