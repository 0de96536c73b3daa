"""Mailboxes: accepted messages waiting in Redis, one ordered list per sender stream.

Why not only the SAQ job's arguments? Order. SAQ runs jobs concurrently and retries a killed
worker's job after its later siblings, so two jobs of one conversation can commit in either order
(DESIGN §4.5). Instead every accepted message is appended (``RPUSH``) to its stream's mailbox, and
a drain job (below) finds the non-empty mailboxes in its shard's set. The worker persists a mailbox's messages
from its head, under the conversation's row lock, then pops exactly the items it persisted
(compare-and-pop). Whichever job runs first takes everything queued so far, in arrival order; a
later or retried job finds those messages gone or already stored (``client_msg_id``) and adds
nothing. So order holds with any concurrency, any number of workers, and after ``kill -9``.

Streams:
- ``v:<visitor_uid>``: a visitor's messages (their conversation is resolved by the worker, so
  ingestion needs no PostgreSQL read and keeps accepting while PostgreSQL is down);
- ``c:<conversation_id>``: agent replies, notes and system messages of one conversation.

Drains. Mailboxes are spread over shards by project (a hash of the project id): all of a
project's mailboxes are in one shard, many projects share a shard. There are
:data:`DRAIN_SHARDS` shards on one Redis server and :data:`CLUSTER_DRAIN_SHARDS` on a cluster,
where every key of a shard carries the shard's hash tag ``{m:<shard>}`` (so the append script's
keys, the project's rate-limit counters included, share a slot) and the shards spread the
mailboxes over the cluster's nodes.
A shard's drain job stores everything waiting in the shard's mailboxes, round after round, for as
long as messages keep coming; messages accepted meanwhile start no job of their own. The shard's
token counts appends: the append that finds no token creates it and queues the drain job; the
drain reads the token before each round and deletes it only if no append came since (one atomic
compare-and-delete), so a message is always either read by a running drain or starts a new one.
Under load, rounds grow with the rate on their own (everything that arrived during the last
round), with no timer; when idle, a message starts a drain at once.

Keys (all under ``parley:{m:<shard>}:``):
- ``p:<project>:mailbox:<stream>``: list of msgspec-encoded :class:`PendingMessage`;
- ``drain:mailboxes``: sorted set of the shard's non-empty mailboxes (a drain
  also forgets those found empty: a deleted project's, removed with its keys);
- ``drain:token``: the shard's append counter while a drain is due (expires after
  :data:`DRAIN_TOKEN_TTL_MS` unless a drain refreshes it: a killed worker's shard gets a new
  drain job with the next message);
- ``drain:wake``: at most one item, pushed by appends while a drain is due, for a
  drain waiting for more (see ``server.chat.persistence.DrainPace``);
- ``mailboxes``: sorted set of the shard's non-empty mailboxes, scored by when they were last
  touched by the worker; a worker loop re-drains those left untouched too long (a job lost
  between accept and enqueue, a worker killed mid-job);
- ``ratelimit:sender:<subject>``, ``ratelimit:project:<project>``: the send-path limits' counters;
- ``parley:mailbox-dead`` (no tag): messages that can never be stored (their conversation was
  deleted), with the reason, for operators.

Durability. With :class:`ReplicaAck` set (``REDIS_ACK_REPLICAS``), the append is followed on the
same connection by ``WAIT <replicas> <timeout>``: the append returns only once that many
replicas hold the message, so a failover to one of them loses no acknowledged message; if they
do not confirm in time the append raises :class:`NotReplicated` (the message may still be
stored: the sender retries with the same ``client_msg_id``, which the worker stores once).
"""

from __future__ import annotations

import asyncio
import re
import time
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

import msgspec
from redis.asyncio import Redis, RedisCluster
from redis.exceptions import MovedError, NoScriptError

from server.chat.schemas import MessageKind, PendingMessage
from server.redis_client import Keys, is_cluster, script_then_wait, send_to_node_of
from server.settings import RedisSettings

