"""The one send path: check a message, queue it in Redis, acknowledge. Every transport calls it.

Usage (REST handler, socket handler, console view alike)::

    sender = MessageSender(queue, redis)            # once per process, at start-up
    ack = await sender.send(command, actor=actor)   # SendMessage -> SendAck

Two steps, as in Zulip's ``check_message`` / ``do_send_messages``:

1. :func:`check_message` validates (body at most 5000 characters as sent, not blank; required fields by
   kind), authorises (agents through :mod:`server.tenancy.access`; visitors are already
   identified by ``(project_id, visitor_uid)`` by their transport) and, for agent and system
   messages, checks the conversation exists in the project (a read; the API node never writes
   messages). It raises :class:`~server.errors.Invalid`, ``Forbidden`` or ``NotFound``.
2. :meth:`MessageSender.send` then queues the message. One Redis script appends a batch of
   messages to their mailboxes in arrival order, checking the per-sender and per-project rate
   limits on the way (:class:`~server.errors.RateLimited` with ``retry_after``). A batch is
   whatever was sent while the previous append was in flight: nothing waits for a timer. When
   the append finds no drain due for a message's shard (see :mod:`server.chat.mailbox`), one
   SAQ job (``persist_messages`` on ``live-chat-events-queue``) is queued to drain it; while a
   drain is due or running, messages queue no job at all.

The ack (``client_msg_id``, ``accepted``) is returned only after the append (and that job) succeeded. If
Redis is unreachable the caller gets :class:`~server.errors.Unavailable` (503) and may retry with
the same ``client_msg_id``: the worker stores a message at most once per id. Nothing here writes to
PostgreSQL, so messages keep being accepted while PostgreSQL is down.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
import uuid
from typing import Any

import asyncpg
from redis.asyncio import Redis
from redis.exceptions import ClusterError, ReadOnlyError, SlotNotCoveredError, TryAgainError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from saq import Job
from saq.queue import Queue

from server.chat.mailbox import Appended, Mailboxes, NotReplicated, RateLimits, ReplicaAck, Shard
from server.chat.schemas import MAX_BODY_LENGTH, MessageKind, PendingMessage, SendAck, SendMessage
from server.chat.tables import Conversation
from server.errors import ErrorCode, Forbidden, Invalid, Malformed, NotFound, RateLimited, Unavailable
from server.outage import Outage
from server.tenancy.access import Actor, ProjectRole, can_write, has_project_role

log = logging.getLogger(__name__)

PERSIST_JOB = "persist_messages"
"""The worker job that stores queued messages (``tasks/jobs.py``); enqueued by name."""

MAX_VISITOR_UID_LENGTH = 64

_DATABASE_DOWN = (
    OSError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.exceptions.OperatorInterventionError,
)
_REDIS_DOWN = (
    RedisConnectionError,
    RedisTimeoutError,
    ConnectionError,
    TimeoutError,
    OSError,
    # A cluster between a primary's failure and its replica's promotion (or a slot moving).
    ClusterError,
    SlotNotCoveredError,
    TryAgainError,
    ReadOnlyError,
)


def persist_job(mailboxes: list[str], *, key: str | None = None) -> Job:
    """A job storing what waits in the named mailboxes (the mailbox sweep's, and the naive pipeline's)."""
    return _job({"mailboxes": mailboxes}, key)


def drain_job(shard: Shard) -> Job:
    """A job draining one shard's mailboxes for as long as messages keep coming (see ``mailbox``)."""
    return _job({"drain": shard.name}, None)


def _job(kwargs: dict[str, Any], key: str | None) -> Job:
    # Transient failures retry with backoff (0.2 s doubling, up to 10 s apart).
    job = Job(
        function=PERSIST_JOB, kwargs=kwargs, timeout=30, retries=40, retry_delay=0.2, retry_backoff=10.0
    )
    if key is not None:
        job.key = key
    return job


