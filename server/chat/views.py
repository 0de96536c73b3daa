"""Read-side views of the chat context (msgspec), shared by the REST API, widget API and console."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

import msgspec

Status = Literal["open", "pending", "snoozed", "resolved"]
SenderKind = Literal["visitor", "agent", "system"]


class VisitorLive(msgspec.Struct):
    """Ephemeral state from Redis (never stored in PostgreSQL)."""

    online: bool = False
    current_url: str | None = None
    page_title: str | None = None


class VisitorView(msgspec.Struct):
    id: int
    uid: str
    name: str | None
    email: str | None
    external_id: str | None
    first_seen_at: datetime
    last_seen_at: datetime
    live: VisitorLive
    metadata: dict[str, Any] = {}


class PageVisit(msgspec.Struct):
    """One navigation the widget reported (``navigate``)."""

    url: str
    title: str
    at: float
    """Unix time."""


class VisitorDeviceView(msgspec.Struct):
    """What the widget reported of the visitor's browser (``visitor:info``), the user agent parsed."""

    browser: str
    os: str
    language: str
    timezone: str
    screen: str
    user_agent: str
    at: float


class ConversationSummary(msgspec.Struct):
    id: int
    status: Status
    created_at: datetime
    last_message_at: datetime | None
    last_message_preview: str
    last_seq: int


class VisitorProfile(msgspec.Struct):
    """The inbox's side panel: who the visitor is, where they went, on what, and what came before."""

    visitor: VisitorView
    verified: bool
    """Identified with a valid signature (an external id is only ever stored when signed)."""
    device: VisitorDeviceView | None
    trail: list[PageVisit]
    """The last 20 pages, newest first."""
    conversations: list[ConversationSummary]
    """The visitor's conversations, newest first (at most 20)."""


class VisitorPage(msgspec.Struct):
    items: list[VisitorView]
    next_cursor: str | None


class ConversationVisitor(msgspec.Struct):
    id: int
    uid: str
    name: str | None
    live: VisitorLive
    email: str | None = None


class ConversationView(msgspec.Struct):
    id: int
    status: Status
    priority: int
    assignee_id: int | None
    last_seq: int
    last_message_at: datetime | None
    created_at: datetime
    visitor: ConversationVisitor
    last_message_preview: str = ""
    """The start of the newest message, private notes included (agents only see this)."""
    last_message_kind: Literal["visitor", "agent", "note", "system", ""] = ""
    waiting_since: datetime | None = None
    """When the visitor's oldest unanswered message came; null when an agent answered last."""
    snoozed_until: datetime | None = None
    unread_count: int = 0
    """Messages after the calling agent's read mark (0 for callers that are not agents)."""
    visitor_read_seq: int = 0
    """The visitor has read up to this seq: the "read" mark on agents' messages."""


class StatusCounts(msgspec.Struct):
    all: int = 0
    mine: int = 0
    unassigned: int = 0


class ConversationCounts(msgspec.Struct):
    """How many conversations each inbox filter holds (search not applied), and my unread total."""

    open: StatusCounts
    pending: StatusCounts
    snoozed: StatusCounts
    resolved: StatusCounts
    unread_total: int
    """Unread messages in open and pending conversations that are mine or unassigned (the tab title)."""


class ConversationPage(msgspec.Struct):
    items: list[ConversationView]
    next_cursor: str | None
    """Pass as ``cursor`` for the next page; null on the last page."""


class MessageView(msgspec.Struct):
    id: int
    conversation_id: int
    seq: int
    sender_kind: SenderKind
    sender_user_id: int | None
    body: str
    private: bool
    client_msg_id: str
    created_at: datetime


class MessageList(msgspec.Struct):
    items: list[MessageView]
    """In ascending ``seq`` order."""
    has_more: bool
