"""Tenancy read side."""

from __future__ import annotations

from server.accounts.tables import User
from server.tenancy.access import Actor, GlobalRole, ProjectRole
from server.tenancy.tables import ProjectMember


async def memberships_of(user_id: int) -> dict[int, ProjectRole]:
    rows = await ProjectMember.select(ProjectMember.project, ProjectMember.role).where(
        ProjectMember.user == user_id
    )
    return {row["project"]: ProjectRole(row["role"]) for row in rows}


async def actor_for(
    user: User, *, key_project_id: int | None = None, read_only: bool = False, api_key_id: int | None = None
) -> Actor:
    """Resolve the actor for a signed-in user or an API key's owner (one query)."""
    return Actor(
        user_id=user.id,
        global_role=GlobalRole(user.global_role),
        memberships=await memberships_of(user.id),
        key_project_id=key_project_id,
        read_only=read_only,
        api_key_id=api_key_id,
    )
