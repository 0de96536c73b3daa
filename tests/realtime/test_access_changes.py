"""Access changes reach open sockets (server/realtime/access.py), with python-socketio clients
against a real gateway process. The changes are made the way the console and the API make them
(the services), and once by hand in SQL: the triggers announce them whoever writes.

The issue asks for "within 1 s"; these tests wait with a generous deadline (no timing in
pass/fail) and print how long each took (``-s`` shows it).
"""

from __future__ import annotations

import time
from typing import Any

import socketio
from redis.asyncio import Redis

from server.accounts import services as accounts
from server.queue import make_queue
from server.tenancy import services
from server.tenancy.apikeys import create_api_key, revoke_api_key
from server.tenancy.queries import actor_for
from server.tenancy.tables import ProjectMember
from tests.factories import make_conversation, make_member, make_project, make_user, make_visitor
from tests.realtime.conftest import GatewayProcess, Recorder, connected
from tests.realtime.helpers import agent_auth, message_event, publish, visitor_auth
from tests.realtime.test_handshake import refused_reason

Role = ProjectMember.ProjectRole
WATCHED = ["access:revoked", "disconnect", "message.created"]
DEADLINE = 10.0


async def _revoked(recorder: Recorder, started: float) -> dict[str, Any]:
    revoked: list[dict[str, Any]] = await recorder.wait_for(
        lambda: recorder.named("access:revoked"), DEADLINE
    )
    print(f"access:revoked after {(time.monotonic() - started) * 1000:.0f} ms")
    return revoked[0]


async def _disconnected(client: socketio.AsyncClient, recorder: Recorder) -> None:
    await recorder.wait_for(lambda: recorder.named("disconnect") and not client.connected, DEADLINE)


async def test_a_removed_member_is_disconnected_and_cannot_come_back(
    gateway: GatewayProcess, settings: Any
) -> None:
    project = await make_project()
    boss, agent = await make_user(), await make_user()
    await make_member(project, boss, Role.MANAGER)
    await make_member(project, agent, Role.AGENT)
    async with (
        connected(gateway, "/agent", agent_auth(settings, agent.id), WATCHED) as (client, recorder),
        connected(gateway, "/agent", agent_auth(settings, boss.id), WATCHED) as (_, bystander),
    ):
        started = time.monotonic()
        await services.remove_member(project.id, agent.id)
        revoked = await _revoked(recorder, started)
        assert revoked == {
            "code": "member_removed",
            "message": "you no longer have access to this project",
            "projects": [project.id],
        }
        await _disconnected(client, recorder)
        # The manager's socket was checked too, and kept.
        assert bystander.named("access:revoked") == [] and bystander.named("disconnect") == []
    error = await refused_reason(
        gateway, "/agent", {**agent_auth(settings, agent.id), "projects": [project.id]}
    )
    assert error["data"]["code"] == "forbidden_project"


async def test_losing_one_project_of_two_keeps_the_socket_for_the_other(
    gateway: GatewayProcess, settings: Any, redis: Redis
) -> None:
    kept, lost = await make_project(), await make_project()
    agent = await make_user()
    for project in (kept, lost):
        await make_member(project, await make_user(), Role.MANAGER)
        await make_member(project, agent, Role.AGENT)
    lost_conversation = await make_conversation(lost, await make_visitor(lost))
    kept_visitor = await make_visitor(kept)
    kept_conversation = await make_conversation(kept, kept_visitor)
    async with connected(gateway, "/agent", agent_auth(settings, agent.id), WATCHED) as (client, recorder):
        started = time.monotonic()
        await services.remove_member(lost.id, agent.id)
        revoked = await _revoked(recorder, started)
        assert revoked["code"] == "member_removed" and revoked["projects"] == [lost.id]
        answer = await client.call(
            "sync", {"conversations": {str(lost_conversation.id): 0}}, namespace="/agent", timeout=5
        )
        assert answer["errors"] == {
            str(lost_conversation.id): {"code": "not_found", "message": "no such conversation"}
        }
        # Published in this order on one connection: the lost project's event would come first.
        await publish(
            redis, message_event(lost.id, lost_conversation.id, 1, visitor_uid="v_lost", body="gone")
        )
        await publish(
            redis, message_event(kept.id, kept_conversation.id, 1, visitor_uid=kept_visitor.uid, body="kept")
        )
        await recorder.wait_for(lambda: recorder.named("message.created"), DEADLINE)
        assert [m["data"]["body"] for m in recorder.named("message.created")] == ["kept"]
        assert client.connected and recorder.named("disconnect") == []


