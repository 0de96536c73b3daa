"""Small helpers shared by the realtime tests: tokens, published events, raw frames."""

from __future__ import annotations

import time
from typing import Any

from redis.asyncio import Redis

from server.accounts.tokens import TokenClaims, agent_token, sign, visitor_token
from server.outbox.envelope import Envelope, encode, project_channel

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
    """What the worker's outbox relay does: publish on the project's channel."""
    await redis.publish(project_channel(envelope.project_id), encode(envelope))
