"""The widget's side of a visit: find the project by its public key, check the page's origin,
and create or resume the visitor."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import msgspec
from redis.asyncio import Redis

from server.chat.identity import Identity
from server.chat.tables import Visitor
from server.errors import ErrorCode, Forbidden, Invalid, NotFound
from server.redis_client import Keys
from server.tenancy.origins import AllowedOrigins
from server.tenancy.tables import Project, ProjectMember

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
    launcher_position: str = "right"
    prechat_fields: list[str] = []


@dataclass(frozen=True, slots=True)
class VisitorRef:
    id: int
    uid: str
    project_id: int


async def project_by_public_key(redis: Redis, public_key: str) -> WidgetProject:
    if not public_key.startswith("pk_") or len(public_key) > 64:
        raise NotFound("Unknown widget key.", code=ErrorCode.UNKNOWN_WIDGET_KEY)
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
            Project.launcher_position,
            Project.prechat_fields,
        )
        .where(Project.public_key == public_key)
        .first()
    )
    if row is None:
        raise NotFound("Unknown widget key.", code=ErrorCode.UNKNOWN_WIDGET_KEY)
    project = msgspec.convert(
        {
            **row,
            "allowed_origins": row["allowed_origins"] or [],
            "prechat_fields": row["prechat_fields"] or [],
        },
        WidgetProject,
    )
    await redis.set(
        Keys.project_by_public_key(public_key), msgspec.json.encode(project), ex=PROJECT_CACHE_TTL_SECONDS
    )
    return project


def origin_allowed(project: WidgetProject, origin: str | None) -> bool:
    """The page's ``Origin`` passes the project's allowed origins (:mod:`server.tenancy.origins`)."""
    return AllowedOrigins(project.allowed_origins).allows(origin)


def check_origin(project: WidgetProject, origin: str | None) -> None:
    if not origin_allowed(project, origin):
        raise Forbidden("This site is not allowed to use the widget.", code=ErrorCode.ORIGIN_NOT_ALLOWED)


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


@dataclass(frozen=True, slots=True)
class VisitorProfile:
    name: str | None
    email: str | None
    verified: bool
    """Identified with a valid signature (HMAC or JWT): name and e-mail come from the site."""


async def visitor_profile(project_id: int, visitor_uid: str) -> VisitorProfile:
    row: dict[str, Any] | None = (
        await Visitor.select(Visitor.name, Visitor.email, Visitor.external_id)
        .where((Visitor.project == project_id) & (Visitor.uid == visitor_uid))
        .first()
    )
    if row is None:
        raise NotFound("No such visitor.")
    return VisitorProfile(name=row["name"], email=row["email"], verified=row["external_id"] is not None)


MAX_ATTRIBUTES = 50


async def update_visitor_profile(
    project_id: int,
    visitor_uid: str,
    *,
    name: str | None = None,
    email: str | None = None,
    attributes: dict[str, str | int | float | bool | None] | None = None,
) -> VisitorProfile:
    """What the visitor says of themselves (pre-chat form, ``Parley.setAttributes``, the offline
    form). Never overrides a verified identity's name or e-mail; attributes merge into metadata
    (``None`` removes one)."""
    profile = await visitor_profile(project_id, visitor_uid)
    changes: dict[Any, Any] = {}
    if not profile.verified:
        if name is not None:
            changes[Visitor.name] = name.strip() or None
        if email is not None:
            changes[Visitor.email] = email.strip() or None
    if attributes:
        row = await (
            Visitor.select(Visitor.metadata)
            .where((Visitor.project == project_id) & (Visitor.uid == visitor_uid))
            .output(load_json=True)
            .first()
        )
        metadata = dict(row["metadata"] or {}) if row else {}
        for key, value in attributes.items():
            if value is None:
                metadata.pop(key, None)
            else:
                metadata[key] = value
        if len(metadata) > MAX_ATTRIBUTES:
            raise Invalid(
                f"A visitor keeps at most {MAX_ATTRIBUTES} attributes.", fields={"attributes": "too many"}
            )
        changes[Visitor.metadata] = metadata
    if changes:
        await Visitor.update(changes).where((Visitor.project == project_id) & (Visitor.uid == visitor_uid))
    return await visitor_profile(project_id, visitor_uid)


async def agents_online(redis: Redis, project_id: int) -> bool:
    """Someone of the project's agents has a live socket (presence, Redis only)."""
    return bool(await redis.zcount(Keys.agent_presence(project_id), time.time(), "+inf"))


@dataclass(frozen=True, slots=True)
class AgentName:
    id: int
    name: str


async def agent_names(project_id: int) -> list[AgentName]:
    """The display names visitors see beside agents' messages (members of the project only)."""
    rows = await ProjectMember.select(ProjectMember.user.id, ProjectMember.user.name).where(
        ProjectMember.project == project_id
    )
    return [AgentName(id=row["user.id"], name=row["user.name"] or "Agent") for row in rows]
