"""Messages of a project deleted after they were accepted are dropped as housekeeping, not a failure."""

from __future__ import annotations

import logging

import pytest
from redis.asyncio import Redis

from server.chat.mailbox import DEAD_LETTERS, Mailboxes
from server.chat.persistence import persist_mailboxes
from server.chat.schemas import MessageKind, SendMessage
from server.chat.sending import MessageSender
from server.chat.tables import Message
from server.tenancy.tables import Project
from tests.factories import make_project


async def test_a_deleted_projects_messages_are_dropped_at_info_with_a_count(
    sender: MessageSender, mailboxes: Mailboxes, redis: Redis, caplog: pytest.LogCaptureFixture
) -> None:
    doomed, kept = await make_project(), await make_project()
    for project, count in ((doomed, 3), (kept, 1)):
        for n in range(count):
            await sender.send(
                SendMessage(kind=MessageKind.VISITOR, project_id=project.id, visitor_uid="v_1", body=f"m{n}")
            )
    await Project.delete().where(Project.id == doomed.id)
    keys = await mailboxes.stale(older_than=-3600)
    with caplog.at_level(logging.INFO, logger="server.chat.persistence"):
        outcome = await persist_mailboxes(mailboxes, keys)
    assert outcome.dropped == [] and outcome.deleted_project_messages == 3 and outcome.stored == 1
    lines = [r for r in caplog.records if "deleted project" in r.getMessage()]
    assert [(r.levelno, r.getMessage()) for r in lines] == [
        (logging.INFO, f"3 message(s) of deleted project(s) [{doomed.id}] dropped")
    ]
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert await redis.llen(DEAD_LETTERS) == 0
    assert await Message.count() == 1
