"""Redis failover while messages stream in: every acknowledged message stored exactly once.

Real servers (``tests/redis_servers.py``): a primary and replica under Sentinel, and a cluster of
three primaries with a replica each. 2,000 messages stream from 20 visitors through the real send
path into a real worker process; the primary holding them is killed with -9 mid-stream; the
replica is promoted, the sender and the worker reconnect on their own, and 503s are retried with
the same ``client_msg_id`` as a client would. With ``REDIS_ACK_REPLICAS=1`` (WAIT after each
append) nothing acknowledged may be lost; with 0 the test prints how many were (asynchronous
replication: the acknowledged messages the replica had not yet received).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from server.chat.mailbox import CLUSTER_DRAIN_SHARDS, ReplicaAck, shard_of_project
from server.chat.sending import MessageSender
from server.database import engine
from server.queue import make_queue
from server.redis_client import make_redis
from server.settings import load_settings
from tests.factories import make_project
from tests.pipeline.conftest import GENEROUS
from tests.pipeline.faults import STORED, Stream, check_exactly_once_in_order, stored_count, worker
from tests.pipeline.helpers import eventually
from tests.redis_servers import SentinelPair, ValkeyCluster, sentinel_pair, valkey_cluster

pytestmark = pytest.mark.slow

VISITORS, PER_VISITOR = 20, 100


@pytest.fixture
def pair() -> Iterator[SentinelPair]:
    with sentinel_pair() as started:
        yield started


@pytest.fixture
def replicated_cluster() -> Iterator[ValkeyCluster]:
    with valkey_cluster(primaries=3, replicas=1) as started:
        yield started


async def _stream_through_failover(
    env: dict[str, str], tmp_path: Path, fail_over: Any, project_id: int
) -> tuple[Stream, list[Any]]:
    """Stream 2,000 messages, fail the primary over mid-stream, wait until the worker is done."""
    settings = load_settings(env)
    redis = make_redis(settings.redis)
    queue = make_queue(settings.queue_redis)
    sender = MessageSender(
        queue, redis, limits=GENEROUS, replica_ack=ReplicaAck.from_settings(settings.redis)
    )
    stream = Stream(sender, project_id, visitors=VISITORS, per_visitor=PER_VISITOR, interval=0.05)
    connection = await engine().get_new_connection()
    try:
        with worker(env, tmp_path) as process:
            streaming = asyncio.create_task(stream.run())

            async def some_stored() -> bool:
                return await stored_count(connection, project_id) > 300

            await eventually(some_stored, within=60, what="the worker to store a first part")
            started = time.monotonic()
            await asyncio.to_thread(fail_over)
            print(f"\nfailover took {time.monotonic() - started:.1f} s")
            await asyncio.wait_for(streaming, timeout=120)
            assert stream.total == VISITORS * PER_VISITOR

            last = [-1, time.monotonic()]

            async def settled() -> bool:
                # Everything accepted is stored, or (lossy setting) nothing has moved for 5 s.
                count = await stored_count(connection, project_id)
                if count >= stream.total:
                    return True
                if count != last[0]:
                    last[:] = [count, time.monotonic()]
                return time.monotonic() - last[1] > 5

            await eventually(settled, within=120, what="the worker to store what it can")
            rows = await connection.fetch(STORED, project_id)
            assert process.process is not None and process.process.poll() is None, process.log_text()
        print(f"{stream.unavailable} sends answered 503 during the failover and were retried")
        return stream, rows
    finally:
        await sender.aclose()
        await queue.disconnect()
        await redis.aclose()
        await connection.close()


def _report_losses(stream: Stream, rows: list[Any], ack_replicas: int) -> int:
    accepted = {str(i) for ids in stream.accepted.values() for i in ids}
    stored = [str(row["client_msg_id"]) for row in rows]
    assert len(stored) == len(set(stored)), "a message was stored twice"
    assert set(stored) <= accepted
    lost = len(accepted - set(stored))
    print(f"REDIS_ACK_REPLICAS={ack_replicas}: {lost} of {len(accepted)} acknowledged messages lost")
    return lost


@pytest.mark.parametrize("ack_replicas", [1, 0])
async def test_a_sentinel_failover_loses_no_acknowledged_message(
    pair: SentinelPair, ack_replicas: int, subprocess_env: dict[str, str], tmp_path: Path
) -> None:
    project = await make_project()
    env = {
        **subprocess_env,
        "REDIS_URL": pair.url,
        "QUEUE_REDIS_URL": pair.url,
        "REDIS_ACK_REPLICAS": str(ack_replicas),
    }
    stream, rows = await _stream_through_failover(env, tmp_path, pair.fail_over, project.id)
    lost = _report_losses(stream, rows, ack_replicas)
    if ack_replicas:
        assert lost == 0
        check_exactly_once_in_order(rows, stream.accepted)


@pytest.mark.parametrize("ack_replicas", [1, 0])
async def test_a_cluster_primary_failover_loses_no_acknowledged_message(
    replicated_cluster: ValkeyCluster,
    ack_replicas: int,
    settings: Any,
    subprocess_env: dict[str, str],
    tmp_path: Path,
) -> None:
    project = await make_project()
    # The primary that holds this project's mailboxes is the one to kill.
    victim = replicated_cluster.primary_for(shard_of_project(project.id, CLUSTER_DRAIN_SHARDS).token)
    # SAQ's queue stays on the test run's own single server (it cannot run on a cluster).
    assert "cluster" not in settings.queue_redis.url
    env = {
        **subprocess_env,
        "REDIS_URL": replicated_cluster.url,
        "QUEUE_REDIS_URL": settings.queue_redis.url,
        "REDIS_ACK_REPLICAS": str(ack_replicas),
    }
    stream, rows = await _stream_through_failover(
        env, tmp_path, lambda: replicated_cluster.fail_over(victim), project.id
    )
    lost = _report_losses(stream, rows, ack_replicas)
    if ack_replicas:
        assert lost == 0
        check_exactly_once_in_order(rows, stream.accepted)
