"""Who may do what over the socket: read-only keys, rate limits, inactive users, narrowed projects."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from redis.asyncio import Redis

from server.accounts.tables import User
from server.tenancy.apikeys import create_api_key
from server.tenancy.queries import actor_for
from server.tenancy.tables import ProjectMember
from tests.factories import make_conversation, make_member, make_project, make_user, make_visitor
from tests.realtime.conftest import GatewayProcess, connected
from tests.realtime.helpers import agent_auth, message_event, publish, visitor_auth
from tests.realtime.test_handshake import refused_reason

pytestmark = pytest.mark.slow


async def test_a_read_only_key_may_read_but_not_send(gateway: GatewayProcess) -> None:
    project = await make_project()
    user = await make_user()
    await make_member(project, user, ProjectMember.ProjectRole.AGENT)
    chat = await make_conversation(project, await make_visitor(project))
    send = {"conversation_id": chat.id, "body": "hello", "client_msg_id": str(uuid.uuid4())}
    for read_only, expected in ((False, None), (True, "read_only_key")):
        key = await create_api_key(
            await actor_for(user), name="k", project_id=None, read_only=read_only, expires_at=None
        )
        async with connected(gateway, "/agent", {"api_key": key.secret}) as (client, _):
            answer = await client.call(
                "message:send", {**send, "client_msg_id": str(uuid.uuid4())}, namespace="/agent"
            )
            sync = await client.call("sync", {"conversations": {str(chat.id): 0}}, namespace="/agent")
        assert str(chat.id) in sync["conversations"], "reading is allowed either way"
        if expected is None:
            assert answer["accepted"] is True, answer
        else:
            assert answer["error"]["code"] == expected, answer


async def test_a_visitor_over_the_rate_limit_gets_rate_limited_with_retry_after(
    gateway: GatewayProcess, settings: Any
) -> None:
    """60 messages per 10 s per visitor (server/chat/mailbox.py RateLimits): the 61st is refused."""
    project = await make_project()
    async with connected(gateway, "/visitor", visitor_auth(settings, project.id, "v_fast")) as (client, _):
        answers = [
            await client.call(
                "message:send", {"body": f"m{i}", "client_msg_id": str(uuid.uuid4())}, namespace="/visitor"
            )
            for i in range(61)
        ]
    assert all(answer.get("accepted") is True for answer in answers[:60]), answers[:60]
    refused = answers[60]["error"]
    assert refused["code"] == "rate_limited", refused
    assert 0 < refused["retry_after"] <= 10, refused


async def test_an_inactive_users_token_is_refused(gateway: GatewayProcess, settings: Any) -> None:
    project = await make_project()
    user = await make_user()
    await make_member(project, user, ProjectMember.ProjectRole.AGENT)
    auth = agent_auth(settings, user.id)
    async with connected(gateway, "/agent", auth):
        pass  # the control: the token works while the user is active
    await User.update({User.active: False}).where(User.id == user.id)
    error = await refused_reason(gateway, "/agent", auth)
    assert error["data"]["code"] == "invalid_token", error
    assert "inactive" in error["message"], error


async def test_projects_narrow_the_events_an_agent_receives(
    gateway: GatewayProcess, settings: Any, redis: Redis
) -> None:
    wanted, other = await make_project(), await make_project()
    user = await make_user()
    for project in (wanted, other):
        await make_member(project, user, ProjectMember.ProjectRole.AGENT)
    chats = {p.id: await make_conversation(p, await make_visitor(p, uid=f"v{p.id}")) for p in (wanted, other)}
    auth = {**agent_auth(settings, user.id), "projects": [wanted.id]}
    async with connected(gateway, "/agent", auth, events=["message.created"]) as (_, recorder):
        # The other project's event goes first: when the wanted one has arrived, so would it have.
        await publish(redis, message_event(other.id, chats[other.id].id, 1, visitor_uid=f"v{other.id}"))
        await publish(redis, message_event(wanted.id, chats[wanted.id].id, 1, visitor_uid=f"v{wanted.id}"))
        received = await recorder.wait_for(lambda: recorder.named("message.created"))
    assert [event["conversation_id"] for event in received] == [chats[wanted.id].id], received
