"""The ``realtime`` process: a socketify server on REALTIME_HOST:REALTIME_PORT.

For now it holds its port and answers ``GET /healthz``; the Socket.IO gateway is built on it
by the realtime issue. socketify's default loop busy-polls (a whole core at 100%), so until the
event-driven asyncio integration lands this process drives libuv directly with a blocking
``uv_run``: zero CPU while idle. Signals then take their default action (terminate), which is
a clean stop for a process that holds no state.
"""

from __future__ import annotations

import json
import signal
import sys
from typing import Any

from socketify import App

from server.settings import configure_logging, get_settings

HEALTH_BODY = json.dumps({"status": "ok", "process": "realtime"})


def healthz(res: Any, req: Any) -> None:
    res.write_header("Content-Type", "application/json")
    res.end(HEALTH_BODY)


def not_found(res: Any, req: Any) -> None:
    res.write_status(404)
    res.write_header("Content-Type", "application/json")
    res.end(json.dumps({"code": "not_found", "message": "No such route on the realtime gateway."}))


def serve() -> None:
    settings = get_settings()
    configure_logging(settings)
    app = App()
    app.get("/healthz", healthz)
    app.any("/*", not_found)
    listen = settings.realtime

    def on_listen(config: Any) -> None:
        if config is None or getattr(config, "port", 0) <= 0:
            print(
                f"parley realtime: cannot listen on {listen.host}:{listen.port}", file=sys.stderr, flush=True
            )
            sys.exit(1)
        print(f"parley realtime: listening on {listen.host}:{listen.port}", flush=True)

    app.listen({"port": listen.port, "host": listen.host}, on_listen)
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, signal.SIG_DFL)
    app.loop.started = True
    app.loop.uv_loop.run()
