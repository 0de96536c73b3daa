"""Client → server events: validate the payload, authorise, call the domain, return the ack.

A handler returns the value acknowledged to the client, or raises :class:`EventError` (or a domain
error from :mod:`server.errors`), which becomes ``{"error": {"code", "message"}}`` in the ack, or a
``server:error`` event when the client asked for no ack. Payloads are decoded with msgspec.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any, Literal, Protocol, TypeVar

import msgspec

from server.chat.device import VisitorInfoIn
from server.chat.queries import list_messages
from server.chat.schemas import Body
from server.chat.services import mark_read
from server.errors import DomainError, ErrorCode
from server.outbox.envelope import Envelope
from server.outbox.events import EventType
from server.realtime.connection import AgentPrincipal, Connection, NamespaceSession, VisitorPrincipal
from server.realtime.presence import Presence
from server.realtime.store import ConversationOwner, Store

MAX_SYNC_CONVERSATIONS = 50
SYNC_PAGE = 200
RTT_TIMEOUT_SECONDS = 5.0
T = TypeVar("T")

Id = Annotated[int, msgspec.Meta(ge=1, le=2**31 - 1)]


class EventError(Exception):
    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class TypingIn(msgspec.Struct, forbid_unknown_fields=True):
    conversation_id: Id
    typing: bool
    private: bool = False
    """Agents: typing a private note (the visitor is not told)."""


class NavigateIn(msgspec.Struct, forbid_unknown_fields=True):
    url: Annotated[str, msgspec.Meta(min_length=1, max_length=2048)]
    title: Annotated[str, msgspec.Meta(max_length=512)] = ""


class ReadIn(msgspec.Struct, forbid_unknown_fields=True):
    conversation_id: Id
    seq: Annotated[int, msgspec.Meta(ge=0, le=2**31 - 1)]


class SyncIn(msgspec.Struct, forbid_unknown_fields=True):
    conversations: dict[str, Annotated[int, msgspec.Meta(ge=0, le=2**31 - 1)]]


class SendIn(msgspec.Struct, forbid_unknown_fields=True):
    body: Body
    client_msg_id: uuid.UUID | None = None
    conversation_id: Id | None = None
    """Agents: the conversation to write to. Visitors write to their own (leave it out)."""
    private: bool = False
    """Agents: a private note."""


class PresenceIn(msgspec.Struct, forbid_unknown_fields=True):
    status: Literal["online", "away", "offline"]


class ActivityIn(msgspec.Struct, forbid_unknown_fields=True):
    pass


def decode(args: list[Any], kind: type[T]) -> T:
    if len(args) != 1:
        raise EventError(ErrorCode.INVALID_PAYLOAD, "expected exactly one argument (an object)")
    try:
        return msgspec.convert(args[0], kind, strict=True)  # "1" is not a seq, "true" not a bool
    except msgspec.ValidationError as error:
        raise EventError(ErrorCode.INVALID_PAYLOAD, str(error)) from None


class Sender(Protocol):
    async def send(self, command: Any, *, actor: Any = None) -> Any: ...


@dataclass(slots=True)
class Services:
    """What handlers need from the process, assembled once by the gateway."""

    store: Store
    presence: Presence
    publish: Callable[[Envelope], Awaitable[None]]
    sender: Sender | None
    emit_with_ack: Callable[[Connection, str, str, Any, float], Awaitable[list[Any]]]


Handler = Callable[[Services, Connection, NamespaceSession, list[Any]], Awaitable[Any]]


async def _owned(services: Services, session: NamespaceSession, conversation_id: int) -> ConversationOwner:
    """The conversation, if this socket may act on it; otherwise not_found (never say which)."""
    owner = await services.store.conversation_owner(conversation_id)
    principal = session.principal
    if owner is not None:
        if isinstance(principal, VisitorPrincipal):
            if owner.project_id == principal.project_id and owner.visitor_uid == principal.visitor_uid:
                return owner
        elif owner.project_id in principal.project_ids:
            return owner
    raise EventError(ErrorCode.NOT_FOUND, "no such conversation")


def _sender(principal: VisitorPrincipal | AgentPrincipal) -> dict[str, Any]:
    if isinstance(principal, VisitorPrincipal):
        return {"kind": "visitor", "visitor_uid": principal.visitor_uid}
    return {"kind": "agent", "user_id": principal.user_id}


async def on_typing(services: Services, conn: Connection, session: NamespaceSession, args: list[Any]) -> Any:
    payload = decode(args, TypingIn)
    owner = await _owned(services, session, payload.conversation_id)
    data: dict[str, Any] = {
        "conversation_id": payload.conversation_id,
        "visitor_uid": owner.visitor_uid,
        "sender": _sender(session.principal),
    }
    if isinstance(session.principal, AgentPrincipal) and payload.private:
        data["private"] = True
    await services.publish(
        Envelope(
            type=EventType.TYPING_STARTED if payload.typing else EventType.TYPING_STOPPED,
            project_id=owner.project_id,
            at=time.time(),
            conversation_id=payload.conversation_id,
            data=data,
        )
    )
    return {"ok": True}


async def on_navigate(
    services: Services, conn: Connection, session: NamespaceSession, args: list[Any]
) -> Any:
    principal = session.principal
    if not isinstance(principal, VisitorPrincipal):
        raise EventError(ErrorCode.UNKNOWN_EVENT, "navigate is a visitor event")
    payload = decode(args, NavigateIn)
    await services.presence.navigate(principal.project_id, principal.visitor_uid, payload.url, payload.title)
    return {"ok": True}


async def on_visitor_info(
    services: Services, conn: Connection, session: NamespaceSession, args: list[Any]
) -> Any:
    """The widget reports the visitor's browser; the server parses the user agent and keeps it."""
    principal = session.principal
    if not isinstance(principal, VisitorPrincipal):
        raise EventError(ErrorCode.UNKNOWN_EVENT, "visitor:info is a visitor event")
    payload = decode(args, VisitorInfoIn)
    device = await services.presence.report_device(principal.project_id, principal.visitor_uid, payload)
    return {"ok": True, "browser": device.browser, "os": device.os}


