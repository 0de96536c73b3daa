"""Stopping the realtime process's background tasks for sure."""

from __future__ import annotations

import asyncio
import logging

log = logging.getLogger(__name__)

STOP_TASKS_SECONDS = 5.0


async def cancel_all(tasks: list[asyncio.Task[None]], within: float = STOP_TASKS_SECONDS) -> None:
    """Cancel the tasks and wait for them, cancelling again whatever is still running.

    One cancel is not always enough: a cancellation that lands just as an awaited call completes
    can be swallowed (Python 3.11's ``wait_for``, and code built on it), and a ``while True`` loop
    task then sleeps on for ever. Seen here: the presence sweeper busy with a thousand closed
    sockets kept SIGTERM from ever ending the process.
    """
    pending = {task for task in tasks if not task.done()}
    deadline = asyncio.get_running_loop().time() + within
    while pending and asyncio.get_running_loop().time() < deadline:
        for task in pending:
            task.cancel()
        _, pending = await asyncio.wait(pending, timeout=0.2)
    for task in tasks:
        if task.done() and not task.cancelled() and task.exception() is not None:
            log.warning("background task %s ended with %r", task.get_name(), task.exception())
    if pending:
        log.warning("background tasks still running at exit: %s", ", ".join(t.get_name() for t in pending))
