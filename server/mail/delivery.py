"""Sending mail: queued as a SAQ job (retried with backoff), delivered over SMTP by the worker.

Services call :func:`queue_mail`; the worker's ``send_mail`` job calls :func:`deliver`. With no
``SMTP_URL`` (development, tests) a mail is not sent but kept in the **development mailbox**, a
capped Redis list that :func:`dev_mailbox` reads (the console shows it to global admins), and the
log says so. ``PARLEY_ENV=production`` refuses to start without ``SMTP_URL`` unless
``MAIL_ENABLED=false``, so production can never "send" into that list by mistake.
"""

from __future__ import annotations

import logging
from email.message import EmailMessage
from email.utils import make_msgid
from urllib.parse import unquote, urlsplit

import aiosmtplib
import msgspec
from redis.asyncio import Redis
from saq.queue.base import Queue

from server.mail.messages import Mail
from server.redis_client import Keys
from server.settings import MailSettings

log = logging.getLogger(__name__)

SEND_MAIL_JOB = "send_mail"
SEND_ATTEMPTS = 6
"""SAQ counts attempts: the first try and five retries, with exponential backoff."""
DEV_MAILBOX_SIZE = 200
SMTP_TIMEOUT_SECONDS = 30


async def queue_mail(queue: Queue, mail: Mail) -> None:
    """Queue ``mail`` for the worker's ``send_mail`` job."""
    await queue.enqueue(
        SEND_MAIL_JOB,
        mail=msgspec.to_builtins(mail),
        retries=SEND_ATTEMPTS,
        retry_delay=2.0,
        retry_backoff=True,
        timeout=SMTP_TIMEOUT_SECONDS * 2,
    )


def email_message(mail: Mail, sender: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = mail.to
    message["Subject"] = mail.subject
    message["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2].rstrip(">") or "localhost")
    message.set_content(mail.text)
    message.add_alternative(mail.html, subtype="html")
    return message


async def deliver(redis: Redis, settings: MailSettings, mail: Mail) -> str:
    """Send ``mail`` now; returns where it went (``smtp``, ``dev-mailbox`` or ``disabled``).

    SMTP failures raise, so the job is retried.
    """
    if not settings.enabled:
        log.info("mail disabled (MAIL_ENABLED=false): not sending %r to %s", mail.subject, mail.to)
        return "disabled"
    if settings.smtp_url is None:
        async with redis.pipeline(transaction=True) as pipe:
            pipe.lpush(Keys.DEV_MAILBOX, msgspec.json.encode(mail))
            pipe.ltrim(Keys.DEV_MAILBOX, 0, DEV_MAILBOX_SIZE - 1)
            await pipe.execute()
        log.info(
            "no SMTP_URL: mail %r to %s kept in the development mailbox (Redis list %s; console: Mailbox)",
            mail.subject,
            mail.to,
            Keys.DEV_MAILBOX,
        )
        return "dev-mailbox"
    url = urlsplit(settings.smtp_url)
    implicit_tls = url.scheme == "smtps"
    await aiosmtplib.send(
        email_message(mail, settings.mail_from),
        hostname=url.hostname or "localhost",
        port=url.port or (465 if implicit_tls else 587),
        username=unquote(url.username) if url.username else None,
        password=unquote(url.password) if url.password else None,
        use_tls=implicit_tls,
        start_tls=None if not implicit_tls else False,  # None: STARTTLS when the server offers it
        timeout=SMTP_TIMEOUT_SECONDS,
    )
    log.info("mail %r sent to %s", mail.subject, mail.to)
    return "smtp"


async def dev_mailbox(redis: Redis, limit: int = 50) -> list[Mail]:
    """The newest mails kept by the development mailbox (empty when mail goes over SMTP)."""
    raw = await redis.lrange(Keys.DEV_MAILBOX, 0, max(limit, 1) - 1)
    return [msgspec.json.decode(item, type=Mail) for item in raw]
