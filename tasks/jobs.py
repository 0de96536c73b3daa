"""SAQ jobs of the worker node. Thin: each calls one domain service and returns its counts."""

from __future__ import annotations

from typing import TYPE_CHECKING

from server.chat import persistence
from server.chat.mailbox import Shard
from server.chat.persistence import MessagesDropped
from server.chat.sending import drain_job

if TYPE_CHECKING:
    from tasks.worker import WorkerContext


async def persist_messages(
    ctx: WorkerContext, *, mailboxes: list[str] | None = None, drain: str | None = None
) -> dict[str, int]:
    """Store queued messages: drain one shard (``drain``, see ``server.chat.mailbox``) or ``mailboxes``.

    Transient failures (PostgreSQL or Redis away, a deadlock) raise and SAQ retries the job with
    backoff. A drain still busy at its time limit, or after its fair share while other jobs
    wait for a slot, queues the next drain job of its shard (behind them) and ends. Messages that
    can never be stored (their conversation was deleted meanwhile) are set aside by the service;
    the job then ends FAILED at once, naming them, instead of retrying.
    """
    fast_path = ctx["fast_path"]
    if drain is not None:
        shard = Shard.parse(drain)
        queue = ctx["worker"].queue

        async def others_waiting() -> bool:
            return await queue.count("queued") > 0

        outcome = await persistence.drain(
            ctx["mailboxes"],
            shard,
            fast_path=fast_path,
            pace=ctx["drain_pace"],
            others_waiting=others_waiting,
        )
        if not outcome.drained:
            await queue.enqueue(drain_job(shard))
    else:
        outcome = await persistence.persist_mailboxes(ctx["mailboxes"], mailboxes or [], fast_path=fast_path)
    if outcome.dropped:
        job = ctx.get("job")
        if job is not None:
            job.retries = job.attempts  # not retryable: fail now, visibly, with the reason
        raise MessagesDropped("; ".join(outcome.dropped))
    return outcome.counts()


async def clear_project_keys(ctx: WorkerContext, *, project_id: int) -> dict[str, int]:
    """After a project is deleted: remove its ephemeral state and caches from Redis."""
    from server.tenancy.services import clear_project_keys as clear

    return {"removed": await clear(ctx["redis"], project_id)}


async def reopen_snoozed(ctx: WorkerContext) -> dict[str, int]:
    """Cron: reopen the snoozed conversations whose time has come."""
    from server.chat.services import reopen_due_snoozes

    return {"reopened": await reopen_due_snoozes()}


async def send_invitation(ctx: WorkerContext, *, invitation_id: int, token: str) -> dict[str, int]:
    """Compose an invitation's mail (wording by whether the address has an account) and queue it."""
    from server.mail.delivery import queue_mail
    from server.tenancy.invitations import invitation_mail

    mail = await invitation_mail(invitation_id, token, ctx["settings"].mail.public_url)
    if mail is not None:
        await queue_mail(ctx["worker"].queue, mail)
    return {"queued": int(mail is not None)}


async def send_password_reset(ctx: WorkerContext, *, email: str) -> dict[str, int]:
    """Issue a reset link for an active account of ``email`` and queue its mail; nothing otherwise."""
    from server.accounts.resets import issue_password_reset, password_reset_mail
    from server.mail.delivery import queue_mail

    issued = await issue_password_reset(ctx["redis"], email)
    if issued is not None:
        user, token = issued
        await queue_mail(
            ctx["worker"].queue, password_reset_mail(user, token, ctx["settings"].mail.public_url)
        )
    return {"queued": int(issued is not None)}


async def send_mail(ctx: WorkerContext, *, mail: dict[str, str]) -> dict[str, str]:
    """Deliver one mail (SMTP, or the development mailbox); SMTP failures raise and SAQ retries."""
    import msgspec

    from server.mail.delivery import deliver
    from server.mail.messages import Mail

    return {"via": await deliver(ctx["redis"], ctx["settings"].mail, msgspec.convert(mail, Mail))}
