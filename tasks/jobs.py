"""SAQ jobs of the worker node. Thin: each calls one domain service and returns its counts."""

from __future__ import annotations

from typing import TYPE_CHECKING

from server.chat.persistence import MessagesDropped, persist_mailboxes

if TYPE_CHECKING:
    from tasks.worker import WorkerContext


async def persist_messages(ctx: WorkerContext, *, mailboxes: list[str]) -> dict[str, int]:
    """Store the messages waiting in ``mailboxes`` (one micro-batch's worth, or more).

    Transient failures (PostgreSQL or Redis away, a deadlock) raise and SAQ retries the job with
    backoff. Messages that can never be stored (their conversation was deleted meanwhile) are set
    aside by the service; the job then ends FAILED at once, naming them, instead of retrying.
    """
    outcome = await persist_mailboxes(
        ctx["mailboxes"], mailboxes, publisher=ctx["publisher"] if ctx["fast_path"] else None
    )
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
