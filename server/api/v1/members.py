"""Members of a project: list (agents), change role, remove (managers). People join by invitation
(``server/api/v1/invitations.py``): nobody is made a member by someone else alone."""

from __future__ import annotations

from typing import Any

from litestar import delete, get, patch
from litestar.params import JSONBody

from server.api.access import project_role
from server.api.params import ProjectId, UserId
from server.tenancy import services
from server.tenancy.access import ProjectRole
from server.tenancy.schemas import MemberUpdate, MemberView


def member_view(row: dict[str, Any]) -> MemberView:
    return MemberView(
        user_id=row["user_id"],
        email=row["email"],
        name=row["name"],
        role=row["role"],
        active=row["active"],
        created_at=row["created_at"],
    )


@get("/projects/{project_id:int}/members", opt=project_role(ProjectRole.AGENT), summary="List members")
async def list_members(project_id: ProjectId) -> list[MemberView]:
    return [member_view(row) for row in await services.list_members(project_id)]


@patch(
    "/projects/{project_id:int}/members/{user_id:int}",
    opt=project_role(ProjectRole.MANAGER),
    summary="Change a member's role (managers)",
)
async def change_role(project_id: ProjectId, user_id: UserId, data: JSONBody[MemberUpdate]) -> MemberView:
    return member_view(await services.change_member_role(project_id, user_id, ProjectRole(data.role)))


@delete(
    "/projects/{project_id:int}/members/{user_id:int}",
    opt=project_role(ProjectRole.MANAGER),
    status_code=204,
    summary="Remove a member (managers); the last manager stays",
)
async def remove_member(project_id: ProjectId, user_id: UserId) -> None:
    await services.remove_member(project_id, user_id)


route_handlers = [list_members, change_role, remove_member]
