"""Mailboxes: accepted messages waiting in Redis, one ordered list per sender stream.

Why not only the SAQ job's arguments? Order. SAQ runs jobs concurrently and retries a killed
worker's job after its later siblings, so two jobs of one conversation can commit in either order
(DESIGN §4.5). Instead every accepted message is appended (``RPUSH``) to its stream's mailbox, and
a job only names the mailboxes its micro-batch wrote to. The worker persists a mailbox's messages
from its head, under the conversation's row lock, then pops exactly the items it persisted
(compare-and-pop). Whichever job runs first takes everything queued so far, in arrival order; a
later or retried job finds those messages gone or already stored (``client_msg_id``) and adds
nothing. So order holds with any concurrency, any number of workers, and after ``kill -9``.

Streams:
- ``v:<visitor_uid>``: a visitor's messages (their conversation is resolved by the worker, so
  ingestion needs no PostgreSQL read and keeps accepting while PostgreSQL is down);
- ``c:<conversation_id>``: agent replies, notes and system messages of one conversation.

Keys (all under ``parley:``):
- ``parley:p:<project>:mailbox:<stream>``: list of msgspec-encoded :class:`PendingMessage`;
- ``parley:mailboxes``: sorted set of non-empty mailboxes, scored by when they were last
  touched by the worker; a worker loop re-drains those left untouched too long (a job lost
  between accept and enqueue, a worker killed mid-job);
- ``parley:mailbox-dead``: messages that can never be stored (their conversation was deleted),
  with the reason, for operators.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import msgspec
from redis.asyncio import Redis

from server.chat.schemas import MessageKind, PendingMessage
from server.redis_client import Keys

DIRTY_MAILBOXES = Keys.DIRTY_MAILBOXES
DEAD_LETTERS = Keys.DEAD_LETTERS

_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(PendingMessage)


def mailbox_key(message: PendingMessage) -> str:
    if message.kind is MessageKind.VISITOR:
        stream = f"v:{message.visitor_uid}"
    else:
        stream = f"c:{message.conversation_id}"
    return Keys.mailbox(message.project_id, stream)


def sender_subject(message: PendingMessage) -> str:
    """Who a message counts against for the per-sender rate limit."""
    if message.kind is MessageKind.VISITOR:
        return f"visitor:{message.project_id}:{message.visitor_uid}"
    if message.sender_user_id is not None:
        return f"user:{message.sender_user_id}"
    return f"system:{message.project_id}"


def encode(message: PendingMessage) -> bytes:
    return _encoder.encode(message)


def decode(raw: bytes) -> PendingMessage:
    return _decoder.decode(raw)


@dataclass(frozen=True, slots=True)
class Limit:
    count: int
    """How many messages per window; 0 means unlimited."""
    window_seconds: float


@dataclass(frozen=True, slots=True)
class RateLimits:
    """Fixed-window limits checked atomically with the append, in the same Redis call."""

    per_visitor: Limit = Limit(60, 10.0)
    per_agent: Limit = Limit(120, 10.0)
    per_project: Limit = Limit(20_000, 10.0)


# Append a micro-batch: per message, check both limits and either RPUSH it or return the time
# (ms) until its window ends. Limits are checked before counting, so refused messages do not
# consume quota. KEYS: dirty set, then (mailbox, sender counter, project counter) per message.
# ARGV: now, project limit, project window ms, then (payload, sender limit, sender window ms).
_ACCEPT = """
local out = {}
local plimit, pwindow = tonumber(ARGV[2]), ARGV[3]
for i = 1, (#KEYS - 1) / 3 do
  local mailbox, skey, pkey = KEYS[3 * i - 1], KEYS[3 * i], KEYS[3 * i + 1]
  local payload, slimit, swindow = ARGV[3 * i + 1], tonumber(ARGV[3 * i + 2]), ARGV[3 * i + 3]
  local wait = 0
  if slimit > 0 and tonumber(redis.call('GET', skey) or '0') >= slimit then
    wait = math.max(redis.call('PTTL', skey), 1)
  elseif plimit > 0 and tonumber(redis.call('GET', pkey) or '0') >= plimit then
    wait = math.max(redis.call('PTTL', pkey), 1)
  end
  if wait == 0 then
    if slimit > 0 and redis.call('INCR', skey) == 1 then redis.call('PEXPIRE', skey, swindow) end
    if plimit > 0 and redis.call('INCR', pkey) == 1 then redis.call('PEXPIRE', pkey, pwindow) end
    redis.call('RPUSH', mailbox, payload)
    redis.call('ZADD', KEYS[1], 'NX', ARGV[1], mailbox)
  end
  out[i] = wait
end
return out
"""

# Pop, from the head, the items a worker has just persisted. Items another worker popped already
# are skipped; new items appended meanwhile stay. KEYS: dirty set, mailbox. ARGV: now, items.
_POP = """
local popped = 0
for i = 2, #ARGV do
  if redis.call('LINDEX', KEYS[2], 0) == ARGV[i] then
    redis.call('LPOP', KEYS[2])
    popped = popped + 1
  end
end
if redis.call('LLEN', KEYS[2]) == 0 then
  redis.call('ZREM', KEYS[1], KEYS[2])
else
  redis.call('ZADD', KEYS[1], 'XX', ARGV[1], KEYS[2])
end
return popped
"""


class Mailboxes:
    """Mailbox operations on one Redis client (scripts are registered once per client)."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self._accept = redis.register_script(_ACCEPT)
        self._pop = redis.register_script(_POP)

    async def append(self, messages: Sequence[PendingMessage], limits: RateLimits) -> list[int]:
        """Append messages in order; returns per message 0 (appended) or ms until it may be retried."""
        keys: list[str] = [DIRTY_MAILBOXES]
        args: list[str | bytes | float | int] = [
            time.time(),
            limits.per_project.count,
            int(limits.per_project.window_seconds * 1000),
        ]
        for message in messages:
            sender = limits.per_visitor if message.kind is MessageKind.VISITOR else limits.per_agent
            if message.kind is MessageKind.SYSTEM:
                sender = Limit(0, 1.0)
            keys += [
                mailbox_key(message),
                Keys.rate_limit("sender", sender_subject(message)),
                Keys.rate_limit("project", str(message.project_id)),
            ]
            args += [encode(message), sender.count, int(sender.window_seconds * 1000)]
        result = await self._accept(keys=keys, args=args)
        return [int(wait) for wait in result]

    async def read(self, keys: Sequence[str], limit: int) -> dict[str, list[bytes]]:
        """The first ``limit`` raw items of each mailbox (empty ones left out)."""
        async with self.redis.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.lrange(key, 0, limit - 1)
            found = await pipe.execute()
        return {key: items for key, items in zip(keys, found, strict=True) if items}

    async def pop(self, taken: dict[str, list[bytes]]) -> int:
        """Remove the given head items (after their commit); returns how many were removed."""
        if not taken:
            return 0
        now = time.time()
        async with self.redis.pipeline(transaction=False) as pipe:
            for key, items in taken.items():
                await self._pop(keys=[DIRTY_MAILBOXES, key], args=[now, *items], client=pipe)
            popped = await pipe.execute()
        return sum(int(count) for count in popped)

    async def stale(self, older_than: float, limit: int = 500) -> list[str]:
        """Non-empty mailboxes no worker has touched for ``older_than`` seconds."""
        found = await self.redis.zrangebyscore(
            DIRTY_MAILBOXES, "-inf", time.time() - older_than, start=0, num=limit
        )
        return [key.decode() for key in found if isinstance(key, bytes)]

    async def bury(self, items: Sequence[bytes], reason: str) -> None:
        """Keep messages that can never be stored, with the reason (bounded list)."""
        if not items:
            return
        entries = [msgspec.json.encode({"reason": reason, "message": decode(item)}) for item in items]
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.lpush(DEAD_LETTERS, *entries)
            pipe.ltrim(DEAD_LETTERS, 0, 9999)
            await pipe.execute()
