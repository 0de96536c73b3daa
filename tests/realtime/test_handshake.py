"""Handshake, namespaces, authentication and acks with the official python-socketio client."""

from __future__ import annotations

import asyncio
import contextlib
from types import SimpleNamespace
from typing import Any

import aiohttp
import msgspec
import pytest
import socketio

from server.tenancy.tables import ProjectMember
from tests.factories import (
    make_conversation,
    make_member,
    make_message,
    make_project,
    make_user,
    make_visitor,
)
from tests.realtime.conftest import GatewayProcess, connected, recording_client
from tests.realtime.helpers import agent_auth, expired_visitor_auth, raw_socket, visitor_auth

pytestmark = pytest.mark.slow


async def refused_reason(gateway: GatewayProcess, namespace: str, auth: dict[str, Any]) -> Any:
    client, recorders = recording_client([namespace], [])
    with pytest.raises(socketio.exceptions.ConnectionError):
        await client.connect(
            gateway.url, namespaces=[namespace], auth=auth, transports=["websocket"], wait_timeout=5
        )
    errors = recorders[namespace].named("connect_error")
    assert errors, "no connect_error received"
    return errors[0]


async def test_engine_io_handshake_announces_websocket_only(gateway: GatewayProcess) -> None:
    async with aiohttp.ClientSession() as http, http.ws_connect(gateway.ws_url) as ws:
        first = await ws.receive_str()
        assert first[0] == "0"
        handshake = msgspec.json.decode(first[1:])
        assert set(handshake) == {"sid", "upgrades", "pingInterval", "pingTimeout", "maxPayload"}
        assert handshake["upgrades"] == []
        assert handshake["pingInterval"] == 1000 and handshake["pingTimeout"] == 3000
        assert handshake["maxPayload"] == 65536
        # the server pings, the client answers
        assert await asyncio.wait_for(ws.receive_str(), 3) == "2"
        await ws.send_str("3")


async def test_long_polling_and_old_protocols_get_a_clear_error(gateway: GatewayProcess) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{gateway.url}/socket.io/?EIO=4&transport=polling") as response:
            assert response.status == 400
            body = await response.json()
            assert "websocket" in body["message"] and "transports" in body["message"]
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await http.ws_connect(f"ws://127.0.0.1:{gateway.port}/socket.io/?EIO=3&transport=websocket")
        assert refused.value.status == 400


async def test_visitor_and_agent_connect_and_ack(gateway: GatewayProcess, settings: Any) -> None:
    project = await make_project()
    user = await make_user()
    await make_member(project, user, ProjectMember.ProjectRole.AGENT)
    async with connected(gateway, "/visitor", visitor_auth(settings, project.id, "v_one")) as (client, _):
        assert client.get_sid("/visitor")
        answer = await client.call(
            "navigate", {"url": "https://shop.example/a", "title": "A"}, namespace="/visitor"
        )
        assert answer == {"ok": True}
    async with connected(gateway, "/agent", agent_auth(settings, user.id)) as (client, _):
        answer = await client.call("presence", {"status": "away"}, namespace="/agent")
        assert answer == {"ok": True, "status": "away"}


@pytest.mark.parametrize(
    ("case", "code", "message"),
    [
        ("missing", "missing_token", "auth.token is required"),
        ("forged", "invalid_token", "bad signature"),
        ("garbage", "invalid_token", "malformed token"),
        ("expired", "token_expired", "token expired"),
        ("agent_on_visitor", "wrong_token_kind", "a visitor token is required on /visitor"),
        ("other_project", "wrong_project", "the token belongs to another project"),
    ],
)
async def test_visitor_refusals_carry_a_reason(
    gateway: GatewayProcess, settings: Any, case: str, code: str, message: str
) -> None:
    project = await make_project()
    good = visitor_auth(settings, project.id, "v_x")["token"]
    auth: dict[str, Any] = {
        "missing": {},
        "forged": {"token": good[:-4] + ("AAAA" if not good.endswith("AAAA") else "BBBB")},
        "garbage": {"token": "not-a-token"},
        "expired": expired_visitor_auth(settings, project.id, "v_x"),
        "agent_on_visitor": agent_auth(settings, 1),
        "other_project": {"token": good, "project_id": project.id + 1},
    }[case]
    error = await refused_reason(gateway, "/visitor", auth)
    assert error == {"message": message, "data": {"code": code}}


