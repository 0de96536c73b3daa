"""Small helpers shared by the pipeline tests."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from server.chat.tables import Message
from server.outbox.tables import OutboxEvent


async def eventually(check: Callable[[], Awaitable[bool]], *, within: float, what: str) -> None:
    """Poll ``check`` until it is true; generous timeouts keep speed out of pass/fail."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if await check():
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out after {within:g}s waiting for {what}")


async def messages_by_conversation() -> dict[int, list[dict[str, Any]]]:
    rows = (
        await Message.select(
            Message.conversation, Message.seq, Message.client_msg_id, Message.body, Message.sender_kind
        )
        .order_by(Message.conversation)
        .order_by(Message.seq)
    )
    grouped: dict[int, list[dict[str, Any]]] = {}
    for row in rows:
        grouped.setdefault(row["conversation"], []).append(row)
    return grouped


async def events_of(type: str) -> list[dict[str, Any]]:
    rows = await (
        OutboxEvent.select().where(OutboxEvent.type == type).order_by(OutboxEvent.id).output(load_json=True)
    )
    return list(rows)
