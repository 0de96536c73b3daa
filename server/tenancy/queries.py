"""Tenancy read side."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from server.accounts.tables import User
from server.database import fetch
from server.errors import ErrorCode
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


@dataclass(frozen=True, slots=True)
class KeyAccess:
    """A usable API key (not revoked, not expired, its owner active)."""

    user_id: int
    project_id: int | None
    read_only: bool


@dataclass(frozen=True, slots=True)
class AccessNow:
    """The access data of many callers at once: what the realtime gateway re-reads when access
    changes, to find the sockets that lost theirs (``server/realtime/access.py``)."""

    users: Mapping[int, tuple[GlobalRole, Mapping[int, ProjectRole]]]
    """Active users only: their global role and memberships."""
    keys: Mapping[int, KeyAccess]
    """Usable API keys only."""
    projects: frozenset[int]
    """Those of the asked projects that exist."""

    def actor(self, actor: Actor) -> tuple[Actor | None, str]:
        """``actor`` as the database says now, or (None, why): ``user_deactivated``, ``api_key_revoked``."""
        user = self.users.get(actor.user_id)
        if user is None:
            return None, ErrorCode.USER_DEACTIVATED
        global_role, memberships = user
        key_project_id, read_only = actor.key_project_id, actor.read_only
        if actor.api_key_id is not None:
            key = self.keys.get(actor.api_key_id)
            if key is None or key.user_id != actor.user_id:
                return None, ErrorCode.API_KEY_REVOKED
            key_project_id, read_only = key.project_id, key.read_only or actor.read_only
        now = Actor(
            user_id=actor.user_id,
            global_role=global_role,
            memberships=memberships,
            key_project_id=key_project_id,
            read_only=read_only,
            api_key_id=actor.api_key_id,
        )
        return now, ""


_ACCESS_USERS = """
SELECT u.id, u.global_role,
       COALESCE(
         (SELECT json_object_agg(m.project, m.role) FROM project_member m WHERE m."user" = u.id),
         json_build_object()
       ) AS memberships
FROM parley_user u
WHERE u.id = ANY($1::int[]) AND u.active
"""
_ACCESS_KEYS = """
SELECT k.id, k."user", k.project, k.scopes
FROM api_key k JOIN parley_user u ON u.id = k."user"
WHERE k.id = ANY($1::int[]) AND k.revoked_at IS NULL AND (k.expires_at IS NULL OR k.expires_at > now())
  AND u.active
"""
_ACCESS_PROJECTS = "SELECT id FROM project WHERE id = ANY($1::int[])"


async def access_now(
    user_ids: Iterable[int], key_ids: Iterable[int], project_ids: Iterable[int]
) -> AccessNow:
    """Read :class:`AccessNow` for these users, API keys and projects (three indexed reads)."""
    users: dict[int, tuple[GlobalRole, Mapping[int, ProjectRole]]] = {}
    wanted_users = sorted(set(user_ids))
    for row in await fetch(_ACCESS_USERS, wanted_users) if wanted_users else ():
        memberships = {int(p): ProjectRole(role) for p, role in json.loads(row["memberships"]).items()}
        users[row["id"]] = (GlobalRole(row["global_role"]), memberships)
    keys: dict[int, KeyAccess] = {}
    wanted_keys = sorted(set(key_ids))
    if wanted_keys:
        for row in await fetch(_ACCESS_KEYS, wanted_keys):
            scopes = json.loads(row["scopes"]) if isinstance(row["scopes"], str) else row["scopes"]
            read_only = not isinstance(scopes, list) or "write" not in scopes
            keys[row["id"]] = KeyAccess(user_id=row["user"], project_id=row["project"], read_only=read_only)
    wanted_projects = sorted(set(project_ids))
    projects = (
        frozenset(row["id"] for row in await fetch(_ACCESS_PROJECTS, wanted_projects))
        if wanted_projects
        else frozenset()
    )
    return AccessNow(users=users, keys=keys, projects=projects)
