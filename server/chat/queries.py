"""Chat read side: visitors, conversations (hydrated with live state) and messages.

Every query takes the project id from the caller's path and filters by it: an id that belongs
to another project is simply not found.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import msgspec
from redis.asyncio import Redis

from server.chat.live import visitor_live_states
from server.chat.tables import Conversation, Visitor
from server.chat.views import (
    ConversationPage,
    ConversationView,
    ConversationVisitor,
    MessageList,
    MessageView,
    VisitorLive,
    VisitorPage,
    VisitorView,
)
from server.database import fetch
from server.errors import Invalid, NotFound

MAX_PAGE = 100


class _Cursor(msgspec.Struct, array_like=True):
    at: datetime | None
    id: int


def encode_cursor(at: datetime | None, row_id: int) -> str:
    return base64.urlsafe_b64encode(msgspec.json.encode(_Cursor(at, row_id))).decode().rstrip("=")


def decode_cursor(cursor: str) -> _Cursor:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        return msgspec.json.decode(raw, type=_Cursor)
    except (ValueError, msgspec.DecodeError):
        raise Invalid(
            "The cursor is not one this API returned.", code="bad_cursor", fields={"cursor": "invalid"}
        ) from None


@dataclass(frozen=True, slots=True)
class ConversationFilters:
    status: str | None = None
    assignee_id: int | None = None
    unassigned: bool = False
    visitor_uid: str | None = None


_CONVERSATION_COLUMNS = (
    Conversation.id,
    Conversation.status,
    Conversation.priority,
    Conversation.assignee,
    Conversation.last_seq,
    Conversation.last_message_at,
    Conversation.created_at,
    Conversation.visitor.as_alias("visitor_id"),
    Conversation.visitor.uid.as_alias("visitor_uid"),
    Conversation.visitor.name.as_alias("visitor_name"),
)


def _conversation_view(row: Mapping[str, Any], live: VisitorLive) -> ConversationView:
    return ConversationView(
        id=row["id"],
        status=row["status"],
        priority=row["priority"],
        assignee_id=row["assignee"],
        last_seq=row["last_seq"],
        last_message_at=row["last_message_at"],
        created_at=row["created_at"],
        visitor=ConversationVisitor(
            id=row["visitor_id"], uid=row["visitor_uid"], name=row["visitor_name"], live=live
        ),
    )


_LIST_CONVERSATIONS = """
SELECT c.id, c.status, c.priority, c.assignee, c.last_seq, c.last_message_at, c.created_at,
       v.id AS visitor_id, v.uid AS visitor_uid, v.name AS visitor_name
