"""Per-socket state, and the one place that touches a socketify ``WebSocket``.

socketify 0.0.31 segfaults when a ``WebSocket`` is used after its close handler ran (typically
after an ``await`` in a handler). Every send, close and subscription therefore goes through
:class:`Connection`, which refuses once :attr:`Connection.closed` is set by the close handler.
The process is single-threaded, so check-then-send cannot race with the close handler.
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Literal

from socketify import OpCode

from server.realtime.protocol import SocketPacket
from server.tenancy.access import Actor


@dataclass(frozen=True, slots=True)
class VisitorPrincipal:
    project_id: int
    visitor_uid: str

    kind: Literal["visitor"] = "visitor"


@dataclass(frozen=True, slots=True)
class AgentPrincipal:
    actor: Actor
    project_ids: frozenset[int]
    """The projects this socket receives events of (what the agent may see, narrowed on request)."""

    kind: Literal["agent"] = "agent"

    @property
    def user_id(self) -> int:
        return self.actor.user_id


Principal = VisitorPrincipal | AgentPrincipal


@dataclass(slots=True)
class NamespaceSession:
    """One namespace joined over a connection (several can share one websocket)."""

    namespace: str
    sid: str
    principal: Principal
    topics: list[str] = field(default_factory=list)


class Connection:
    """One websocket. Cheap on purpose: tens of thousands live in one process."""

    __slots__ = ("acks", "closed", "eio_sid", "inbox", "namespaces", "next_ack_id", "origin", "pending", "ws")

    def __init__(self, eio_sid: str, origin: str | None) -> None:
        self.eio_sid = eio_sid
        self.origin = origin
        self.ws: Any = None
        self.closed = False
        self.namespaces: dict[str, NamespaceSession] | None = None
        self.pending: set[str] | None = None
        """Namespaces whose CONNECT is being authenticated (a second CONNECT meanwhile is refused)."""
        self.acks: dict[int, asyncio.Future[list[Any]]] | None = None
        self.next_ack_id = 0
        self.inbox: deque[SocketPacket] | None = None
        """Packets waiting for the async worker of this socket (None when idle): handled in order."""

    def send(self, text: str) -> bool:
        """Send one text frame; False (and nothing touched) when the socket is gone."""
        if self.closed or self.ws is None:
            return False
        self.ws.send(text, OpCode.TEXT)
        return True

    def close(self, code: int, reason: str) -> None:
        """Close with a websocket close code; a no-op once closed."""
        if self.closed or self.ws is None:
            return
        self.closed = True
        # socketify's end() with message=None calls the C function with the wrong arguments.
        self.ws.end(code, reason or "close")

    def subscribe(self, topic: str) -> None:
        if not self.closed and self.ws is not None:
            self.ws.subscribe(topic)

    def unsubscribe(self, topic: str) -> None:
        if not self.closed and self.ws is not None:
            self.ws.unsubscribe(topic)

    def session(self, namespace: str) -> NamespaceSession | None:
        return None if self.namespaces is None else self.namespaces.get(namespace)

    def mark_closed(self) -> None:
        """Called from the close handler: from now on nothing touches the socket."""
        self.closed = True
        self.ws = None
        if self.acks:
            for future in self.acks.values():
                if not future.done():
                    future.cancel()
            self.acks.clear()