async def on_read(services: Services, conn: Connection, session: NamespaceSession, args: list[Any]) -> Any:
    """A read mark goes through the chat service (the one write path); its ``conversation.read``
    event reaches the sockets through the outbox like any durable event."""
    payload = decode(args, ReadIn)
    owner = await _owned(services, session, payload.conversation_id)
    principal = session.principal
    if isinstance(principal, VisitorPrincipal):
        seq = await mark_read(
            owner.project_id, payload.conversation_id, payload.seq, visitor_uid=principal.visitor_uid
        )
    else:
        seq = await mark_read(owner.project_id, payload.conversation_id, payload.seq, actor=principal.actor)
    return {"ok": True, "seq": seq}


async def on_sync(services: Services, conn: Connection, session: NamespaceSession, args: list[Any]) -> Any:
    """Missed messages per conversation, ascending seq, ``SYNC_PAGE`` at most (then ``has_more``)."""
    payload = decode(args, SyncIn)
    if len(payload.conversations) > MAX_SYNC_CONVERSATIONS:
        raise EventError(
            ErrorCode.INVALID_PAYLOAD, f"at most {MAX_SYNC_CONVERSATIONS} conversations per sync"
        )
    is_visitor = isinstance(session.principal, VisitorPrincipal)
    result: dict[str, Any] = {}
    errors: dict[str, Any] = {}
    for key, last_seq in payload.conversations.items():
        if not key.isdigit() or not 1 <= int(key) < 2**31:
            errors[key] = {"code": ErrorCode.NOT_FOUND, "message": "no such conversation"}
            continue
        try:
            owner = await _owned(services, session, int(key))
        except EventError as error:
            errors[key] = {"code": error.code, "message": error.message}
            continue
        page = await list_messages(
            owner.project_id,
            int(key),
            after_seq=last_seq,
            limit=SYNC_PAGE,
            max_limit=SYNC_PAGE,
            include_private=not is_visitor,
        )
        result[key] = {"messages": msgspec.to_builtins(page.items), "has_more": page.has_more}
    answer: dict[str, Any] = {"conversations": result}
    if errors:
        answer["errors"] = errors
    return answer


