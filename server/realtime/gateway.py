"""The Socket.IO gateway on socketify's native websockets: handshake, namespaces, dispatch.

uWS calls the ``on_upgrade``/``on_open``/``on_message``/``on_close`` callbacks synchronously from
libuv (:mod:`server.realtime.uws`). They stay synchronous and cheap (pongs, acks, parse errors never
leave them); work that awaits (authentication, Redis, PostgreSQL) goes to a per-socket inbox
drained by one asyncio task while there is something in it, so a socket's packets are handled in
the order they arrived.

Per socket the gateway keeps a :class:`Connection` in its :class:`SocketTable`, one
:class:`NamespaceSession` per namespace joined, and for a visitor an entry in
:class:`VisitorSockets`; an agent's socket subscribes to its projects' uWS topics. Engine.IO
pings go out from one timer for all sockets, in batches; a socket that leaves one unanswered for
``pingTimeout`` is closed, and so is one that joins no namespace within ``connect_timeout_ms``
(Socket.IO's ``connectTimeout``: unauthenticated sockets must not hold the file descriptors).

The namespaces themselves (who may join, which events they handle) are the ``handlers`` table
and the ``_connect``/``_event``/``_leave`` methods; a test harness subclasses the gateway to run
Socket.IO's compliance suite against this same protocol layer with the suite's own namespaces.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import sys
from collections import deque
from collections.abc import Callable, Iterator
from itertools import count
from typing import Any

from socketify import OpCode

from server.errors import ErrorCode
from server.realtime import protocol, uws
from server.realtime.audience import (
    AGENT_NAMESPACE,
    VISITOR_NAMESPACE,
    agent_topic,
    agent_user_topic,
    visitor_of_topic,
)
from server.realtime.auth import Authenticator, AuthError
from server.realtime.config import RealtimeConfig
from server.realtime.connection import (
    AgentPrincipal,
    Connection,
    NamespaceSession,
    PendingAcks,
    VisitorPrincipal,
)
from server.realtime.fanout import Fanout
from server.realtime.handlers import HANDLERS, EventError, Handler, Services, error_payload
from server.realtime.loop import EventLoop
from server.realtime.presence import Entry, Presence, Subject
from server.realtime.protocol import MalformedPacket, SocketPacket, SocketType, UnsupportedPacket
from server.realtime.sockets import SocketTable, VisitorSockets

log = logging.getLogger(__name__)

MAX_INBOX = 256
"""Packets a socket may have waiting; a client flooding past it is disconnected (1008)."""
MAX_BACKPRESSURE = 1024 * 1024
"""Bytes uWS may buffer for a slow client before closing it (memory only while buffering)."""
PING_BATCH = 2000
"""Sockets pinged per loop iteration: a ping round never holds the loop for long."""
PING_PHASES = 4
"""The ping timer ticks this many times per ``pingInterval``; each socket is pinged on one tick
of every ``PING_PHASES``, chosen when it opens, so its first ping comes 3/4 to 1 interval after
its handshake (as Socket.IO's per-socket timer does) and never in the middle of it."""
MAX_REASON_BYTES = 120
NORMAL_CLOSE = 1000
PROTOCOL_ERROR = 1002
UNSUPPORTED_DATA = 1003
INVALID_PAYLOAD = 1007
POLICY_VIOLATION = 1008

BAD_TRANSPORT = (
    '{"code":0,"message":"Transport unknown: this server offers only the websocket transport '
    "(Engine.IO v4, EIO=4&transport=websocket); configure the client with transports: ['websocket']\"}"
)
BAD_VERSION = '{"code":5,"message":"Unsupported protocol version: only Engine.IO v4 (EIO=4)"}'
SHUTTING_DOWN = '{"code":0,"message":"shutting down"}'
NOT_READY = '{"code":0,"message":"not ready: the node is not receiving events from Redis yet; retry shortly"}'
PING = protocol.PING.encode()
NAMESPACES = {VISITOR_NAMESPACE: VISITOR_NAMESPACE, AGENT_NAMESPACE: AGENT_NAMESPACE}
"""A packet's namespace -> the shared constant a session keeps (not a copy per socket)."""


def _reason(text: str) -> str:
    return text.encode()[:MAX_REASON_BYTES].decode(errors="ignore")


def _subjects(session: NamespaceSession) -> list[Subject]:
    principal = session.principal
    if isinstance(principal, VisitorPrincipal):
        return [Subject(principal.project_id, "visitor", principal.visitor_uid)]
    return [Subject(p, "agent", str(principal.user_id)) for p in principal.project_ids]


def _projects(session: NamespaceSession) -> frozenset[int]:
    principal = session.principal
    if isinstance(principal, VisitorPrincipal):
        return frozenset({principal.project_id})
    return principal.project_ids


class Gateway:
    INVALID_NAMESPACE_DATA: dict[str, str] | None = {"code": ErrorCode.INVALID_NAMESPACE}
    """``data`` of the refusal of an unknown namespace (Parley's clients read the code)."""

    def __init__(
        self,
        app: Any,
        events: EventLoop,
        config: RealtimeConfig,
        *,
        fanout: Fanout,
        presence: Presence,
        authenticator: Authenticator,
        services: Services,
    ) -> None:
        self.app = app
        self.events = events
        self.config = config
        self.fanout = fanout
        self.presence = presence
        self.authenticator = authenticator
        self.services = services
        self.services.emit_with_ack = self.emit_with_ack
        self.presence.entries = self.presence_entries
        self.sockets = SocketTable()
        self.visitors = VisitorSockets()
        self.stopping = False
        self._numbers = count(1)
        self._tasks: set[asyncio.Task[Any]] = set()
        self._native: list[Any] = []
        self.handlers: dict[str, dict[str, Handler]] = HANDLERS
        """Namespace -> event name -> handler: the namespaces a client may join."""
        self._connect_timers: dict[Connection, asyncio.TimerHandle] = {}
        """Sockets that joined no namespace yet, and the timer that closes them if none comes
        (an entry leaves when the socket joins or closes: nothing here for joined sockets)."""
        self._ping_round = 0
        """The last ping tick started; a socket opening now is pinged on ticks of its phase."""
        self.access_epoch = 0
        """Bumped by the access watch (:mod:`server.realtime.access`) on every access change."""
        self.on_stale_join: Callable[[], None] | None = None
        """Called when a namespace was joined with credentials read before an access change:
        the watch checks it again (its check may have run before the session existed)."""

    # -- wiring -----------------------------------------------------------------------------

    def mount(self) -> None:
        options = uws.RouteOptions(
            max_payload=self.config.max_payload,
            idle_timeout_seconds=self.config.idle_timeout_seconds,
            max_backpressure=MAX_BACKPRESSURE,
        )
        self._native = uws.websocket_route(self.app, "/socket.io/", options, self)
        self.app.any("/socket.io/", self._refuse_http)
        self.app.any("/socket.io/*", self._refuse_http)

    def resync_all(self) -> None:
        """Tell every socket to ``sync``: events may have been missed (Redis connection lost)."""
        payload = {"reason": "the server's event stream was interrupted; sync to catch up"}
        packets = {ns: protocol.encode_event(ns, "server:resync", payload).encode() for ns in NAMESPACES}
        for conn in self.sockets.snapshot():
            for session in conn.all_sessions():
                conn.send_encoded(packets[session.namespace])
        self.events.wake()

    def publish_local(self, topic: str, text: str) -> None:
        """Deliver to a local topic: a visitor's sockets from here, shared topics by uWS in C."""
        visitor = visitor_of_topic(topic)
        if visitor is None:
            self.app.publish(topic, text, OpCode.TEXT)
            return
        data = text.encode()
        for conn in self.visitors.sockets(*visitor):
            conn.send_encoded(data)

    def presence_entries(self) -> Iterator[Entry]:
        """This node's presence entries, read from its open sockets (walked lazily)."""
        for conn in self.sockets.snapshot():
            if conn.closed:
                continue
            for session in conn.all_sessions():
                for subject in _subjects(session):
                    yield subject, session.number

    def _spawn(self, coroutine: Any) -> None:
        task = self.events.asyncio_loop.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _send(self, conn: Connection, text: str) -> bool:
        sent = conn.send(text)
        if sent:
            self.events.wake()
        return sent

    # -- uWS callbacks (synchronous; the upgrade request is valid only during its call) ----

    def _refuse_http(self, res: Any, req: Any) -> None:
        res.write_status(400)
        res.write_header("Content-Type", "application/json")
        res.end(BAD_TRANSPORT)

    def on_upgrade(self, upgrade: uws.Upgrade) -> None:
        if self.stopping:
            upgrade.refuse("503 Service Unavailable", "application/json", SHUTTING_DOWN)
            return
        if not self.fanout.live:
            # A socket accepted now could join before this node receives its project's events
            # and would miss them without knowing (issue #9): clients retry, as after any drop.
            upgrade.refuse("503 Service Unavailable", "application/json", NOT_READY)
            return
        if upgrade.query("EIO") != "4":
            upgrade.refuse("400 Bad Request", "application/json", BAD_VERSION)
            return
        if upgrade.query("transport") != "websocket":
            upgrade.refuse("400 Bad Request", "application/json", BAD_TRANSPORT)
            return
        origin = upgrade.header("origin")
        # Browsers of one site send the same Origin: one string for all their sockets.
        conn = Connection(sys.intern(origin) if origin else None)
        slot = self.sockets.add(conn)
        upgrade.accept(slot)
        if conn.ws is None:  # uWS opens synchronously; no open means no socket
            self.sockets.remove(slot)

    def on_open(self, slot: int, ws: Any) -> None:
        conn = self.sockets.get(slot)
        if conn is None:
            uws.end(ws, PROTOCOL_ERROR, b"no session")
            return
        conn.ws = ws
        conn.phase = self._ping_round % PING_PHASES
        self._connect_timers[conn] = self.events.asyncio_loop.call_later(
            self.config.connect_timeout_ms / 1000, self._connect_timed_out, conn
        )
        conn.send(
            protocol.encode_open(
                secrets.token_urlsafe(15),
                ping_interval_ms=self.config.ping_interval_ms,
                ping_timeout_ms=self.config.ping_timeout_ms,
                max_payload=self.config.max_payload,
            )
        )

    def on_close(self, slot: int) -> None:
        conn = self.sockets.remove(slot)
        if conn is None:
            return
        conn.mark_closed()
        conn.inbox = None
        conn.partial = None
        self._joined(conn)
        sessions = conn.all_sessions()
        conn.sessions = None
        for session in sessions:
            self._unroute(conn, session)
            self._spawn(self._leave(session))

    def on_message(self, slot: int, data: bytes, text: bool) -> None:
        conn = self.sockets.get(slot)
        if conn is None or conn.closed:
            return
        conn.unanswered = 0  # any frame is a sign of life, as it is for uWS's idle timer
        if not text:
            self._attachment(conn, data)
            return
        if conn.partial is not None:
            conn.close(PROTOCOL_ERROR, "parse error: a text frame came before the binary attachments")
            return
        kind = data[:1]
        if kind == b"3":  # pong: any frame already reset uWS's idle timer
            return
        if kind == b"4":
            try:
                packet = data[1:].decode()
            except UnicodeDecodeError:
                conn.close(INVALID_PAYLOAD, "text frames must be UTF-8")
                return
            self._socket_packet(conn, packet)
        elif kind == b"2":  # a client ping (not used by v4 clients): answer it
            conn.send_encoded(b"3" + data[1:])
        elif kind == b"1":
            conn.close(NORMAL_CLOSE, "client closed")
        elif kind == b"6":
            return
        else:
            conn.close(PROTOCOL_ERROR, "parse error: unknown Engine.IO packet type")

    def _route(self, conn: Connection, session: NamespaceSession) -> None:
        """Make the session's events reach the socket (see :mod:`server.realtime.sockets`)."""
        principal = session.principal
        if isinstance(principal, VisitorPrincipal):
            self.visitors.add(principal.project_id, principal.visitor_uid, conn)
        else:
            for project_id in principal.project_ids:
                conn.subscribe(agent_topic(project_id))
                conn.subscribe(agent_user_topic(project_id, principal.user_id))

    def _unroute(self, conn: Connection, session: NamespaceSession) -> None:
        principal = session.principal
        if isinstance(principal, VisitorPrincipal):
            self.visitors.remove(principal.project_id, principal.visitor_uid, conn)
        else:  # uWS drops a closed socket's subscriptions itself; this is for DISCONNECT
            for project_id in principal.project_ids:
                conn.unsubscribe(agent_topic(project_id))
                conn.unsubscribe(agent_user_topic(project_id, principal.user_id))

    def _socket_packet(self, conn: Connection, text: str) -> None:
        try:
            packet = protocol.parse_socket_packet(text)
        except UnsupportedPacket as error:
            conn.close(UNSUPPORTED_DATA, _reason(str(error)))
            return
        except MalformedPacket as error:
            conn.close(PROTOCOL_ERROR, _reason(f"parse error: {error}"))
            return
        if packet.attachments:
            conn.partial = (packet, [])  # whole once its binary frames have arrived
            return
        self._dispatch(conn, packet)

    def _attachment(self, conn: Connection, data: bytes) -> None:
        partial = conn.partial
        if partial is None:
            conn.close(UNSUPPORTED_DATA, "a binary frame must follow a binary packet (5/6) announcing it")
            return
        packet, buffers = partial
        buffers.append(bytes(data))
        if len(buffers) < packet.attachments:
            return
        conn.partial = None
        try:
            whole = protocol.attach(packet, buffers)
        except MalformedPacket as error:
            conn.close(PROTOCOL_ERROR, _reason(f"parse error: {error}"))
            return
        self._dispatch(conn, whole)

    def _dispatch(self, conn: Connection, packet: SocketPacket) -> None:
        namespace = packet.namespace
        if packet.type is SocketType.CONNECT:
            if namespace not in self.handlers:
                conn.send(
                    protocol.encode_connect_error(namespace, "Invalid namespace", self.INVALID_NAMESPACE_DATA)
                )
                return
            if conn.session(namespace) is not None or conn.is_pending(namespace):
                conn.send(
                    protocol.encode_connect_error(
                        namespace,
                        "already connected to this namespace",
                        {"code": ErrorCode.ALREADY_CONNECTED},
                    )
                )
                return
            conn.set_pending(namespace, True)
            self._enqueue(conn, packet)
        elif packet.type is SocketType.DISCONNECT:
            session = conn.pop_session(namespace)
            if session is not None:
                self._unroute(conn, session)
                self._spawn(self._leave(session))
        elif packet.type is SocketType.EVENT:
            if conn.session(namespace) is None and not conn.is_pending(namespace):
                if packet.ack_id is not None:
                    conn.send(protocol.encode_ack(namespace, packet.ack_id, [{"error": _not_connected()}]))
                return
            self._enqueue(conn, packet)
        elif packet.type is SocketType.ACK:
            acks, ack_id = conn.acks, packet.ack_id
            future = acks.futures.pop(ack_id, None) if acks is not None and ack_id is not None else None
            if future is not None and not future.done():
                future.set_result(packet.data)

    # -- the per-socket inbox ---------------------------------------------------------------

    def _enqueue(self, conn: Connection, packet: SocketPacket) -> None:
        if conn.inbox is None:
            conn.inbox = deque((packet,))
            self._spawn(self._drain(conn))
        elif len(conn.inbox) >= MAX_INBOX:
            conn.close(POLICY_VIOLATION, "too many packets in flight")
        else:
            conn.inbox.append(packet)

    async def _drain(self, conn: Connection) -> None:
        while conn.inbox:
            packet = conn.inbox.popleft()
            try:
                if packet.type is SocketType.CONNECT:
                    await self._connect(conn, packet)
                else:
                    await self._event(conn, packet)
            except Exception:
                log.exception("handling a %s packet failed", packet.type.name)
        conn.inbox = None

    async def _connect(self, conn: Connection, packet: SocketPacket) -> None:
        namespace = packet.namespace
        auth = packet.data or {}
        epoch = self.access_epoch
        try:
            principal: VisitorPrincipal | AgentPrincipal
            if namespace == VISITOR_NAMESPACE:
                principal = await self.authenticator.visitor(auth, conn.origin)
            else:
                principal = await self.authenticator.agent(auth)
        except AuthError as error:
            conn.set_pending(namespace, False)
            self._send(conn, protocol.encode_connect_error(namespace, error.message, {"code": error.code}))
            return
        if conn.closed:
            return
        session = NamespaceSession(NAMESPACES[namespace], next(self._numbers), principal)
        await self.fanout.acquire(_projects(session))
        conn.set_pending(namespace, False)
        if _gone(conn):  # closed while we awaited Redis
            await self.fanout.release(_projects(session))
            return
        self._route(conn, session)
        conn.add_session(session)
        self._joined(conn)
        # The client's Socket.IO sid is not kept: nothing is addressed by it (websocket only).
        self._send(conn, protocol.encode_connect(namespace, secrets.token_urlsafe(15)))
        for subject in _subjects(session):
            self.presence.connect(subject, session.number)
        if self.access_epoch != epoch and self.on_stale_join is not None:
            self.on_stale_join()

    # -- access lost (server/realtime/access.py decides; these apply) -------------------------

    def revoke_session(self, conn: Connection, session: NamespaceSession, payload: dict[str, Any]) -> None:
        """Server-side disconnect of one namespace: ``access:revoked`` with ``payload``, then
        Socket.IO's DISCONNECT (official clients do not reconnect after it). A websocket left
        with no namespace is closed (1008 ``access revoked``)."""
        if conn.closed or conn.session(session.namespace) is not session:
            return
        namespace = session.namespace
        conn.send(protocol.encode_event(namespace, "access:revoked", payload))
        conn.send(protocol.encode_disconnect(namespace))
        conn.pop_session(namespace)
        self._unroute(conn, session)
        self._spawn(self._leave(session))
        if conn.sessions is None:
            conn.close(POLICY_VIOLATION, "access revoked")
        self.events.wake()

    def narrow_session(
        self, conn: Connection, session: NamespaceSession, principal: AgentPrincipal, payload: dict[str, Any]
    ) -> None:
        """An agent keeps the socket but loses some projects (or changes role): stop the lost
        projects' events and presence, keep ``principal`` (the actor as it is now); tell the
        client with ``access:revoked`` (``payload``) when projects were lost."""
        old = session.principal
        if (
            conn.closed
            or not isinstance(old, AgentPrincipal)
            or conn.session(session.namespace) is not session
        ):
            return
        lost = old.project_ids - principal.project_ids
        for project_id in lost:
            conn.unsubscribe(agent_topic(project_id))
            conn.unsubscribe(agent_user_topic(project_id, old.user_id))
        session.principal = principal
        if not lost:
            return
        conn.send(protocol.encode_event(session.namespace, "access:revoked", payload))
        self.events.wake()
        self._spawn(self._leave_projects(session.number, old.user_id, lost))

    async def _leave_projects(self, number: int, user_id: int, projects: frozenset[int]) -> None:
        try:
            await self.fanout.release(projects)
            for project_id in projects:
                await self.presence.disconnect(Subject(project_id, "agent", str(user_id)), number)
        except Exception:
            log.exception("leaving projects %s failed", sorted(projects))

    async def _leave(self, session: NamespaceSession) -> None:
        try:
            await self.fanout.release(_projects(session))
            if not self.stopping:
                for subject in _subjects(session):
                    await self.presence.disconnect(subject, session.number)
        except Exception:
            log.exception("leaving %s failed", session.namespace)

    async def _event(self, conn: Connection, packet: SocketPacket) -> None:
        namespace, ack_id = packet.namespace, packet.ack_id
        session = conn.session(namespace)
        if session is None:
            if ack_id is not None:
                self._send(conn, protocol.encode_ack(namespace, ack_id, [{"error": _not_connected()}]))
            return
        handler = self.handlers[namespace].get(packet.event)
        try:
            if handler is None:
                raise EventError(
                    ErrorCode.UNKNOWN_EVENT, f"unknown event {packet.event[:64]!r} on {namespace}"
                )
            result = await handler(self.services, conn, session, packet.args)
        except Exception as error:
            if not isinstance(error, EventError) and type(error).__module__ != "server.errors":
                log.exception("event %s failed", packet.event[:64])
            payload = error_payload(error)
            if ack_id is not None:
                self._send(conn, protocol.encode_ack(namespace, ack_id, [{"error": payload}]))
            else:
                self._send(
                    conn,
                    protocol.encode_event(namespace, "server:error", {**payload, "event": packet.event[:64]}),
                )
            return
        if ack_id is not None:
            self._send(conn, protocol.encode_ack(namespace, ack_id, [result]))

    async def emit_with_ack(
        self, conn: Connection, namespace: str, event: str, data: Any, wait_seconds: float
    ) -> list[Any]:
        """Emit to one socket and wait for the client's acknowledgement (its ack arguments)."""
        if conn.closed:
            raise TimeoutError
        acks = conn.acks
        if acks is None:
            acks = conn.acks = PendingAcks()
        acks.last_id += 1
        ack_id = acks.last_id
        future: asyncio.Future[list[Any]] = self.events.asyncio_loop.create_future()
        acks.futures[ack_id] = future
        if not self._send(conn, protocol.encode_event(namespace, event, data, ack_id=ack_id)):
            acks.futures.pop(ack_id, None)
            raise TimeoutError
        try:
            return await asyncio.wait_for(future, wait_seconds)
        finally:
            acks.futures.pop(ack_id, None)

    # -- background duties --------------------------------------------------------------------

    async def run_pinger(self) -> None:
        """Engine.IO v4: the server pings every socket each ``pingInterval``, from this one timer.

        A loop over the sockets rather than a uWS topic every socket joins: a subscription costs
        uWS a subscriber record per socket, and the send per socket is the same either way.
        """
        loop = asyncio.get_running_loop()
        tick = self.config.ping_interval_ms / 1000 / PING_PHASES
        next_tick = loop.time() + tick
        while True:
            # On a fixed grid, not "a tick after the last one finished": no drift under load.
            await asyncio.sleep(max(0.0, next_tick - loop.time()))
            next_tick = max(next_tick + tick, loop.time())
            await self.ping_all()

    async def ping_all(self) -> None:
        """One tick: ping the sockets of this tick's phase, and close those that leave the ping
        unanswered for ``pingTimeout``.

        Each socket keeps the oldest round it has not answered; any frame from it answers. So a
        ``pingTimeout`` longer than ``pingInterval`` works too (rounds overlap), and none is cut
        short by uWS's idle timer, whose 8 s minimum is only a backstop.
        """
        self._ping_round = ping_round = self._ping_round + 1
        phase = ping_round % PING_PHASES
        sockets = [conn for conn in self.sockets.snapshot() if conn.phase == phase]
        for start in range(0, len(sockets), PING_BATCH):
            if start:
                await asyncio.sleep(0)  # let libuv and other work run between batches
            for conn in sockets[start : start + PING_BATCH]:
                if not conn.unanswered:
                    conn.unanswered = ping_round
                conn.send_encoded(PING)
        self.events.wake()
        self._spawn(self._close_unanswered(ping_round, sockets))

    async def _close_unanswered(self, ping_round: int, sockets: list[Connection]) -> None:
        await asyncio.sleep(self.config.ping_timeout_ms / 1000)
        for start in range(0, len(sockets), PING_BATCH):
            if start:
                await asyncio.sleep(0)
            for conn in sockets[start : start + PING_BATCH]:
                if 0 < conn.unanswered <= ping_round:
                    conn.close(POLICY_VIOLATION, "ping timeout")
        self.events.wake()

    def _connect_timed_out(self, conn: Connection) -> None:
        self._connect_timers.pop(conn, None)
        if conn.sessions is None:
            conn.close(POLICY_VIOLATION, f"no namespace joined within {self.config.connect_timeout_ms} ms")
            self.events.wake()

    def _joined(self, conn: Connection) -> None:
        """The socket joined a namespace (or closed): its connect timeout no longer applies."""
        timer = self._connect_timers.pop(conn, None)
        if timer is not None:
            timer.cancel()

    async def shutdown(self) -> None:
        """Stop accepting, close every socket with a normal close, leave Redis tidy."""
        if self.stopping:
            return
        self.stopping = True
        from socketify.native import ffi, lib

        listen_socket = getattr(self.app, "socket", None)
        if listen_socket is not None and listen_socket != ffi.NULL:
            lib.us_listen_socket_close(self.app.SSL, listen_socket)
            self.app.socket = ffi.NULL
        leaving = list(self.presence_entries())
        for conn in self.sockets.snapshot():
            conn.close(NORMAL_CLOSE, "server shutting down")
        self.events.wake()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.presence.drop(leaving), 5)
        await asyncio.sleep(0.2)  # let libuv flush the close frames


def _gone(conn: Connection) -> bool:
    """Read the flag afresh (a helper, so type narrowing from an earlier check does not apply)."""
    return conn.closed


def _not_connected() -> dict[str, str]:
    return {"code": ErrorCode.NOT_CONNECTED, "message": "connect to this namespace first"}