async def test_agent_refusals(gateway: GatewayProcess, settings: Any) -> None:
    mine, other = await make_project(), await make_project()
    user = await make_user()
    await make_member(mine, user, ProjectMember.ProjectRole.AGENT)
    error = await refused_reason(gateway, "/agent", {**agent_auth(settings, user.id), "projects": [other.id]})
    assert error["data"]["code"] == "forbidden_project"
    error = await refused_reason(gateway, "/agent", visitor_auth(settings, mine.id, "v"))
    assert error["data"]["code"] == "wrong_token_kind"
    visible = await make_conversation(mine, await make_visitor(mine), last_seq=1)
    await make_message(visible, seq=1, body="hello")
    elsewhere = await make_conversation(other, await make_visitor(other))
    ask = {"conversations": {str(visible.id): 0, str(elsewhere.id): 0}}
    async with connected(gateway, "/agent", agent_auth(settings, user.id)) as (client, _):
        answer = await client.call("sync", ask, namespace="/agent")  # the control: the token sees `mine`
        assert [m["body"] for m in answer["conversations"][str(visible.id)]["messages"]] == ["hello"]
        assert answer["errors"] == {
            str(elsewhere.id): {"code": "not_found", "message": "no such conversation"}
        }
    limited = agent_auth(settings, user.id, project_id=other.id)  # a token limited to a project it cannot see
    async with connected(gateway, "/agent", limited) as (client, _):
        answer = await client.call("sync", ask, namespace="/agent")
        assert answer["conversations"] == {}, "a token limited to another project sees nothing of mine"
        assert set(answer["errors"]) == {str(visible.id), str(elsewhere.id)}
    error = await refused_reason(gateway, "/nope", visitor_auth(settings, mine.id, "v"))
    assert error["message"] == "Invalid namespace"


async def test_bad_events_get_errors_and_keep_the_connection(gateway: GatewayProcess, settings: Any) -> None:
    project = await make_project()
    async with connected(gateway, "/visitor", visitor_auth(settings, project.id, "v_e")) as (
        client,
        recorder,
    ):
        answer = await client.call("no-such-event", {}, namespace="/visitor")
        assert answer["error"]["code"] == "unknown_event"
        answer = await client.call("typing", {"conversation_id": "x", "typing": True}, namespace="/visitor")
        assert answer["error"]["code"] == "invalid_payload"
        answer = await client.call("typing", "nope", namespace="/visitor")
        assert answer["error"]["code"] == "invalid_payload"
        answer = await client.call("typing", {"conversation_id": 999, "typing": True}, namespace="/visitor")
        assert answer["error"]["code"] == "not_found"
        await client.emit("navigate", {"url": ""}, namespace="/visitor")  # no ack: a server:error event
        error = await recorder.wait_for(lambda: recorder.named("server:error"))
        assert error[0]["code"] == "invalid_payload" and error[0]["event"] == "navigate"
        assert await client.call("navigate", {"url": "https://shop.example/"}, namespace="/visitor") == {
            "ok": True
        }


async def test_server_to_client_ack(gateway: GatewayProcess, settings: Any) -> None:
    project = await make_project()
    client = socketio.AsyncClient(reconnection=False)
    probes: list[Any] = []

    def probe(data: Any) -> Any:
        probes.append(data)
        return "pong"

    client.on("rtt:probe", probe, namespace="/visitor")

    await client.connect(
        gateway.url,
        namespaces=["/visitor"],
        auth=visitor_auth(settings, project.id, "v_r"),
        transports=["websocket"],
    )
    try:
        answer = await client.call("rtt", {}, namespace="/visitor")
        assert answer["client_ack"] == ["pong"] and answer["rtt_ms"] >= 0 and len(probes) == 1
    finally:
        await client.disconnect()


