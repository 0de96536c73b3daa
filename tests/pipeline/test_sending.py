"""The send path on the API side: validation, authorisation, rate limits, micro-batches, 503."""

from __future__ import annotations

import asyncio
import dataclasses
import tempfile
import uuid
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis
from saq.queue.redis import RedisQueue

from server.chat.mailbox import Limit, Mailboxes, RateLimits, shard_of_key
from server.chat.persistence import drain, persist_mailboxes
from server.chat.schemas import MAX_BODY_LENGTH, MessageKind, SendMessage
from server.chat.sending import PERSIST_JOB, MessageSender
from server.errors import Forbidden, Invalid, NotFound, RateLimited, Unavailable
from server.queue import make_queue
from server.redis_client import make_redis
from server.tenancy.access import Actor, GlobalRole, ProjectRole
from tests.factories import make_conversation, make_project, make_visitor
from tests.pipeline.helpers import messages_by_conversation


def _visitor(project_id: int, body: str = "hello", **values: Any) -> SendMessage:
    values.setdefault("visitor_uid", "v_sender")
    return SendMessage(kind=MessageKind.VISITOR, project_id=project_id, body=body, **values)


def _agent(
    project_id: int, user_id: int = 1, role: ProjectRole | None = ProjectRole.AGENT, **values: Any
) -> Actor:
    memberships = {project_id: role} if role is not None else {}
    return Actor(user_id=user_id, global_role=GlobalRole.USER, memberships=memberships, **values)


@pytest.mark.parametrize(
    ("body", "code"),
    [("", "empty_body"), ("   \n\t ", "empty_body"), ("x" * (MAX_BODY_LENGTH + 1), "body_too_long")],
)
async def test_bodies_must_hold_1_to_5000_characters(sender: MessageSender, body: str, code: str) -> None:
    with pytest.raises(Invalid) as raised:
        await sender.send(_visitor(1, body))
    assert raised.value.code == code
    ack = await sender.send(_visitor(1, " " + "x" * (MAX_BODY_LENGTH - 2) + " "))  # counted as sent
    assert ack.accepted


async def test_commands_missing_their_sender_or_conversation_are_invalid(sender: MessageSender) -> None:
    with pytest.raises(Invalid):
        await sender.send(_visitor(1, visitor_uid=""))
    with pytest.raises(Invalid):
        await sender.send(_visitor(1, conversation_id=5))
    with pytest.raises(Invalid):
        await sender.send(SendMessage(kind=MessageKind.AGENT_REPLY, project_id=1, body="hi"), actor=_agent(1))


async def test_agents_need_a_role_write_access_and_a_conversation_of_the_project(
    sender: MessageSender,
) -> None:
    project, other = await make_project(), await make_project()
    conversation = await make_conversation(project, await make_visitor(project))
    foreign = await make_conversation(other, await make_visitor(other))
    reply = SendMessage(
        kind=MessageKind.AGENT_REPLY, project_id=project.id, conversation_id=conversation.id, body="hi"
    )
    with pytest.raises(Forbidden):
        await sender.send(reply)
    with pytest.raises(Forbidden):
        await sender.send(reply, actor=_agent(project.id, role=None))
    with pytest.raises(Forbidden):
        await sender.send(reply, actor=_agent(project.id, read_only=True))
    with pytest.raises(NotFound):
        await sender.send(
            SendMessage(
                kind=MessageKind.AGENT_REPLY, project_id=project.id, conversation_id=foreign.id, body="hi"
            ),
            actor=_agent(project.id),
        )
    ack = await sender.send(reply, actor=_agent(project.id))
    assert ack.accepted


