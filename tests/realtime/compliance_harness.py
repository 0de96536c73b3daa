"""The gateway's protocol layer with the reference namespaces of Socket.IO's compliance suite.

Test code only, never a production route: ``python -m tests.realtime.compliance_harness PORT``
serves the real :class:`~server.realtime.gateway.Gateway` (handshake, parser, pings, connect
timeout, binary packets, acks, disconnects) on 127.0.0.1:PORT, configured as the suite's
README asks (``pingInterval`` 300, ``pingTimeout`` 200, ``maxPayload`` 1000000, ``connectTimeout``
1000), with the suite's namespaces instead of Parley's:

- ``/`` and ``/custom`` accept anyone and emit ``auth`` with the handshake's auth payload;
- on ``/``, ``message`` is answered with ``message-back`` and the same arguments, and
  ``message-with-ack`` acknowledges with its arguments (bytes included: binary packets).

Only the namespace methods are replaced (``_connect``, ``_event``, ``_leave``, routing); no
Redis, PostgreSQL or Parley authentication is involved.
"""

from __future__ import annotations

import asyncio
import secrets
import signal
import sys
from types import SimpleNamespace
from typing import Any

from socketify import App

from server.realtime import protocol
from server.realtime.config import RealtimeConfig
from server.realtime.connection import Connection, NamespaceSession, VisitorPrincipal
from server.realtime.gateway import Gateway
from server.realtime.loop import EventLoop
from server.realtime.protocol import SocketPacket, SocketType

SUITE_CONFIG = RealtimeConfig(
    ping_interval_ms=300, ping_timeout_ms=200, max_payload=1_000_000, connect_timeout_ms=1000
)
AUTH_PACKET_DELAY = 0.02
"""Seconds between the CONNECT answer and the `auth` event (pacing for the suite's reader)."""
NOBODY = VisitorPrincipal(project_id=0, visitor_uid="")
"""The reference namespaces authenticate no one: every session carries this placeholder."""


class ReferenceGateway(Gateway):
    INVALID_NAMESPACE_DATA = None  # the reference server's refusal carries no data

    def __init__(self, app: Any, events: EventLoop) -> None:
        stand_in = SimpleNamespace()  # presence and services: unused by these namespaces
        super().__init__(
            app,
            events,
            SUITE_CONFIG,
            fanout=SimpleNamespace(live=True),  # type: ignore[arg-type]  # no event stream to wait for
            presence=stand_in,  # type: ignore[arg-type]
            authenticator=stand_in,  # type: ignore[arg-type]
            services=stand_in,  # type: ignore[arg-type]
        )
        self.handlers = {"/": {}, "/custom": {}}

    def _route(self, conn: Connection, session: NamespaceSession) -> None:
        pass

    def _unroute(self, conn: Connection, session: NamespaceSession) -> None:
        pass

    async def _leave(self, session: NamespaceSession) -> None:
        pass

    def _send_parts(self, conn: Connection, frames: tuple[str, list[bytes]]) -> None:
        text, attachments = frames
        conn.send(text)
        for attachment in attachments:
            conn.send_binary(attachment)
        self.events.wake()

    async def _connect(self, conn: Connection, packet: SocketPacket) -> None:
        namespace = packet.namespace
        conn.set_pending(namespace, False)
        conn.add_session(NamespaceSession(namespace, next(self._numbers), NOBODY))
        self._joined(conn)
        conn.send(protocol.encode_connect(namespace, secrets.token_urlsafe(15)))
        # The suite listens for one packet at a time, and its ws 8.5 emits every message of one
        # TCP read at once, before the test listens for the next: a packet right behind this
        # one would be lost. The Node reference server writes one packet per tick and waits for
        # the write to complete; here the CONNECT leaves first and `auth` follows a moment later.
        self.events.wake()
        await asyncio.sleep(AUTH_PACKET_DELAY)
        self._send_parts(
            conn, protocol.encode_with_attachments(SocketType.EVENT, namespace, ["auth", packet.data or {}])
        )

    async def _event(self, conn: Connection, packet: SocketPacket) -> None:
        if conn.session(packet.namespace) is None or packet.namespace != "/":
            return
        if packet.event == "message":
            self._send_parts(
                conn, protocol.encode_with_attachments(SocketType.EVENT, "/", ["message-back", *packet.args])
            )
        elif packet.event == "message-with-ack" and packet.ack_id is not None:
            self._send_parts(
                conn, protocol.encode_with_attachments(SocketType.ACK, "/", packet.args, packet.ack_id)
            )


def main(port: int) -> None:
    app = App()
    events = EventLoop(app)
    gateway = ReferenceGateway(app, events)
    gateway.mount()
    app.listen({"port": port, "host": "127.0.0.1"}, lambda config: None)
    loop = events.asyncio_loop
    pinger = loop.create_task(gateway.run_pinger())
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, events.stop)
    print(f"compliance harness listening on 127.0.0.1:{port}", flush=True)
    events.run()
    pinger.cancel()


if __name__ == "__main__":
    main(int(sys.argv[1]))
