"""Events other than messages, end to end: written through REST (or the socket), recorded in the
outbox, published by the real worker's relay, delivered by a real gateway to exactly their audience.

``conversation.created``, ``conversation.status_changed`` and ``conversation.read`` reach the
visitor and the project's agents; ``conversation.assigned`` and ``conversation.updated`` reach
agents only; an agent of another project gets none of them.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api.world import build_world
from tests.processes import PYTHON, running
from tests.realtime.conftest import GatewayProcess, connected
from tests.realtime.helpers import ALL_EVENTS, agent_auth, visitor_auth

pytestmark = pytest.mark.slow

EVENTS = [*ALL_EVENTS, "conversation.updated"]
NON_MESSAGE = (
    "conversation.created",
    "conversation.status_changed",
    "conversation.assigned",
    "conversation.updated",
    "conversation.read",
)


@pytest.fixture
def worker(subprocess_env: dict[str, str], tmp_path: Path) -> Iterator[None]:
    with running([PYTHON, "-m", "saq", "tasks.worker.settings"], subprocess_env, tmp_path / "worker.log"):
        yield


def _of(rx: Any, *names: str) -> list[tuple[str, Any]]:
    return [(name, event) for name, event in rx.events if name in names]


async def test_conversation_events_reach_their_audience_through_the_relay(
    gateway: GatewayProcess, worker: None, client: httpx.AsyncClient, settings: Any
) -> None:
    world = await build_world()
    project = world.project
    agent, other_manager = world.users["agent"], world.users["other_manager"]
    headers = world.headers("agent")
    async with (
        connected(gateway, "/agent", agent_auth(settings, agent.id), EVENTS) as (_, agent_rx),
        connected(gateway, "/agent", agent_auth(settings, other_manager.id), EVENTS) as (_, stranger_rx),
        connected(gateway, "/visitor", visitor_auth(settings, project.id, "v_relay"), EVENTS) as (
            visitor_c,
            visitor_rx,
        ),
    ):
        # the visitor's first message opens a conversation: created, then the message
        ack = await visitor_c.call("message:send", {"body": "Is anyone there?"}, namespace="/visitor")
        assert ack["accepted"] is True, ack
        created = await agent_rx.wait_for(lambda: agent_rx.named("conversation.created"), within=60)
        conversation_id = created[0]["conversation_id"]
        await visitor_rx.wait_for(lambda: visitor_rx.named("message.created"), within=60)
        assert [e["conversation_id"] for e in visitor_rx.named("conversation.created")] == [conversation_id]

        base = f"/api/v1/projects/{project.id}/conversations/{conversation_id}"
        changed = await client.patch(
            base,
            json={"status": "resolved", "assignee_id": agent.id, "priority": 2},
            headers=headers,
        )
        assert changed.status_code == 200, changed.text
        read = await client.post(base + "/read", json={"seq": 1}, headers=headers)
        assert read.status_code == 200, read.text

        await agent_rx.wait_for(lambda: agent_rx.named("conversation.read"), within=60)
        await visitor_rx.wait_for(lambda: visitor_rx.named("conversation.read"), within=60)
        # in the order they were written, each once
        assert [name for name, _ in _of(agent_rx, *NON_MESSAGE)] == [
            "conversation.created",
            "conversation.status_changed",
            "conversation.assigned",
            "conversation.updated",
            "conversation.read",
        ]
        assert [name for name, _ in _of(visitor_rx, *NON_MESSAGE)] == [
            "conversation.created",
            "conversation.status_changed",
            "conversation.read",
        ]
        (status,) = agent_rx.named("conversation.status_changed")
        assert status["conversation_id"] == conversation_id and status["data"]["status"] == "resolved"
        (assigned,) = agent_rx.named("conversation.assigned")
        assert assigned["data"]["assignee_id"] == agent.id
        (updated,) = agent_rx.named("conversation.updated")
        assert updated["data"]["priority"] == 2
        (reader,) = visitor_rx.named("conversation.read")
        assert reader["data"]["reader"] == {"kind": "agent", "user_id": agent.id}
        assert reader["data"]["seq"] == 1
        (visitor_status,) = visitor_rx.named("conversation.status_changed")
        assert visitor_status["data"]["status"] == "resolved"
        # the manager of another project heard nothing of this one (events of its own only)
        assert [e for _, e in stranger_rx.events if e.get("project_id") == project.id] == []
