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

from server.chat.live import visitor_activity, visitor_live_states
from server.chat.tables import Conversation, Visitor
from server.chat.views import (
    ConversationCounts,
    ConversationPage,
    ConversationSummary,
    ConversationView,
    ConversationVisitor,
    MessageList,
    MessageView,
    StatusCounts,
    VisitorLive,
    VisitorPage,
    VisitorProfile,
    VisitorView,
)
from server.database import fetch
from server.errors import ErrorCode, Invalid, NotFound

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
            "The cursor is not one this API returned.",
            code=ErrorCode.BAD_CURSOR,
            fields={"cursor": "invalid"},
        ) from None


@dataclass(frozen=True, slots=True)
class ConversationFilters:
    status: str | None = None
    assignee_id: int | None = None
    unassigned: bool = False
    visitor_uid: str | None = None
    search: str | None = None
    """Words found in the visitor's name or e-mail, or in a message of the conversation (any case)."""
    reader_id: int | None = None
    """The agent whose unread counts the rows carry (their read marks); None: no counts."""


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
            id=row["visitor_id"],
            uid=row["visitor_uid"],
            name=row["visitor_name"],
            email=row["visitor_email"],
            live=live,
        ),
        last_message_preview=row["last_message_preview"],
        last_message_kind=row["last_message_kind"],
        waiting_since=row["waiting_since"],
        snoozed_until=row["snoozed_until"],
        unread_count=row["unread"],
        visitor_read_seq=row["visitor_read_seq"],
    )


_SELECT_CONVERSATIONS = """
SELECT c.id, c.status, c.priority, c.assignee, c.last_seq, c.last_message_at, c.created_at,
       c.last_message_preview, c.last_message_kind, c.waiting_since, c.snoozed_until, c.visitor_read_seq,
       v.id AS visitor_id, v.uid AS visitor_uid, v.name AS visitor_name, v.email AS visitor_email,
       {unread} AS unread
FROM conversation c JOIN visitor v ON v.id = c.visitor {read_join}
"""
_LIST_CONVERSATIONS = (
    _SELECT_CONVERSATIONS
    + """WHERE c.project = $1 {filters}
ORDER BY c.last_message_at DESC NULLS LAST, c.id DESC
LIMIT ${limit}
"""
)
_READ_JOIN = 'LEFT JOIN conversation_read r ON r.conversation = c.id AND r."user" = {reader}'
_UNREAD = "greatest(c.last_seq - coalesce(r.seq, 0), 0)"
_SEARCH = (
    "(v.name ILIKE {pattern} OR v.email ILIKE {pattern} OR EXISTS (SELECT 1 FROM message m "
    "WHERE m.conversation = c.id AND m.project = c.project AND m.body ILIKE {pattern}))"
)


