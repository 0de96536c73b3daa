"""Install (managers): the snippet, the widget key, identity verification and its secret.

Rotations and the enforce toggle call the tenancy services the REST API calls
(``rotate_widget_key``, ``rotate_identity_secret``, ``update_project``). Rotating asks for the
project's name typed out, checked here on the server (the page's script only enables the button).
"""

from __future__ import annotations

from typing import Any

from litestar import Request, get, post
from litestar.params import FromPath

from console.flash import done
from console.forms import checkbox, form_data
from console.identity_samples import SAMPLES
from console.render import Page, render
from console.shell import CurrentViewer, Need, needs
from server.tenancy import services
from server.tenancy.schemas import ProjectUpdate
from server.tenancy.tables import Project
from server.web_state import redis_of

TEMPLATE = "console/install.html"
WIDGET_SCRIPT = "/widget.js"


def install_path(project_id: int) -> str:
    return f"/console/projects/{project_id}/install"


def snippet(request: Request[Any, Any, Any], project: Project) -> str:
    """The one tag a site pastes (``docs/widget.md``)."""
    base = str(request.base_url).rstrip("/")
    return f'<script src="{base}{WIDGET_SCRIPT}" data-project="{project.public_key}" async></script>'


async def _page(
    request: Request[Any, Any, Any],
    project: Project,
    *,
    form: str = "",
    errors: dict[str, str] | None = None,
    show_secret: bool = False,
    blocks: list[str] | None = None,
    status_code: int = 200,
) -> Page:
    context = {
        "section": "install",
        "project": project,
        "snippet": snippet(request, project),
        "samples": SAMPLES,
        "show_secret": show_secret,
        "form": form,
        "errors": errors or {},
    }
    return render(request, TEMPLATE, context, blocks=blocks, status_code=status_code)


@get("/projects/{project_id:int}/install", name="console:install", opt=needs(Need.MANAGER))
async def install_page(
    request: Request[Any, Any, Any], viewer: CurrentViewer, project_id: FromPath[int]
) -> Page:
    show = request.query_params.get("show") == "secret"
    blocks = ["identity_secret"] if show else None
    return await _page(request, await services.get_project(project_id), show_secret=show, blocks=blocks)


def _confirmed(project: Project, data: dict[str, Any]) -> bool:
    return str(data.get("confirm", "")).strip() == project.name.strip()


@post("/projects/{project_id:int}/install/rotate-identity-secret", opt=needs(Need.MANAGER))
async def rotate_identity_secret(
    request: Request[Any, Any, Any], viewer: CurrentViewer, project_id: FromPath[int]
) -> Any:
    project = await services.get_project(project_id)
    if not _confirmed(project, await form_data(request)):
        errors = {"confirm": "Type the project's name exactly to confirm.", "form": "Nothing was rotated."}
        return await _page(request, project, form="identity", errors=errors, status_code=422)
    await services.rotate_identity_secret(redis_of(request.app), project_id)
    message = "New identity secret made: the old one no longer verifies. Update your servers."
    return done(request, install_path(project_id) + "?show=secret", message)


@post("/projects/{project_id:int}/install/rotate-widget-key", opt=needs(Need.MANAGER))
async def rotate_widget_key(
    request: Request[Any, Any, Any], viewer: CurrentViewer, project_id: FromPath[int]
) -> Any:
    project = await services.get_project(project_id)
    if not _confirmed(project, await form_data(request)):
        errors = {"confirm": "Type the project's name exactly to confirm.", "form": "Nothing was rotated."}
        return await _page(request, project, form="widget-key", errors=errors, status_code=422)
    await services.rotate_widget_key(redis_of(request.app), project_id)
    return done(
        request, install_path(project_id), "New widget key made: paste the new snippet on your sites."
    )


@post("/projects/{project_id:int}/install/enforce-identity", opt=needs(Need.MANAGER))
async def set_enforce_identity(
    request: Request[Any, Any, Any], viewer: CurrentViewer, project_id: FromPath[int]
) -> Any:
    enforce = checkbox(await form_data(request), "enforce_identity")
    await services.update_project(redis_of(request.app), project_id, ProjectUpdate(enforce_identity=enforce))
    message = (
        "Only signed identities are accepted now." if enforce else "Unsigned identities are accepted again."
    )
    return done(request, install_path(project_id), message)


route_handlers = [install_page, rotate_identity_secret, rotate_widget_key, set_enforce_identity]
