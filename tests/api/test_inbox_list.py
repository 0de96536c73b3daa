"""The inbox list's data: unread counts per agent, search, counts per filter, the inbox columns."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from server.chat import services
from server.tenancy.queries import actor_for
from tests import factories as f
from tests.api.world import build_world


async def test_unread_counts_are_per_agent_and_follow_read_marks(client: httpx.AsyncClient) -> None:
    world = await build_world()
    visitor = await f.make_visitor(world.project, name="Uma")
    conversation = await f.make_conversation(
        world.project,
        visitor,
        last_seq=5,
        last_message_at=datetime.now(UTC),
        last_message_preview="fifth",
        last_message_kind="visitor",
        waiting_since=datetime.now(UTC) - timedelta(minutes=3),
    )
    for seq in range(1, 6):
        await f.make_message(conversation, seq=seq, body=f"m{seq}")
    base = f"/api/v1/projects/{world.project.id}/conversations"

    async def row(actor: str) -> dict[str, Any]:
        response = await client.get(base, headers=world.headers(actor))
        assert response.status_code == 200, response.text
        return next(item for item in response.json()["items"] if item["id"] == conversation.id)

    assert (await row("agent"))["unread_count"] == 5
    await services.mark_read(
        world.project.id, conversation.id, 3, actor=await actor_for(world.users["agent"])
    )
    mine = await row("agent")
    assert mine["unread_count"] == 2
    assert (await row("manager"))["unread_count"] == 5, "another agent's read mark is not mine"
    assert mine["last_message_preview"] == "fifth" and mine["last_message_kind"] == "visitor"
    assert mine["waiting_since"] is not None and mine["visitor"]["name"] == "Uma"
    # A read mark never moves back.
    await services.mark_read(
        world.project.id, conversation.id, 1, actor=await actor_for(world.users["agent"])
    )
    assert (await row("agent"))["unread_count"] == 2
    single = await client.get(f"{base}/{conversation.id}", headers=world.headers("agent"))
    assert single.json()["unread_count"] == 2

    await services.mark_read(world.project.id, conversation.id, 4, visitor_uid=visitor.uid)
    assert (await row("agent"))["visitor_read_seq"] == 4


async def test_search_finds_name_email_and_message_text_literally(client: httpx.AsyncClient) -> None:
    world = await build_world()
    by_name = await f.make_conversation(world.project, await f.make_visitor(world.project, name="Zelda Quux"))
    by_email = await f.make_conversation(
        world.project, await f.make_visitor(world.project, email="quux@example.org")
    )
    by_text = await f.make_conversation(world.project, await f.make_visitor(world.project), last_seq=1)
    await f.make_message(by_text, seq=1, body="My order 50%_off never came")
    elsewhere = await f.make_conversation(
        world.other_project, await f.make_visitor(world.other_project, name="Quux")
    )
    base = f"/api/v1/projects/{world.project.id}/conversations"

    async def found(q: str) -> set[int]:
        response = await client.get(base, params={"q": q}, headers=world.headers("agent"))
        assert response.status_code == 200, response.text
        return {item["id"] for item in response.json()["items"]}

    assert await found("QUUX") == {by_name.id, by_email.id}
    assert elsewhere.id not in await found("quux")
    assert await found("50%_off") == {by_text.id}
    assert await found("%") == {by_text.id}, "% is a character, not a wildcard"
    assert await found("order 50%") == {by_text.id}
    too_long = await client.get(base, params={"q": "x" * 101}, headers=world.headers("agent"))
    assert too_long.status_code == 400 and too_long.json()["code"]


async def test_counts_per_filter(client: httpx.AsyncClient) -> None:
    world = await build_world()  # one open, unassigned conversation with one message
    agent = world.users["agent"]
    for status, assignee in [("open", agent.id), ("open", world.users["agent2"].id), ("snoozed", agent.id)]:
        await f.make_conversation(
            world.project, await f.make_visitor(world.project), status=status, assignee=assignee, last_seq=2
        )
    await f.make_conversation(world.other_project, await f.make_visitor(world.other_project))
    response = await client.get(
        f"/api/v1/projects/{world.project.id}/conversations/counts", headers=world.headers("agent")
    )
    assert response.status_code == 200, response.text
    counts = response.json()
    assert counts["open"] == {"all": 3, "mine": 1, "unassigned": 1}
    assert counts["snoozed"] == {"all": 1, "mine": 1, "unassigned": 0}
    assert counts["resolved"] == {"all": 0, "mine": 0, "unassigned": 0}
    assert counts["unread_total"] == 1 + 2  # the unassigned one's message and my open one's two
    outsider = await client.get(
        f"/api/v1/projects/{world.project.id}/conversations/counts", headers=world.headers("other_manager")
    )
    assert outsider.status_code in (403, 404)