async def test_a_deactivated_user_is_disconnected_even_when_changed_in_sql(
    gateway: GatewayProcess, settings: Any, redis: Redis
) -> None:
    project = await make_project()
    first, second = await make_user(), await make_user()
    for user in (first, second):
        await make_member(project, user, Role.AGENT)
    async with connected(gateway, "/agent", agent_auth(settings, first.id), WATCHED) as (client, recorder):
        started = time.monotonic()
        await accounts.set_active(redis, first.id, False)
        assert (await _revoked(recorder, started))["code"] == "user_deactivated"
        await _disconnected(client, recorder)
    async with connected(gateway, "/agent", agent_auth(settings, second.id), WATCHED) as (client, recorder):
        started = time.monotonic()
        from server.database import engine

        connection = await engine().get_new_connection()  # by hand, as in psql
        try:
            await connection.execute("UPDATE parley_user SET active = false WHERE id = $1", second.id)
        finally:
            await connection.close()
        assert (await _revoked(recorder, started))["code"] == "user_deactivated"
        await _disconnected(client, recorder)


async def test_a_revoked_api_key_disconnects_its_sockets_and_tokens_made_with_it(
    gateway: GatewayProcess, settings: Any
) -> None:
    project = await make_project()
    user = await make_user()
    await make_member(project, user, Role.AGENT)
    actor = await actor_for(user)
    created = await create_api_key(actor, name="bot", project_id=project.id, read_only=False, expires_at=None)
    key_token = agent_auth(settings, user.id, project_id=project.id, api_key_id=created.key.id)
    async with (
        connected(gateway, "/agent", {"api_key": created.secret}, WATCHED) as (by_key, key_recorder),
        connected(gateway, "/agent", key_token, WATCHED) as (by_token, token_recorder),
        connected(gateway, "/agent", agent_auth(settings, user.id), WATCHED) as (signed_in, own_recorder),
    ):
        started = time.monotonic()
        await revoke_api_key(actor, created.key.id)
        for client, recorder in ((by_key, key_recorder), (by_token, token_recorder)):
            assert (await _revoked(recorder, started))["code"] == "api_key_revoked"
            await _disconnected(client, recorder)
        assert signed_in.connected and own_recorder.named("access:revoked") == []  # not through the key
    error = await refused_reason(gateway, "/agent", {"api_key": created.secret})
    assert error["data"]["code"] == "invalid_token"
    error = await refused_reason(gateway, "/agent", key_token)
    assert error == {
        "message": "the token's API key was revoked or has expired",
        "data": {"code": "invalid_token"},
    }


async def test_a_deleted_project_disconnects_its_visitors_and_agents(
    gateway: GatewayProcess, settings: Any, redis: Redis
) -> None:
    doomed, other = await make_project(), await make_project()
    agent = await make_user()
    await make_member(doomed, agent, Role.AGENT)
    queue = make_queue(settings.queue_redis)
    try:
        async with (
            connected(gateway, "/visitor", visitor_auth(settings, doomed.id, "v_doomed"), WATCHED) as (
                visitor,
                visitor_recorder,
            ),
            connected(gateway, "/visitor", visitor_auth(settings, other.id, "v_other"), WATCHED) as (
                survivor,
                survivor_recorder,
            ),
            connected(gateway, "/agent", agent_auth(settings, agent.id), WATCHED) as (
                agent_client,
                agent_recorder,
            ),
        ):
            started = time.monotonic()
            await services.delete_project(redis, queue, doomed.id)
            revoked = await _revoked(visitor_recorder, started)
            assert revoked == {
                "code": "project_deleted",
                "message": "the project was deleted",
                "projects": [doomed.id],
            }
            await _disconnected(visitor, visitor_recorder)
            assert (await _revoked(agent_recorder, started))["code"] == "project_deleted"
            await _disconnected(agent_client, agent_recorder)
            assert survivor.connected and survivor_recorder.named("access:revoked") == []
    finally:
        await queue.disconnect()