async def test_the_ack_comes_after_the_enqueue_and_keeps_the_clients_id(
    sender: MessageSender, queue: RedisQueue, mailboxes: Mailboxes
) -> None:
    client_msg_id = uuid.uuid4()
    ack = await sender.send(_visitor(1, client_msg_id=client_msg_id))
    assert ack.client_msg_id == client_msg_id and ack.accepted
    assert await queue.count("queued") == 1
    generated = await sender.send(_visitor(1))
    assert isinstance(generated.client_msg_id, uuid.UUID) and generated.client_msg_id != client_msg_id
    (key,) = await mailboxes.stale(older_than=-3600)
    assert len((await mailboxes.read([key], 10))[key]) == 2


async def test_messages_sent_while_a_drain_is_due_queue_no_more_jobs(
    sender: MessageSender, queue: RedisQueue, mailboxes: Mailboxes
) -> None:
    project = await make_project()
    await asyncio.gather(*(sender.send(_visitor(project.id, visitor_uid=f"v{i % 4}")) for i in range(40)))
    shards = {shard_of_key(key) for key in await mailboxes.stale(older_than=-3600)}
    jobs = [job async for job in queue.iter_jobs()]
    assert all(job.function == PERSIST_JOB for job in jobs)
    assert sorted(job.kwargs["drain"] for job in jobs if job.kwargs) == sorted(s.name for s in shards)
    await asyncio.gather(*(sender.send(_visitor(project.id, visitor_uid=f"v{i % 4}")) for i in range(40)))
    assert await queue.count("queued") == len(shards)  # their drains are due already
    for shard in shards:
        assert (await drain(mailboxes, shard)).drained
    assert sum(len(rows) for rows in (await messages_by_conversation()).values()) == 80
    await sender.send(_visitor(project.id, visitor_uid="v0"))
    assert await queue.count("queued") == len(shards) + 1  # drained: the next message starts one


async def test_a_visitor_over_the_limit_gets_429_with_the_time_to_wait(
    queue: RedisQueue, redis: Redis, mailboxes: Mailboxes
) -> None:
    project = await make_project()
    limits = RateLimits(per_visitor=Limit(3, 1.0), per_project=Limit(1000, 60.0))
    sender = MessageSender(queue, redis, limits=limits)
    for index in range(3):
        await sender.send(_visitor(project.id, f"m{index}"))
    with pytest.raises(RateLimited) as raised:
        await sender.send(_visitor(project.id, "too many"))
    assert raised.value.status == 429 and 1 <= raised.value.retry_after <= 1
    await sender.send(_visitor(project.id, "another visitor", visitor_uid="v_other"))  # per visitor
    await asyncio.sleep(raised.value.retry_after + 0.1)
    await sender.send(_visitor(project.id, "after waiting"))
    await persist_mailboxes(mailboxes, await mailboxes.stale(older_than=-3600))
    bodies = sorted(row["body"] for rows in (await messages_by_conversation()).values() for row in rows)
    assert bodies == sorted(["m0", "m1", "m2", "another visitor", "after waiting"])


async def test_a_project_over_its_limit_gets_429(queue: RedisQueue, redis: Redis) -> None:
    limits = RateLimits(per_visitor=Limit(100, 60.0), per_project=Limit(5, 60.0))
    sender = MessageSender(queue, redis, limits=limits)
    for index in range(5):
        await sender.send(_visitor(9, visitor_uid=f"v{index}"))
    with pytest.raises(RateLimited) as raised:
        await sender.send(_visitor(9, visitor_uid="v_new"))
    assert raised.value.retry_after >= 1
    await sender.send(_visitor(10, visitor_uid="v_new"))  # another project is unaffected


async def test_an_unreachable_redis_is_a_503(settings: Any) -> None:
    nowhere = Path(tempfile.mkdtemp()) / "absent.sock"
    down = dataclasses.replace(settings.redis, url=f"unix://{nowhere}")
    queue = make_queue(down)
    sender = MessageSender(queue, make_redis(down, timeout=0.5))
    with pytest.raises(Unavailable) as raised:
        await sender.send(_visitor(1))
    assert raised.value.status == 503
