"""Tenancy write side: projects, their settings and widget key, and memberships.

Joining a project goes through invitations (``server/tenancy/invitations.py``).
"""

from __future__ import annotations

from typing import Any

import msgspec
from piccolo.columns import Column
from redis.asyncio import Redis
from saq.queue.base import Queue

from server.database import engine
from server.errors import Conflict, ErrorCode, Invalid, NotFound
from server.redis_client import Keys
from server.tenancy.access import ProjectRole
from server.tenancy.actor_cache import forget_cached_actors
from server.tenancy.origins import InvalidOrigin, normalise_allowed_list
from server.tenancy.schemas import ProjectUpdate
from server.tenancy.tables import Project, ProjectMember, new_identity_secret, new_public_key
from server.tenancy.widget_cache import forget_widget_project, mark_project_deleted

CLEAR_PROJECT_KEYS_JOB = "clear_project_keys"


def check_origins(origins: list[str]) -> list[str]:
    """Allowed-origins entries normalised by the one origin rule (:mod:`server.tenancy.origins`),
    or :class:`Invalid` naming the first bad entry."""
    try:
        return normalise_allowed_list(origins)
    except InvalidOrigin as error:
        raise Invalid(
            f"{error} (allowed: *, an origin like https://shop.example, or https://*.shop.example)",
            fields={"allowed_origins": "bad origin"},
        ) from None


async def create_project(name: str, allowed_origins: list[str]) -> Project:
    project = Project(name=name.strip(), allowed_origins=check_origins(allowed_origins))
    if not project.name:
        raise Invalid("A project needs a name.", fields={"name": "must not be empty"})
    await project.save()
    return project


async def get_project(project_id: int) -> Project:
    project: Project | None = await Project.objects().where(Project.id == project_id).first()
    if project is None:
        raise NotFound("No such project.")
    return project


async def update_project(redis: Redis, project_id: int, changes: ProjectUpdate) -> Project:
    values: dict[Column | str, Any] = {}
    for field in msgspec.structs.fields(changes):
        value = getattr(changes, field.name)
        if value is msgspec.UNSET:
            continue
        if field.name == "name":
            value = value.strip()
            if not value:
                raise Invalid("A project needs a name.", fields={"name": "must not be empty"})
        if field.name == "allowed_origins":
            value = check_origins(value)
        if field.name == "prechat_fields":
            value = list(dict.fromkeys(value))
        values[Project._meta.get_column_by_name(field.name)] = value
    project = await get_project(project_id)
    if values:
        await Project.update(values).where(Project.id == project_id)
        await forget_widget_project(redis, project.public_key)
        project = await get_project(project_id)
    return project


async def rotate_widget_key(redis: Redis, project_id: int) -> Project:
    project = await get_project(project_id)
    await Project.update({Project.public_key: new_public_key()}).where(Project.id == project_id)
    await forget_widget_project(redis, project.public_key)
    return await get_project(project_id)


async def rotate_identity_secret(redis: Redis, project_id: int) -> str:
    """A new identity secret; the old one stops verifying at once (no grace period)."""
    secret = new_identity_secret()
    project = await get_project(project_id)
    await Project.update({Project.identity_secret: secret}).where(Project.id == project_id)
    await forget_widget_project(redis, project.public_key)
    return secret


async def delete_project(redis: Redis, queue: Queue, project_id: int) -> None:
    """Delete the project and, by cascade, every row of it; a job then clears its Redis keys."""
    project = await get_project(project_id)
    await Project.delete().where(Project.id == project_id)
    forget_cached_actors()
    await mark_project_deleted(redis, project_id)
    await forget_widget_project(redis, project.public_key)
    await queue.enqueue(CLEAR_PROJECT_KEYS_JOB, project_id=project_id, timeout=300, retries=3)


_MEMBER_COLUMNS = (
    ProjectMember.user.as_alias("user_id"),
    ProjectMember.user.email.as_alias("email"),
    ProjectMember.user.name.as_alias("name"),
    ProjectMember.user.active.as_alias("active"),
    ProjectMember.role,
    ProjectMember.created_at,
)


async def _member(project_id: int, user_id: int) -> dict[str, Any]:
    row: dict[str, Any] | None = (
        await ProjectMember.select(*_MEMBER_COLUMNS)
        .where((ProjectMember.project == project_id) & (ProjectMember.user == user_id))
        .first()
    )
    if row is None:
        raise NotFound("No such member.")
    return row


async def list_members(project_id: int, *, limit: int | None = None, offset: int = 0) -> list[dict[str, Any]]:
    """The project's members by when they joined (``limit`` from ``offset``: all by default)."""
    query = ProjectMember.select(*_MEMBER_COLUMNS).where(ProjectMember.project == project_id)
    if limit is not None:
        query = query.limit(limit).offset(offset)
    rows: list[dict[str, Any]] = await query.order_by(ProjectMember.id)
    return rows


async def _lock_managers(project_id: int) -> int:
    """Lock the project's manager rows and count them (callers hold a transaction)."""
    rows = (
        await ProjectMember.select(ProjectMember.id)
        .where((ProjectMember.project == project_id) & (ProjectMember.role == ProjectRole.MANAGER.value))
        .lock_rows("UPDATE")
    )
    return len(rows)


async def change_member_role(project_id: int, user_id: int, role: ProjectRole) -> dict[str, Any]:
    async with engine().transaction():
        current = await _member(project_id, user_id)
        demoting = current["role"] == ProjectRole.MANAGER.value and role is not ProjectRole.MANAGER
        if demoting and await _lock_managers(project_id) <= 1:
            raise Conflict("A project must keep at least one manager.", code=ErrorCode.LAST_MANAGER)
        await ProjectMember.update({ProjectMember.role: role.value}).where(
            (ProjectMember.project == project_id) & (ProjectMember.user == user_id)
        )
    forget_cached_actors()
    return await _member(project_id, user_id)


async def remove_member(project_id: int, user_id: int) -> None:
    async with engine().transaction():
        current = await _member(project_id, user_id)
        if current["role"] == ProjectRole.MANAGER.value and await _lock_managers(project_id) <= 1:
            raise Conflict("A project must keep at least one manager.", code=ErrorCode.LAST_MANAGER)
        await ProjectMember.delete().where(
            (ProjectMember.project == project_id) & (ProjectMember.user == user_id)
        )
    forget_cached_actors()


async def clear_project_keys(redis: Redis, project_id: int) -> int:
    """Remove every Redis key of a deleted project (``parley:{p:<id>}:*``, its mailboxes); returns how many.

    SCAN in pages and UNLINK each page, so a big project never blocks Redis. On a cluster
    redis-py scans every primary and splits the UNLINK by slot.
    """
    removed = 0
    for pattern in Keys.project_patterns(project_id):
        batch: list[bytes | str] = []
        async for key in redis.scan_iter(match=pattern, count=500):
            batch.append(key)
            if len(batch) >= 500:
                removed += await redis.unlink(*batch)
                batch = []
        if batch:
            removed += await redis.unlink(*batch)
    return removed
