"""Writing through REST: messages go through the queue to a real worker; state changes record events."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from server.outbox.tables import OutboxEvent
from tests import factories as f
from tests.api.world import build_world
from tests.processes import PYTHON, running


@pytest.fixture
def worker(subprocess_env: dict[str, str], tmp_path: Path) -> Iterator[None]:
    with running([PYTHON, "-m", "saq", "tasks.worker.settings"], subprocess_env, tmp_path / "worker.log"):
        yield


async def _messages(client: httpx.AsyncClient, path: str, headers: dict[str, str], count: int) -> list[Any]:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        items: list[Any] = (await client.get(path, headers=headers)).json()["items"]
        if len(items) >= count:
            return items
        await asyncio.sleep(0.1)
    raise AssertionError(f"fewer than {count} messages after 30 s")


@pytest.mark.slow
async def test_agent_reply_and_note_are_queued_then_persisted(
    client: httpx.AsyncClient, worker: None
) -> None:
    world = await build_world()
    base = f"/api/v1/projects/{world.project.id}/conversations/{world.ids['conversation_id']}"
    headers = world.headers("agent")
    client_msg_id = str(uuid.uuid4())
    reply = await client.post(
        base + "/messages", json={"body": "On it!", "client_msg_id": client_msg_id}, headers=headers
    )
    assert reply.status_code == 202, reply.text
    assert reply.json() == {"client_msg_id": client_msg_id, "accepted": True}
    retried = await client.post(
        base + "/messages", json={"body": "On it!", "client_msg_id": client_msg_id}, headers=headers
    )
    assert retried.status_code == 202
    note = await client.post(
        base + "/messages", json={"body": "VIP customer", "private": True}, headers=headers
    )
    assert note.status_code == 202

    # One more message after them: the conversation's messages are stored in the order they were
    # accepted, so once it is stored, a retry stored twice would be there too.
    last = await client.post(base + "/messages", json={"body": "Done."}, headers=headers)
    assert last.status_code == 202

    items = await _messages(client, base + "/messages", headers, 4)
    assert [(m["seq"], m["body"], m["private"]) for m in items] == [
        (1, "hello", False),
        (2, "On it!", False),
        (3, "VIP customer", True),
        (4, "Done.", False),
    ]  # the retry stored nothing


@pytest.mark.slow
async def test_visitor_message_through_the_widget_opens_a_conversation(
    client: httpx.AsyncClient, worker: None
) -> None:
    project = await f.make_project()
    session = (
        await client.post(
            "/api/widget/v1/session",
            json={"public_key": project.public_key},
            headers={"origin": "https://shop.example"},
        )
    ).json()
    visitor_headers = {"authorization": f"Bearer {session['token']}"}
    sent = await client.post(
        "/api/widget/v1/messages", json={"body": "Do you ship to Norway?"}, headers=visitor_headers
    )
    assert sent.status_code == 202, sent.text
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        items = (await client.get("/api/widget/v1/conversations", headers=visitor_headers)).json()["items"]
        if items and items[0]["messages"]:
            break
        await asyncio.sleep(0.1)
    assert items[0]["status"] == "open"
    assert [m["body"] for m in items[0]["messages"]] == ["Do you ship to Norway?"]
    empty = await client.post("/api/widget/v1/messages", json={"body": "   "}, headers=visitor_headers)
    assert empty.status_code in (400, 422) and empty.json()["code"]


async def test_status_assignee_priority_and_read_record_events(client: httpx.AsyncClient) -> None:
    world = await build_world()
    base = f"/api/v1/projects/{world.project.id}/conversations/{world.ids['conversation_id']}"
    headers = world.headers("agent")
    changed = await client.patch(
        base,
        json={"status": "resolved", "assignee_id": world.users["agent"].id, "priority": 3},
        headers=headers,
    )
    assert changed.status_code == 200, changed.text
    body = changed.json()
    assert (body["status"], body["assignee_id"], body["priority"]) == ("resolved", world.users["agent"].id, 3)
    read = await client.post(base + "/read", json={"seq": 99}, headers=headers)
    assert read.status_code == 200 and read.json()["seq"] == 1  # clamped to last_seq
    types = [row["type"] for row in await OutboxEvent.select(OutboxEvent.type).order_by(OutboxEvent.id)]
    assert types == [
        "conversation.status_changed",
        "conversation.assigned",
        "conversation.updated",
        "conversation.read",
    ]

    outsider = await client.patch(base, json={"assignee_id": world.users["outsider"].id}, headers=headers)
    assert outsider.status_code == 422
    unassigned = await client.patch(base, json={"assignee_id": None}, headers=headers)
    assert unassigned.json()["assignee_id"] is None
    bad = await client.patch(base, json={"priority": 9}, headers=headers)
    assert bad.status_code == 400
