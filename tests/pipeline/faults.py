"""Tools for the fault tests: a real worker process to kill, a stream of senders, the checks."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from server.chat.schemas import MessageKind, SendMessage
from server.chat.sending import MessageSender
from server.errors import RateLimited, Unavailable
from tests.processes import PYTHON, start, stop

WORKER = [PYTHON, "-m", "saq", "tasks.worker.settings", "-v"]


@dataclass
class Worker:
    """One ``saq tasks.worker.settings`` process at a time, restartable, killable with -9."""

    env: dict[str, str]
    logs: Path
    process: subprocess.Popen[bytes] | None = None
    runs: int = 0

    def start(self) -> None:
        self.runs += 1
        self.process = start(WORKER, self.env, self.logs / f"worker{self.runs}.log")

    def kill9(self) -> None:
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None:
            stop(self.process, timeout=30)

    def log_text(self) -> str:
        return "\n".join(
            path.read_text(errors="replace")[-3000:] for path in sorted(self.logs.glob("worker*.log"))
        )


@contextmanager
def worker(env: dict[str, str], logs: Path) -> Iterator[Worker]:
    handle = Worker(env, logs)
    handle.start()
    try:
        yield handle
    finally:
        handle.stop()


@dataclass
class Stream:
    """Visitors sending numbered messages at a steady pace; 503s and 429s are retried with the same id."""

    sender: MessageSender
    project_id: int
    visitors: int
    per_visitor: int
    interval: float
    """Seconds between two messages of one visitor."""
    open_ended: bool = False
    """Keep sending after ``per_visitor`` messages each until :meth:`finish`: a test that breaks
    something mid-stream then knows the stream is still running, however slow the machine."""
    accepted: dict[str, list[uuid.UUID]] = field(default_factory=dict)
    unavailable: int = 0
    _finished: asyncio.Event = field(default_factory=asyncio.Event)

    def finish(self) -> None:
        """An open-ended stream's visitors stop once they have sent ``per_visitor`` messages."""
        self._finished.set()

    async def run(self) -> None:
        await asyncio.gather(*(self._visitor(f"v_fault_{index}") for index in range(self.visitors)))

    @property
    def total(self) -> int:
        return sum(len(ids) for ids in self.accepted.values())

    async def _visitor(self, uid: str) -> None:
        ids = self.accepted.setdefault(uid, [])
        index = -1
        while (index := index + 1) < self.per_visitor or (self.open_ended and not self._finished.is_set()):
            command = SendMessage(
                kind=MessageKind.VISITOR,
                project_id=self.project_id,
                visitor_uid=uid,
                body=f"{uid} #{index}",
                client_msg_id=uuid.uuid4(),
            )
            while True:
                try:
                    ack = await self.sender.send(command)
                    break
                except Unavailable:
                    self.unavailable += 1
                    await asyncio.sleep(0.05)
                except RateLimited as limited:
                    await asyncio.sleep(limited.retry_after)
            ids.append(ack.client_msg_id)
            await asyncio.sleep(self.interval)


STORED = """
SELECT v.uid, m.seq, m.client_msg_id FROM message m
JOIN conversation c ON c.id = m.conversation JOIN visitor v ON v.id = c.visitor
WHERE m.project = $1 ORDER BY v.uid, m.seq
"""


async def stored_count(connection: Any, project_id: int) -> int:
    count: int = await connection.fetchval("SELECT count(*) FROM message WHERE project = $1", project_id)
    return count


def check_exactly_once_in_order(rows: list[Any], accepted: dict[str, list[uuid.UUID]]) -> None:
    """Every accepted message stored once, in the order it was accepted, with seq 1..n per visitor."""
    stored: dict[str, list[Any]] = {}
    for row in rows:
        stored.setdefault(row["uid"], []).append(row)
    assert sorted(stored) == sorted(uid for uid, ids in accepted.items() if ids)
    for uid, ids in accepted.items():
        mine = stored.get(uid, [])
        assert [row["client_msg_id"] for row in mine] == ids, f"{uid}: stored ids differ from accepted ones"
        assert [row["seq"] for row in mine] == list(range(1, len(ids) + 1)), f"{uid}: seq not gap-free"