async def test_two_namespaces_over_one_websocket(gateway: GatewayProcess, settings: Any) -> None:
    project = await make_project()
    user = await make_user()
    await make_member(project, user, ProjectMember.ProjectRole.MANAGER)
    visitor = msgspec.json.encode(visitor_auth(settings, project.id, "v_two")).decode()
    agent = msgspec.json.encode(agent_auth(settings, user.id)).decode()
    async with aiohttp.ClientSession() as http, http.ws_connect(gateway.ws_url) as ws:
        assert (await ws.receive_str())[0] == "0"
        await ws.send_str(f"40/visitor,{visitor}")
        await ws.send_str(f"40/agent,{agent}")
        await ws.send_str("40/visitor," + agent)  # a second CONNECT on the same namespace is refused
        frames: list[str] = []
        while len(frames) < 3:
            frame = await asyncio.wait_for(ws.receive_str(), 5)
            if frame != "2":
                frames.append(frame)
        # the duplicate is refused; the two authenticated CONNECTs are answered, in their order
        # (the refusal needs no token check, so it usually comes first, but that is timing)
        refusals = [frame for frame in frames if frame.startswith("44/")]
        assert len(refusals) == 1 and refusals[0].startswith("44/visitor,"), frames
        assert "already connected" in refusals[0]
        joined = [frame for frame in frames if frame.startswith("40/")]
        assert joined[0].startswith('40/visitor,{"sid":') and joined[1].startswith('40/agent,{"sid":'), frames
        await ws.send_str('42/agent,7["sync",{"conversations":{}}]')
        await ws.send_str('42/visitor,8["navigate",{"url":"https://shop.example/p"}]')
        answers: set[str] = set()
        while len(answers) < 2:
            frame = await asyncio.wait_for(ws.receive_str(), 5)
            if frame.startswith("43"):
                answers.add(frame)
        assert answers == {'43/agent,7[{"conversations":{}}]', '43/visitor,8[{"ok":true}]'}
        await ws.send_str("41/visitor,")
        await ws.send_str('42/visitor,9["navigate",{"url":"https://shop.example/p"}]')
        frame = await asyncio.wait_for(ws.receive_str(), 5)
        while not frame.startswith("43"):  # pings, and the agent's visitor.navigated
            frame = await asyncio.wait_for(ws.receive_str(), 5)
        assert frame.startswith("43/visitor,9") and "not_connected" in frame


async def test_browser_origin_must_be_allowed_for_visitors(gateway: GatewayProcess, settings: Any) -> None:
    project = await make_project(allowed_origins=["https://shop.example"])
    auth = msgspec.json.encode(visitor_auth(settings, project.id, "v_o")).decode()
    async with aiohttp.ClientSession() as http:
        for origin, expected in (
            ("https://evil.example", "44/visitor,"),
            ("https://shop.example", "40/visitor,"),
        ):
            async with http.ws_connect(gateway.ws_url, headers={"Origin": origin}) as ws:
                await ws.receive_str()
                await ws.send_str(f"40/visitor,{auth}")
                frame = await asyncio.wait_for(ws.receive_str(), 5)
                while frame == "2":
                    frame = await asyncio.wait_for(ws.receive_str(), 5)
                assert frame.startswith(expected), frame
                if expected.startswith("44"):
                    assert "origin_not_allowed" in frame


async def test_agent_may_connect_with_an_api_key(gateway: GatewayProcess, settings: Any) -> None:
    from server.tenancy.apikeys import create_api_key
    from server.tenancy.queries import actor_for

    project = await make_project()
    user = await make_user()
    await make_member(project, user, ProjectMember.ProjectRole.AGENT)
    created = await create_api_key(
        await actor_for(user), name="bot", project_id=project.id, read_only=False, expires_at=None
    )
    for auth in ({"token": created.secret}, {"api_key": created.secret}):
        async with connected(gateway, "/agent", auth) as (client, _):
            assert await client.call("presence", {"status": "online"}, namespace="/agent") == {
                "ok": True,
                "status": "online",
            }
    error = await refused_reason(gateway, "/agent", {"api_key": created.secret[:-3] + "xyz"})
    assert error == {"message": "unknown, revoked or expired API key", "data": {"code": "invalid_token"}}


