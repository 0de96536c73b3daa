"""Presence and visitor location: ephemeral state in Redis only (DESIGN §5, role 4).

Subjects are a project's visitors (by uid) and agents (by user id). Keys, under ``parley:``:

- ``{p:<project>}:presence:<kind>:<subject>:sockets``: sorted set, member ``<node>:<socket number>``,
  score = ms until which the entry is alive. This is "visitor uid -> socket ids with node".
- ``{p:<project>}:presence:<kind>:<subject>:status``: ``online`` or ``away`` while the subject
  counts as present (absent = offline; an agent who chose to appear offline has ``offline``).
  Changes of it are what ``presence.changed`` reports.
- agents only: ``agent:<user>:presence-choice`` (what they chose: online / away / offline) and
  ``presence:agent-activity`` (last input per agent and project): an agent online by choice
  with no input in any tab for ``agent_idle_ms`` turns away, and back online on the next input.
- :meth:`Keys.visitor_presence` / :meth:`Keys.agent_presence`: per-project sorted sets that the
  REST API reads in one ZMSCORE (member = subject, score = Unix seconds until which it is online).
- ``presence:sockets``: every live socket entry of every node, scored by expiry, so any node
  can expire a crashed node's sockets; ``presence:pending``: subjects to re-count, scored by when.
  Both (and ``presence:agent-activity``) are split by project into ``presence_buckets`` keys
  (1 on one server, 16 on a cluster, :mod:`server.redis_client`) so that every socket's
  heartbeat does not land on one cluster node; the sweeper reads every bucket.

The re-count script touches a subject's two keys and its project's set: they share the
project's hash tag ``{p:<project>}``, so it runs on a Redis Cluster too.

A socket counts from connect to disconnect (several tabs count once). A disconnect does not make
the subject offline: it schedules a re-count after the grace period, done by whichever node's
sweeper claims it first (ZREM decides), atomically in Lua, so a reconnect in between wins. Each
node refreshes its own entries every heartbeat; a node that dies stops refreshing, its entries
expire and the sweepers re-count their subjects.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Literal

import msgspec
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from server.chat.device import VisitorDevice, VisitorInfoIn, device_of
from server.outage import Outage
from server.outbox.envelope import Envelope
from server.outbox.events import EventType
from server.redis_client import Keys, is_cluster, presence_bucket, presence_buckets

log = logging.getLogger(__name__)

REDIS_UNAVAILABLE = (RedisConnectionError, RedisTimeoutError, OSError)

Kind = Literal["visitor", "agent"]
Status = Literal["online", "away", "offline"]
LOCATION_TTL_SECONDS = 3600
TRAIL_LENGTH = 20
VISITOR_STATE_TTL_SECONDS = 30 * 86_400
"""Page trail and device of a visitor outlive the visit: the side panel shows them afterwards."""
STATUS_TTL_SECONDS = 86_400
SWEEP_BATCH = 500
SWEEP_ROUNDS = 100
JOIN_BATCH = 1000
HEARTBEAT_BATCH = 5000
SCRIPT_CONCURRENCY = 4

CHOICE_TTL_SECONDS = 365 * 86_400

# Drop dead entries, then if no socket is left clear the status and say what it was.
_FINALIZE = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if redis.call('ZCARD', KEYS[1]) == 0 then
  redis.call('ZREM', KEYS[3], ARGV[2])
  return redis.call('GETDEL', KEYS[2])
end
return false
"""


# A batch of one project's sockets of one kind, joining or refreshed by a heartbeat (every key
# shares the project's hash tag, so it runs on a cluster). KEYS: the project's set, then per
# subject its sockets and status keys. ARGV: expiry (ms), sockets TTL (ms), status TTL (s), join
# ("1": the status is set online if absent, and the subjects so set are returned; else its TTL
# is refreshed), then per subject: its id, how many sockets, their members. A subject's sockets
# are written before its status, so the sweeper's atomic re-count either sees the socket (and
# keeps the status) or ran before it (and the SET NX reports online again).
_ENTRIES = """
local expiry, sockets_ttl, status_ttl, join = ARGV[1], ARGV[2], ARGV[3], ARGV[4] == '1'
local seconds = tostring(tonumber(expiry) / 1000)
local arrived = {}
local a = 5
for k = 2, #KEYS, 2 do
  local id, count = ARGV[a], tonumber(ARGV[a + 1])
  a = a + 2
  for i = 1, count do
    redis.call('ZADD', KEYS[k], expiry, ARGV[a])
    a = a + 1
  end
  redis.call('PEXPIRE', KEYS[k], sockets_ttl)
  redis.call('ZADD', KEYS[1], 'GT', seconds, id)
  if join then
    if redis.call('SET', KEYS[k + 1], 'online', 'NX', 'EX', status_ttl) then
      arrived[#arrived + 1] = id
    end
  else
    redis.call('EXPIRE', KEYS[k + 1], status_ttl)
  end
end
return arrived
"""


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


