"""The ``realtime`` process: the Socket.IO gateway on REALTIME_HOST:REALTIME_PORT.

``python -m server realtime``. Assembles the gateway (one SUBSCRIBER Redis connection, one
publisher pool, a PostgreSQL pool for reads, the send service), serves ``/healthz`` and
``/socket.io/``, and runs asyncio with libuv driven event-wise (:mod:`server.realtime.loop`).
SIGTERM and SIGINT close every socket with a normal close (clients reconnect elsewhere) and exit 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import logging
import signal
import sys
from typing import Any

from socketify import App

from server.chat.visitors import project_by_public_key
from server.errors import ErrorCode, NotFound
from server.realtime.access import AccessWatch
from server.realtime.auth import Authenticator, load_api_key_hook
from server.realtime.background import cancel_all
from server.realtime.config import RealtimeConfig, load_realtime_config
from server.realtime.fanout import Fanout
from server.realtime.gateway import Gateway
from server.realtime.handlers import Sender, Services
from server.realtime.loop import EventLoop
from server.realtime.presence import Presence
from server.realtime.store import Store
from server.redis_client import Keys, make_redis
from server.settings import Settings, configure_logging, get_settings
from server.tenancy.origins import AllowedOrigins

log = logging.getLogger(__name__)

HEALTH_BODY = json.dumps({"status": "ok", "process": "realtime"})


def healthz(res: Any, req: Any) -> None:
    res.write_header("Content-Type", "application/json")
    res.end(HEALTH_BODY)


def not_found(res: Any, req: Any) -> None:
    res.write_status(404)
    res.write_header("Content-Type", "application/json")
    res.end(json.dumps({"code": ErrorCode.NOT_FOUND, "message": "No such route on the realtime gateway."}))


def _make_sender(settings: Settings, redis: Any) -> tuple[Sender | None, Any]:
    """The pipeline's send service and its queue, or (None, None) when it is not installed."""
    try:
        from server.chat.mailbox import ReplicaAck
        from server.chat.sending import MessageSender
        from server.queue import make_queue
    except ImportError:
        log.warning("server.chat.sending is missing: message:send answers 'unavailable'")
        return None, None
    queue = make_queue(settings.queue_redis)
    sender: Sender = MessageSender(queue, redis, replica_ack=ReplicaAck.from_settings(settings.redis))
    return sender, queue


