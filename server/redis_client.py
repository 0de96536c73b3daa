"""Redis connections and key names.

Every key Parley writes is named here, under the ``parley:`` namespace, so operations can
find, expire and clear them (a deleted project's keys are cleared by a job).

Three deployments, one code path, chosen by the URL (``docs/scaling.md``):

- ``redis://``, ``rediss://``, ``unix://``: one server (the default, embedded Valkey in dev/tests);
- ``redis+sentinel://host:port[,host:port...]/service``: a Sentinel-managed primary with replicas;
  clients ask the sentinels for the primary and follow a failover on their own;
- ``redis+cluster://host:port[,host:port...]``: a Redis Cluster (any reachable nodes; the rest
  are discovered). :func:`make_redis` then returns a ``RedisCluster``, which speaks the same
  commands; the few places where a cluster differs (pub/sub, which key shares a slot) ask
  :func:`is_cluster`.

Hash tags. On a cluster the keys one script or transaction touches must hash to one slot, so
they share a hash tag (the part in braces): ``{p:<project>}`` for a project's keys (presence,
locations), ``{m:<shard>}`` for one drain shard's mailboxes and their bookkeeping (see
``server/chat/mailbox.py``), ``{u:<user>}`` for a user's session set. Keys that are read and
written alone carry no tag and spread over every slot by their whole name. No tag is shared by
everything. On one server the braces are just characters.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager, nullcontext
from contextvars import ContextVar
from typing import Any, cast
from urllib.parse import parse_qs, urlsplit

import hiredis
from redis.asyncio import BlockingConnectionPool, Redis, RedisCluster
from redis.asyncio.cluster import ClusterNode, ClusterPipeline
from redis.asyncio.connection import Connection, SSLConnection, UnixDomainSocketConnection
from redis.asyncio.sentinel import Sentinel, SentinelConnectionPool, SentinelManagedConnection
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import MovedError, NoScriptError

from server.settings import RedisSettings

PREFIX = "parley"
CLUSTER_PRESENCE_BUCKETS = 16


class _HiredisPacking:
    """Pack commands with hiredis (C) instead of redis-py's asyncio Python packer.

    The Python packer costs about 6 µs per argument: a 50-key MGET spends more time being
    packed than travelling. Command names with a space ("CONFIG GET") are split like redis-py does.
    """

    def pack_command(self, *args: Any) -> list[bytes]:
        if isinstance(args[0], str) and " " in args[0]:
            args = (*args[0].split(), *args[1:])
        return [hiredis.pack_command(args)]

    def pack_commands(self, commands: Any) -> list[bytes]:
        return [b"".join(self.pack_command(*command)[0] for command in commands)]


class FastConnection(_HiredisPacking, Connection):
    pass


class FastSSLConnection(_HiredisPacking, SSLConnection):
    pass


class FastUnixConnection(_HiredisPacking, UnixDomainSocketConnection):
    pass


_HOLDING_SLOT: ContextVar[bool] = ContextVar("parley_cluster_slot", default=False)


class ParleyCluster(RedisCluster):
    """redis-py's cluster client, initialised before its first command, waiting for connections.

    Initialised first: measured with redis-py 8.1, 50 concurrent INCRs as a new client's first
    commands incremented 52 times (commands that raced the client's start-up were sent twice);
    once initialised, 500 concurrent INCRs incremented exactly 500 times.

    Waiting: a cluster node's pool raises ``MaxConnectionsError`` when it is exhausted, where our
    single-server pool waits. Worse, redis-py 8.1's cluster pipeline takes that error (a
    ``ConnectionError``) for a failed node: it closes every connection of the client, sleeps
    250 ms and tries again. Measured on the realtime node: a burst of 200 socket joins then
    re-opened about 300 connections, and the first messages after it were acknowledged 130 ms
    late (bench/e2e.py on a cluster, the p99 three times the single server's). So every command,
    pipeline and direct node write (:func:`send_to_node_of`) first takes one of
    ``max_connections - 2`` slots. Each uses at most one connection of any node, so no node's
    pool runs out; the two left are for the client's own slot-map reads. Work started while
    holding a slot (a pipeline's per-node tasks, its retries) does not take another.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._slots = asyncio.Semaphore(max(1, int(kwargs["max_connections"]) - 2))

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Hold one of the client's slots (or nothing more, if this task holds one already)."""
        if _HOLDING_SLOT.get():
            yield
            return
        async with self._slots:
            token = _HOLDING_SLOT.set(True)
            try:
                yield
            finally:
                _HOLDING_SLOT.reset(token)

    async def execute_command(self, *args: Any, **kwargs: Any) -> Any:
        async with self.slot():
            if self._initialize:
                await self.initialize()
            return await super().execute_command(*args, **kwargs)

    def pipeline(self, transaction: Any | None = None, shard_hint: Any | None = None) -> ClusterPipeline:
        if shard_hint:
            return super().pipeline(transaction, shard_hint)  # raises, as redis-py does
        return ParleyClusterPipeline(self, transaction)  # type: ignore[abstract]  # as redis-py makes its own


class ParleyClusterPipeline(ClusterPipeline):
    """A cluster pipeline that holds one of its client's slots while it runs (see :class:`ParleyCluster`)."""

    async def execute(self, raise_on_error: bool = True, allow_redirections: bool = True) -> list[Any]:
        client = cast(ParleyCluster, self.cluster_client)
        async with client.slot():
            return await super().execute(raise_on_error, allow_redirections)


class FastSentinelConnection(_HiredisPacking, SentinelManagedConnection):
    pass


class BlockingSentinelPool(SentinelConnectionPool, BlockingConnectionPool):
    """Sentinel's pool (asks the sentinels where the primary is) that waits when exhausted like ours."""


_CONNECTION_CLASSES = {"redis": FastConnection, "rediss": FastSSLConnection, "unix": FastUnixConnection}
CLUSTER_SCHEME = "redis+cluster"
SENTINEL_SCHEME = "redis+sentinel"


def _addresses(netloc: str) -> list[tuple[str, int]]:
    """``host:port,host:port`` (the default port 6379, or 26379 for sentinels, is not assumed)."""
    found = []
    for part in netloc.rpartition("@")[2].split(","):
        host, _, port = part.strip().rpartition(":")
        found.append((host.strip("[]"), int(port)))
    return found


def is_cluster(redis: object) -> bool:
    """Whether ``redis`` is a Redis Cluster client (typed as ``Redis``: it has the same commands)."""
    return isinstance(redis, RedisCluster)


async def publish_all(redis: Redis, messages: Sequence[tuple[str, bytes]]) -> None:
    """Publish ``(channel, message)`` pairs in one round trip, each channel's in the given order.

    On one server (or Sentinel): ``PUBLISH``. On a cluster: ``SPUBLISH`` (sharded pub/sub), which
    reaches only the node that owns the channel's slot and the subscribers connected to it, where
    a classic ``PUBLISH`` is copied to every node of the cluster. redis-py's cluster pipeline
    sends each node's commands on one connection in order, so a project's events keep theirs.
    """
    if not messages:
        return
    sharded = is_cluster(redis)
    async with redis.pipeline(transaction=False) as pipe:
        for channel, message in messages:
            if sharded:
                pipe.spublish(channel, message)
            else:
                pipe.publish(channel, message)
        await pipe.execute()


class ChannelReader:
    """A pub/sub connection for per-project channels: ``SSUBSCRIBE`` on a cluster, else ``SUBSCRIBE``.

    The subscribing half of :func:`publish_all`. On a cluster redis-py keeps one connection per
    node that owns a subscribed channel's slot, so a realtime node hears only its projects' shards.
    Messages come back as redis-py's dicts (``type`` ``message`` or ``smessage``).
    """

    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self.sharded = is_cluster(redis)
        self.pubsub: Any = redis.pubsub()

    async def subscribe(self, *channels: str) -> None:
        if self.sharded:
            await self.redis.initialize()  # learn the slots first
            await self.pubsub.ssubscribe(*channels)
        else:
            await self.pubsub.subscribe(*channels)

    async def unsubscribe(self, *channels: str) -> None:
        if self.sharded:
            await self.pubsub.sunsubscribe(*channels)
        else:
            await self.pubsub.unsubscribe(*channels)

    async def get_message(self, within: float | None) -> dict[str, Any] | None:
        """The next message, or None after ``within`` seconds (None: wait as long as it takes).

        redis-py answers None for a subscribe confirmation it leaves out, before the time is up:
        this keeps waiting instead.
        """
        loop = asyncio.get_running_loop()
        deadline = None if within is None else loop.time() + within
        while True:
            left = None if deadline is None else max(0.0, deadline - loop.time())
            if self.sharded:
                found = await self.pubsub.get_sharded_message(ignore_subscribe_messages=True, timeout=left)
            else:
                found = await self.pubsub.get_message(ignore_subscribe_messages=True, timeout=left)
            if found is not None or (deadline is not None and loop.time() >= deadline):
                return cast(dict[str, Any] | None, found)

    async def aclose(self) -> None:
        await self.pubsub.aclose()


async def script_then_wait(
    redis: Redis,
    script: str,
    sha: str,
    keys: Sequence[str],
    args: Sequence[Any],
    *,
    replicas: int,
    timeout_ms: int,
) -> tuple[Any, int]:
    """Run a Lua script, then ``WAIT replicas timeout_ms`` on the same connection; (result, replicas).

    WAIT counts the writes of its own connection, so both go out together: in a pipeline on one
    server, and on a cluster straight on a connection of the node that owns the keys' slot (a
    cluster pipeline refuses scripts). A node without the script (new, or just promoted) gets it
    loaded and the pair is sent again: the WAIT after a NOSCRIPT ran alone, harmlessly.
    """
    for attempt in range(2):
        try:
            if is_cluster(redis):
                cluster = cast(RedisCluster, redis)
                return await _script_then_wait_on_node(cluster, sha, keys, args, replicas, timeout_ms)
            async with redis.pipeline(transaction=False) as pipe:
                pipe.evalsha(sha, len(keys), *keys, *args)
                pipe.execute_command("WAIT", replicas, timeout_ms)
                result, replicated = await pipe.execute()
            return result, int(replicated)
        except NoScriptError:
            if attempt:
                raise
            await redis.script_load(script)
    raise AssertionError("unreachable")


async def _script_then_wait_on_node(
    redis: RedisCluster, sha: str, keys: Sequence[str], args: Sequence[Any], replicas: int, timeout_ms: int
) -> tuple[Any, int]:
    script: Any = ("EVALSHA", sha, len(keys), *keys, *args)
    wait: Any = ("WAIT", replicas, timeout_ms)
    result, replicated = await send_to_node_of(redis, keys[0], [script, wait])
    return result, int(replicated)


async def send_to_node_of(redis: RedisCluster, key: str, commands: Sequence[Any]) -> list[Any]:
    """Send ``commands`` in one write on one connection of the node owning ``key``'s slot.

    For what a cluster pipeline refuses (scripts, MGET) or cannot keep on one connection (WAIT).
    The caller makes sure every key of the commands shares ``key``'s slot. A connection error
    or a MOVED reply makes the client learn the cluster's layout again before it is raised.
    """
    async with redis.slot() if isinstance(redis, ParleyCluster) else nullcontext():
        if redis._initialize:
            await redis.initialize()
        node = redis.get_node_from_key(key)
        if node is None:
            raise RedisConnectionError(f"no cluster node serves {key!r}")
        connection = node.acquire_connection()
        try:
            await connection.send_packed_command(
                b"".join(hiredis.pack_command(command) for command in commands)
            )
            return [await connection.read_response() for _ in commands]
        except (ConnectionError, OSError, RedisConnectionError, MovedError):
            await connection.disconnect()
            await redis.nodes_manager.initialize()
            raise
        except BaseException:
            await connection.disconnect()
            raise
        finally:
            node.release(connection)


def make_redis(settings: RedisSettings, *, max_connections: int | None = None, timeout: float = 5.0) -> Redis:
    """A client on a blocking pool: under a burst callers wait for a connection instead of failing.

    A cluster client keeps a pool per node (``max_connections`` each); it is returned typed as
    ``Redis`` because Parley calls only commands both offer (see the module docstring).
    """
    parts = urlsplit(settings.url)
    if parts.scheme == CLUSTER_SCHEME:
        cluster = ParleyCluster(
            startup_nodes=[ClusterNode(host, port) for host, port in _addresses(parts.netloc)],
            max_connections=max_connections or settings.max_connections,
            socket_connect_timeout=timeout,
            password=parts.password,
            username=parts.username,
        )
        return cast(Redis, cluster)
    if parts.scheme == SENTINEL_SCHEME:
        service = parts.path.strip("/")
        query = parse_qs(parts.query)
        sentinel = Sentinel(_addresses(parts.netloc), socket_connect_timeout=timeout)  # type: ignore[no-untyped-call]
        client: Redis = sentinel.master_for(
            service,
            connection_pool_class=BlockingSentinelPool,
            connection_class=FastSentinelConnection,
            max_connections=max_connections or settings.max_connections,
            timeout=timeout,
            socket_connect_timeout=timeout,
            health_check_interval=30,
            password=parts.password,
            db=int(query.get("db", ["0"])[0]),
        )
        return client
    pool = BlockingConnectionPool.from_url(
        settings.url,
        max_connections=max_connections or settings.max_connections,
        timeout=timeout,
        socket_connect_timeout=timeout,
        health_check_interval=30,
    )
    # Set after from_url: for unix:// and rediss:// URLs redis-py's URL parsing picks the connection
    # class itself and would override a connection_class keyword argument.
    pool.connection_class = _CONNECTION_CLASSES[urlsplit(settings.url).scheme]
    return Redis(connection_pool=pool)


class Keys:
    """Key names. Methods return the full key; nothing else builds key strings."""

    @staticmethod
    def session(token_hash: str) -> str:
        return f"{PREFIX}:session:{token_hash}"

    @staticmethod
    def user_sessions(user_id: int) -> str:
        """Set of a user's session token hashes, so deactivation ends them all."""
        return f"{PREFIX}:user-sessions:{user_id}"

    @staticmethod
    def worker_heartbeat() -> str:
        return f"{PREFIX}:worker:heartbeat"

    @staticmethod
    def rate_limit(scope: str, subject: str) -> str:
        return f"{PREFIX}:ratelimit:{scope}:{subject}"

    @staticmethod
    def visitor_location(project_id: int, visitor_uid: str) -> str:
        """JSON ``{"url", "title", "at"}`` of the page a visitor is on; set on ``navigate``, with a TTL."""
        return f"{_project(project_id)}:visitor:{visitor_uid}:location"

    @staticmethod
    def visitor_trail(project_id: int, visitor_uid: str) -> str:
        """List of the visitor's last 20 navigations, newest first: JSON ``{"url", "title", "at"}``."""
        return f"{_project(project_id)}:visitor:{visitor_uid}:trail"

    @staticmethod
    def visitor_device(project_id: int, visitor_uid: str) -> str:
        """JSON :class:`server.chat.device.VisitorDevice` from the widget's ``visitor:info``, with a TTL."""
        return f"{_project(project_id)}:visitor:{visitor_uid}:device"

    @staticmethod
    def visitor_presence(project_id: int) -> str:
        """Sorted set: member = visitor uid, score = Unix time until which the visitor counts as online.

        The gateway raises the score on connect and on each heartbeat; a member whose score is in
        the past is offline (its node stopped refreshing it). One ZMSCORE reads a whole page.
        """
        return f"{_project(project_id)}:presence:visitors"

    @staticmethod
    def agent_presence(project_id: int) -> str:
        """Sorted set like :meth:`visitor_presence`, for the project's agents (member = user id)."""
        return f"{_project(project_id)}:presence:agents"

    @staticmethod
    def password_reset(token_hash: str) -> str:
        """A one-use password-reset link: value ``<user id>:<link generation>``, with its expiry as TTL."""
        return f"{PREFIX}:password-reset:{token_hash}"

    SYSTEM_SAMPLES = f"{PREFIX}:system:samples"
    """Hash ``<time bucket> -> sample JSON``: the last hour of the pipeline, one sample per
    heartbeat (``server/samples.py``), for the System page's sparklines."""

    DEV_MAILBOX = f"{PREFIX}:dev-mailbox"
    """List of the last mails "sent" without an SMTP server (development), newest first, as JSON."""

    @staticmethod
    def deleted_project(project_id: int) -> str:
        """Tombstone of a deleted project, kept while its visitors' tokens may still be valid.

        Outside ``project_pattern`` on purpose: the job that clears a deleted project's keys must
        not remove it.
        """
        return f"{PREFIX}:deleted-project:{project_id}"

    @staticmethod
    def project_by_public_key(public_key: str) -> str:
        """Application cache (role 5): the widget's project lookup by public key."""
        return f"{PREFIX}:cache:project-key:{public_key}"

    # The send path's mailboxes (server/chat/mailbox.py). Everything the append script touches
    # belongs to one drain shard, so it all carries the shard's tag ``{m:<shard>}``; a project's
    # mailboxes all live in one shard.
    DEAD_LETTERS = f"{PREFIX}:mailbox-dead"
    """Messages that can never be stored (their conversation or project was deleted), with why."""

    @staticmethod
    def dirty_mailboxes(shard: int) -> str:
        """Sorted set of one shard's non-empty mailboxes, scored by when they were last written."""
        return f"{_shard(shard)}:mailboxes"

    @staticmethod
    def mailbox(shard: int, project_id: int, stream: str) -> str:
        """List of one sender's accepted messages waiting for the worker, in arrival order."""
        return f"{_shard(shard)}:p:{project_id}:mailbox:{stream}"

    @staticmethod
    def send_limit(shard: int, scope: str, subject: str) -> str:
        """A send-path rate-limit counter, in the shard of the project it counts for."""
        return f"{_shard(shard)}:ratelimit:{scope}:{subject}"

    @staticmethod
    def drain_mailboxes(shard: int) -> str:
        """Sorted set of one drain shard's non-empty mailboxes (every project's): what its drain reads."""
        return f"{_shard(shard)}:drain:mailboxes"

    @staticmethod
    def drain_token(shard: int) -> str:
        """Counter of appends to one drain shard since its drain job was queued; absent: no drain due."""
        return f"{_shard(shard)}:drain:token"

    @staticmethod
    def drain_wake(shard: int) -> str:
        """List of at most one item, pushed by appends while a drain is due: wakes a lingering drain."""
        return f"{_shard(shard)}:drain:wake"

    # Presence (server/realtime/presence.py). The sweep sets are written on every connect,
    # disconnect and heartbeat of every socket: one key each would put all of that on one cluster
    # node, so they are split in :func:`presence_buckets` buckets by project (one bucket, the
    # historical names, on one server). Each key is used alone, so they carry no hash tag.
    @staticmethod
    def all_sockets(bucket: int) -> str:
        """Sorted set of the live sockets (subject|node|socket) of one bucket's projects, scored by expiry."""
        return _bucketed("presence:sockets", bucket)

    @staticmethod
    def presence_pending(bucket: int) -> str:
        """Sorted set of one bucket's subjects whose offline grace period is running, scored by its end."""
        return _bucketed("presence:pending", bucket)

    @staticmethod
    def agent_activity(bucket: int) -> str:
        """Sorted set of one bucket's agents (``project|agent|user``) scored by their last input (Unix s);
        the presence sweeper turns those idle too long to away and drops them until they act again."""
        return _bucketed("presence:agent-activity", bucket)

    @staticmethod
    def presence_sockets(project_id: int, kind: str, subject_id: str | int) -> str:
        """Sorted set of one visitor's or agent's sockets, scored by heartbeat expiry."""
        return f"{_project(project_id)}:presence:{kind}:{subject_id}:sockets"

    @staticmethod
    def presence_status(project_id: int, kind: str, subject_id: str | int) -> str:
        """online / away of one visitor or agent."""
        return f"{_project(project_id)}:presence:{kind}:{subject_id}:status"

    @staticmethod
    def agent_presence_choice(user_id: int) -> str:
        """The status an agent chose (online / away / offline), applied to every project and tab."""
        return f"{PREFIX}:agent:{user_id}:presence-choice"

    @staticmethod
    def realtime_node(node_id: str) -> str:
        """Channel of one realtime process, for events aimed at its sockets."""
        return f"{PREFIX}:rt:node:{node_id}"

    @staticmethod
    def project_events(project_id: int) -> str:
        """Pub/sub channel of every event of one project (outbox relay -> realtime nodes)."""
        return f"{PREFIX}:events:p:{project_id}"

    # Screenshots (server/screenshots/): the application cache (role 5) and the renders in flight.
    # All of one project, so the project's clean-up clears them and one script may touch them together.
    @staticmethod
    def screenshot_image(project_id: int, digest: str) -> str:
        """The encoded image of one (normalised URL, viewport), with the cache's TTL."""
        return f"{_project(project_id)}:screenshot:image:{digest}"

    @staticmethod
    def screenshot_render(project_id: int, digest: str) -> str:
        """Single-flight lock of one render (``SET NX``, short expiry): ``queued`` or ``rendering``."""
        return f"{_project(project_id)}:screenshot:render:{digest}"

    @staticmethod
    def screenshot_waiters(project_id: int, digest: str) -> str:
        """Set of the handles waiting for the render in flight: each gets its result."""
        return f"{_project(project_id)}:screenshot:waiters:{digest}"

    @staticmethod
    def screenshot_outcome(project_id: int, render_id: str) -> str:
        """How one render ended (JSON ``{"state", "code"?, "message"?}``), kept as long as its handles."""
        return f"{_project(project_id)}:screenshot:outcome:{render_id}"

    @staticmethod
    def screenshot_snapshot_request(project_id: int, snapshot_id: str) -> str:
        """JSON :class:`~server.screenshots.schemas.SnapshotRequest` while web waits for the
        visitor's widget to send its DOM snapshot (one use, short expiry)."""
        return f"{_project(project_id)}:screenshot:snapshot-request:{snapshot_id}"

    @staticmethod
    def screenshot_snapshot(project_id: int, render_id: str) -> str:
        """The sanitised page a widget sent, until the worker that draws it takes it (short expiry)."""
        return f"{_project(project_id)}:screenshot:snapshot:{render_id}"

    @staticmethod
    def screenshot_handle(project_id: int, handle: str) -> str:
        """Hash of one request for a screenshot: ``info`` (JSON) and the ``render`` it joined."""
        return f"{_project(project_id)}:screenshot:handle:{handle}"

    SCREENSHOT_RENDERERS = f"{PREFIX}:screenshots:renderers"
    """Hash: screenshot worker id -> JSON ``{"ok", "reason", "until"}``: can it render, said lately."""

    @staticmethod
    def project_patterns(project_id: int) -> list[str]:
        """Globs matching every key that belongs to one project (its own, and its mailboxes).

        Braces are plain characters in a glob; on a cluster the first pattern names one slot.
        """
        return [f"{_project(project_id)}:*", f"{PREFIX}:{{m:*}}:p:{project_id}:*"]


def presence_buckets(redis: object) -> int:
    """How many buckets the presence sweep sets are split in: 1 on one server, 16 on a cluster."""
    return CLUSTER_PRESENCE_BUCKETS if is_cluster(redis) else 1


def presence_bucket(project_id: int, buckets: int) -> int:
    return project_id % buckets


def _bucketed(name: str, bucket: int) -> str:
    return f"{PREFIX}:{name}" if bucket == 0 else f"{PREFIX}:{name}:{bucket}"


def _project(project_id: int) -> str:
    """The prefix of a project's keys, with the project's hash tag."""
    return f"{PREFIX}:{{p:{project_id}}}"


def _shard(shard: int) -> str:
    """The prefix of one mailbox drain shard's keys, with the shard's hash tag."""
    return f"{PREFIX}:{{m:{shard}}}"