def _like_pattern(text: str) -> str:
    """``%text%`` for ILIKE, with the user's own ``%``, ``_`` and ``\\`` taken literally."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


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
    if filters.search is not None and filters.search.strip():
        pattern = param(_like_pattern(filters.search.strip()))
        clauses.append(_SEARCH.format(pattern=pattern))
    read_join, unread = "", "0"
    if filters.reader_id is not None:
        read_join, unread = _READ_JOIN.format(reader=param(filters.reader_id)), _UNREAD
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
    sql = _LIST_CONVERSATIONS.format(
        filters="".join(f" AND {clause}" for clause in clauses),
        limit=len(args),
        read_join=read_join,
        unread=unread,
    )
    rows = await fetch(sql, *args)
    page, more = rows[:limit], len(rows) > limit
    live = await visitor_live_states(redis, project_id, [row["visitor_uid"] for row in page])
    items = [_conversation_view(row, live[row["visitor_uid"]]) for row in page]
    next_cursor = encode_cursor(page[-1]["last_message_at"], page[-1]["id"]) if more and page else None
    return ConversationPage(items=items, next_cursor=next_cursor)


async def get_conversation(
    redis: Redis, project_id: int, conversation_id: int, *, reader_id: int | None = None
) -> ConversationView:
    """One conversation, hydrated; ``reader_id``: the agent whose unread count it carries."""
    args: list[Any] = [project_id, conversation_id]
    read_join, unread = "", "0"
    if reader_id is not None:
        args.append(reader_id)
        read_join, unread = _READ_JOIN.format(reader="$3"), _UNREAD
    sql = (
        _SELECT_CONVERSATIONS.format(read_join=read_join, unread=unread)
        + "WHERE c.project = $1 AND c.id = $2"
    )
    rows = await fetch(sql, *args)
    if not rows:
        raise NotFound("No such conversation.")
    row = rows[0]
    live = await visitor_live_states(redis, project_id, [row["visitor_uid"]])
    return _conversation_view(row, live[row["visitor_uid"]])


_COUNTS = """
SELECT c.status, count(*) AS all, count(*) FILTER (WHERE c.assignee = $2) AS mine,
       count(*) FILTER (WHERE c.assignee IS NULL) AS unassigned,
       coalesce(sum(greatest(c.last_seq - coalesce(r.seq, 0), 0))
                FILTER (WHERE c.assignee = $2 OR c.assignee IS NULL), 0) AS unread
FROM conversation c LEFT JOIN conversation_read r ON r.conversation = c.id AND r."user" = $2
WHERE c.project = $1
GROUP BY c.status
"""


async def conversation_counts(project_id: int, user_id: int) -> ConversationCounts:
    """The number of conversations behind each inbox filter, for ``user_id`` ("mine"), in one query."""
    per_status = {status.value: StatusCounts() for status in Conversation.Status}
    unread_total = 0
    for row in await fetch(_COUNTS, project_id, user_id):
        per_status[row["status"]] = StatusCounts(
            all=row["all"], mine=row["mine"], unassigned=row["unassigned"]
        )
        if row["status"] in (Conversation.Status.OPEN.value, Conversation.Status.PENDING.value):
            unread_total += int(row["unread"])
    return ConversationCounts(**per_status, unread_total=unread_total)


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
                "The cursor is not one this API returned.",
                code=ErrorCode.BAD_CURSOR,
                fields={"cursor": "invalid"},
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


_VISITOR_CONVERSATIONS = """
SELECT id, status, created_at, last_message_at, last_message_preview, last_seq
FROM conversation WHERE project = $1 AND visitor = $2
ORDER BY created_at DESC, id DESC LIMIT 20
"""


async def visitor_profile(redis: Redis, project_id: int, visitor_id: int) -> VisitorProfile:
    """The inbox side panel's data: the visitor, their device, page trail and conversations."""
    visitor = await get_visitor(redis, project_id, visitor_id)
    trail, device = await visitor_activity(redis, project_id, visitor.uid)
    rows = await fetch(_VISITOR_CONVERSATIONS, project_id, visitor_id)
    return VisitorProfile(
        visitor=visitor,
        verified=visitor.external_id is not None,
        device=device,
        trail=trail,
        conversations=[ConversationSummary(**dict(row)) for row in rows],
    )


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
    max_limit: int = MAX_PAGE,
) -> MessageList:
    """Messages in ascending seq: after ``after_seq``, or the newest before ``before_seq``, or the newest.

    ``limit`` is clamped to ``max_limit``: the REST pages' 100 unless a caller says otherwise
    (socket ``sync`` answers 200 at a time).

    Straight on asyncpg like the inbox list: opening a conversation (console, widget, socket
    ``sync``) is the second hottest read, and Piccolo's query building cost more than the query.
    """
    if after_seq is not None and before_seq is not None:
        raise Invalid(
            "Use either after_seq or before_seq.", fields={"before_seq": "conflicts with after_seq"}
        )
    if not await fetch(_CONVERSATION_EXISTS, project_id, conversation_id):
        raise NotFound("No such conversation.")
    limit = max(1, min(limit, max_limit))
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
