"""Chat tables. Every row carries its project (ON DELETE CASCADE) so tenant queries filter by it."""

from __future__ import annotations

import enum

from piccolo.columns import (
    JSONB,
    UUID,
    BigSerial,
    Boolean,
    ForeignKey,
    Integer,
    OnDelete,
    Serial,
    SmallInt,
    Text,
    Timestamptz,
    Varchar,
)
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.constraints import Unique
from piccolo.table import Table

from server.accounts.tables import User
from server.tenancy.tables import Project


class Visitor(Table, tablename="visitor"):
    """Someone on a customer's site using the widget, anonymous or identified."""

    id = Serial(primary_key=True)
    project = ForeignKey(Project, on_delete=OnDelete.cascade, null=False)
    uid = Varchar(length=64, help_text="Public random id kept by the widget; unique per project.")
    name = Varchar(length=200, null=True, default=None)
    email = Varchar(length=255, null=True, default=None)
    external_id = Varchar(
        length=255, null=True, default=None, help_text="The customer's own user id, set only when signed."
    )
    metadata = JSONB(default={})
    first_seen_at = Timestamptz(default=TimestamptzNow())
    last_seen_at = Timestamptz(default=TimestamptzNow())

    unique_project_uid = Unique([project, uid])


class Conversation(Table, tablename="conversation"):
    """A thread between one visitor and the project's agents."""

    id = Serial(primary_key=True)

    class Status(enum.StrEnum):
        OPEN = "open"
        PENDING = "pending"
        SNOOZED = "snoozed"
        RESOLVED = "resolved"

    project = ForeignKey(Project, on_delete=OnDelete.cascade, null=False)
    visitor = ForeignKey(Visitor, on_delete=OnDelete.cascade, null=False)
    status = Varchar(length=10, choices=Status, default=Status.OPEN)
    assignee = ForeignKey(User, on_delete=OnDelete.set_null, null=True, default=None)
    priority = SmallInt(default=0, help_text="0 none, 1 low, 2 medium, 3 high, 4 urgent.")
    last_seq = Integer(default=0, help_text="seq of the newest message; bumped in the worker's transaction.")
    last_message_at = Timestamptz(null=True, default=None)
    created_at = Timestamptz(default=TimestamptzNow())
    last_message_preview = Varchar(
        length=160, default="", help_text="The start of the newest message (notes too): the inbox row."
    )
    last_message_kind = Varchar(
        length=10, default="", help_text="Who wrote the newest message: visitor, agent, note or system."
    )
    waiting_since = Timestamptz(
        null=True,
        default=None,
        help_text="When the visitor's oldest unanswered message came; null once an agent replied.",
    )
    visitor_read_seq = Integer(default=0, help_text="The visitor read up to this seq (read marks).")
    snoozed_until = Timestamptz(
        null=True, default=None, help_text="A snoozed conversation reopens at this time (a worker job)."
    )


class Message(Table, tablename="message"):
    """One message. ``seq`` is gap-free per conversation; ``client_msg_id`` makes sends idempotent."""

    class SenderKind(enum.StrEnum):
        VISITOR = "visitor"
        AGENT = "agent"
        SYSTEM = "system"

    id = BigSerial(primary_key=True)
    project = ForeignKey(Project, on_delete=OnDelete.cascade, null=False)
    conversation = ForeignKey(Conversation, on_delete=OnDelete.cascade, null=False)
    seq = Integer()
    sender_kind = Varchar(length=10, choices=SenderKind)
    sender_user = ForeignKey(User, on_delete=OnDelete.set_null, null=True, default=None)
    body = Text()
    private = Boolean(default=False, help_text="A private note: agents only, never sent to the visitor.")
    client_msg_id = UUID()
    created_at = Timestamptz(default=TimestamptzNow())

    unique_conversation_seq = Unique([conversation, seq])
    unique_conversation_client_msg_id = Unique([conversation, client_msg_id])


class ConversationRead(Table, tablename="conversation_read"):
    """How far one agent has read one conversation: the unread count in the inbox is measured from it."""

    id = Serial(primary_key=True)
    project = ForeignKey(Project, on_delete=OnDelete.cascade, null=False)
    conversation = ForeignKey(Conversation, on_delete=OnDelete.cascade, null=False)
    user = ForeignKey(User, on_delete=OnDelete.cascade, null=False)
    seq = Integer(default=0)
    updated_at = Timestamptz(default=TimestamptzNow())

    unique_conversation_user = Unique([conversation, user])


class CannedReply(Table, tablename="canned_reply"):
    """A saved answer agents insert by its shortcut (e.g. ``/refund``)."""

    id = Serial(primary_key=True)
    project = ForeignKey(Project, on_delete=OnDelete.cascade, null=False)
    shortcut = Varchar(length=50, help_text="Unique per project, typed after '/' in the reply box.")
    title = Varchar(length=200, default="")
    body = Text()
    created_by = ForeignKey(User, on_delete=OnDelete.set_null, null=True, default=None)
    created_at = Timestamptz(default=TimestamptzNow())
    updated_at = Timestamptz(default=TimestamptzNow())

    unique_project_shortcut = Unique([project, shortcut])