async def test_frames_the_gateway_refuses_close_with_a_reason(gateway: GatewayProcess) -> None:
    cases: list[tuple[list[str | bytes], int, str]] = [
        ([b"\x01\x02"], 1003, "a binary frame must follow a binary packet (5/6) announcing it"),
        (['451-/visitor,["x"]', b"\x01"], 1002, "parse error: a binary attachment is not referred to"),
        (
            ['451-/visitor,["x",{"_placeholder":true,"num":0}]', "3"],
            1002,
            "parse error: a text frame came before",
        ),
        (["4x"], 1002, "parse error: unknown Socket.IO packet type"),
        (["9"], 1002, "parse error: unknown Engine.IO packet type"),
    ]
    async with aiohttp.ClientSession() as http:
        for frames, code, reason in cases:
            async with http.ws_connect(gateway.ws_url, autoping=False, max_msg_size=0) as ws:
                await ws.receive_str()
                for frame in frames:
                    await (ws.send_bytes(frame) if isinstance(frame, bytes) else ws.send_str(frame))
                message = await asyncio.wait_for(ws.receive(), 5)
                while message.type is aiohttp.WSMsgType.TEXT:
                    message = await asyncio.wait_for(ws.receive(), 5)
                assert message.type is aiohttp.WSMsgType.CLOSE, (frames, message)
                assert message.data == code, (frames, message)
                assert (message.extra or "").startswith(reason), (frames, message)


async def test_binary_attachments_reach_parley_events_as_a_clear_error(
    gateway: GatewayProcess, settings: Any
) -> None:
    """Parley's events take JSON objects: bytes where one is expected is invalid_payload, and the
    socket stays usable (the packet itself was well-formed)."""
    project = await make_project()
    async with aiohttp.ClientSession() as http:
        ws = await raw_socket(http, gateway.ws_url, "/visitor", visitor_auth(settings, project.id, "v_bin"))
        await ws.send_str('451-/visitor,5["navigate",{"_placeholder":true,"num":0}]')
        await ws.send_bytes(b"\x00\x01")
        await ws.send_str('42/visitor,6["navigate",{"url":"https://shop.example/"}]')
        answers: list[str] = []
        while len(answers) < 2:
            frame = await asyncio.wait_for(ws.receive_str(), 5)
            if frame.startswith("43/visitor,"):
                answers.append(frame)
        assert answers[0].startswith('43/visitor,5[{"error":{"code":"invalid_payload"'), answers
        assert answers[1] == '43/visitor,6[{"ok":true}]', answers
        await ws.close()


async def test_frames_over_max_payload_close_the_socket(gateway: GatewayProcess) -> None:
    """The limit sits where REALTIME_MAX_PAYLOAD says (64 KiB here): a frame just under it is read
    (the ping after it is answered), one just over it ends the connection. uWS drops the TCP
    connection without a close frame, so the client sees it closed rather than a 1009."""
    limit = 65_536
    async with aiohttp.ClientSession() as http:
        for size, kept in ((limit - 200, True), (limit + 200, False)):
            async with http.ws_connect(gateway.ws_url, autoping=False, max_msg_size=0) as ws:
                await ws.receive_str()
                frame = '42/visitor,["' + "a" * (size - 15) + '"]'
                await ws.send_str(frame)
                if kept:
                    await ws.send_str("2probe")
                message = await asyncio.wait_for(ws.receive(), 5)
                if kept:
                    assert (message.type, message.data) == (aiohttp.WSMsgType.TEXT, "3probe"), size
                else:
                    assert message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED), message
                    assert message.type is aiohttp.WSMsgType.CLOSED or message.data == 1009, message


