"""Administration > System: the sparklines drawn from the worker's samples, and the dead letters
listed and replayed through the pipeline (the worker's side is in tests/browser/test_console_journeys.py)."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import AsyncIterator
from html import unescape
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from console.admin_system import SPARK_HEIGHT, SPARK_WIDTH, sparkline
from server.accounts.tables import User
from server.chat.dead_letters import list_dead_letters
from server.chat.mailbox import DEAD_LETTERS, Mailboxes, encode, mailbox_key
from server.chat.schemas import MessageKind, PendingMessage
from server.queue import make_queue
from server.redis_client import Keys
from server.samples import recent_samples, record_sample, throughput
from tests import factories as f
from tests.console.helpers import post, sign_in

XSS = "<script>window.__xss=1</script>"


@pytest.fixture
async def queue(settings: Any) -> AsyncIterator[Any]:
    queue = make_queue(settings.queue_redis)
    yield queue
    await queue.disconnect()


async def _admin(client: httpx.AsyncClient) -> str:
    await f.make_user(email="root@example.com", role=User.GlobalRole.ADMIN)
    return await sign_in(client, "root@example.com")


def test_a_sparkline_spans_the_hour_and_scales_to_its_peak() -> None:
    now = 10_000.0
    line = sparkline([(now - 3600, 0.0), (now - 1800, 5.0), (now, 10.0)], now=now)
    bottom, top = SPARK_HEIGHT - 2, 2
    assert (
        line.points
        == f"0.0,{bottom:.1f} {SPARK_WIDTH / 2:.1f},{(bottom + top) / 2:.1f} {SPARK_WIDTH:.1f},{top:.1f}"
    )
    assert (line.last, line.peak, line.minutes) == (10.0, 10.0, 60)
    assert sparkline([(now, 3.0)], now=now).points == ""  # one sample draws no line
    young = sparkline([(now - 4000, 1.0), (now - 60, 1.0), (now - 30, 2.0)], now=now)
    assert young.points.split()[0].startswith("0.0,")  # older than the hour: at the left edge
    recent = sparkline([(now - 60, 1.0), (now - 30, 2.0)], now=now)
    assert [point.split(",")[0] for point in recent.points.split()] == ["0.0", f"{SPARK_WIDTH / 2:.1f}"]
    flat = sparkline([(now - 60, 0.0), (now, 0.0)], now=now)
    assert flat.points.endswith(f",{bottom:.1f}")  # all zero: along the base line, no division by zero


async def test_samples_are_kept_once_per_bucket_and_become_throughput(redis: Redis, queue: Any) -> None:
    project = await f.make_project()
    conversation = await f.make_conversation(project, await f.make_visitor(project))
    now = time.time()
    await record_sample(redis, queue, now=now - 4000)  # older than an hour: dropped by the next one
    await record_sample(redis, queue, now=now - 20)
    for seq in range(1, 21):
        await f.make_message(conversation, seq=seq)
    await record_sample(redis, queue, now=now - 10)
    await record_sample(redis, queue, now=now - 10)  # a second worker in the same bucket: ignored
    assert await redis.hlen(Keys.SYSTEM_SAMPLES) == 2
    samples = await recent_samples(redis, now=now)
    assert [round(now - s.at) for s in samples] == [20, 10]
    assert [rate.per_second for rate in throughput(samples)] == [2.0]


async def test_the_system_page_draws_the_last_hour(
    client: httpx.AsyncClient, redis: Redis, queue: Any
) -> None:
    await _admin(client)
    empty = await client.get("/console/admin/system")
    assert "No samples yet" in empty.text and "<polyline" not in empty.text
    project = await f.make_project()
    conversation = await f.make_conversation(project, await f.make_visitor(project))
    now = time.time()
    await record_sample(redis, queue, now=now - 65)
    for seq in range(1, 31):
        await f.make_message(conversation, seq=seq)
    await record_sample(redis, queue, now=now - 35)
    await record_sample(redis, queue, now=now - 5)
    page = await client.get("/console/admin/system")
    lines = re.findall(r'<polyline class="sparkline__line" points="([^"]+)"', page.text)
    assert len(lines) == 2, page.text  # messages per second, queue depth
    assert len(lines[0].split()) == 2 and len(lines[1].split()) == 3
    labels = re.findall(r'role="img"\s+aria-label="([^"]+)"', page.text)
    assert labels[0] == "Messages stored over the last 1 min: now 0.0 per second, peak 1.0"
    assert labels[1].startswith("Queue depth over the last 1 min: now 0.0 jobs waiting")


async def test_dead_letters_are_listed_and_replayed_once(
    client: httpx.AsyncClient, redis: Redis, queue: Any
) -> None:
    csrf = await _admin(client)
    project = await f.make_project()
    conversation = await f.make_conversation(project, await f.make_visitor(project))
    lost = [
        PendingMessage(
            client_msg_id=uuid.uuid4(),
            kind=MessageKind.AGENT_REPLY,
            project_id=project.id,
            body=body,
            accepted_at=time.time(),
            conversation_id=conversation.id,
        )
        for body in (XSS, "second")
    ]
    # What the worker does with a reply whose conversation was gone (this one is back: restored).
    await Mailboxes(redis).bury([encode(message) for message in lost], "conversation deleted")
    page = await client.get("/console/admin/system")
    assert (
        "conversation deleted" in page.text and XSS not in page.text and unescape(XSS) in unescape(page.text)
    )
    assert page.text.count('name="id"') == 2 and "Replay all" in page.text
    letters = await list_dead_letters(redis)
    first = next(letter for letter in letters if letter.message.body == XSS)

    refused = await client.post(
        "/console/admin/system/dead-letters/replay", data={"id": first.id}, follow_redirects=False
    )
    assert refused.status_code == 403 and await redis.llen(DEAD_LETTERS) == 2  # no CSRF token
    replayed = await post(client, "/console/admin/system/dead-letters/replay", csrf, {"id": first.id})
    assert replayed.status_code == 303
    assert "1 message sent through the pipeline again" in (await client.get("/console/admin/system")).text
    [left] = await list_dead_letters(redis)
    assert left.message.body == "second"
    mailbox = await redis.lrange(mailbox_key(lost[0]), 0, -1)
    assert len(mailbox) == 1 and XSS.encode() in mailbox[0]  # back in its sender's mailbox
    assert await queue.count("queued") == 1  # and its shard's drain job is queued
    again = await post(client, "/console/admin/system/dead-letters/replay", csrf, {"id": first.id})
    assert again.status_code == 303 and await redis.llen(mailbox_key(lost[0])) == 1  # not twice
    everything = await post(client, "/console/admin/system/dead-letters/replay", csrf, {"all": "1"})
    assert everything.status_code == 303 and await redis.llen(DEAD_LETTERS) == 0
    assert await redis.llen(mailbox_key(lost[0])) == 2
