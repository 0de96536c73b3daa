"""Two gateway processes (and a worker): a visitor on one, an agent on the other."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis

from server.chat.tables import Conversation
from server.tenancy.tables import ProjectMember
from tests.factories import make_member, make_message, make_project, make_user
from tests.processes import PYTHON, running
from tests.realtime.conftest import connected
from tests.realtime.helpers import (
    ALL_EVENTS,
    agent_auth,
    message_event,
    presence_changes,
    publish,
    visitor_auth,
)

pytestmark = pytest.mark.slow


async def test_two_gateways_messages_typing_navigation_presence_and_failover(
    gateway_factory: Any, settings: Any, redis: Redis, subprocess_env: dict[str, str], tmp_path: Path
) -> None:
    first, second = gateway_factory(), gateway_factory()
    project = await make_project()
    agent = await make_user()
    await make_member(project, agent, ProjectMember.ProjectRole.AGENT)
    visitor_login = visitor_auth(settings, project.id, "v_x")
    worker = [PYTHON, "-m", "saq", "tasks.worker.settings"]
    with running(worker, subprocess_env, tmp_path / "worker.log"):
        async with connected(second, "/agent", agent_auth(settings, agent.id), ALL_EVENTS) as (
            agent_c,
            agent_rx,
        ):

            def presence(uid: str) -> list[str]:
                return [c["status"] for c in presence_changes(agent_rx) if c.get("visitor_uid") == uid]

            async with connected(first, "/visitor", visitor_login, ALL_EVENTS) as (visitor_c, visitor_rx):
                await agent_rx.wait_for(lambda: presence("v_x") == ["online"])
                # a message through the whole pipeline: gateway 1 -> queue -> worker -> outbox -> gateway 2
                ack = await visitor_c.call("message:send", {"body": "hello from one"}, namespace="/visitor")
                assert ack["accepted"] is True and ack["client_msg_id"]
                created = await agent_rx.wait_for(lambda: agent_rx.named("message.created"), within=15)
                conversation_id = created[0]["conversation_id"]
                assert created[0]["data"]["body"] == "hello from one"
                await visitor_rx.wait_for(lambda: visitor_rx.named("message.created"))
                # and back: the agent's reply and a private note from gateway 2
                reply = {"conversation_id": conversation_id, "body": "hi from two"}
                assert (await agent_c.call("message:send", reply, namespace="/agent"))["accepted"] is True
                note = {"conversation_id": conversation_id, "body": "secret", "private": True}
                assert (await agent_c.call("message:send", note, namespace="/agent"))["accepted"] is True
                # and one more reply after the note: once the visitor has it, the note (stored
                # and published before it, on the same channel) would have reached them too
                after = {"conversation_id": conversation_id, "body": "after the note"}
                assert (await agent_c.call("message:send", after, namespace="/agent"))["accepted"] is True
                await agent_rx.wait_for(lambda: len(agent_rx.named("message.created")) == 4, within=30)
                await visitor_rx.wait_for(
                    lambda: any(
                        e["data"]["body"] == "after the note" for e in visitor_rx.named("message.created")
                    ),
                    within=30,
                )
                assert [e["data"]["body"] for e in visitor_rx.named("message.created")] == [
                    "hello from one",
                    "hi from two",
                    "after the note",
                ]
                typing = {"conversation_id": conversation_id, "typing": True}
                await visitor_c.call("typing", typing, namespace="/visitor")
                await agent_c.call("typing", typing, namespace="/agent")
                await agent_rx.wait_for(lambda: agent_rx.named("typing.started"))
                await visitor_rx.wait_for(lambda: visitor_rx.named("typing.started"))
                await visitor_c.call(
                    "navigate", {"url": "https://shop.example/x", "title": "X"}, namespace="/visitor"
                )
                await agent_rx.wait_for(lambda: agent_rx.named("visitor.navigated"))
                last_seen = max(e["seq"] for e in visitor_rx.named("message.created"))

                # a second visitor only on gateway 1, which now dies without a word (SIGKILL)
                async with connected(first, "/visitor", visitor_auth(settings, project.id, "v_crash")):
                    await agent_rx.wait_for(lambda: presence("v_crash") == ["online"])
                    first.process.send_signal(signal.SIGKILL)
                    first.process.wait()
                    # while the visitor is away, agents keep writing
                    conversation = await Conversation.objects().get(Conversation.id == conversation_id)
                    assert conversation is not None
                    for seq in (last_seen + 2, last_seen + 3):
                        await make_message(conversation, seq=seq, body=f"missed {seq}", sender_kind="agent")
                        await publish(
                            redis, message_event(project.id, conversation_id, seq, visitor_uid="v_x")
                        )
                    # the dead node's sockets expire (heartbeat TTL) and gateway 2 reports them offline
                    await agent_rx.wait_for(lambda: presence("v_crash") == ["online", "offline"], within=10)
                    await agent_rx.wait_for(lambda: presence("v_x") == ["online", "offline"], within=10)

            # the visitor reconnects to gateway 2 and catches up from the last seq it saw
            async with connected(second, "/visitor", visitor_login, ALL_EVENTS) as (visitor_c, _):
                await agent_rx.wait_for(lambda: presence("v_x") == ["online", "offline", "online"])
                synced = await visitor_c.call(
                    "sync", {"conversations": {str(conversation_id): last_seen}}, namespace="/visitor"
                )
                bodies = [m["body"] for m in synced["conversations"][str(conversation_id)]["messages"]]
                assert bodies == [f"missed {last_seen + 2}", f"missed {last_seen + 3}"]
