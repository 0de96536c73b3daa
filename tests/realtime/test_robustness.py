"""The process survives abuse: mass disconnects mid-broadcast, fuzzed frames, SIGTERM; and idles cheaply."""

from __future__ import annotations

import asyncio
import contextlib
import random
import signal
from typing import Any

import aiohttp
import msgspec
import pytest
from redis.asyncio import Redis

from server.tenancy.tables import ProjectMember
from tests.factories import make_conversation, make_member, make_project, make_user, make_visitor
from tests.realtime.conftest import GatewayProcess, connected
from tests.realtime.helpers import (
    agent_auth,
    cpu_seconds,
    message_event,
    publish,
    raw_socket,
    rss_kib,
    visitor_auth,
)

pytestmark = pytest.mark.slow


async def assert_serves_a_normal_client(gateway: GatewayProcess, settings: Any, project_id: int) -> None:
    assert gateway.process.poll() is None, gateway.output()[-3000:]
    async with connected(gateway, "/visitor", visitor_auth(settings, project_id, "v_after")) as (client, _):
        answer = await client.call("navigate", {"url": "https://shop.example/ok"}, namespace="/visitor")
        assert answer == {"ok": True}


@pytest.mark.parametrize("namespace", ["/agent", "/visitor"])
async def test_hundreds_of_clients_leaving_mid_broadcast(
    gateway: GatewayProcess, settings: Any, redis: Redis, namespace: str
) -> None:
    """Agents get the broadcast through a uWS topic, a visitor's tabs straight from Python."""
    project = await make_project()
    user = await make_user()
    await make_member(project, user, ProjectMember.ProjectRole.AGENT)
    visitor = await make_visitor(project, uid="v_b")
    chat = await make_conversation(project, visitor)
    if namespace == "/agent":
        auth = agent_auth(settings, user.id)
    else:
        auth = visitor_auth(settings, project.id, "v_b")
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
        sockets = await asyncio.gather(
            *(raw_socket(http, gateway.ws_url, namespace, auth) for _ in range(400))
        )

        async def broadcast() -> None:
            for seq in range(1, 301):
                await publish(
                    redis, message_event(project.id, chat.id, seq, visitor_uid="v_b", body="x" * 500)
                )

        async def leave(ws: Any, index: int) -> None:
            await asyncio.sleep(random.random() * 0.3)  # noqa: S311
            # ask for work whose answer comes after an await, then vanish before it arrives
            await ws.send_str(f'42{namespace},{index}["sync",{{"conversations":{{"{chat.id}":0}}}}]')
            await ws.send_str(f'42{namespace},["typing",{{"conversation_id":{chat.id},"typing":true}}]')
            if index % 2:
                await ws.close()
            else:
                ws._response.connection.transport.abort()  # no close frame at all

        survivor = await raw_socket(http, gateway.ws_url, namespace, auth)
        # Read (and answer pings) all along: a socket silent past the ping timeout is closed.
        received = asyncio.create_task(_seqs_until(survivor, namespace, 301))
        await asyncio.gather(broadcast(), *(leave(ws, i) for i, ws in enumerate(sockets)))
        await publish(redis, message_event(project.id, chat.id, 301, visitor_uid="v_b", body="after"))
        # A socket that stayed got every broadcast, in order, through the chaos and after it.
        assert await received == list(range(1, 302))
        await survivor.close()
    await assert_serves_a_normal_client(gateway, settings, project.id)
    assert "Traceback" not in gateway.output(), gateway.output()[-3000:]


async def _seqs_until(ws: Any, namespace: str, last: int) -> list[int]:
    """The seqs of the message.created events a raw socket receives, up to ``last`` (pings answered)."""
    prefix = f'42{namespace},["message.created",'
    seqs: list[int] = []
    while not seqs or seqs[-1] < last:
        frame = await asyncio.wait_for(ws.receive_str(), 10)
        if frame == "2":
            await ws.send_str("3")
        elif frame.startswith(prefix):
            seqs.append(msgspec.json.decode(frame[len(prefix) : -1])["seq"])
    return seqs


