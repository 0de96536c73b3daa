"""Projects: list, create (admins), read, settings and widget key (managers), delete (admins)."""

from __future__ import annotations

from typing import Any

from litestar import Request, delete, get, patch, post
from litestar.params import JSONBody

from server.api.access import CurrentActor, global_role, project_role, signed_in
from server.api.params import ProjectId
from server.tenancy import access, services
from server.tenancy.access import GlobalRole, ProjectRole
from server.tenancy.schemas import ProjectCreate, ProjectSecretsView, ProjectUpdate, ProjectView
from server.tenancy.tables import Project
from server.web_state import queue_of, redis_of


def project_view(project: Project, actor: CurrentActor) -> ProjectView:
    role = access.role_in(actor, project.id)
    return ProjectView(
        id=project.id,
        name=project.name,
        public_key=project.public_key,
        allowed_origins=list(project.allowed_origins or []),
        widget_color=project.widget_color,
        greeting_text=project.greeting_text,
        offline_text=project.offline_text,
        enforce_identity=project.enforce_identity,
        created_at=project.created_at,
        launcher_position="left" if project.launcher_position == "left" else "right",
        prechat_fields=list(dict.fromkeys(project.prechat_fields or [])),
        dom_snapshots=bool(project.dom_snapshots),
        role=role.value if role else None,
    )


@get("/projects", opt=signed_in(), summary="Projects the caller can see (admins: all)")
async def list_projects(actor: CurrentActor) -> list[ProjectView]:
    visible = access.visible_project_ids(actor)
    query = Project.objects().order_by(Project.id)
    if visible is not None:
        if not visible:
            return []
        query = query.where(Project.id.is_in(list(visible)))
    return [project_view(project, actor) for project in await query]


@post("/projects", opt=global_role(GlobalRole.ADMIN), summary="Create a project (admins)")
async def create_project(actor: CurrentActor, data: JSONBody[ProjectCreate]) -> ProjectView:
    return project_view(await services.create_project(data.name, data.allowed_origins), actor)


@get("/projects/{project_id:int}", opt=project_role(ProjectRole.AGENT), summary="A project")
async def get_project(actor: CurrentActor, project_id: ProjectId) -> ProjectView:
    return project_view(await services.get_project(project_id), actor)


@patch(
    "/projects/{project_id:int}", opt=project_role(ProjectRole.MANAGER), summary="Change settings (managers)"
)
async def update_project(
    request: Request[Any, Any, Any], actor: CurrentActor, project_id: ProjectId, data: JSONBody[ProjectUpdate]
) -> ProjectView:
    return project_view(await services.update_project(redis_of(request.app), project_id, data), actor)


@post(
    "/projects/{project_id:int}/widget-key/rotate",
    opt=project_role(ProjectRole.MANAGER),
    status_code=200,
    summary="Replace the public widget key (managers); the old one stops working at once",
)
async def rotate_widget_key(
    request: Request[Any, Any, Any], actor: CurrentActor, project_id: ProjectId
) -> ProjectView:
    return project_view(await services.rotate_widget_key(redis_of(request.app), project_id), actor)


@get(
    "/projects/{project_id:int}/identity-secret",
    opt=project_role(ProjectRole.MANAGER),
    summary="The secret that signs visitor identities (managers)",
)
async def get_identity_secret(project_id: ProjectId) -> ProjectSecretsView:
    return ProjectSecretsView(identity_secret=(await services.get_project(project_id)).identity_secret)


@post(
    "/projects/{project_id:int}/identity-secret/rotate",
    opt=project_role(ProjectRole.MANAGER),
    status_code=200,
    summary="Replace the identity secret (managers)",
)
async def rotate_identity_secret(
    request: Request[Any, Any, Any], project_id: ProjectId
) -> ProjectSecretsView:
    secret = await services.rotate_identity_secret(redis_of(request.app), project_id)
    return ProjectSecretsView(identity_secret=secret)


@delete(
    "/projects/{project_id:int}",
    opt=global_role(GlobalRole.ADMIN),
    status_code=204,
    summary="Delete a project and all its data (admins)",
)
async def delete_project(request: Request[Any, Any, Any], project_id: ProjectId) -> None:
    await services.delete_project(redis_of(request.app), queue_of(request.app), project_id)


route_handlers = [
    list_projects,
    create_project,
    get_project,
    update_project,
    rotate_widget_key,
    get_identity_secret,
    rotate_identity_secret,
    delete_project,
]
