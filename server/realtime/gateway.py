"""The Socket.IO gateway on socketify's native websockets: handshake, namespaces, dispatch.

socketify calls the ``_upgrade``/``_open``/``_message``/``_close`` callbacks synchronously from
libuv. They stay synchronous and cheap (pongs, acks, parse errors never leave them); work that
awaits (authentication, Redis, PostgreSQL) goes to a per-socket inbox drained by one asyncio task
while there is something in it, so a socket's packets are handled in the order they arrived.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections import deque
from typing import Any

from socketify import OpCode

from server.realtime import protocol
from server.realtime.audience import VISITOR_NAMESPACE, agent_topic, visitor_topic
from server.realtime.auth import Authenticator, AuthError
from server.realtime.config import RealtimeConfig
from server.realtime.connection import AgentPrincipal, Connection, NamespaceSession, VisitorPrincipal
from server.realtime.fanout import Fanout
from server.realtime.handlers import HANDLERS, EventError, Services, error_payload
from server.realtime.loop import EventLoop
from server.realtime.presence import Presence, Subject
from server.realtime.protocol import MalformedPacket, SocketPacket, SocketType, UnsupportedPacket

log = logging.getLogger(__name__)

PING_TOPIC = "eio:ping"
MAX_INBOX = 256
"""Packets a socket may have waiting; a client flooding past it is disconnected (1008)."""
MAX_REASON_BYTES = 120
NORMAL_CLOSE = 1000
PROTOCOL_ERROR = 1002
UNSUPPORTED_DATA = 1003
POLICY_VIOLATION = 1008

BAD_TRANSPORT = (
    '{"code":0,"message":"Transport unknown: this server offers only the websocket transport '
    "(Engine.IO v4, EIO=4&transport=websocket); configure the client with transports: ['websocket']\"}"
)
BAD_VERSION = '{"code":5,"message":"Unsupported protocol version: only Engine.IO v4 (EIO=4)"}'


def _reason(text: str) -> str:
    return text.encode()[:MAX_REASON_BYTES].decode(errors="ignore")


def _subjects(session: NamespaceSession) -> list[Subject]:
    principal = session.principal
    if isinstance(principal, VisitorPrincipal):
        return [Subject(principal.project_id, "visitor", principal.visitor_uid)]
    return [Subject(p, "agent", str(principal.user_id)) for p in principal.project_ids]


def _topics(session: NamespaceSession) -> list[str]:
    principal = session.principal
    if isinstance(principal, VisitorPrincipal):
        return [visitor_topic(principal.project_id, principal.visitor_uid)]
    return [agent_topic(p) for p in principal.project_ids]


def _projects(session: NamespaceSession) -> frozenset[int]:
    principal = session.principal
    if isinstance(principal, VisitorPrincipal):
        return frozenset({principal.project_id})
    return principal.project_ids


class Gateway:
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
        self.connections: dict[Connection, None] = {}
        self.stopping = False
        self._tasks: set[asyncio.Task[Any]] = set()

    # -- wiring -----------------------------------------------------------------------------

    def mount(self) -> None:
        self.app.ws(
            "/socket.io/",
            {
                "upgrade": self._upgrade,
                "open": self._open,
                "message": self._message,
                "close": self._close,
                "max_payload_length": self.config.max_payload,
                "idle_timeout": self.config.idle_timeout_seconds,
                "max_backpressure": 1024 * 1024,
                "close_on_backpressure_limit": True,
                "reset_idle_timeout_on_send": False,
                "send_pings_automatically": False,
            },
        )
        self.app.any("/socket.io/", self._refuse_http)
        self.app.any("/socket.io/*", self._refuse_http)

    def resync_all(self) -> None:
        """Tell every socket to ``sync``: events may have been missed (Redis connection lost)."""
        for namespace in HANDLERS:
            payload = {"reason": "the server's event stream was interrupted; sync to catch up"}
            self.app.publish(
                PING_TOPIC, protocol.encode_event(namespace, "server:resync", payload), OpCode.TEXT
            )
        self.events.wake()

    def publish_local(self, topic: str, text: str) -> None:
        self.app.publish(topic, text, OpCode.TEXT)

    def _spawn(self, coroutine: Any) -> None:
        task = self.events.asyncio_loop.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _send(self, conn: Connection, text: str) -> bool:
        sent = conn.send(text)
        if sent:
            self.events.wake()
        return sent

    # -- socketify callbacks (synchronous; the request object is valid only here) ----------

    def _refuse_http(self, res: Any, req: Any) -> None:
        res.write_status(400)
        res.write_header("Content-Type", "application/json")
        res.end(BAD_TRANSPORT)

    def _upgrade(self, res: Any, req: Any, context: Any) -> None:
        if self.stopping:
            res.write_status(503).end('{"code":0,"message":"shutting down"}')
            return
        if req.get_query("EIO") != "4":
            res.write_status(400)
            res.write_header("Content-Type", "application/json")
            res.end(BAD_VERSION)
            return
        if req.get_query("transport") != "websocket":
            res.write_status(400)
            res.write_header("Content-Type", "application/json")
            res.end(BAD_TRANSPORT)
            return
        origin = req.get_header("origin") or None
        conn = Connection(secrets.token_urlsafe(15), origin)
        res.upgrade(
            req.get_header("sec-websocket-key"),
            req.get_header("sec-websocket-protocol"),
            req.get_header("sec-websocket-extensions"),
            context,
            conn,
        )

    def _open(self, ws: Any) -> None:
        conn: Connection | None = ws.get_user_data()
        if conn is None:
            ws.end(PROTOCOL_ERROR, "no session")
            return
        conn.attach(ws)
        self.connections[conn] = None
        conn.subscribe(PING_TOPIC)
        conn.send(
            protocol.encode_open(
                conn.eio_sid,
                ping_interval_ms=self.config.ping_interval_ms,
                ping_timeout_ms=self.config.ping_timeout_ms,
                max_payload=self.config.max_payload,
            )
        )

    def _close(self, ws: Any, code: int, message: Any) -> None:
        conn: Connection | None = ws.get_user_data()
        if conn is None:
            return
        conn.mark_closed()
        self.connections.pop(conn, None)
        conn.inbox = None
        sessions = conn.namespaces or []
        conn.namespaces = None
        for session in sessions:
            self._spawn(self._leave(session))

    def _message(self, ws: Any, data: Any, opcode: Any) -> None:
        conn: Connection | None = ws.get_user_data()
        if conn is None or conn.closed:
            return
        if opcode != OpCode.TEXT or not isinstance(data, str):
            conn.close(UNSUPPORTED_DATA, "binary frames are not supported: send JSON text packets")
            return
        kind = data[:1]
        if kind == "3":  # pong: any frame already reset uWS's idle timer
            return
        if kind == "4":
            self._socket_packet(conn, data[1:])
        elif kind == "2":  # a client ping (not used by v4 clients): answer it
            conn.send("3" + data[1:])
        elif kind == "1":
            conn.close(NORMAL_CLOSE, "client closed")
        elif kind == "6":
            return
        else:
            conn.close(PROTOCOL_ERROR, "parse error: unknown Engine.IO packet type")

    def _socket_packet(self, conn: Connection, text: str) -> None:
        try:
            packet = protocol.parse_socket_packet(text)
        except UnsupportedPacket as error:
            conn.close(UNSUPPORTED_DATA, _reason(str(error)))
            return
        except MalformedPacket as error:
            conn.close(PROTOCOL_ERROR, _reason(f"parse error: {error}"))
            return
        namespace = packet.namespace
        if packet.type is SocketType.CONNECT:
            if namespace not in HANDLERS:
                conn.send(
                    protocol.encode_connect_error(
                        namespace, "Invalid namespace", {"code": "invalid_namespace"}
                    )
                )
                return
            if conn.session(namespace) is not None or conn.is_pending(namespace):
                conn.send(
                    protocol.encode_connect_error(
                        namespace, "already connected to this namespace", {"code": "already_connected"}
                    )
                )
                return
            conn.set_pending(namespace, True)
            self._enqueue(conn, packet)
        elif packet.type is SocketType.DISCONNECT:
            session = conn.pop_session(namespace)
            if session is not None:
                for topic in session.topics:
                    conn.unsubscribe(topic)
                self._spawn(self._leave(session))
        elif packet.type is SocketType.EVENT:
            if conn.session(namespace) is None and not conn.is_pending(namespace):
                if packet.ack_id is not None:
                    conn.send(protocol.encode_ack(namespace, packet.ack_id, [{"error": _not_connected()}]))
                return
            self._enqueue(conn, packet)
        elif packet.type is SocketType.ACK:
            future = conn.acks.pop(packet.ack_id, None) if conn.acks and packet.ack_id is not None else None
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
        session = NamespaceSession(namespace=namespace, sid=secrets.token_urlsafe(15), principal=principal)
        session.topics = _topics(session)
        await self.fanout.acquire(_projects(session))
        conn.set_pending(namespace, False)
        if _gone(conn):  # closed while we awaited Redis
            await self.fanout.release(_projects(session))
            return
        for topic in session.topics:
            conn.subscribe(topic)
        conn.add_session(session)
        self._send(conn, protocol.encode_connect(namespace, session.sid))
        for subject in _subjects(session):
            self.presence.connect(subject, session.sid)

    async def _leave(self, session: NamespaceSession) -> None:
        try:
            await self.fanout.release(_projects(session))
            if not self.stopping:
                for subject in _subjects(session):
                    await self.presence.disconnect(subject, session.sid)
        except Exception:
            log.exception("leaving %s failed", session.namespace)

    async def _event(self, conn: Connection, packet: SocketPacket) -> None:
        namespace, ack_id = packet.namespace, packet.ack_id
        session = conn.session(namespace)
        if session is None:
            if ack_id is not None:
                self._send(conn, protocol.encode_ack(namespace, ack_id, [{"error": _not_connected()}]))
            return
        handler = HANDLERS[namespace].get(packet.event)
        try:
            if handler is None:
                raise EventError("unknown_event", f"unknown event {packet.event[:64]!r} on {namespace}")
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
        conn.next_ack_id += 1
        ack_id = conn.next_ack_id
        future: asyncio.Future[list[Any]] = self.events.asyncio_loop.create_future()
        if conn.acks is None:
            conn.acks = {}
        conn.acks[ack_id] = future
        if not self._send(conn, protocol.encode_event(namespace, event, data, ack_id=ack_id)):
            conn.acks.pop(ack_id, None)
            raise TimeoutError
        try:
            return await asyncio.wait_for(future, wait_seconds)
        finally:
            if conn.acks is not None:
                conn.acks.pop(ack_id, None)

    # -- background duties --------------------------------------------------------------------

    async def run_pinger(self) -> None:
        """Engine.IO v4: the server pings; one publish reaches every socket."""
        while True:
            await asyncio.sleep(self.config.ping_interval_ms / 1000)
            self.app.publish(PING_TOPIC, protocol.PING, OpCode.TEXT)
            self.events.wake()

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
        for conn in list(self.connections):
            conn.close(NORMAL_CLOSE, "server shutting down")
        self.events.wake()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.presence.drop_local(), 5)
        await asyncio.sleep(0.2)  # let libuv flush the close frames


def _gone(conn: Connection) -> bool:
    """Read the flag afresh (a helper, so type narrowing from an earlier check does not apply)."""
    return conn.closed


def _not_connected() -> dict[str, str]:
    return {"code": "not_connected", "message": "connect to this namespace first"}