DEAD_LETTERS = Keys.DEAD_LETTERS

_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(PendingMessage)


DRAIN_SHARDS = 1
"""Drains that may run at once (each is one transaction at a time), for all projects together: a
round stores every project's waiting messages in one transaction, so many quiet projects cost no
more than one busy one. Measured on 2 cores (bench/e2e.py, 1,000 messages/s): 1 shard p99 ~12 ms,
2 shards ~15-25 ms, 4 shards ~26 ms; fewer, larger rounds cost less CPU than parallel ones save
in waiting. More shards let several worker processes store messages at once on a bigger machine.
Change it only with every API node and worker stopped (a mailbox's shard must not move while it
holds messages)."""
CLUSTER_DRAIN_SHARDS = 16
"""Shards on a Redis Cluster: each shard's keys live in one slot, so the shards are what spreads
the mailboxes over the cluster's primaries (16 tags land on every one of 3 primaries; a
project stays in one shard, so its messages keep their order)."""
_SHARD_TAG = re.compile(r"\{m:(\d+)\}")
DRAIN_TOKEN_TTL_MS = 5_000
"""A drain refreshes its token every round; a token nobody refreshes (worker killed) expires."""


@dataclass(frozen=True, slots=True)
class Shard:
    """One drain shard: the mailboxes whose key hashes to ``index``."""

    index: int

    @property
    def mailboxes(self) -> str:
        return Keys.drain_mailboxes(self.index)

    @property
    def dirty(self) -> str:
        return Keys.dirty_mailboxes(self.index)

    @property
    def token(self) -> str:
        return Keys.drain_token(self.index)

    @property
    def wake(self) -> str:
        return Keys.drain_wake(self.index)

    @property
    def name(self) -> str:
        """How a drain job names its shard."""
        return str(self.index)

    @classmethod
    def parse(cls, name: str) -> Shard:
        return cls(int(name))


def shard_of_project(project_id: int, shards: int = DRAIN_SHARDS) -> Shard:
    return Shard(zlib.crc32(str(project_id).encode()) % shards)


def mailbox_key(message: PendingMessage, shards: int = DRAIN_SHARDS) -> str:
    if message.kind is MessageKind.VISITOR:
        stream = f"v:{message.visitor_uid}"
    else:
        stream = f"c:{message.conversation_id}"
    return Keys.mailbox(shard_of_project(message.project_id, shards).index, message.project_id, stream)


def shard_of_key(mailbox: str) -> Shard:
    """The shard a mailbox key names in its hash tag."""
    found = _SHARD_TAG.search(mailbox)
    if found is None:
        raise ValueError(f"not a mailbox key: {mailbox!r}")
    return Shard(int(found.group(1)))


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


# Append a batch: per message, check both limits and either RPUSH it or return the time (ms)
# until its window ends. Limits are checked before counting, so refused messages do not consume
# quota. An appended message counts on its shard's drain token; a token it creates is returned
# (the caller queues that shard's drain job); else the message wakes a lingering drain. KEYS:
# dirty set, then (mailbox, sender counter, project counter, drain mailboxes, drain token, drain
# wake) per message. ARGV: now, project limit, project window ms, token ttl ms, then (payload,
# sender limit, sender window ms) per message. Returns {waits, created tokens}.
_ACCEPT = """
local waits, woken = {}, {}
local plimit, pwindow, ttl = tonumber(ARGV[2]), ARGV[3], ARGV[4]
for i = 1, (#KEYS - 1) / 6 do
  local k, a = 6 * i - 5, 3 * i + 2
  local mailbox, skey, pkey, drain, token = KEYS[k + 1], KEYS[k + 2], KEYS[k + 3], KEYS[k + 4], KEYS[k + 5]
  local payload, slimit, swindow = ARGV[a], tonumber(ARGV[a + 1]), ARGV[a + 2]
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
    redis.call('ZADD', drain, 'NX', ARGV[1], mailbox)
    if redis.call('INCR', token) == 1 then
      redis.call('PEXPIRE', token, ttl)
      woken[#woken + 1] = token
    else
      redis.call('LPUSH', KEYS[k + 6], 1)
      redis.call('LTRIM', KEYS[k + 6], 0, 0)
      redis.call('PEXPIRE', KEYS[k + 6], ttl)
    end
  end
  waits[i] = wait
end
return {waits, woken}
"""