class Process:
    """Everything the realtime process owns, started and stopped in order."""

    def __init__(self, settings: Settings, config: RealtimeConfig) -> None:
        self.settings = settings
        self.config = config
        self.app = App()
        self.events = EventLoop(self.app)
        self.redis = make_redis(settings.redis)
        # Only a connection factory: the fan-out's one subscription task makes its connection from it.
        self.subscriber = make_redis(settings.redis, max_connections=1)
        self.store = Store()
        self.sender, self.queue = _make_sender(settings, self.redis)
        self.gateway: Gateway | None = None
        self.access: AccessWatch | None = None
        self.background: list[asyncio.Task[None]] = []
        self.exit_code = 0

    async def _widget_lookup(self, public_key: str) -> tuple[int, AllowedOrigins] | None:
        """The widget API's own cached lookup (Redis, dropped whenever the project row changes)."""
        try:
            project = await project_by_public_key(self.redis, public_key)
        except NotFound:
            return None
        return project.id, AllowedOrigins(project.allowed_origins)

    def build(self) -> Gateway:
        store = self.store
        fanout_holder: dict[str, Fanout] = {}

        async def publish(envelope: Any) -> None:
            await fanout_holder["fanout"].publish(envelope)

        async def visitor_of(conversation_id: int) -> str | None:
            owner = await store.conversation_owner(conversation_id)
            return owner.visitor_uid if owner else None

        presence = Presence(
            self.redis,
            node_id=self.config.node_id,
            grace_ms=self.config.presence_grace_ms,
            ttl_ms=self.config.presence_ttl_ms,
            publish=publish,
            agent_idle_ms=self.config.agent_idle_ms,
        )
        services = Services(
            store=store, presence=presence, publish=publish, sender=self.sender, emit_with_ack=_unset
        )
        gateway = Gateway(
            self.app,
            self.events,
            self.config,
            fanout=Fanout(
                self.redis,
                self.subscriber,
                publish_local=lambda topic, text: gateway.publish_local(topic, text),
                after_publish=self.events.wake,
                visitor_of_conversation=visitor_of,
                node_channel=Keys.realtime_node(self.config.node_id),
                on_gap=lambda: gateway.resync_all(),
                check_seconds=self.config.subscription_check_ms / 1000,
            ),
            presence=presence,
            authenticator=Authenticator(
                store, self.settings.security.secret_key, load_api_key_hook(), self._widget_lookup
            ),
            services=services,
        )
        fanout_holder["fanout"] = gateway.fanout
        self.gateway = gateway
        return gateway

    async def start(self) -> None:
        from server.database import engine

        await engine().start_connection_pool(max_size=self.settings.database.pool_size, min_size=1)
        assert self.gateway is not None
        await self.gateway.fanout.start()
        # Sockets that lose their access are dropped within a second (server/realtime/access.py).
        self.access = AccessWatch(self.gateway)
        await self.access.start()
        loop = asyncio.get_running_loop()
        sweep_every = max(0.2, min(1.0, self.config.presence_grace_ms / 2000))
        self.background = [
            loop.create_task(self.gateway.run_pinger(), name="pinger"),
            loop.create_task(self.gateway.presence.run_sweeper(sweep_every), name="presence-sweeper"),
            loop.create_task(
                self.gateway.presence.run_heartbeat(self.config.heartbeat_ms / 1000),
                name="presence-heartbeat",
            ),
        ]

    async def stop(self) -> None:
        assert self.gateway is not None
        await self.gateway.shutdown()
        await cancel_all(self.background)
        if self.access is not None:
            with contextlib.suppress(Exception):
                await self.access.stop()
        if self.sender is not None:
            with contextlib.suppress(Exception):
                await self.sender.aclose()  # type: ignore[attr-defined]
        await self.gateway.fanout.stop()
        from server.database import engine

        with contextlib.suppress(Exception):
            await engine().close_connection_pool()
        for client in (self.redis, self.subscriber):
            with contextlib.suppress(Exception):
                await client.aclose()
        if self.queue is not None:
            with contextlib.suppress(Exception):
                await self.queue.disconnect()


async def _unset(*args: Any) -> list[Any]:
    raise RuntimeError("emit_with_ack is set by the gateway")


def serve() -> None:
    settings = get_settings()
    config = load_realtime_config()
    configure_logging(settings)
    process = Process(settings, config)
    app, events = process.app, process.events
    gateway = process.build()
    app.get("/healthz", healthz)
    gateway.mount()
    app.any("/*", not_found)
    listen = settings.realtime
    app.listen({"port": listen.port, "host": listen.host}, lambda config: None)
    if getattr(app, "socket", None) is None:
        print(f"parley realtime: cannot listen on {listen.host}:{listen.port}", file=sys.stderr, flush=True)
        sys.exit(1)
    loop = events.asyncio_loop

    def on_signal() -> None:
        async def stop() -> None:
            try:
                await process.stop()
            finally:
                events.stop()

        loop.create_task(stop())

    async def start() -> None:
        try:
            await process.start()
        except Exception as error:
            print(f"parley realtime: cannot start: {error}", file=sys.stderr, flush=True)
            process.exit_code = 1
            events.stop()
            return
        gc.freeze()  # start-up objects live as long as the process: keep full collections short
        print(
            f"parley realtime: listening on {listen.host}:{listen.port} (node {config.node_id})", flush=True
        )

    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, on_signal)
    loop.create_task(start())
    events.run()
    if process.exit_code:
        sys.exit(process.exit_code)