def fuzz_frames(rng: random.Random, count: int, max_payload: int) -> list[str | bytes]:
    valid = [
        '40/visitor,{"token":"x"}',
        "40/agent,{}",
        '42/visitor,1["typing",{"conversation_id":1,"typing":true}]',
        '42/visitor,["navigate",{"url":"https://a","title":"t"}]',
        '42/visitor,2["sync",{"conversations":{"1":0}}]',
        '42/visitor,3["message:send",{"body":"hi"}]',
        '43/visitor,1["ok"]',
        "41/visitor,",
        "3",
        "2",
        "6",
        "1",
        '451-/visitor,["x",{"_placeholder":true,"num":0}]',
    ]
    alphabet = '0123456789/,[]{}":-_abcxyz \\\u00e9\u0000'
    frames: list[str | bytes] = []
    for _ in range(count):
        roll = rng.random()
        if roll < 0.5:
            chars = list(rng.choice(valid))
            for _ in range(rng.randint(1, 4)):
                op, at = rng.random(), rng.randrange(len(chars) + 1)
                if op < 0.4:
                    chars.insert(at, rng.choice(alphabet))
                elif op < 0.7 and chars:
                    del chars[min(at, len(chars) - 1)]
                elif chars:
                    chars[min(at, len(chars) - 1)] = rng.choice(alphabet)
            frames.append("".join(chars))
        elif roll < 0.8:
            frames.append("".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40))))
        elif roll < 0.9:
            frames.append(rng.randbytes(rng.randint(1, 64)))
        elif roll < 0.95:
            frames.append("42/visitor,[" + "[" * rng.randint(100, 3000))
        else:
            frames.append('42/visitor,["x","' + "a" * (max_payload + rng.randint(1, 5000)) + '"]')
    return frames


async def test_fuzzed_frames_never_crash_the_gateway(gateway: GatewayProcess, settings: Any) -> None:
    project = await make_project()
    auth = visitor_auth(settings, project.id, "v_fuzz")
    frames = fuzz_frames(random.Random(5), 5000, 65536)  # noqa: S311
    sent = 0
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
        for start in range(0, len(frames), 25):
            ws = await raw_socket(http, gateway.ws_url, "/visitor", auth)
            with contextlib.suppress(ConnectionError, aiohttp.ClientError, RuntimeError):
                for frame in frames[start : start + 25]:
                    if ws.closed:
                        break
                    await (ws.send_bytes(frame) if isinstance(frame, bytes) else ws.send_str(frame))
                    sent += 1
            with contextlib.suppress(Exception):
                await asyncio.wait_for(ws.close(), 1)
    assert sent > 2000
    await assert_serves_a_normal_client(gateway, settings, project.id)
    assert "Traceback" not in gateway.output(), gateway.output()[-3000:]


async def test_sigterm_closes_sockets_normally(gateway: GatewayProcess, settings: Any) -> None:
    project = await make_project()
    auth = visitor_auth(settings, project.id, "v_term")
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
        sockets = [await raw_socket(http, gateway.ws_url, "/visitor", auth) for _ in range(20)]
        gateway.process.send_signal(signal.SIGTERM)
        codes = []
        for ws in sockets:
            message = await asyncio.wait_for(ws.receive(), 5)
            while message.type == aiohttp.WSMsgType.TEXT:
                message = await asyncio.wait_for(ws.receive(), 5)
            assert message.type is aiohttp.WSMsgType.CLOSE, message
            codes.append(message.data)
    assert set(codes) == {1000}
    assert await asyncio.to_thread(gateway.process.wait, 10) == 0


async def test_idle_cpu_with_a_thousand_sockets(gateway_factory: Any, settings: Any) -> None:
    gateway: GatewayProcess = gateway_factory(
        REALTIME_PING_INTERVAL_MS="25000", REALTIME_PING_TIMEOUT_MS="20000", REALTIME_HEARTBEAT_MS="10000"
    )
    project = await make_project()
    before_rss = rss_kib(gateway.process.pid)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
        sockets = []
        for start in range(0, 1000, 100):
            sockets += await asyncio.gather(
                *(
                    raw_socket(
                        http, gateway.ws_url, "/visitor", visitor_auth(settings, project.id, f"v_idle{i}")
                    )
                    for i in range(start, start + 100)
                )
            )
        await asyncio.sleep(1)
        used_before = cpu_seconds(gateway.process.pid)
        await asyncio.sleep(5)
        busy = (cpu_seconds(gateway.process.pid) - used_before) / 5
        rss_per_socket = (rss_kib(gateway.process.pid) - before_rss) * 1024 / len(sockets)
        print(
            f"\nidle CPU with {len(sockets)} sockets: {busy * 100:.2f}% of a core; ~{rss_per_socket:.0f} B RSS/socket"
        )
        assert busy < 0.5, f"{busy:.0%} of a core: a busy loop?"
        for ws in sockets:
            await ws.close()


async def test_redis_restart_asks_sockets_to_resync(
    gateway: GatewayProcess, settings: Any, stack: Any
) -> None:
    if stack.embedded is None:
        pytest.skip("restarts the embedded Valkey; REDIS_URL points at an external server")
    project = await make_project()
    auth = visitor_auth(settings, project.id, "v_resync")
    async with connected(gateway, "/visitor", auth, ["server:resync"]) as (client, recorder):
        await asyncio.to_thread(stack.embedded.restart_valkey)
        resync = await recorder.wait_for(lambda: recorder.named("server:resync"), within=20)
        assert "sync" in resync[0]["reason"]
        answer = await client.call("navigate", {"url": "https://shop.example/back"}, namespace="/visitor")
        assert answer == {"ok": True}