# Pop, from the head, the items a worker has just persisted. Items another worker popped already
# are skipped; new items appended meanwhile stay. KEYS: dirty set, drain mailboxes, mailbox.
# ARGV: now, items.
_POP = """
local popped = 0
for i = 2, #ARGV do
  if redis.call('LINDEX', KEYS[3], 0) == ARGV[i] then
    redis.call('LPOP', KEYS[3])
    popped = popped + 1
  end
end
if redis.call('LLEN', KEYS[3]) == 0 then
  redis.call('ZREM', KEYS[1], KEYS[3])
  redis.call('ZREM', KEYS[2], KEYS[3])
else
  redis.call('ZADD', KEYS[1], 'XX', ARGV[1], KEYS[3])
end
return popped
"""

# End a drain if nothing was appended to its shard since it read the token (ARGV[1]).
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
"""


@dataclass(frozen=True, slots=True)
class ReplicaAck:
    """Acknowledge an append only once ``replicas`` replicas hold it (``WAIT``), within ``timeout_ms``."""

    replicas: int = 0
    """0: acknowledge once the primary holds it (no WAIT)."""
    timeout_ms: int = 1000

    @classmethod
    def from_settings(cls, settings: RedisSettings) -> ReplicaAck:
        return cls(replicas=settings.ack_replicas, timeout_ms=settings.ack_timeout_ms)


class NotReplicated(Exception):
    """Fewer replicas than asked confirmed an append in time; the sender should retry it."""


@dataclass(frozen=True, slots=True)
class Appended:
    waits: list[int]
    """Per message: 0 (appended) or ms until it may be retried (rate limited)."""
    woken: list[Shard]
    """Shards whose drain this append made due: the caller queues one drain job for each."""


@dataclass(frozen=True, slots=True)
class Taken:
    """What a drain round read: the token it saw and the head of each of the shard's mailboxes."""

    generation: bytes | None
    """The shard's token as read before the mailboxes; None when no drain was due."""
    items: dict[str, list[bytes]]
    complete: bool
    """Everything waiting was read (no mailbox or item left out by the limits)."""
    empty: list[str]
    """Mailboxes listed in the shard but found empty (their project's keys were cleared)."""


