"""Small helpers shared by the realtime tests: tokens, published events, raw frames."""

from __future__ import annotations

import time
from typing import Any

from redis.asyncio import Redis

from server.accounts.tokens import TokenClaims, agent_token, sign, visitor_token
from server.outbox.envelope import Envelope, encode, project_channel
from server.redis_client import publish_all

ALL_EVENTS = [
    "message.created",
    "conversation.created",
    "conversation.status_changed",
    "conversation.assigned",
    "conversation.read",
    "visitor.navigated",
    "presence.changed",
    "typing.started",
    "typing.stopped",
]


def visitor_auth(settings: Any, project_id: int, uid: str) -> dict[str, Any]:
    return {"token": visitor_token(project_id, uid, settings.security.secret_key)[0]}


def agent_auth(settings: Any, user_id: int, **claims: Any) -> dict[str, Any]:
    return {"token": agent_token(user_id, settings.security.secret_key, **claims)[0]}


def expired_visitor_auth(settings: Any, project_id: int, uid: str) -> dict[str, Any]:
    claims = TokenClaims(kind="visitor", exp=int(time.time()) - 10, project_id=project_id, visitor_uid=uid)
    return {"token": sign(claims, settings.security.secret_key)}


def message_event(
    project_id: int,
    conversation_id: int,
    seq: int,
    *,
    visitor_uid: str,
    private: bool = False,
    body: str = "hi",
) -> Envelope:
    return Envelope(
        type="message.created",
        project_id=project_id,
        at=time.time(),
        id=seq,
        conversation_id=conversation_id,
        seq=seq,
        data={
            "id": seq,
            "conversation_id": conversation_id,
            "seq": seq,
            "sender_kind": "agent",
            "sender_user_id": None,
            "visitor_uid": visitor_uid,
            "body": body,
            "private": private,
            "client_msg_id": "00000000-0000-0000-0000-000000000000",
            "created_at": time.time(),
        },
    )


async def publish(redis: Redis, envelope: Envelope) -> None:
    """What the worker's outbox relay does: publish on the project's channel (SPUBLISH on a cluster)."""
    await publish_all(redis, [(project_channel(envelope.project_id), encode(envelope))])


async def raw_socket(http: Any, ws_url: str, namespace: str, auth: dict[str, Any]) -> Any:
    """A bare websocket that did the Engine.IO handshake and joined ``namespace`` (aiohttp)."""
    import msgspec

    ws = await http.ws_connect(ws_url, autoping=False)
    opened = await ws.receive_str()
    assert opened.startswith("0{"), opened
    await ws.send_str(f"40{namespace}," + msgspec.json.encode(auth).decode())
    while True:
        frame = await ws.receive_str()
        if frame.startswith(f"40{namespace},"):
            return ws
        assert not frame.startswith("44"), frame


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process used so far (from /proc)."""
    import os

    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()  # noqa: SIM115
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_kib(pid: int) -> int:
    for line in open(f"/proc/{pid}/status"):  # noqa: SIM115
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def presence_changes(recorder: Any) -> list[dict[str, Any]]:
    """Every change a recorder's ``presence.changed`` events carried, in order (each carries a list)."""
    return [change for event in recorder.named("presence.changed") for change in event["data"]["changes"]]