async def test_a_socket_that_joins_no_namespace_is_closed_after_the_connect_timeout(
    gateway_factory: Any, settings: Any
) -> None:
    """Unauthenticated sockets cannot hold the gateway's descriptors: no namespace, no socket.
    Pings are answered throughout, so only the connect timeout can be what closes it."""
    gateway = gateway_factory(REALTIME_CONNECT_TIMEOUT_MS="1500", REALTIME_PING_INTERVAL_MS="300")
    project = await make_project()
    async with aiohttp.ClientSession() as http:
        joined = await raw_socket(
            http, gateway.ws_url, "/visitor", visitor_auth(settings, project.id, "v_ok")
        )
        idle = await http.ws_connect(gateway.ws_url, autoping=False)
        await idle.receive_str()
        idle_pings, joined_pings = await asyncio.gather(
            _answer_pings(idle), _answer_pings(joined, until=idle)
        )
        assert (idle.close_code, idle_pings >= 2) == (1008, True), "it answered pings all along"
        assert joined_pings >= 2  # joined in time: outlives the timeout, still served
        assert await _answer(joined, '42/visitor,1["navigate",{"url":"https://shop.example/"}]') == (
            '43/visitor,1[{"ok":true}]'
        )
        await joined.close()


async def _answer_pings(ws: Any, until: Any = None, within: float = 10) -> int:
    """Answer pings until ``ws`` closes (or until ``until`` has closed), ``within`` seconds at most;
    the pings answered."""
    pings = 0
    deadline = asyncio.get_running_loop().time() + within
    while (until is None or not until.closed) and asyncio.get_running_loop().time() < deadline:
        try:
            message = await asyncio.wait_for(ws.receive(), 0.5 if until is not None else 10)
        except TimeoutError:
            continue
        if message.type is not aiohttp.WSMsgType.TEXT:
            if message.type is aiohttp.WSMsgType.CLOSE:
                assert message.extra in ("no namespace joined within 1500 ms", "ping timeout"), message
            return pings
        if message.data == "2":
            pings += 1
            with contextlib.suppress(aiohttp.ClientConnectionResetError):  # closed as it answered
                await ws.send_str("3")
    return pings


async def test_a_silent_socket_is_closed_after_the_ping_timeout_below_uws_floor(
    gateway_factory: Any, settings: Any
) -> None:
    """pingTimeout 300 ms is honoured although uWS's idle timer cannot go below 8 s; a socket that
    answers pings stays."""
    gateway = gateway_factory(REALTIME_PING_INTERVAL_MS="300", REALTIME_PING_TIMEOUT_MS="300")
    project = await make_project()
    auth = visitor_auth(settings, project.id, "v_silent")
    async with aiohttp.ClientSession() as http:
        silent = await raw_socket(http, gateway.ws_url, "/visitor", auth)
        talking = await raw_socket(http, gateway.ws_url, "/visitor", auth)

        watch = SimpleNamespace(closed=False)

        async def until_closed() -> Any:
            message = await asyncio.wait_for(silent.receive(), 5)
            while message.type is aiohttp.WSMsgType.TEXT:  # pings, never answered
                message = await asyncio.wait_for(silent.receive(), 5)
            await asyncio.sleep(1.5)  # bounds how long the talking socket is watched after it
            watch.closed = True
            return message

        closed, pings = await asyncio.gather(until_closed(), _answer_pings(talking, until=watch))
        assert (closed.type, closed.data, closed.extra) == (aiohttp.WSMsgType.CLOSE, 1008, "ping timeout")
        assert pings >= 4, pings
        assert await _answer(talking, '42/visitor,1["navigate",{"url":"https://shop.example/"}]') == (
            '43/visitor,1[{"ok":true}]'
        ), "the socket that answered its pings is still served"
        await talking.close()


async def _answer(ws: Any, frame: str) -> str:
    """Send a frame and return the first answer that is not a ping (pings are answered)."""
    await ws.send_str(frame)
    while True:
        reply: str = await asyncio.wait_for(ws.receive_str(), 10)
        if reply == "2":
            await ws.send_str("3")
        else:
            return reply
