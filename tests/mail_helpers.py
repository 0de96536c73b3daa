"""Mail in tests: run the worker's mail jobs in this process, and a real SMTP server on loopback.

``run_mail_jobs`` runs a SAQ worker (burst mode: until the queue is empty) with the real jobs of
``tasks/jobs.py`` on the test Redis. ``SMTPSink`` is aiosmtpd on 127.0.0.1 (the one fake the
house rules allow: a thing outside the system, on loopback) that keeps what it receives.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import re
import socket
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller
from saq import Worker

from server.mail.delivery import dev_mailbox
from server.mail.messages import Mail
from server.queue import make_queue
from server.redis_client import make_redis
from server.settings import MailSettings, Settings
from tasks.jobs import send_invitation, send_mail, send_password_reset

LINK = re.compile(r"https?://\S+?token=([A-Za-z0-9_\-]+)")


def with_smtp(settings: Settings, smtp_url: str | None) -> Settings:
    mail: MailSettings = dataclasses.replace(settings.mail, smtp_url=smtp_url)
    return dataclasses.replace(settings, mail=mail)


async def run_mail_jobs(settings: Settings) -> None:
    """Run every queued job (and the jobs they queue) with the worker's real mail jobs."""
    queue = make_queue(settings.queue_redis)
    redis = make_redis(settings.redis)

    async def startup(ctx: Any) -> None:
        ctx["settings"] = settings
        ctx["redis"] = redis

    finished = asyncio.Event()

    async def after_process(ctx: Any) -> None:
        finished.set()

    worker = Worker(
        queue,
        [send_invitation, send_password_reset, send_mail],
        startup=startup,
        after_process=after_process,
        concurrency=2,
    )
    # Like tasks/worker.py: skip SAQ's sweep at start, which would abort (and re-run) a job that a
    # slot is just dequeuing. (SAQ's burst mode aborts the job in flight when it stops: not used.)
    await queue.redis.set(queue.namespace("sweep"), 1, ex=60, nx=True)
    running = asyncio.create_task(worker.start())
    try:
        async with asyncio.timeout(30):
            while await _unfinished(queue) and not running.done():
                finished.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(finished.wait(), 0.2)  # woken by each finished job
        if running.done():
            running.result()
    finally:
        await worker.stop()
        running.cancel()
        await queue.disconnect()
        await redis.aclose()


async def _unfinished(queue: Any) -> int:
    """Jobs queued, running or waiting for a retry."""
    return sum([await queue.count(kind) for kind in ("queued", "active", "incomplete")])


def token_in(text: str) -> str:
    """The token of the first link in a mail body."""
    match = LINK.search(text)
    assert match, text
    return match.group(1)


async def last_mail_to(redis: Any, address: str) -> Mail:
    """The newest mail to ``address`` in the development mailbox."""
    for mail in await dev_mailbox(redis):
        if mail.to == address:
            return mail
    raise AssertionError(f"no mail to {address} in the development mailbox")


class _Handler:
    def __init__(self, sink: SMTPSink) -> None:
        self.sink = sink

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = message_from_bytes(envelope.content, policy=policy.default)
        assert isinstance(message, EmailMessage)
        self.sink.received.append((list(envelope.rcpt_tos), message))
        return "250 OK"


class SMTPSink:
    """A real SMTP server on loopback that keeps every message it receives."""

    def __init__(self) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.received: list[tuple[list[str], EmailMessage]] = []
        self.controller = Controller(_Handler(self), hostname="127.0.0.1", port=self.port)

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.controller.start()

    def stop(self) -> None:
        self.controller.stop()

    def to(self, address: str) -> list[EmailMessage]:
        return [message for recipients, message in self.received if address in recipients]


def text_part(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain",))
    assert part is not None
    content: str = part.get_content()
    return content
