"""Per-socket state, and the one place that touches a socketify websocket.

socketify 0.0.31 segfaults when a websocket is used after its close handler ran (typically
after an ``await`` in a handler). Every send, close and subscription therefore goes through
:class:`Connection`, which refuses once :attr:`Connection.closed` (the close handler ran, or we
closed it). The process is single-threaded, so check-then-send cannot race with the close handler.

Tens of thousands of these live in one process, so they are kept small: slots, no per-socket
dict or set, ``None`` for whatever most sockets never use (acks, an inbox, a second namespace).
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from server.realtime import uws
from server.realtime.protocol import SocketPacket
from server.tenancy.access import Actor


@dataclass(frozen=True, slots=True)
class VisitorPrincipal:
    project_id: int
    visitor_uid: str

    kind: ClassVar[Literal["visitor"]] = "visitor"


@dataclass(frozen=True, slots=True)
class AgentPrincipal:
    actor: Actor
    project_ids: frozenset[int]
    """The projects this socket receives events of (what the agent may see, narrowed on request)."""

    kind: ClassVar[Literal["agent"]] = "agent"

    @property
    def user_id(self) -> int:
        return self.actor.user_id


Principal = VisitorPrincipal | AgentPrincipal


@dataclass(slots=True)
class NamespaceSession:
    """One namespace joined over a connection (several can share one websocket)."""

    namespace: str
    """One of the namespace constants (shared, not a copy per socket)."""
    number: int
    """Unique in this process: names the socket in presence entries (``<node>:<number>``)."""
    principal: Principal


class PendingAcks:
    """Acknowledgements this server awaits from the client (rare: made on first use)."""

    __slots__ = ("futures", "last_id")

    def __init__(self) -> None:
        self.futures: dict[int, asyncio.Future[list[Any]]] = {}
        self.last_id = 0


class Connection:
    """One websocket. It keeps socketify's raw ``uws_websocket_t`` pointer, not a Python wrapper."""

    __slots__ = ("acks", "inbox", "origin", "partial", "pending", "phase", "sessions", "unanswered", "ws")

    def __init__(self, origin: str | None) -> None:
        self.origin = origin
        self.ws: Any = None
        """The native ``uws_websocket_t*`` from open until closed, else None."""
        self.sessions: NamespaceSession | tuple[NamespaceSession, ...] | None = None
        """The namespaces joined: one session (the usual case), a tuple of them, or None."""
        self.pending: tuple[str, ...] | None = None
        """Namespaces whose CONNECT is being authenticated (a second CONNECT meanwhile is refused)."""
        self.acks: PendingAcks | None = None
        self.inbox: deque[SocketPacket] | None = None
        """Packets waiting for the async worker of this socket (None when idle): handled in order."""
        self.partial: tuple[SocketPacket, list[bytes]] | None = None
        """A binary packet whose attachments are still arriving, and those received so far."""
        self.unanswered = 0
        """The oldest ping tick this socket has not answered (0: none); any frame answers."""
        self.phase = 0
        """Which of the ping timer's ticks ping this socket (set when it opens)."""

    @property
    def closed(self) -> bool:
        return self.ws is None

    def send(self, text: str) -> bool:
        """Send one text frame; False (and nothing touched) when the socket is gone."""
        return self.send_encoded(text.encode())

    def send_encoded(self, data: bytes) -> bool:
        ws = self.ws
        if ws is None:
            return False
        uws.send_text(ws, data)
        return True

    def send_binary(self, data: bytes) -> bool:
        """Send one binary frame (a binary packet's attachment); False when the socket is gone."""
        ws = self.ws
        if ws is None:
            return False
        uws.send_binary(ws, data)
        return True

    def close(self, code: int, reason: str) -> None:
        """Close with a websocket close code; a no-op once closed."""
        ws = self.ws
        if ws is None:
            return
        self.ws = None
        uws.end(ws, code, (reason or "close").encode())

    def subscribe(self, topic: str) -> None:
        if self.ws is not None:
            uws.subscribe(self.ws, topic.encode())

    def unsubscribe(self, topic: str) -> None:
        if self.ws is not None:
            uws.unsubscribe(self.ws, topic.encode())

    # -- namespaces joined over this socket ------------------------------------------------

    def all_sessions(self) -> tuple[NamespaceSession, ...]:
        sessions = self.sessions
        if sessions is None:
            return ()
        return sessions if isinstance(sessions, tuple) else (sessions,)

    def session(self, namespace: str) -> NamespaceSession | None:
        for session in self.all_sessions():
            if session.namespace == namespace:
                return session
        return None

    def add_session(self, session: NamespaceSession) -> None:
        self.sessions = (*self.all_sessions(), session) if self.sessions is not None else session

    def pop_session(self, namespace: str) -> NamespaceSession | None:
        session = self.session(namespace)
        if session is not None:
            rest = tuple(s for s in self.all_sessions() if s is not session)
            self.sessions = None if not rest else rest[0] if len(rest) == 1 else rest
        return session

    def is_pending(self, namespace: str) -> bool:
        return self.pending is not None and namespace in self.pending

    def set_pending(self, namespace: str, pending: bool) -> None:
        rest = tuple(n for n in self.pending or () if n != namespace)
        self.pending = (*rest, namespace) if pending else (rest or None)

    def mark_closed(self) -> None:
        """Called from the close handler: from now on nothing touches the socket."""
        self.ws = None
        if self.acks is not None:
            for future in self.acks.futures.values():
                if not future.done():
                    future.cancel()
            self.acks = None