@dataclass(frozen=True, slots=True)
class Subject:
    project_id: int
    kind: Kind
    id: str
    """Visitor uid, or the agent's user id as text."""

    @property
    def sockets_key(self) -> str:
        return Keys.presence_sockets(self.project_id, self.kind, self.id)

    @property
    def status_key(self) -> str:
        return Keys.presence_status(self.project_id, self.kind, self.id)

    @property
    def project_set(self) -> str:
        if self.kind == "visitor":
            return Keys.visitor_presence(self.project_id)
        return Keys.agent_presence(self.project_id)

    def encode(self) -> str:
        return f"{self.project_id}|{self.kind}|{self.id}"

    @classmethod
    def decode(cls, text: str) -> Subject:
        project, kind, subject = text.split("|", 2)
        if kind not in ("visitor", "agent"):
            raise ValueError(kind)
        return cls(int(project), kind, subject)  # type: ignore[arg-type]


Entry = tuple[Subject, int]
"""One socket of a subject: the subject and the socket's number on this node."""


class Location(msgspec.Struct):
    url: str
    title: str
    at: float


class Presence:
    def __init__(
        self,
        redis: Redis,
        *,
        node_id: str,
        grace_ms: int,
        ttl_ms: int,
        publish: Callable[[Envelope], Awaitable[None]],
        agent_idle_ms: int = 300_000,
    ) -> None:
        self._redis = redis
        self._agent_idle_ms = agent_idle_ms
        self._node_id = node_id
        self._grace_ms = grace_ms
        self._ttl_ms = ttl_ms
        self._publish = publish
        self._finalize: Any = redis.register_script(_FINALIZE)
        self._entries_script: Any = redis.register_script(_ENTRIES)
        self._cluster = is_cluster(redis)
        self._buckets = presence_buckets(redis)
        self.entries: Callable[[], Iterator[Entry]] = lambda: iter(())
        """This node's live entries, read afresh at every heartbeat; set by the gateway (its
        sockets are the record: presence keeps no per-socket copy of them)."""
        self._joins: dict[Entry, None] = {}
        """Joins not yet written to Redis (a socket that leaves first is taken out again)."""
        self._join_writer: asyncio.Task[None] | None = None
        self._outage = Outage(log, "Redis (presence)")
        """While Redis is down the sweeper and heartbeat fail every round: log the outage, not each."""

    def _member(self, number: int) -> str:
        return f"{self._node_id}:{number}"

    def _all_sockets(self, subject: Subject) -> str:
        return Keys.all_sockets(presence_bucket(subject.project_id, self._buckets))

    def _pending(self, subject: Subject) -> str:
        return Keys.presence_pending(presence_bucket(subject.project_id, self._buckets))

    def _activity(self, subject: Subject) -> str:
        return Keys.agent_activity(presence_bucket(subject.project_id, self._buckets))

    def connect(self, subject: Subject, number: int) -> None:
        """A socket of ``subject`` joined; ``online`` is reported if the subject was offline.

        Returns at once: joins are written in batches (one pipeline for all the sockets that
        joined meanwhile), which keeps a connection storm cheap in Redis round trips and memory.
        """
        self._joins[(subject, number)] = None
        if self._join_writer is None or self._join_writer.done():
            self._join_writer = asyncio.get_running_loop().create_task(self._write_joins())

    async def _write_joins(self) -> None:
        while self._joins:
            batch = list(itertools.islice(self._joins, JOIN_BATCH))
            for entry in batch:
                del self._joins[entry]
            try:
                await self._register(batch)
            except REDIS_UNAVAILABLE as error:
                self._outage.failed(error)
            except Exception:
                log.exception("registering %d sockets' presence failed", len(batch))

    async def _register(self, entries: list[Entry]) -> None:
        if not entries:
            return
        arrived = await self._write(entries, int(time.time() * 1000) + self._ttl_ms, join=True)
        changes: list[tuple[Subject, Status]] = []
        for subject in arrived:
            status: Status = "online"
            if subject.kind == "agent":
                status = await self._arrive(subject)
            if status != "offline":
                changes.append((subject, status))
        await self._announce(changes)

    async def _arrive(self, subject: Subject) -> Status:
        """An agent's first socket: take the status they chose, and start their idle clock."""
        chosen = await self._redis.get(Keys.agent_presence_choice(int(subject.id)))
        status: Status = "online"
        if chosen is not None and _text(chosen) in ("away", "offline"):
            status = _text(chosen)  # type: ignore[assignment]
            await self._redis.set(subject.status_key, status, xx=True, ex=STATUS_TTL_SECONDS)
        await self._redis.zadd(self._activity(subject), {subject.encode(): time.time()})
        return status

    async def disconnect(self, subject: Subject, number: int) -> None:
        """A socket left; the subject is re-counted after the grace period."""
        self._joins.pop((subject, number), None)
        member = self._member(number)
        due_ms = int(time.time() * 1000) + self._grace_ms
        # Three keys in three slots on a cluster, so no transaction: the re-count is scheduled
        # first, so a failure part-way leaves at worst a socket entry that expires by itself.
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.zadd(
                self._pending(subject), {subject.encode(): due_ms}, gt=True
            )  # GT still adds new members
            pipe.zrem(subject.sockets_key, member)
            pipe.zrem(self._all_sockets(subject), f"{subject.encode()}|{member}")
            await pipe.execute()

    async def set_status(self, subject: Subject, status: Status) -> None:
        """Set a present agent's status; reported only when it changes (and only while present)."""
        previous = await self._redis.set(subject.status_key, status, xx=True, get=True, ex=STATUS_TTL_SECONDS)
        if previous is not None and _text(previous) != status:
            await self._announce([(subject, status)])

    async def choose(self, user_id: int, project_ids: Iterable[int], status: Status) -> None:
        """An agent chooses online, away or offline (shown offline while connected).

        The choice is kept (every tab and every later connection follows it); ``online`` means
        "online while I am active": the idle sweep may still turn the agent away.
        """
        await self._redis.set(Keys.agent_presence_choice(user_id), status, ex=CHOICE_TTL_SECONDS)
        now = time.time()
        for project_id in project_ids:
            subject = Subject(project_id, "agent", str(user_id))
            await self._redis.zadd(self._activity(subject), {subject.encode(): now})
            await self.set_status(subject, status)

    async def activity(self, user_id: int, project_ids: Iterable[int]) -> None:
        """Input in one of the agent's tabs: restart the idle clock, and end an automatic away."""
        chosen = await self._redis.get(Keys.agent_presence_choice(user_id))
        automatic = chosen is None or _text(chosen) == "online"
        now = time.time()
        for project_id in project_ids:
            subject = Subject(project_id, "agent", str(user_id))
            await self._redis.zadd(self._activity(subject), {subject.encode(): now})
            if automatic:
                await self.set_status(subject, "online")

    async def _sweep_idle(self, now: float) -> None:
        """Agents with no input for the idle time, online by choice, turn away (automatically)."""
        buckets = [Keys.agent_activity(bucket) for bucket in range(self._buckets)]
        for key, idle in zip(
            buckets, await self._ranges(buckets, now - self._agent_idle_ms / 1000), strict=True
        ):
            for raw in idle:
                text = _text(raw)
                if await self._redis.zrem(key, text) != 1:
                    continue  # another node claimed it
                try:
                    subject = Subject.decode(text)
                except ValueError:
                    continue
                current = await self._redis.get(subject.status_key)
                if current is not None and _text(current) == "online":
                    await self.set_status(subject, "away")

    async def _ranges(self, keys: list[str], until: float) -> list[list[Any]]:
        """The first members of each sorted set scored up to ``until``, in one round trip."""
        async with self._redis.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.zrangebyscore(key, "-inf", until, start=0, num=SWEEP_BATCH)
            found: list[list[Any]] = await pipe.execute()
        return found

    async def heartbeat(self) -> None:
        """Refresh this node's entries so they outlive it by at most the TTL.

        Every socket of the node, every beat: the process's largest Redis work. So it is a few
        commands per batch, not five per socket: one script call per project and kind (its keys
        share the project's hash tag, so it runs on a cluster too) and one multi-member ``ZADD``
        per sweep bucket (on one server one pipeline for the scripts; on a cluster a few script
        calls at a time in parallel).
        ``bench/presence.py`` measures it.
        """
        expiry = int(time.time() * 1000) + self._ttl_ms
        entries = self.entries()
        while batch := list(itertools.islice(entries, HEARTBEAT_BATCH)):
            await self._beat(batch, expiry)

    async def _beat(self, batch: list[Entry], expiry: int) -> None:
        await self._write(batch, expiry, join=False)

    async def _write(self, batch: list[Entry], expiry: int, *, join: bool) -> list[Subject]:
        """Write a batch of sockets: the sweep buckets first (one multi-member ZADD each, so every
        socket can be expired by any node before it counts), then one script per project and
        kind. Returns the subjects that came online (``join`` only)."""
        groups: dict[tuple[int, str], dict[Subject, list[str]]] = {}
        buckets: dict[str, dict[str, int]] = {}
        for subject, number in batch:
            member = self._member(number)
            groups.setdefault((subject.project_id, subject.kind), {}).setdefault(subject, []).append(member)
            buckets.setdefault(self._all_sockets(subject), {})[f"{subject.encode()}|{member}"] = expiry
        async with self._redis.pipeline(transaction=False) as pipe:
            for key, scored in buckets.items():
                pipe.zadd(key, scored)
            await pipe.execute()
        scripts: list[tuple[list[str], list[Any]]] = []
        for subjects in groups.values():
            keys = [next(iter(subjects)).project_set]
            args: list[Any] = [expiry, self._ttl_ms * 2, STATUS_TTL_SECONDS, "1" if join else "0"]
            for subject, members in subjects.items():
                keys += [subject.sockets_key, subject.status_key]
                args += [subject.id, len(members), *members]
            scripts.append((keys, args))
        results = await self._run_scripts(self._entries_script, scripts)
        arrived: list[Subject] = []
        for subjects, ids in zip(groups.values(), results, strict=True):
            by_id = {subject.id: subject for subject in subjects}
            arrived += [by_id[_text(raw)] for raw in ids or ()]
        return arrived

    async def drop(self, entries: list[Entry]) -> None:
        """On shutdown: remove these entries at once (grace still applies to the subjects)."""
        self._joins.clear()
        due_ms = int(time.time() * 1000) + self._grace_ms
        for start in range(0, len(entries), 1000):
            async with self._redis.pipeline(transaction=False) as pipe:
                for subject, number in entries[start : start + 1000]:
                    member = self._member(number)
                    pipe.zrem(subject.sockets_key, member)
                    pipe.zrem(self._all_sockets(subject), f"{subject.encode()}|{member}")
                    pipe.zadd(self._pending(subject), {subject.encode(): due_ms})
                await pipe.execute()

    async def sweep(self) -> None:
        """Expire dead nodes' sockets and re-count the subjects whose grace period is over.

        A node's death is a storm (all its entries expire at once), so each step is a pipeline
        for the whole batch, not round trips per entry: claim (ZREM decides which node's sweeper
        handles an entry), then act on what this node won; while batches come back full, it goes
        round again (up to :data:`SWEEP_ROUNDS` times), so a dead node's 50,000 visitors are
        re-counted in one sweep, not over a hundred sweeps a second or so apart.
        """
        now_ms = int(time.time() * 1000)
        for _ in range(SWEEP_ROUNDS):
            if not await self._sweep_round(now_ms):
                break
        await self._sweep_idle(now_ms / 1000)

    async def _sweep_round(self, now_ms: int) -> bool:
        """One batch per bucket of expired sockets and due re-counts; True when a batch was full."""
        socket_sets = [Keys.all_sockets(bucket) for bucket in range(self._buckets)]
        found = await self._ranges(socket_sets, now_ms)
        full = any(len(members) >= SWEEP_BATCH for members in found)
        expired = await self._claim(socket_sets, found)
        if expired:
            async with self._redis.pipeline(transaction=False) as pipe:
                for entry in expired:
                    subject_text, member = entry.rsplit("|", 1)
                    with contextlib.suppress(ValueError):
                        subject = Subject.decode(subject_text)
                        pipe.zrem(subject.sockets_key, member)
                        pipe.zadd(self._pending(subject), {subject_text: now_ms}, nx=True)
                await pipe.execute()
        pending_sets = [Keys.presence_pending(bucket) for bucket in range(self._buckets)]
        subjects = []
        due = await self._ranges(pending_sets, now_ms)
        full = full or any(len(members) >= SWEEP_BATCH for members in due)
        for text in await self._claim(pending_sets, due):
            with contextlib.suppress(ValueError):
                subjects.append(Subject.decode(text))
        calls = [
            ([subject.sockets_key, subject.status_key, subject.project_set], [now_ms, subject.id])
            for subject in subjects
        ]
        previous = await self._run_scripts(self._finalize, calls)
        gone: list[tuple[Subject, Status]] = [
            (subject, "offline")
            for subject, status in zip(subjects, previous, strict=True)
            if status is not None and _text(status) != "offline"
        ]
        await self._announce(gone)
        return full

    async def _claim(self, keys: list[str], found: list[list[Any]]) -> list[str]:
        """ZREM each member found in its key, in one pipeline: those this node removed are its own."""
        candidates = [(key, _text(raw)) for key, members in zip(keys, found, strict=True) for raw in members]
        if not candidates:
            return []
        async with self._redis.pipeline(transaction=False) as pipe:
            for key, member in candidates:
                pipe.zrem(key, member)
            removed = await pipe.execute()
        return [member for (_, member), won in zip(candidates, removed, strict=True) if won == 1]

    async def _run_scripts(self, script: Any, calls: list[tuple[list[str], list[Any]]]) -> list[Any]:
        """Run ``script`` once per (keys, args), results in order: one pipeline on one server; on a
        cluster (whose pipeline refuses scripts) a few calls at a time, as its node pools raise
        rather than wait when exhausted."""
        if not calls:
            return []
        if not self._cluster:
            async with self._redis.pipeline(transaction=False) as pipe:
                for keys, args in calls:
                    await script(keys=keys, args=args, client=pipe)
                results: list[Any] = await pipe.execute()
            return results
        limit = asyncio.Semaphore(SCRIPT_CONCURRENCY)

        async def bounded(keys: list[str], args: list[Any]) -> Any:
            async with limit:
                return await script(keys=keys, args=args)

        return list(await asyncio.gather(*(bounded(keys, args) for keys, args in calls)))

    async def run_sweeper(self, interval: float) -> None:
        while True:
            try:
                await self.sweep()
                self._outage.recovered()
            except asyncio.CancelledError:
                raise
            except REDIS_UNAVAILABLE as error:
                self._outage.failed(error)
            except Exception:
                log.exception("presence sweep failed")
            await asyncio.sleep(interval)

    async def run_heartbeat(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                await self.heartbeat()  # may touch nothing: only the sweep (always a read) ends an outage
            except asyncio.CancelledError:
                raise
            except REDIS_UNAVAILABLE as error:
                self._outage.failed(error)
            except Exception:
                log.exception("presence heartbeat failed")

    async def navigate(self, project_id: int, visitor_uid: str, url: str, title: str) -> None:
        """Record the page a visitor is on (with a TTL) and tell the project's agents."""
        at = time.time()
        location = msgspec.json.encode(Location(url=url, title=title, at=at))
        trail = Keys.visitor_trail(project_id, visitor_uid)
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.set(Keys.visitor_location(project_id, visitor_uid), location, ex=LOCATION_TTL_SECONDS)
            pipe.lpush(trail, location)
            pipe.ltrim(trail, 0, TRAIL_LENGTH - 1)
            pipe.expire(trail, VISITOR_STATE_TTL_SECONDS)
            await pipe.execute()
        await self._publish(
            Envelope(
                type=EventType.VISITOR_NAVIGATED,
                project_id=project_id,
                at=at,
                data={"visitor_uid": visitor_uid, "url": url, "title": title},
            )
        )

    async def report_device(self, project_id: int, visitor_uid: str, info: VisitorInfoIn) -> VisitorDevice:
        """Store what the widget reports of the visitor's browser (parsed) and tell the agents."""
        device = device_of(info, time.time())
        await self._redis.set(
            Keys.visitor_device(project_id, visitor_uid),
            msgspec.json.encode(device),
            ex=VISITOR_STATE_TTL_SECONDS,
        )
        await self._publish(
            Envelope(
                type=EventType.VISITOR_UPDATED,
                project_id=project_id,
                at=device.at,
                data={"visitor_uid": visitor_uid, "device": msgspec.to_builtins(device)},
            )
        )
        return device

    async def _announce(self, changes: list[tuple[Subject, Status]]) -> None:
        """Publish ``presence.changed``: one event per project for all of its changes at hand.

        A storm (a node's thousands of sockets expiring, a reconnect wave) is then a few events
        carrying lists, not one per visitor; every gateway also coalesces what it delivers to
        its agents to at most one event per project per 250 ms (:mod:`server.realtime.fanout`).
        """
        by_project: dict[int, list[dict[str, Any]]] = {}
        for subject, status in changes:
            by_project.setdefault(subject.project_id, []).append(presence_change(subject, status))
        now = time.time()
        for project_id, listed in by_project.items():
            await self._publish(
                Envelope(
                    type=EventType.PRESENCE_CHANGED, project_id=project_id, at=now, data={"changes": listed}
                )
            )


def presence_change(subject: Subject, status: Status) -> dict[str, Any]:
    """One entry of ``presence.changed``'s ``changes``: ``{kind, status, visitor_uid | user_id}``."""
    change: dict[str, Any] = {"kind": subject.kind, "status": status}
    if subject.kind == "visitor":
        change["visitor_uid"] = subject.id
    else:
        change["user_id"] = int(subject.id)
    return change
