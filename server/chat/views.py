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


class VisitorPage(msgspec.Struct):
    items: list[VisitorView]
    next_cursor: str | None


class ConversationVisitor(msgspec.Struct):
    id: int
    uid: str
    name: str | None
    live: VisitorLive


class ConversationView(msgspec.Struct):
    id: int
    status: Status
    priority: int
    assignee_id: int | None
    last_seq: int
    last_message_at: datetime | None
    created_at: datetime
    visitor: ConversationVisitor


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
