"""Canned replies: managers keep them, agents list and search them by shortcut."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any

import asyncpg
import msgspec
from msgspec import UNSET, UnsetType

from server.chat.tables import CannedReply
from server.errors import Conflict, ErrorCode, Invalid, NotFound

Shortcut = Annotated[str, msgspec.Meta(min_length=1, max_length=50, pattern=r"^[a-z0-9][a-z0-9_-]*$")]
Title = Annotated[str, msgspec.Meta(max_length=200)]
Body = Annotated[str, msgspec.Meta(min_length=1, max_length=5000)]


class CannedReplyCreate(msgspec.Struct, forbid_unknown_fields=True):
    shortcut: Shortcut
    body: Body
    title: Title = ""


class CannedReplyUpdate(msgspec.Struct, forbid_unknown_fields=True):
    shortcut: Shortcut | UnsetType = UNSET
    body: Body | UnsetType = UNSET
    title: Title | UnsetType = UNSET


class CannedReplyView(msgspec.Struct):
    id: int
    shortcut: str
    title: str
    body: str
    created_by: int | None
    created_at: datetime
    updated_at: datetime


def _view(row: dict[str, Any]) -> CannedReplyView:
    return CannedReplyView(
        id=row["id"],
        shortcut=row["shortcut"],
        title=row["title"],
        body=row["body"],
        created_by=row["created_by"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


async def _get(project_id: int, reply_id: int) -> dict[str, Any]:
    row: dict[str, Any] | None = (
        await CannedReply.select()
        .where((CannedReply.project == project_id) & (CannedReply.id == reply_id))
        .first()
    )
    if row is None:
        raise NotFound("No such canned reply.")
    return row


async def get_canned_reply(project_id: int, reply_id: int) -> CannedReplyView:
    return _view(await _get(project_id, reply_id))


async def list_canned_replies(
    project_id: int, search: str | None = None, *, limit: int = 200, offset: int = 0
) -> list[CannedReplyView]:
    """A project's replies by shortcut (``limit`` from ``offset``); ``search`` matches a shortcut
    prefix or the title."""
    query = CannedReply.select().where(CannedReply.project == project_id)
    if search:
        term = re.sub(r"[%_\\\x00]", "", search.strip().lstrip("/").lower())[:50]
        query = query.where((CannedReply.shortcut.like(f"{term}%")) | (CannedReply.title.ilike(f"%{term}%")))
    rows: list[dict[str, Any]] = await query.order_by(CannedReply.shortcut).limit(limit).offset(offset)
    return [_view(row) for row in rows]


async def create_canned_reply(project_id: int, user_id: int, data: CannedReplyCreate) -> CannedReplyView:
    reply = CannedReply(
        project=project_id, shortcut=data.shortcut, title=data.title, body=data.body, created_by=user_id
    )
    try:
        await reply.save()
    except asyncpg.UniqueViolationError:
        raise Conflict("A canned reply with this shortcut exists.", code=ErrorCode.SHORTCUT_TAKEN) from None
    return _view(await _get(project_id, reply.id))


async def update_canned_reply(project_id: int, reply_id: int, data: CannedReplyUpdate) -> CannedReplyView:
    await _get(project_id, reply_id)
    values: dict[Any, Any] = {
        CannedReply._meta.get_column_by_name(field): getattr(data, field)
        for field in ("shortcut", "body", "title")
        if getattr(data, field) is not UNSET
    }
    if not values:
        raise Invalid("Nothing to change.", code=ErrorCode.EMPTY_UPDATE)
    values[CannedReply.updated_at] = datetime.now(UTC)
    try:
        await CannedReply.update(values).where(
            (CannedReply.project == project_id) & (CannedReply.id == reply_id)
        )
    except asyncpg.UniqueViolationError:
        raise Conflict("A canned reply with this shortcut exists.", code=ErrorCode.SHORTCUT_TAKEN) from None
    return _view(await _get(project_id, reply_id))


async def delete_canned_reply(project_id: int, reply_id: int) -> None:
    await _get(project_id, reply_id)
    await CannedReply.delete().where((CannedReply.project == project_id) & (CannedReply.id == reply_id))
