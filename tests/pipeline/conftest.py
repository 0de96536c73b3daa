"""Fixtures for the message pipeline: a sender on the test Redis, projects with visitors and agents."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from redis.asyncio import Redis
from saq.queue.redis import RedisQueue

from server.chat.mailbox import Limit, Mailboxes, RateLimits
from server.chat.sending import MessageSender
from server.queue import make_queue

GENEROUS = RateLimits(
    per_visitor=Limit(100_000, 60.0), per_agent=Limit(100_000, 60.0), per_project=Limit(1_000_000, 60.0)
)


@pytest.fixture
async def queue(settings: Any) -> AsyncIterator[RedisQueue]:
    queue = make_queue(settings.queue_redis)
    yield queue
    await queue.disconnect()


@pytest.fixture
async def sender(queue: RedisQueue, redis: Redis) -> AsyncIterator[MessageSender]:
    sender = MessageSender(queue, redis, limits=GENEROUS)
    yield sender
    await sender.aclose()


@pytest.fixture
def mailboxes(redis: Redis) -> Mailboxes:
    return Mailboxes(redis)
