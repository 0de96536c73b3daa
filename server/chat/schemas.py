"""Chat messages on the wire: request bodies, the send command, the acknowledgement.

``SendMessage`` is what every transport (REST now, the socket gateway next) hands to
:meth:`server.chat.sending.MessageSender.send`; ``PendingMessage`` is the accepted message as it
waits in Redis for the worker (see :mod:`server.chat.mailbox`).
"""

from __future__ import annotations

import enum
import uuid
from typing import Annotated

import msgspec

MAX_BODY_LENGTH = 5000
"""The most characters a message body may hold, as sent: the one limit of REST, the socket and the service."""

Body = Annotated[
    str,
    msgspec.Meta(
        description=f"1 to {MAX_BODY_LENGTH} characters as sent, not only whitespace (stored stripped)",
        extra_json_schema={"maxLength": MAX_BODY_LENGTH},
    ),
]
"""A message body. The schemas say ``maxLength`` from :data:`MAX_BODY_LENGTH`; the check itself is the
send service's (``check_message``), so an over-long body answers its own ``body_too_long`` code,
on REST and on the socket alike, rather than a decoder's generic ``invalid``."""


class MessageKind(enum.StrEnum):
    VISITOR = "visitor"
    """A visitor writes from the widget; opens (or reopens) the visitor's conversation."""
    AGENT_REPLY = "agent_reply"
    """An agent answers in a conversation; the visitor sees it."""
    AGENT_NOTE = "agent_note"
    """An agent's private note: agents only, never sent to the visitor."""
    SYSTEM = "system"
    """Written by Parley itself (automations, jobs); no human sender."""


class MessageCreate(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """``POST /api/v1/projects/{project_id}/conversations/{conversation_id}/messages`` body (agents)."""

    body: Body
    private: bool = False
    """True for a private note."""
    client_msg_id: uuid.UUID | None = None
    """Idempotency key chosen by the client; retry with the same one after a 503."""


class WidgetMessageCreate(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """``POST /api/widget/v1/messages`` body (visitors)."""

    body: Body
    client_msg_id: uuid.UUID | None = None


class SendMessage(msgspec.Struct, frozen=True, kw_only=True):
    """The send command, the same for every transport.

    - ``VISITOR``: ``visitor_uid`` names the sender (the transport authenticated it for
      ``project_id``); ``conversation_id`` must be None: the worker picks the visitor's conversation.
    - ``AGENT_REPLY`` / ``AGENT_NOTE``: ``conversation_id`` is required; the caller passes the
      agent's :class:`~server.tenancy.access.Actor` beside the command.
    - ``SYSTEM``: ``conversation_id`` is required; trusted callers only (no actor).
    """

    kind: MessageKind
    project_id: int
    body: str
    conversation_id: int | None = None
    visitor_uid: str | None = None
    client_msg_id: uuid.UUID | None = None


class SendAck(msgspec.Struct, frozen=True, kw_only=True):
    """Returned once the message is safely queued in Redis (not yet in PostgreSQL)."""

    client_msg_id: uuid.UUID
    accepted: bool = True


class PendingMessage(msgspec.Struct, frozen=True, kw_only=True, array_like=True):
    """An accepted message waiting in its mailbox for the worker. Compact: it is stored per message."""

    client_msg_id: uuid.UUID
    kind: MessageKind
    project_id: int
    body: str
    accepted_at: float
    conversation_id: int | None = None
    visitor_uid: str | None = None
    sender_user_id: int | None = None


class MessageView(msgspec.Struct, frozen=True, kw_only=True):
    """A persisted message: the ``data`` of a ``message.created`` event."""

    id: int
    conversation_id: int
    seq: int
    sender_kind: str
    sender_user_id: int | None
    visitor_uid: str | None
    body: str
    private: bool
    client_msg_id: uuid.UUID
    created_at: float
