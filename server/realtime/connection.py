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
from socketify.native import lib

from server.realtime.protocol import SocketPacket
from server.tenancy.access import Actor

_TEXT = int(OpCode.TEXT)
"""Text frames: socketify's default opcode is BINARY, which Socket.IO clients do not read as text."""


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
    """One websocket. Cheap on purpose: tens of thousands live in one process.

    It keeps socketify's raw ``uws_websocket_t`` pointer rather than the Python ``WebSocket``
    wrapper (a few hundred bytes each), and calls the same C functions the wrapper does.
    """

    __slots__ = ("acks", "closed", "eio_sid", "inbox", "namespaces", "next_ack_id", "origin", "pending", "ws")

    SSL = 0
    """The gateway serves plain websockets (TLS ends at the proxy)."""

    def __init__(self, eio_sid: str, origin: str | None) -> None:
        self.eio_sid = eio_sid
        self.origin = origin
        self.ws: Any = None
        """socketify's native ``uws_websocket_t*`` while open, else None."""
        self.closed = False
        self.namespaces: list[NamespaceSession] | None = None
        self.pending: tuple[str, ...] | None = None
        """Namespaces whose CONNECT is being authenticated (a second CONNECT meanwhile is refused)."""
        self.acks: dict[int, asyncio.Future[list[Any]]] | None = None
        self.next_ack_id = 0
        self.inbox: deque[SocketPacket] | None = None
        """Packets waiting for the async worker of this socket (None when idle): handled in order."""

    def attach(self, ws: Any) -> None:
        """Called from the open handler with socketify's ``WebSocket``."""
        self.ws = ws.ws

    def send(self, text: str) -> bool:
        """Send one text frame; False (and nothing touched) when the socket is gone."""
        if self.closed or self.ws is None:
            return False
        data = text.encode()
        lib.uws_ws_send_with_options(self.SSL, self.ws, data, len(data), _TEXT, False, True)
        return True

    def close(self, code: int, reason: str) -> None:
        """Close with a websocket close code; a no-op once closed."""
        if self.closed or self.ws is None:
            return
        self.closed = True
        data = (reason or "close").encode()
        lib.uws_ws_end(self.SSL, self.ws, code, data, len(data))

    def subscribe(self, topic: str) -> None:
        if not self.closed and self.ws is not None:
            data = topic.encode()
            lib.uws_ws_subscribe(self.SSL, self.ws, data, len(data))

    def unsubscribe(self, topic: str) -> None:
        if not self.closed and self.ws is not None:
            data = topic.encode()
            lib.uws_ws_unsubscribe(self.SSL, self.ws, data, len(data))

    # -- namespaces joined over this socket (few: a list is smaller than a dict) -------------

    def session(self, namespace: str) -> NamespaceSession | None:
        for session in self.namespaces or ():
            if session.namespace == namespace:
                return session
        return None

    def add_session(self, session: NamespaceSession) -> None:
        self.namespaces = [*(self.namespaces or ()), session]

    def pop_session(self, namespace: str) -> NamespaceSession | None:
        session = self.session(namespace)
        if session is not None and self.namespaces is not None:
            rest = [s for s in self.namespaces if s is not session]
            self.namespaces = rest or None
        return session

    def is_pending(self, namespace: str) -> bool:
        return self.pending is not None and namespace in self.pending

    def set_pending(self, namespace: str, pending: bool) -> None:
        rest = tuple(n for n in self.pending or () if n != namespace)
        self.pending = (*rest, namespace) if pending else (rest or None)

    def mark_closed(self) -> None:
        """Called from the close handler: from now on nothing touches the socket."""
        self.closed = True
        self.ws = None
        if self.acks:
            for future in self.acks.values():
                if not future.done():
                    future.cancel()
            self.acks.clear()
