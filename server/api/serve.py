"""The ``web`` process: granian serving the app factory."""

from __future__ import annotations

from granian import Granian
from granian.constants import Interfaces

from server.settings import get_settings


def serve() -> None:
    settings = get_settings()  # fail here, with one line, before granian forks workers
    Granian(
        "server.web:create_app",
        address=settings.web.host,
        port=settings.web.port,
        interface=Interfaces.ASGI,
        factory=True,
        workers=settings.web_workers,
        log_access=False,
    ).serve()
