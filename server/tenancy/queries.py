"""Tenancy read side."""

from __future__ import annotations

import re
from typing import Any

from server.accounts.tables import User
from server.database import fetch
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


_PROJECT_OVERVIEW = """
SELECT p.id, p.name, p.created_at,
       (SELECT count(*) FROM project_member m WHERE m.project = p.id) AS members,
       (SELECT count(*) FROM conversation c WHERE c.project = p.id) AS conversations
FROM project p
WHERE $1::text IS NULL OR p.name ILIKE '%' || $1 || '%'
ORDER BY p.id
LIMIT $2 OFFSET $3
"""


async def project_overview(search: str | None, *, limit: int, offset: int) -> list[dict[str, Any]]:
    """Every project with its member and conversation counts (for admins), by id."""
    term = re.sub(r"[%_\\\x00]", "", search.strip())[:100] if search else None
    rows = await fetch(_PROJECT_OVERVIEW, term or None, limit, offset)
    return [dict(row) for row in rows]