async def on_send(services: Services, conn: Connection, session: NamespaceSession, args: list[Any]) -> Any:
    if services.sender is None:
        raise EventError(ErrorCode.UNAVAILABLE, "sending is not available on this gateway yet")
    from server.chat.schemas import MessageKind, SendMessage

    payload = decode(args, SendIn)
    principal = session.principal
    actor = None
    if isinstance(principal, VisitorPrincipal):
        if payload.conversation_id is not None or payload.private:
            raise EventError(
                ErrorCode.INVALID_PAYLOAD, "visitors write to their own conversation, never privately"
            )
        command = SendMessage(
            kind=MessageKind.VISITOR,
            project_id=principal.project_id,
            body=payload.body,
            visitor_uid=principal.visitor_uid,
            client_msg_id=payload.client_msg_id,
        )
    else:
        if payload.conversation_id is None:
            raise EventError(ErrorCode.INVALID_PAYLOAD, "conversation_id is required")
        owner = await _owned(services, session, payload.conversation_id)
        command = SendMessage(
            kind=MessageKind.AGENT_NOTE if payload.private else MessageKind.AGENT_REPLY,
            project_id=owner.project_id,
            body=payload.body,
            conversation_id=payload.conversation_id,
            client_msg_id=payload.client_msg_id,
        )
        actor = principal.actor
    ack = await services.sender.send(command, actor=actor)
    return {"client_msg_id": str(ack.client_msg_id), "accepted": bool(ack.accepted)}


async def on_presence(
    services: Services, conn: Connection, session: NamespaceSession, args: list[Any]
) -> Any:
    principal = session.principal
    if not isinstance(principal, AgentPrincipal):
        raise EventError(ErrorCode.UNKNOWN_EVENT, "presence is an agent event")
    payload = decode(args, PresenceIn)
    await services.presence.choose(principal.user_id, principal.project_ids, payload.status)
    return {"ok": True, "status": payload.status}


async def on_activity(
    services: Services, conn: Connection, session: NamespaceSession, args: list[Any]
) -> Any:
    """Input in an agent's tab (sent at most about once a minute): keeps them from turning away."""
    principal = session.principal
    if not isinstance(principal, AgentPrincipal):
        raise EventError(ErrorCode.UNKNOWN_EVENT, "activity is an agent event")
    decode(args, ActivityIn)
    await services.presence.activity(principal.user_id, principal.project_ids)
    return {"ok": True}


async def on_rtt(services: Services, conn: Connection, session: NamespaceSession, args: list[Any]) -> Any:
    """Round trip to the client and back: the server emits ``rtt:probe`` with an ack and times it."""
    started = time.perf_counter()
    try:
        reply = await services.emit_with_ack(
            conn, session.namespace, "rtt:probe", {"sent_at": time.time()}, RTT_TIMEOUT_SECONDS
        )
    except (TimeoutError, asyncio.CancelledError):
        raise EventError(ErrorCode.TIMEOUT, "the client did not acknowledge rtt:probe") from None
    return {"rtt_ms": round((time.perf_counter() - started) * 1000, 3), "client_ack": reply}


HANDLERS: dict[str, dict[str, Handler]] = {
    "/visitor": {
        "message:send": on_send,
        "typing": on_typing,
        "navigate": on_navigate,
        "visitor:info": on_visitor_info,
        "read": on_read,
        "sync": on_sync,
        "rtt": on_rtt,
    },
    "/agent": {
        "message:send": on_send,
        "typing": on_typing,
        "read": on_read,
        "sync": on_sync,
        "presence": on_presence,
        "activity": on_activity,
        "rtt": on_rtt,
    },
}


def error_payload(error: Exception) -> dict[str, Any]:
    if isinstance(error, EventError):
        return {"code": error.code, "message": error.message}
    if isinstance(error, DomainError):
        payload: dict[str, Any] = {"code": error.code, "message": error.message}
        if error.fields:
            payload["fields"] = error.fields
        retry_after = getattr(error, "retry_after", None)
        if retry_after is not None:
            payload["retry_after"] = retry_after
        return payload
    return {"code": ErrorCode.INTERNAL, "message": "the server failed to handle this event"}