def _clean_body(body: str) -> str:
    if "\x00" in body:
        # PostgreSQL text cannot hold NUL: refuse it here, before the ack, never in the worker.
        raise Malformed("A message cannot contain NUL characters.", fields={"body": "contains NUL"})
    # The limit counts the body as sent (as the schemas' maxLength does), surrounding whitespace too.
    if len(body) > MAX_BODY_LENGTH:
        raise Invalid(
            f"A message is at most {MAX_BODY_LENGTH} characters long.",
            code=ErrorCode.BODY_TOO_LONG,
            fields={"body": f"longer than {MAX_BODY_LENGTH} characters"},
        )
    cleaned = body.strip()
    if not cleaned:
        raise Invalid("A message needs a body.", code=ErrorCode.EMPTY_BODY, fields={"body": "empty"})
    return cleaned


async def _require_conversation(project_id: int, conversation_id: int) -> None:
    try:
        found = await Conversation.exists().where(
            (Conversation.id == conversation_id) & (Conversation.project == project_id)
        )
    except _DATABASE_DOWN as error:
        raise Unavailable("The database is unreachable; retry with the same client_msg_id.") from error
    if not found:
        raise NotFound("No such conversation.")


async def check_message(command: SendMessage, *, actor: Actor | None = None) -> PendingMessage:
    """Validate and authorise a send; return the message as it will be queued. Writes nothing."""
    body = _clean_body(command.body)
    client_msg_id = command.client_msg_id or uuid.uuid4()
    sender_user_id: int | None = None
    if command.kind is MessageKind.VISITOR:
        uid = (command.visitor_uid or "").strip()
        if not uid or len(uid) > MAX_VISITOR_UID_LENGTH:
            raise Invalid("A visitor message needs the visitor's uid.", fields={"visitor_uid": "invalid"})
        if command.conversation_id is not None:
            raise Invalid(
                "Visitors write to their own conversation; leave conversation_id out.",
                fields={"conversation_id": "not allowed"},
            )
        return PendingMessage(
            client_msg_id=client_msg_id,
            kind=command.kind,
            project_id=command.project_id,
            body=body,
            accepted_at=time.time(),
            visitor_uid=uid,
        )
    if command.conversation_id is None:
        raise Invalid("conversation_id is required.", fields={"conversation_id": "missing"})
    if command.kind in (MessageKind.AGENT_REPLY, MessageKind.AGENT_NOTE):
        if actor is None or not has_project_role(actor, command.project_id, ProjectRole.AGENT):
            raise Forbidden("Only the project's agents may write here.")
        if not can_write(actor):
            raise Forbidden("This API key is read-only.", code=ErrorCode.READ_ONLY_KEY)
        sender_user_id = actor.user_id
    await _require_conversation(command.project_id, command.conversation_id)
    return PendingMessage(
        client_msg_id=client_msg_id,
        kind=command.kind,
        project_id=command.project_id,
        body=body,
        accepted_at=time.time(),
        conversation_id=command.conversation_id,
        sender_user_id=sender_user_id,
    )


