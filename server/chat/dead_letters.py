"""Dead letters: accepted messages the worker could not store, kept for an operator to replay.

The worker buries a message in ``parley:mailbox-dead`` (:meth:`Mailboxes.bury`, with the reason)
when storing it can never succeed as things are, typically a reply to a conversation deleted
after the message was accepted; the drain job that met it ends FAILED. Once the cause is gone (the
conversation restored from a backup, say), :func:`replay` sends the message through the normal
pipeline again: it is appended to its sender's mailbox like a new message (with its original
``client_msg_id``, so one already stored is not stored twice) and its shard's drain job is queued.
A message that still cannot be stored is buried again, with the reason.

Entries are named by a hash of their bytes (:attr:`DeadLetter.id`), not by their position, which
moves as new letters arrive.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection
from dataclasses import dataclass

import msgspec
from redis.asyncio import Redis
from saq.queue.base import Queue

from server.chat.mailbox import DEAD_LETTERS, Limit, Mailboxes, RateLimits
from server.chat.schemas import PendingMessage
from server.chat.sending import drain_job

LISTED = 100
UNLIMITED = RateLimits(per_visitor=Limit(0, 1.0), per_agent=Limit(0, 1.0), per_project=Limit(0, 1.0))
"""A replay is an operator's act on messages already accepted once: no send-path rate limit."""


class _Entry(msgspec.Struct):
    reason: str
    message: PendingMessage


_decoder = msgspec.json.Decoder(_Entry)


@dataclass(frozen=True, slots=True)
class DeadLetter:
    id: str
    reason: str
    message: PendingMessage
    raw: bytes


def _letter(stored: bytes | str) -> DeadLetter | None:
    raw = stored.encode() if isinstance(stored, str) else stored
    try:
        entry = _decoder.decode(raw)
    except msgspec.DecodeError:
        return None
    return DeadLetter(hashlib.sha256(raw).hexdigest()[:16], entry.reason, entry.message, raw)


async def count_dead_letters(redis: Redis) -> int:
    return int(await redis.llen(DEAD_LETTERS))


async def list_dead_letters(redis: Redis, *, limit: int = LISTED) -> list[DeadLetter]:
    """The newest ``limit`` dead letters, newest first (undecodable entries are skipped)."""
    raws = await redis.lrange(DEAD_LETTERS, 0, limit - 1)
    return [letter for raw in raws if (letter := _letter(raw)) is not None]


async def replay(redis: Redis, queue: Queue, ids: Collection[str] | None = None) -> int:
    """Send the named dead letters (every one for None) through the pipeline again; returns how
    many were replayed. Each is taken off the list first (``LREM``: a concurrent replay of the
    same letter finds it gone), then appended to its mailbox; if the append fails they are put back.
    """
    letters = [letter for raw in await redis.lrange(DEAD_LETTERS, 0, -1) if (letter := _letter(raw))]
    chosen = [letter for letter in letters if ids is None or letter.id in ids]
    taken: list[DeadLetter] = []
    for letter in chosen:
        if await redis.lrem(DEAD_LETTERS, 1, letter.raw):  # type: ignore[arg-type]  # redis takes bytes too
            taken.append(letter)
    if not taken:
        return 0
    try:
        appended = await Mailboxes(redis).append([letter.message for letter in taken], UNLIMITED)
        for shard in appended.woken:
            await queue.enqueue(drain_job(shard))
    except BaseException:
        await redis.rpush(DEAD_LETTERS, *[letter.raw for letter in taken])
        raise
    return len(taken)
