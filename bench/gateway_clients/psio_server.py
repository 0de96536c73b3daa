"""Baseline: python-socketio (asgi mode) on uvicorn, on the same workload as the gateway.

Every message on a Redis channel is broadcast to every socket of the ``/agent`` namespace.
usage: python psio_server.py <port> <redis url> <channel>
"""

from __future__ import annotations

import asyncio
import json
import sys

import socketio
import uvicorn
from redis.asyncio import Redis

port, redis_url, channel = int(sys.argv[1]), sys.argv[2], sys.argv[3]
sio = socketio.AsyncServer(async_mode="asgi", transports=["websocket"], cors_allowed_origins="*")


@sio.on("connect", namespace="/agent")
async def connect(sid: str, environ: dict, auth: object) -> None:
    await sio.enter_room(sid, "a", namespace="/agent")


async def pump() -> None:
    redis = Redis.from_url(redis_url)
    pubsub = redis.pubsub(ignore_subscribe_messages=True)
    await pubsub.subscribe(channel)
    async for message in pubsub.listen():
        envelope = json.loads(message["data"])
        await sio.emit(envelope["type"], envelope, room="a", namespace="/agent")


async def main() -> None:
    config = uvicorn.Config(
        socketio.ASGIApp(sio), host="127.0.0.1", port=port, log_level="warning", ws_ping_interval=None
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(pump())
    print("listening", flush=True)
    await server.serve()
    task.cancel()


asyncio.run(main())
