"""The mailbox sweep, the send path's safety net: a message appended whose drain job was never
queued (the queue's Redis failed between the two) is still stored, by the worker's sweep."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis
from saq.queue.redis import RedisQueue

from server.chat.mailbox import Mailboxes
from server.chat.schemas import MessageKind, SendMessage
from server.chat.sending import MessageSender
from server.errors import Unavailable
from server.queue import make_queue
from tests.factories import make_project
from tests.pipeline.conftest import GENEROUS
from tests.pipeline.faults import worker
from tests.pipeline.helpers import eventually, messages_by_conversation
from tests.processes import free_port

pytestmark = pytest.mark.slow


async def test_a_message_whose_job_was_lost_is_stored_by_the_mailbox_sweep(
    settings: Any, redis: Redis, queue: RedisQueue, subprocess_env: dict[str, str], tmp_path: Path
) -> None:
    project = await make_project()
    # The mailbox append succeeds (the data Redis is up); queueing the drain job fails (the
    # queue's Redis, QUEUE_REDIS_URL, is a port nobody listens on).
    lost = make_queue(dataclasses.replace(settings.queue_redis, url=f"redis://127.0.0.1:{free_port()}"))
    sender = MessageSender(lost, redis, limits=GENEROUS)
    message = SendMessage(
        kind=MessageKind.VISITOR, project_id=project.id, visitor_uid="v_orphan", body="orphan"
    )
    try:
        with pytest.raises(Unavailable):
            await sender.send(message)  # the client is told to retry; say it never does
    finally:
        await sender.aclose()
        await lost.redis.aclose()  # (SAQ's disconnect would talk to it first)
    mailboxes = Mailboxes(redis)
    assert len(await mailboxes.stale(older_than=-3600)) == 1  # the message waits in its mailbox
    assert await queue.count("queued") == 0  # with no job to store it

    with worker(subprocess_env, tmp_path):

        async def stored() -> bool:
            return bool(await messages_by_conversation())

        await eventually(stored, within=90, what="the sweep to store the orphaned message")
    (rows,) = (await messages_by_conversation()).values()
    assert [row["body"] for row in rows] == ["orphan"]
    assert await mailboxes.stale(older_than=-3600) == []
    keys = [job.key async for job in queue.iter_jobs()]
    assert "mailbox-sweep" in keys, keys  # stored by the sweep's job, the only one there was
