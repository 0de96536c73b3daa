"""A client that stops reading is closed by the gateway once uWS holds MAX_BACKPRESSURE bytes for
it; a client as busy that reads keeps its socket. Proven on the server side: the slow visitor's
presence goes offline (its socket was closed) while the reading one stays online."""

from __future__ import annotations

import asyncio
import base64
import os
import socket
from typing import Any

import msgspec
import pytest

from server.realtime.gateway import MAX_BACKPRESSURE
from server.tenancy.tables import ProjectMember
from tests.factories import make_conversation, make_member, make_project, make_user, make_visitor
from tests.realtime.conftest import connected
from tests.realtime.helpers import agent_auth, message_event, presence_changes, publish, visitor_auth

pytestmark = pytest.mark.slow

EVENT_BYTES = 100_000
EVENTS = 120  # 12 MB each: past the kernel's buffers on both ends (4 MB at most) and uWS's 1 MB


def _frame(text: str) -> bytes:
    """One masked WebSocket text frame, as a client must send it."""
    payload = text.encode()
    mask = os.urandom(4)
    header = bytes([0x81])
    if len(payload) < 126:
        header += bytes([0x80 | len(payload)])
    else:
        header += bytes([0x80 | 126]) + len(payload).to_bytes(2, "big")
    return header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


async def _slow_visitor(port: int, auth: dict[str, Any]) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A bare WebSocket that joins /visitor and then reads nothing more (a tiny receive buffer)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
    reader, writer = await asyncio.open_connection(sock=sock, limit=4096)
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write(
        (
            "GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\n"
            f"Host: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    status = await reader.readuntil(b"\r\n\r\n")
    assert status.startswith(b"HTTP/1.1 101"), status
    writer.write(_frame("40/visitor," + msgspec.json.encode(auth).decode()))
    await writer.drain()
    seen = b""
    while b"40/visitor," not in seen:  # the Engine.IO open packet, then the namespace's CONNECT
        seen += await asyncio.wait_for(reader.read(4096), timeout=30)
        assert b"44/visitor" not in seen, seen
    return reader, writer


async def test_a_client_that_stops_reading_is_closed_and_one_that_reads_is_not(
    gateway_factory: Any, settings: Any, redis: Any
) -> None:
    assert MAX_BACKPRESSURE == 1024 * 1024
    # Pings a minute apart: nothing but the backpressure limit can close a socket during the test.
    gateway = gateway_factory(REALTIME_PING_INTERVAL_MS="60000", REALTIME_PING_TIMEOUT_MS="60000")
    project = await make_project()
    agent = await make_user()
    await make_member(project, agent, ProjectMember.ProjectRole.AGENT)
    slow_chat = await make_conversation(project, await make_visitor(project, uid="v_slow"))
    busy_chat = await make_conversation(project, await make_visitor(project, uid="v_busy"))
    async with (
        connected(gateway, "/agent", agent_auth(settings, agent.id), ["presence.changed"]) as (_, agent_rx),
        connected(gateway, "/visitor", visitor_auth(settings, project.id, "v_busy"), ["message.created"]) as (
            _,
            busy_rx,
        ),
    ):

        def status(uid: str) -> list[str]:
            return [c["status"] for c in presence_changes(agent_rx) if c.get("visitor_uid") == uid]

        _reader, writer = await _slow_visitor(gateway.port, visitor_auth(settings, project.id, "v_slow"))
        try:
            await agent_rx.wait_for(lambda: status("v_slow") == ["online"] and status("v_busy") == ["online"])
            body = "x" * EVENT_BYTES
            for seq in range(1, EVENTS + 1):
                for chat, uid in ((slow_chat, "v_slow"), (busy_chat, "v_busy")):
                    await publish(redis, message_event(project.id, chat.id, seq, visitor_uid=uid, body=body))
            await agent_rx.wait_for(lambda: status("v_slow") == ["online", "offline"], within=60)
            await busy_rx.wait_for(lambda: len(busy_rx.named("message.created")) == EVENTS, within=60)
            assert status("v_busy") == ["online"]  # it read everything and is still connected
            assert [e["seq"] for e in busy_rx.named("message.created")] == list(range(1, EVENTS + 1))
        finally:
            writer.close()
    output = gateway.output()
    assert "Traceback" not in output, output[-3000:]
