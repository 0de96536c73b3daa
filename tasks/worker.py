"""SAQ worker settings: ``saq tasks.worker.settings``.

The worker consumes ``live-chat-events-queue``: ``persist_messages`` jobs store queued messages
(``server/chat/persistence.py``). Beside the jobs it runs two background loops, started at
``startup`` and stopped at ``shutdown``: the outbox relay (``server/outbox/relay.py``, with its
own PUBLISHER Redis connection and LISTEN connection) and the mailbox sweep, which re-queues
messages whose job was lost. A heartbeat cron job writes the time of its last run to Redis every
few seconds, so operators (and tests) can see the worker is alive.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import time
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from redis.asyncio import Redis
from saq import CronJob
from saq.queue.redis import RedisQueue
from saq.types import Context, SettingsDict

from server.chat.mailbox import Mailboxes
from server.chat.persistence import DrainPace
from server.chat.sending import enqueue_stale_mailboxes
from server.database import connection_pool, engine
from server.outbox.relay import FastPublisher, OutboxRelay
from server.redis_client import Keys, make_redis
from server.samples import record_sample
from server.settings import Settings, SettingsError, configure_logging, get_settings
from tasks.jobs import (
    clear_project_keys,
    persist_messages,
    reopen_snoozed,
    send_invitation,
    send_mail,
    send_password_reset,
)

HEARTBEAT_TTL_SECONDS = 60
SAQ_SWEEP_SECONDS = 60
log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class PipelineOptions:
    """How the worker relays events. The defaults are production's; the benchmark varies them."""

    fast_path: bool = True
    """Publish a job's events right after its commit (the relay still guarantees delivery)."""
    claim_seconds: float = 2.0
    """With the fast path: how long the relay's sweep leaves a new event to the job that wrote it."""
    relay_listen: bool = True
    """Wake the relay with LISTEN/NOTIFY; without it the relay only polls."""
    relay_sweep_interval: float = 1.0
    """Seconds between the relay's safety-net passes (its poll interval when not listening)."""
    mailbox_sweep_interval: float = 2.0
    mailbox_stale_after: float = 5.0


class WorkerContext(Context, total=False):
    """What ``startup`` puts in SAQ's context; every job receives a copy of it."""

    settings: Settings
    redis: Redis
    resources: AsyncExitStack
    publisher: Redis
    """The dedicated PUBLISHER connection (pub/sub role), shared by the relay and the fast path."""
    mailboxes: Mailboxes
    fast_path: FastPublisher | None
    """Publishes a job's events right after its commit; None: the relay publishes them."""
    drain_pace: DrainPace
    """When each drain shard last had messages in this process (busy shards' drains linger)."""
    relay: OutboxRelay


def _load_settings() -> Settings:
    try:
        return get_settings()
    except SettingsError as error:
        # saq imports this module; a stack trace would bury the one line that matters.
        print(f"parley worker: {error}", file=sys.stderr)
        raise SystemExit(2) from None


def log_mail_route(settings: Settings) -> None:
    """Say once at start where mail goes, so nobody waits for mail that sits in the dev mailbox."""
    mail = settings.mail
    if not mail.enabled:
        log.info("mail: disabled (MAIL_ENABLED=false); invitations and resets are not sent")
    elif mail.smtp_url is None:
        log.info("mail: no SMTP_URL, kept in the development mailbox (python -m server mailbox)")
    else:
        log.info("mail: sent over SMTP to %s", urlsplit(mail.smtp_url).hostname)


async def heartbeat(ctx: WorkerContext) -> float:
    """Record that the worker ran, and a sample for the System page; returns the timestamp written."""
    now = time.time()
    await ctx["redis"].set(Keys.worker_heartbeat(), repr(now), ex=HEARTBEAT_TTL_SECONDS)
    try:
        await record_sample(ctx["redis"], ctx["worker"].queue, now=now)
    except Exception as error:  # a missing sample is a gap in a chart, never a failed heartbeat
        log.warning("system sample failed (%s): %s", type(error).__name__, error)
    return now


async def _sweep_mailboxes(ctx: WorkerContext, options: PipelineOptions) -> None:
    queue = ctx["worker"].queue
    while True:
        await asyncio.sleep(options.mailbox_sweep_interval)
        try:
            await enqueue_stale_mailboxes(queue, ctx["mailboxes"], older_than=options.mailbox_stale_after)
        except Exception as error:  # Redis away: try again next round
            log.warning("mailbox sweep failed (%s): %s", type(error).__name__, error)