class MessageSender:
    """Queues checked messages in batches. One per process; safe for concurrent callers.

    Batching adapts to the load with no timer: a message sent while no append is on its way to
    Redis leaves at once (with whatever else was sent in the same event-loop turn); messages sent
    while an append is in flight wait for it and then leave together. Appends go out one at a
    time, so one sender's messages reach its mailbox in order; the acks (and any drain job to
    queue) of one batch are handled while the next batch is being appended.

    ``coalesce_jobs=False`` queues a job naming the batch's mailboxes for every batch instead of
    one drain job per idle shard; with ``max_batch=1`` that is one job per message, the naive
    pipeline the benchmark compares with.
    """

    def __init__(
        self,
        queue: Queue,
        redis: Redis,
        *,
        limits: RateLimits | None = None,
        max_batch: int = 200,
        coalesce_jobs: bool = True,
        replica_ack: ReplicaAck | None = None,
    ) -> None:
        self.queue = queue
        self.mailboxes = Mailboxes(redis, replica_ack=replica_ack)
        self.limits = limits or RateLimits()
        self.max_batch = max_batch
        self.coalesce_jobs = coalesce_jobs
        self._pending: list[tuple[PendingMessage, asyncio.Future[int]]] = []
        self._appender: asyncio.Task[None] | None = None
        self._acks: set[asyncio.Task[None]] = set()
        self._outage = Outage(log, "Redis (message queue)")
        """While Redis is down every send fails: log the outage, not each batch."""

    async def send(self, command: SendMessage, *, actor: Actor | None = None) -> SendAck:
        """Check, rate-limit and queue one message; the ack means it is safely queued."""
        message = await check_message(command, actor=actor)
        wait_ms = await self._submit(message)
        if wait_ms > 0:
            raise RateLimited("Too many messages; slow down.", retry_after=max(1, math.ceil(wait_ms / 1000)))
        return SendAck(client_msg_id=message.client_msg_id)

    async def aclose(self) -> None:
        """Send what is waiting (callers get their answers) before the process stops."""
        while self._appender is not None or self._acks:
            await asyncio.gather(*[t for t in (self._appender, *self._acks) if t], return_exceptions=True)

    def _submit(self, message: PendingMessage) -> asyncio.Future[int]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[int] = loop.create_future()
        self._pending.append((message, future))
        if self._appender is None:
            self._appender = loop.create_task(self._append_all())
        return future

    async def _append_all(self) -> None:
        try:
            while self._pending:
                batch, self._pending = self._pending[: self.max_batch], self._pending[self.max_batch :]
                appended = await self._append(batch)
                if appended is not None:
                    task = asyncio.create_task(self._acknowledge(batch, appended))
                    self._acks.add(task)
                    task.add_done_callback(self._acks.discard)
        finally:
            self._appender = None

    async def _append(self, batch: list[tuple[PendingMessage, asyncio.Future[int]]]) -> Appended | None:
        try:
            appended = await self.mailboxes.append([message for message, _ in batch], self.limits)
        except _REDIS_DOWN as error:
            self._outage.failed(error)
            _fail(batch, Unavailable("Redis is unreachable; retry with the same client_msg_id."))
        except NotReplicated as error:
            log.warning("%d messages not confirmed by a replica: %s", len(batch), error)
            _fail(
                batch,
                Unavailable(
                    "Redis did not replicate the message in time; retry with the same client_msg_id."
                ),
            )
        except Exception as error:
            _fail(batch, error)
        else:
            self._outage.recovered()
            return appended
        return None

    async def _acknowledge(
        self, batch: list[tuple[PendingMessage, asyncio.Future[int]]], appended: Appended
    ) -> None:
        try:
            if self.coalesce_jobs:
                for shard in appended.woken:
                    await self.queue.enqueue(drain_job(shard))
            else:
                accepted = list(
                    dict.fromkeys(
                        self.mailboxes.key_of(message)
                        for (message, _), wait in zip(batch, appended.waits, strict=True)
                        if not wait
                    )
                )
                if accepted:
                    await self.queue.enqueue(persist_job(accepted))
        except _REDIS_DOWN as error:
            self._outage.failed(error)
            _fail(batch, Unavailable("Redis is unreachable; retry with the same client_msg_id."))
            return
        except Exception as error:
            _fail(batch, error)
            return
        for (_, future), wait in zip(batch, appended.waits, strict=True):
            if not future.done():
                future.set_result(wait)


def _fail(batch: list[tuple[PendingMessage, asyncio.Future[int]]], error: Exception) -> None:
    for _, future in batch:
        if not future.done():
            future.set_exception(error)


async def enqueue_stale_mailboxes(queue: Queue, mailboxes: Mailboxes, *, older_than: float = 5.0) -> int:
    """Safety net run by the worker: queue a job for mailboxes nobody drained for a while.

    Covers appended messages whose drain job was never enqueued (Redis failed between the two
    calls) and a job lost with a killed worker before SAQ's sweeper retries it. The job key is fixed, so a
    pending sweep job is not duplicated while PostgreSQL is down.
    """
    stale = await mailboxes.stale(older_than)
    if stale:
        await queue.enqueue(persist_job(stale, key="mailbox-sweep"))
    return len(stale)