FROM conversation c JOIN visitor v ON v.id = c.visitor
WHERE c.project = $1 {filters}
ORDER BY c.last_message_at DESC NULLS LAST, c.id DESC
LIMIT ${limit}
"""


async def list_conversations(
    redis: Redis, project_id: int, filters: ConversationFilters, *, limit: int = 50, cursor: str | None = None
) -> ConversationPage:
    """Newest activity first (conversations without messages last), keyset-paginated.

    Raw SQL because the order (``DESC NULLS LAST``, matching ``conversation_inbox_idx``) cannot be
    said with Piccolo's ``order_by``; values still travel as bind parameters. It runs straight on
    asyncpg (:func:`server.database.fetch`): this is the API's hottest read.
    """
    if filters.unassigned and filters.assignee_id is not None:
        raise Invalid(
            "Use either assignee_id or unassigned.", fields={"unassigned": "conflicts with assignee_id"}
        )
    clauses: list[str] = []
    args: list[Any] = [project_id]

    def param(value: Any) -> str:
        args.append(value)
        return f"${len(args)}"

    if filters.status is not None:
        clauses.append(f"c.status = {param(filters.status)}")
    if filters.assignee_id is not None:
        clauses.append(f"c.assignee = {param(filters.assignee_id)}")
    if filters.unassigned:
        clauses.append("c.assignee IS NULL")
    if filters.visitor_uid is not None:
        clauses.append(f"v.uid = {param(filters.visitor_uid)}")
    if cursor is not None:
        after = decode_cursor(cursor)
        if after.at is None:
            clauses.append(f"c.last_message_at IS NULL AND c.id < {param(after.id)}")
        else:
            at, row_id = param(after.at), param(after.id)
            clauses.append(
                f"(c.last_message_at < {at} OR (c.last_message_at = {at} AND c.id < {row_id})"
                " OR c.last_message_at IS NULL)"
            )
    limit = max(1, min(limit, MAX_PAGE))
    param(limit + 1)
    sql = _LIST_CONVERSATIONS.format(filters="".join(f" AND {clause}" for clause in clauses), limit=len(args))
    rows = await fetch(sql, *args)
    page, more = rows[:limit], len(rows) > limit
    live = await visitor_live_states(redis, project_id, [row["visitor_uid"] for row in page])
    items = [_conversation_view(row, live[row["visitor_uid"]]) for row in page]
    next_cursor = encode_cursor(page[-1]["last_message_at"], page[-1]["id"]) if more and page else None
    return ConversationPage(items=items, next_cursor=next_cursor)


async def get_conversation(redis: Redis, project_id: int, conversation_id: int) -> ConversationView:
    row: dict[str, Any] | None = (
        await Conversation.select(*_CONVERSATION_COLUMNS)
        .where((Conversation.project == project_id) & (Conversation.id == conversation_id))
        .first()
    )
    if row is None:
        raise NotFound("No such conversation.")
    live = await visitor_live_states(redis, project_id, [row["visitor_uid"]])
    return _conversation_view(row, live[row["visitor_uid"]])


def _visitor_view(row: dict[str, Any], live: VisitorLive) -> VisitorView:
    metadata = row["metadata"]
    return VisitorView(
        id=row["id"],
        uid=row["uid"],
        name=row["name"],
        email=row["email"],
        external_id=row["external_id"],
        first_seen_at=row["first_seen_at"],
        last_seen_at=row["last_seen_at"],
        live=live,
        metadata=metadata if isinstance(metadata, dict) else {},
    )


async def list_visitors(
    redis: Redis, project_id: int, *, limit: int = 50, cursor: str | None = None
) -> VisitorPage:
    """Most recently seen first, keyset-paginated, hydrated like conversations."""
    query = Visitor.select().where(Visitor.project == project_id)
    if cursor is not None:
        after = decode_cursor(cursor)
        if after.at is None:
            raise Invalid(
                "The cursor is not one this API returned.", code="bad_cursor", fields={"cursor": "invalid"}
            )
        query = query.where(
            (Visitor.last_seen_at < after.at) | ((Visitor.last_seen_at == after.at) & (Visitor.id < after.id))
        )
    limit = max(1, min(limit, MAX_PAGE))
    rows: list[dict[str, Any]] = await (
        query.order_by(Visitor.last_seen_at, Visitor.id, ascending=False)
        .limit(limit + 1)
        .output(load_json=True)
    )
    page, more = rows[:limit], len(rows) > limit
    live = await visitor_live_states(redis, project_id, [row["uid"] for row in page])
    items = [_visitor_view(row, live[row["uid"]]) for row in page]
    next_cursor = encode_cursor(page[-1]["last_seen_at"], page[-1]["id"]) if more and page else None
    return VisitorPage(items=items, next_cursor=next_cursor)


async def get_visitor(redis: Redis, project_id: int, visitor_id: int) -> VisitorView:
    row: dict[str, Any] | None = (
        await Visitor.select()
        .where((Visitor.project == project_id) & (Visitor.id == visitor_id))
        .first()
        .output(load_json=True)
    )
    if row is None:
        raise NotFound("No such visitor.")
    live = await visitor_live_states(redis, project_id, [row["uid"]])
    return _visitor_view(row, live[row["uid"]])


_MESSAGES = """
SELECT id, conversation, seq, sender_kind, sender_user, body, private, client_msg_id, created_at
FROM message
WHERE project = $1 AND conversation = $2 {filters}
ORDER BY seq {direction}
LIMIT ${limit}
"""
_CONVERSATION_EXISTS = "SELECT 1 FROM conversation WHERE project = $1 AND id = $2"


def message_view(row: Mapping[str, Any]) -> MessageView:
    return MessageView(
        id=row["id"],
        conversation_id=row["conversation"],
        seq=row["seq"],
        sender_kind=row["sender_kind"],
        sender_user_id=row["sender_user"],
        body=row["body"],
        private=row["private"],
        client_msg_id=str(row["client_msg_id"]),
        created_at=row["created_at"],
    )


async def list_messages(
    project_id: int,
    conversation_id: int,
    *,
    after_seq: int | None = None,
    before_seq: int | None = None,
    limit: int = 50,
    include_private: bool = True,
) -> MessageList:
    """Messages in ascending seq: after ``after_seq``, or the newest before ``before_seq``, or the newest.

    Straight on asyncpg like the inbox list: opening a conversation (console, widget, socket
    ``sync``) is the second hottest read, and Piccolo's query building cost more than the query.
    """
    if after_seq is not None and before_seq is not None:
        raise Invalid(
            "Use either after_seq or before_seq.", fields={"before_seq": "conflicts with after_seq"}
        )
    if not await fetch(_CONVERSATION_EXISTS, project_id, conversation_id):
        raise NotFound("No such conversation.")
    limit = max(1, min(limit, MAX_PAGE))
    args: list[Any] = [project_id, conversation_id]
    filters = "" if include_private else " AND NOT private"
    if after_seq is not None:
        args.append(after_seq)
        filters += f" AND seq > ${len(args)}"
    elif before_seq is not None:
        args.append(before_seq)
        filters += f" AND seq < ${len(args)}"
    args.append(limit + 1)
    forward = after_seq is not None
    sql = _MESSAGES.format(filters=filters, direction="ASC" if forward else "DESC", limit=len(args))
    rows = await fetch(sql, *args)
    page = rows[:limit] if forward else list(reversed(rows[:limit]))
    return MessageList(items=[message_view(row) for row in page], has_more=len(rows) > limit)
