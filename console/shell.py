"""Who is looking at a console page, and may they: the guard every console route goes through.

Each route declares what it needs with :func:`needs` (``opt``), as the API's routes do with
``server/api/access.py``, and checks it with the same pure predicates (``server/tenancy/access.py``)
on the same cached :class:`Actor` (the actor cache key ``user:<id>`` is shared with the API, and
every access change empties it, so a removed member loses the project at their next request):

- not signed in: :class:`SignInRequired` (the error handler sends the browser to the sign-in page);
- a ``{project_id}`` where the viewer holds no role: 404, exactly like a project that does not exist;
- a role too low, or not a global admin on an admin page: 403.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any, TypeAlias

from litestar import Request
from litestar.connection import ASGIConnection
from litestar.di import NamedDependency
from litestar.exceptions import NotAuthorizedException
from litestar.handlers.base import BaseRouteHandler

from server.accounts.sessions import SESSION_COOKIE, SessionData, load_session
from server.accounts.tables import User
from server.errors import Forbidden, NotFound
from server.tenancy import access
from server.tenancy.access import Actor, ProjectRole
from server.tenancy.queries import actor_for
from server.tenancy.tables import Project
from server.web_state import actors_of, redis_of

NEED_OPT = "console_need"
MAX_ID = 2**31 - 1


class Need(enum.Enum):
    ANYONE = "anyone"
    SIGNED_IN = "signed_in"
    AGENT = "agent"
    """An agent (or more) in the path's ``{project_id}``."""
    MANAGER = "manager"
    ADMIN = "admin"
    """A global admin."""


def needs(need: Need) -> dict[str, Any]:
    return {NEED_OPT: need}


class SignInRequired(NotAuthorizedException):
    """No (valid) console session: the browser goes to the sign-in page."""


@dataclass(frozen=True, slots=True)
class ProjectChoice:
    id: int
    name: str
    role: ProjectRole


@dataclass(slots=True)
class Viewer:
    """The signed-in user of this request, their actor, and what the shell shows around a page."""

    user: User
    actor: Actor
    session: SessionData
    projects: list[ProjectChoice] = field(default_factory=list)
    """The projects the project switcher offers (admins: all)."""
    project: ProjectChoice | None = None
    """The project in the path, if the page belongs to one."""

    @property
    def is_admin(self) -> bool:
        return access.is_admin(self.actor)

    @property
    def manages_any(self) -> bool:
        return self.is_admin or any(p.role is ProjectRole.MANAGER for p in self.projects)

    def can_manage(self, project_id: int) -> bool:
        return access.has_project_role(self.actor, project_id, ProjectRole.MANAGER)


async def load_viewer(connection: ASGIConnection[Any, Any, Any, Any]) -> Viewer | None:
    """The signed-in viewer of a request, or None (public pages that also serve the signed in)."""
    session = await load_session(redis_of(connection.app), connection.cookies.get(SESSION_COOKIE))
    if session is None:
        return None
    user: User | None = (
        await User.objects().where((User.id == session.user_id) & (User.active == True)).first()  # noqa: E712
    )
    if user is None:
        return None

    async def load() -> tuple[Actor, None]:
        return await actor_for(user), None

    actor = await actors_of(connection.app).resolve(f"user:{user.id}", load)
    if actor is None:
        return None
    return Viewer(user=user, actor=actor, session=session)


SWITCHER_LIMIT = 100
"""An installation with more projects lists the first ones by name; admins reach the rest from
the Projects page."""


async def _project_choices(actor: Actor) -> list[ProjectChoice]:
    visible = access.visible_project_ids(actor)
    query = Project.select(Project.id, Project.name).order_by(Project.name, Project.id).limit(SWITCHER_LIMIT)
    if visible is not None:
        if not visible:
            return []
        query = query.where(Project.id.is_in(list(visible)))
    rows = await query
    choices = []
    for row in rows:
        role = access.role_in(actor, row["id"])
        if role is not None:
            choices.append(ProjectChoice(id=row["id"], name=row["name"], role=role))
    return choices


async def _admin_choice(project_id: int) -> ProjectChoice | None:
    row = await Project.select(Project.id, Project.name).where(Project.id == project_id).first()
    return None if row is None else ProjectChoice(id=row["id"], name=row["name"], role=ProjectRole.MANAGER)


async def console_guard(connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler) -> None:
    need = handler.opt.get(NEED_OPT)
    if not isinstance(need, Need):
        raise RuntimeError(
            f"console route {handler} declares no Need"
        )  # caught at the first request in tests
    if need is Need.ANYONE:
        return
    viewer = await load_viewer(connection)
    if viewer is None:
        raise SignInRequired("Sign in first.")
    connection.state.viewer = viewer
    viewer.projects = await _project_choices(viewer.actor)
    project_id = connection.path_params.get("project_id")
    if project_id is not None:
        if not isinstance(project_id, int) or not 1 <= project_id <= MAX_ID:
            raise NotFound("No such project.")
        viewer.project = next((p for p in viewer.projects if p.id == project_id), None)
        if viewer.project is None and viewer.is_admin:
            viewer.project = await _admin_choice(project_id)
        if viewer.project is None:
            raise NotFound("No such project.")
    if need is Need.ADMIN and not viewer.is_admin:
        raise Forbidden("This page is for global admins.")
    if need in (Need.AGENT, Need.MANAGER):
        if viewer.project is None:
            raise RuntimeError(f"{handler} needs a project role but has no {{project_id}}")
        required = ProjectRole.MANAGER if need is Need.MANAGER else ProjectRole.AGENT
        if not access.has_project_role(viewer.actor, viewer.project.id, required):
            raise Forbidden(f"This page needs the {required.value} role in the project.")


def provide_viewer(request: Request[Any, Any, Any]) -> Viewer:
    """The dependency ``viewer``, set by :func:`console_guard`."""
    viewer: Viewer = request.state.viewer
    return viewer


CurrentViewer: TypeAlias = NamedDependency[Viewer]
"""Declare ``viewer: CurrentViewer`` in a console handler to receive the signed-in viewer."""