def make_startup(options: PipelineOptions) -> Any:
    async def startup(ctx: WorkerContext) -> None:
        settings = get_settings()
        configure_logging(settings)
        ctx["settings"] = settings
        log_mail_route(settings)
        resources = AsyncExitStack()
        await resources.enter_async_context(connection_pool(settings.database.pool_size))
        ctx["redis"] = make_redis(settings.redis)
        resources.push_async_callback(ctx["redis"].aclose)
        ctx["publisher"] = make_redis(settings.redis, max_connections=4)
        resources.push_async_callback(ctx["publisher"].aclose)
        ctx["mailboxes"] = Mailboxes(ctx["redis"])
        ctx["drain_pace"] = DrainPace()
        relay = OutboxRelay(
            ctx["publisher"],
            listen=options.relay_listen,
            sweep_interval=options.relay_sweep_interval,
            claim_seconds=options.claim_seconds if options.fast_path else 0.0,
        )
        relay.start()
        resources.push_async_callback(relay.stop)  # runs before the pools close (LIFO)
        ctx["relay"] = relay
        ctx["fast_path"] = FastPublisher(ctx["publisher"]) if options.fast_path else None
        if ctx["fast_path"] is not None:
            resources.push_async_callback(ctx["fast_path"].aclose)  # its last marks, before the pools close
        await _defer_first_saq_sweep(ctx)
        sweeper = asyncio.create_task(_sweep_mailboxes(ctx, options), name="mailbox-sweep")
        resources.push_async_callback(_cancel, sweeper)
        ctx["resources"] = resources
        # One line that says the worker can take jobs (tests and operators wait for it).
        log.info("worker ready on queue %s", ctx["worker"].queue.name)

    return startup


async def _defer_first_saq_sweep(ctx: WorkerContext) -> None:
    """Skip SAQ's sweep at start-up; it runs again after its usual interval.

    SAQ 0.26 sweeps at once when a worker starts, while its job slots are dequeuing the backlog:
    a job moved to the active list but not yet marked active looks abandoned and is aborted
    (its FAILED state overwritten by ABORTED, or run twice). Holding SAQ's sweep lock key for one
    interval avoids that window. Harmless for our jobs either way: they are idempotent.
    """
    queue = ctx["worker"].queue
    if isinstance(queue, RedisQueue):
        await queue.redis.set(queue.namespace("sweep"), 1, ex=SAQ_SWEEP_SECONDS, nx=True)


async def _cancel(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


startup = make_startup(PipelineOptions())


async def shutdown(ctx: WorkerContext) -> None:
    if "resources" not in ctx:
        return
    try:
        # asyncpg's pool.close() waits for every connection to come back; a job cancelled while
        # PostgreSQL was unreachable can keep one forever. Bound it, then drop the pool hard.
        await asyncio.wait_for(ctx["resources"].aclose(), timeout=10)
    except TimeoutError:
        log.warning("worker resources did not close within 10 s; terminating the database pool")
        pool = engine().pool
        if pool is not None:
            pool.terminate()


def build_settings(
    settings: Settings, options: PipelineOptions | None = None, *, concurrency: int | None = None
) -> SettingsDict[WorkerContext]:
    """SAQ's settings for one worker process; ``concurrency`` defaults to ``WORKER_CONCURRENCY``."""
    from server.queue import make_queue

    concurrency = concurrency or settings.worker_concurrency
    return {
        "queue": make_queue(settings.queue_redis, concurrency=concurrency),
        "functions": [
            heartbeat,
            persist_messages,
            clear_project_keys,
            reopen_snoozed,
            send_invitation,
            send_password_reset,
            send_mail,
        ],
        "cron_jobs": [
            CronJob(heartbeat, cron="* * * * * */5", unique=True),
            # Snoozes end within 5 s of their time; the job is one indexed query when none is due.
            CronJob(reopen_snoozed, cron="* * * * * */5", unique=True),
        ],
        "concurrency": concurrency,
        "startup": make_startup(options or PipelineOptions()),
        "shutdown": shutdown,
        # A killed worker's jobs are retried by SAQ's sweep after their timeout; their messages
        # do not wait for it: the mailbox sweep re-queues them within seconds.
        "timers": {"schedule": 1, "worker_info": 10, "sweep": SAQ_SWEEP_SECONDS, "abort": 1},
    }


settings: Any = build_settings(_load_settings())