class Mailboxes:
    """Mailbox operations on one Redis client (scripts are registered once per client)."""

    def __init__(self, redis: Redis, *, replica_ack: ReplicaAck | None = None) -> None:
        self.redis = redis
        self.cluster = is_cluster(redis)
        self.shards = CLUSTER_DRAIN_SHARDS if self.cluster else DRAIN_SHARDS
        self.replica_ack = replica_ack or ReplicaAck()
        self._accept = redis.register_script(_ACCEPT)
        self._pop = redis.register_script(_POP)
        self._release = redis.register_script(_RELEASE)

    def key_of(self, message: PendingMessage) -> str:
        return mailbox_key(message, self.shards)

    def shard_of(self, message: PendingMessage) -> Shard:
        return shard_of_project(message.project_id, self.shards)

    async def append(self, messages: Sequence[PendingMessage], limits: RateLimits) -> Appended:
        """Append messages in order, count them on their shards' drain tokens.

        One script call per shard the messages belong to (one, on a single server), at once.
        """
        groups: dict[Shard, list[int]] = {}
        for index, message in enumerate(messages):
            groups.setdefault(self.shard_of(message), []).append(index)
        if len(groups) == 1:
            ((shard, _),) = groups.items()
            waits, woke = await self._append_shard(shard, messages, limits)
            return Appended(waits=waits, woken=[shard] if woke else [])
        results = await asyncio.gather(
            *(
                self._append_shard(shard, [messages[i] for i in indexes], limits)
                for shard, indexes in groups.items()
            )
        )
        all_waits = [0] * len(messages)
        woken = []
        for (shard, indexes), (waits, woke) in zip(groups.items(), results, strict=True):
            for index, wait in zip(indexes, waits, strict=True):
                all_waits[index] = wait
            if woke:
                woken.append(shard)
        return Appended(waits=all_waits, woken=woken)

    async def _append_shard(
        self, shard: Shard, messages: Sequence[PendingMessage], limits: RateLimits
    ) -> tuple[list[int], bool]:
        keys: list[str] = [shard.dirty]
        args: list[str | bytes | float | int] = [
            time.time(),
            limits.per_project.count,
            int(limits.per_project.window_seconds * 1000),
            DRAIN_TOKEN_TTL_MS,
        ]
        for message in messages:
            sender = limits.per_visitor if message.kind is MessageKind.VISITOR else limits.per_agent
            if message.kind is MessageKind.SYSTEM:
                sender = Limit(0, 1.0)
            keys += [
                self.key_of(message),
                Keys.send_limit(shard.index, "sender", sender_subject(message)),
                Keys.send_limit(shard.index, "project", str(message.project_id)),
                shard.mailboxes,
                shard.token,
                shard.wake,
            ]
            args += [encode(message), sender.count, int(sender.window_seconds * 1000)]
        if self.replica_ack.replicas > 0:
            waits, woken = await self._accept_replicated(keys, args)
        else:
            waits, woken = await self._accept(keys=keys, args=args)
        return [int(wait) for wait in waits], bool(woken)

    async def _accept_replicated(self, keys: list[str], args: list[Any]) -> Any:
        """The append script then ``WAIT`` on the same connection (WAIT counts that connection's writes)."""
        ack = self.replica_ack
        result, replicated = await script_then_wait(
            self.redis,
            _ACCEPT,
            self._accept.sha,
            keys,
            args,
            replicas=ack.replicas,
            timeout_ms=ack.timeout_ms,
        )
        if int(replicated) < ack.replicas:
            raise NotReplicated(
                f"{replicated} of {ack.replicas} replicas confirmed within {ack.timeout_ms} ms"
            )
        return result

    async def read(self, keys: Sequence[str], limit: int) -> dict[str, list[bytes]]:
        """The first ``limit`` raw items of each mailbox (empty ones left out)."""
        async with self.redis.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.lrange(key, 0, limit - 1)
            found = await pipe.execute()
        return {key: items for key, items in zip(keys, found, strict=True) if items}

    async def take(self, shard: Shard, limit: int, max_mailboxes: int = 500) -> Taken:
        """A drain round's read: the token first (refreshing its expiry), then the shard's mailboxes.

        Also clears the shard's wake-up: whatever woke it is read now.
        """
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.get(shard.token)
            pipe.pexpire(shard.token, DRAIN_TOKEN_TTL_MS)
            pipe.delete(shard.wake)
            pipe.zrange(shard.mailboxes, 0, max_mailboxes - 1)
            generation, _, _, members = await pipe.execute()
        keys = [key.decode() for key in members]
        items = await self.read(keys, limit) if keys else {}
        complete = len(keys) < max_mailboxes and all(len(found) < limit for found in items.values())
        empty = [key for key in keys if key not in items]
        return Taken(generation=generation, items=items, complete=complete, empty=empty)

    async def wait(self, shard: Shard, seconds: float) -> bool:
        """Wait up to ``seconds`` for a message appended to ``shard`` since its last take.

        BLPOP with a fractional timeout: Redis 6 or later (SAQ's BLMOVE wants 6.2 anyway).
        """
        return await self.redis.blpop([shard.wake], timeout=seconds) is not None

    async def release(self, shard: Shard, generation: bytes) -> bool:
        """End the drain if nothing was appended since the token read ``generation``."""
        return int(await self._release(keys=[shard.token], args=[generation])) == 1

    async def pop(
        self,
        taken: dict[str, list[bytes]],
        *,
        release: tuple[Shard, bytes] | None = None,
        forget: Sequence[str] = (),
    ) -> bool:
        """Remove the given head items (after their commit); then, given ``release``, end the drain.

        ``release`` is ``(shard, generation)``: the drain ends (its token is deleted) only if no
        message was appended to the shard since the token read ``generation``. Returns whether it
        ended; always False without ``release``. ``forget`` names mailboxes found empty: they leave
        the lists of mailboxes unless something was appended to them meanwhile.
        """
        if not taken and not forget and release is None:
            return False
        now = time.time()
        pops = [(key, items) for key, items in [*taken.items(), *((key, []) for key in forget)]]
        if self.cluster:
            return await self._pop_on_cluster(pops, now, release)
        async with self.redis.pipeline(transaction=False) as pipe:
            for key, items in pops:
                shard = shard_of_key(key)
                await self._pop(keys=[shard.dirty, shard.mailboxes, key], args=[now, *items], client=pipe)
            if release is not None:
                shard, generation = release
                await self._release(keys=[shard.token], args=[generation], client=pipe)
            results = await pipe.execute()
        return release is not None and int(results[-1]) == 1

    async def _pop_on_cluster(
        self, pops: list[tuple[str, list[bytes]]], now: float, release: tuple[Shard, bytes] | None
    ) -> bool:
        """:meth:`pop` on a cluster, whose pipelines refuse scripts: each shard's calls (its pops,
        then the release if it is that shard's) go out in one write on one connection of the node
        owning the shard's slot (all its keys carry the shard's tag), the shards at once. So a
        round costs one round trip, as in the single server's pipeline."""
        by_shard: dict[Shard, list[Any]] = {}
        for key, items in pops:
            shard = shard_of_key(key)
            by_shard.setdefault(shard, []).append(
                ("EVALSHA", self._pop.sha, 3, shard.dirty, shard.mailboxes, key, now, *items)
            )
        if release is not None:
            shard, generation = release
            by_shard.setdefault(shard, []).append(("EVALSHA", self._release.sha, 1, shard.token, generation))
        results = await asyncio.gather(
            *(self._on_shard_node(shard, commands) for shard, commands in by_shard.items())
        )
        if release is None:
            return False
        return int(results[list(by_shard).index(release[0])][-1]) == 1

    async def _on_shard_node(self, shard: Shard, commands: list[Any]) -> list[Any]:
        """Send script calls in one write to the node of ``shard``.

        A node without the scripts (new, or just promoted) gets them loaded, and a ``MOVED``
        answer (the slot changed hands; the slot map is read again before it is raised) sends the
        calls once more: pop and release compare before they remove, so a call run twice removes
        nothing more.
        """
        cluster = cast(RedisCluster, self.redis)
        try:
            return await send_to_node_of(cluster, shard.token, commands)
        except NoScriptError:
            for script in (_POP, _RELEASE):
                await self.redis.script_load(script)
        except MovedError:
            pass
        return await send_to_node_of(cluster, shard.token, commands)

    async def stale(self, older_than: float, limit: int = 500) -> list[str]:
        """Non-empty mailboxes no worker has touched for ``older_than`` seconds."""
        before = time.time() - older_than
        found: list[Any] = []
        for index in range(self.shards):
            found += await self.redis.zrangebyscore(
                Keys.dirty_mailboxes(index), "-inf", before, start=0, num=limit - len(found)
            )
            if len(found) >= limit:
                break
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
