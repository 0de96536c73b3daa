"""The widget's side of a visit: find the project by its public key, check the page's origin,
and create or resume the visitor."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import msgspec
from redis.asyncio import Redis

from server.chat.identity import Identity
from server.chat.tables import Visitor
from server.errors import Forbidden, NotFound
from server.redis_client import Keys
from server.tenancy.tables import Project

PROJECT_CACHE_TTL_SECONDS = 60


class WidgetProject(msgspec.Struct, frozen=True):
    """What the widget API needs of a project; cached in Redis by public key (role 5)."""

    id: int
    name: str
    allowed_origins: list[str]
    enforce_identity: bool
    identity_secret: str
    widget_color: str
    greeting_text: str
    offline_text: str


@dataclass(frozen=True, slots=True)
class VisitorRef:
    id: int
    uid: str
    project_id: int


async def project_by_public_key(redis: Redis, public_key: str) -> WidgetProject:
    if not public_key.startswith("pk_") or len(public_key) > 64:
        raise NotFound("Unknown widget key.", code="unknown_widget_key")
    cached = await redis.get(Keys.project_by_public_key(public_key))
    if cached is not None:
        return msgspec.json.decode(cached, type=WidgetProject)
    row: dict[str, Any] | None = (
        await Project.select(
            Project.id,
            Project.name,
            Project.allowed_origins,
            Project.enforce_identity,
            Project.identity_secret,
            Project.widget_color,
            Project.greeting_text,
            Project.offline_text,
        )
        .where(Project.public_key == public_key)
        .first()
    )
    if row is None:
        raise NotFound("Unknown widget key.", code="unknown_widget_key")
    project = msgspec.convert({**row, "allowed_origins": row["allowed_origins"] or []}, WidgetProject)
    await redis.set(
        Keys.project_by_public_key(public_key), msgspec.json.encode(project), ex=PROJECT_CACHE_TTL_SECONDS
    )
    return project


def check_origin(project: WidgetProject, origin: str | None) -> None:
    """The page's ``Origin`` must be one of the project's allowed origins (``*`` allows any)."""
    if "*" in project.allowed_origins:
        return
    if origin is None or origin.rstrip("/").lower() not in project.allowed_origins:
        raise Forbidden("This site is not allowed to use the widget.", code="origin_not_allowed")


def new_visitor_uid() -> str:
    return "v_" + secrets.token_urlsafe(16)


async def open_visit(project_id: int, visitor_uid: str | None, identity: Identity) -> VisitorRef:
    """Resume the visitor (by verified external id, then by uid) or create one."""
    now = datetime.now(UTC)
    row: dict[str, Any] | None = None
    if identity.external_id is not None:
        row = (
            await Visitor.select(Visitor.id, Visitor.uid)
            .where((Visitor.project == project_id) & (Visitor.external_id == identity.external_id))
            .first()
        )
    if row is None and visitor_uid:
        row = (
            await Visitor.select(Visitor.id, Visitor.uid, Visitor.external_id)
            .where((Visitor.project == project_id) & (Visitor.uid == visitor_uid))
            .first()
        )
        # An identified visitor's uid cannot be borrowed by someone else (or another identity).
        if row is not None and row.get("external_id") not in (None, identity.external_id):
            row = None
    changes: dict[Any, Any] = {Visitor.last_seen_at: now}
    if identity.external_id is not None:
        changes[Visitor.external_id] = identity.external_id
    if identity.name is not None:
        changes[Visitor.name] = identity.name
    if identity.email is not None:
        changes[Visitor.email] = identity.email
    if row is not None:
        await Visitor.update(changes).where(Visitor.id == row["id"])
        return VisitorRef(id=row["id"], uid=row["uid"], project_id=project_id)
    visitor = Visitor(
        project=project_id,
        uid=new_visitor_uid(),
        external_id=identity.external_id,
        name=identity.name,
        email=identity.email,
    )
    await visitor.save()
    return VisitorRef(id=visitor.id, uid=visitor.uid, project_id=project_id)


async def visitor_by_uid(project_id: int, visitor_uid: str) -> VisitorRef:
    row: dict[str, Any] | None = (
        await Visitor.select(Visitor.id, Visitor.uid)
        .where((Visitor.project == project_id) & (Visitor.uid == visitor_uid))
        .first()
    )
    if row is None:
        raise NotFound("No such visitor.")
    return VisitorRef(id=row["id"], uid=row["uid"], project_id=project_id)
