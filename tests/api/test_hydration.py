"""The inbox list: one Redis MGET (and one round trip) whatever the page size; a PostgreSQL query budget."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from server.redis_client import Keys
from tests import factories as f
from tests.api.world import World, build_world
from tests.query_log import count_queries, count_redis_round_trips


async def _command_calls(redis: Redis, command: str) -> int:
    stats = await redis.info("commandstats")
    entry = stats.get(f"cmdstat_{command}")
    return int(entry["calls"]) if entry else 0


async def _inbox(world: World, conversations: int, redis: Redis) -> None:
    start = datetime.now(UTC)
    for index in range(conversations):
        visitor = await f.make_visitor(world.project, name=f"v{index}")
        await f.make_conversation(world.project, visitor, last_message_at=start - timedelta(minutes=index))
        location = {"url": f"https://shop.example/p/{index}", "title": f"Page {index}"}
        await redis.set(Keys.visitor_location(world.project.id, visitor.uid), json.dumps(location))
        if index % 2 == 0:
            await redis.zadd(Keys.visitor_presence(world.project.id), {visitor.uid: time.time() + 60})


@pytest.mark.parametrize("page_size", [1, 10, 50])
async def test_conversation_list_makes_one_mget_whatever_the_page_size(
    client: httpx.AsyncClient, redis: Redis, page_size: int
) -> None:
    world = await build_world()
    await _inbox(world, 60, redis)
    headers = world.headers("agent")
    await client.get(f"/api/v1/projects/{world.project.id}/conversations", headers=headers)  # warm caches

    mget_before = await _command_calls(redis, "mget")
    zmscore_before = await _command_calls(redis, "zmscore")
    async with count_queries() as queries, count_redis_round_trips() as round_trips:
        response = await client.get(
            f"/api/v1/projects/{world.project.id}/conversations", params={"limit": page_size}, headers=headers
        )
    assert response.status_code == 200
    items = response.json()["items"]
    assert len(items) == page_size
    assert await _command_calls(redis, "mget") - mget_before == 1
    assert await _command_calls(redis, "zmscore") - zmscore_before == 1
    # The warm path: the key's caller comes from the actor cache, so the page is the one statement
    # sent to PostgreSQL, and the live state is one round trip to Redis (MGET + ZMSCORE pipelined).
    assert len(queries) == 1, queries
    assert len(round_trips) == 1, round_trips

    newest = items[0]
    assert newest["visitor"]["live"]["current_url"] == "https://shop.example/p/0"
    assert newest["visitor"]["live"]["page_title"] == "Page 0"
    assert newest["visitor"]["live"]["online"] is True
    if page_size > 1:
        assert items[1]["visitor"]["live"]["online"] is False


async def test_keyset_pagination_walks_every_conversation_once(
    client: httpx.AsyncClient, redis: Redis
) -> None:
    world = await build_world()  # has one conversation without messages: it must come last
    await _inbox(world, 23, redis)
    seen: list[int] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 5}
        if cursor:
            params["cursor"] = cursor
        page = (
            await client.get(
                f"/api/v1/projects/{world.project.id}/conversations",
                params=params,
                headers=world.headers("agent"),
            )
        ).json()
        seen += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen)) == 24
    assert seen[-1] == world.ids["conversation_id"]


async def test_filters(client: httpx.AsyncClient, redis: Redis) -> None:
    world = await build_world()
    visitor = await f.make_visitor(world.project, uid="v_filter")
    resolved = await f.make_conversation(
        world.project, visitor, status="resolved", assignee=world.users["agent"].id
    )
    base = f"/api/v1/projects/{world.project.id}/conversations"
    headers = world.headers("agent")

    async def ids(**params: Any) -> list[int]:
        response = await client.get(base, params=params, headers=headers)
        assert response.status_code == 200, response.text
        return [item["id"] for item in response.json()["items"]]

    assert await ids(status="resolved") == [resolved.id]
    assert await ids(assignee_id=world.users["agent"].id) == [resolved.id]
    assert await ids(unassigned="true") == [world.ids["conversation_id"]]
    assert await ids(visitor_uid="v_filter") == [resolved.id]
    conflicting = await client.get(base, params={"unassigned": "true", "assignee_id": 1}, headers=headers)
    assert conflicting.status_code == 422
    assert conflicting.json()["code"] == "invalid"


async def test_message_history_pages_by_seq(client: httpx.AsyncClient) -> None:
    world = await build_world()
    visitor = await f.make_visitor(world.project, uid="v_history")
    conversation = await f.make_conversation(world.project, visitor, last_seq=12)
    for seq in range(1, 13):
        await f.make_message(conversation, seq=seq, body=f"m{seq}", private=seq == 5)
    path = f"/api/v1/projects/{world.project.id}/conversations/{conversation.id}/messages"
    headers = world.headers("agent")

    async def seqs(**params: Any) -> tuple[list[int], bool]:
        response = await client.get(path, params=params, headers=headers)
        assert response.status_code == 200, response.text
        body = response.json()
        return [item["seq"] for item in body["items"]], body["has_more"]

    assert await seqs(limit=5) == ([8, 9, 10, 11, 12], True)  # the newest, in ascending order
    assert await seqs(limit=5, before_seq=8) == ([3, 4, 5, 6, 7], True)
    assert await seqs(limit=5, before_seq=3) == ([1, 2], False)
    assert await seqs(limit=5, after_seq=0) == ([1, 2, 3, 4, 5], True)
    assert await seqs(limit=5, after_seq=10) == ([11, 12], False)
    assert await seqs() == (list(range(1, 13)), False)
    private = (await client.get(path, params={"after_seq": 4, "limit": 1}, headers=headers)).json()["items"]
    assert private[0]["private"] is True and private[0]["body"] == "m5"
    conflicting = await client.get(path, params={"after_seq": 1, "before_seq": 5}, headers=headers)
    assert conflicting.status_code == 422 and conflicting.json()["fields"] == {
        "before_seq": "conflicts with after_seq"
    }
    elsewhere = f"/api/v1/projects/{world.other_project.id}/conversations/{conversation.id}/messages"
    assert (await client.get(elsewhere, headers=world.headers("admin"))).status_code == 404
