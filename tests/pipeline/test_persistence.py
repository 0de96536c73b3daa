"""The worker's transaction, run in the test process: conversations, seq, idempotency, events."""

from __future__ import annotations

import asyncio
import uuid

from server.chat.mailbox import Mailboxes
from server.chat.persistence import persist_mailboxes
from server.chat.schemas import MessageKind, SendMessage
from server.chat.sending import MessageSender
from server.chat.tables import Conversation, Message, Visitor
from server.outbox.events import EventType
from server.outbox.tables import OutboxEvent
from tests.factories import make_conversation, make_project, make_visitor
from tests.pipeline.helpers import events_of, messages_by_conversation


async def _queued_mailboxes(mailboxes: Mailboxes) -> list[str]:
    return await mailboxes.stale(older_than=-3600)


async def test_a_first_visitor_message_creates_visitor_conversation_message_and_events(
    sender: MessageSender, mailboxes: Mailboxes
) -> None:
    project = await make_project()
    ack = await sender.send(
        SendMessage(kind=MessageKind.VISITOR, project_id=project.id, visitor_uid="v_first", body="  hi  ")
    )
    outcome = await persist_mailboxes(mailboxes, await _queued_mailboxes(mailboxes))
    assert outcome.stored == 1 and outcome.conversations_created == 1

    visitor = await Visitor.objects().get(Visitor.uid == "v_first")
    assert visitor is not None and visitor.project == project.id
    conversation = await Conversation.objects().get(Conversation.visitor == visitor.id)
    assert conversation is not None
    assert conversation.last_seq == 1 and conversation.last_message_at is not None
    message = await Message.objects().get(Message.conversation == conversation.id)
    assert message is not None
    assert (message.seq, message.body, message.client_msg_id) == (1, "hi", ack.client_msg_id)

    created = await events_of(EventType.CONVERSATION_CREATED)
    assert [event["payload"]["data"]["visitor_uid"] for event in created] == ["v_first"]
    (event,) = await events_of(EventType.MESSAGE_CREATED)
    assert event["payload"]["conversation_id"] == conversation.id and event["payload"]["seq"] == 1
    assert event["payload"]["data"]["client_msg_id"] == str(ack.client_msg_id)
    assert event["payload"]["data"]["private"] is False
    assert await mailboxes.stale(older_than=-3600) == []


async def test_a_rerun_changes_nothing(sender: MessageSender, mailboxes: Mailboxes, redis: object) -> None:
    project = await make_project()
    client_msg_id = uuid.uuid4()
    command = SendMessage(
        kind=MessageKind.VISITOR,
        project_id=project.id,
        visitor_uid="v_twice",
        body="once",
        client_msg_id=client_msg_id,
    )
    await sender.send(command)
    keys = await _queued_mailboxes(mailboxes)
    raw = await mailboxes.read(keys, 100)
    await persist_mailboxes(mailboxes, keys)
    # The job runs again after a crash between commit and pop: the same items are back.
    for key, items in raw.items():
        await mailboxes.redis.rpush(key, *items)
    # And the client retried with the same id after a 503.
    await sender.send(command)
    again = await persist_mailboxes(mailboxes, keys)
    assert again.stored == 0 and again.duplicates == 2

    assert await Message.count() == 1
    assert await Conversation.count() == 1
    assert len(await events_of(EventType.MESSAGE_CREATED)) == 1
    (conversation,) = await Conversation.select(Conversation.last_seq)
    assert conversation["last_seq"] == 1


async def test_a_burst_keeps_its_order_across_many_jobs(sender: MessageSender, mailboxes: Mailboxes) -> None:
    project = await make_project()
    sender.max_batch = 3  # many small jobs
    acks = []
    for index in range(50):
        acks.append(
            sender.send(
                SendMessage(
                    kind=MessageKind.VISITOR, project_id=project.id, visitor_uid="v_burst", body=f"m{index}"
                )
            )
        )
    sent = await asyncio.gather(*acks)
    keys = await _queued_mailboxes(mailboxes)
    # Several concurrent drains of the same mailbox, as with SAQ concurrency > 1.
    await asyncio.gather(*(persist_mailboxes(mailboxes, keys) for _ in range(5)))
    (rows,) = (await messages_by_conversation()).values()
    assert [row["seq"] for row in rows] == list(range(1, 51))
    assert [row["body"] for row in rows] == [f"m{index}" for index in range(50)]
    assert [row["client_msg_id"] for row in rows] == [ack.client_msg_id for ack in sent]


async def test_a_resolved_conversation_reopens_when_the_visitor_writes_again(
    sender: MessageSender, mailboxes: Mailboxes
) -> None:
    project = await make_project()
    visitor = await make_visitor(project, uid="v_back")
    conversation = await make_conversation(
        project, visitor, status=Conversation.Status.RESOLVED.value, last_seq=4
    )
    await sender.send(
        SendMessage(kind=MessageKind.VISITOR, project_id=project.id, visitor_uid="v_back", body="again")
    )
    outcome = await persist_mailboxes(mailboxes, await _queued_mailboxes(mailboxes))
    assert outcome.conversations_reopened == 1 and outcome.conversations_created == 0
    reopened = await Conversation.objects().get(Conversation.id == conversation.id)
    assert reopened is not None
    assert (reopened.status, reopened.last_seq) == ("open", 5)
    (changed,) = await events_of(EventType.CONVERSATION_STATUS_CHANGED)
    assert changed["payload"]["data"]["status"] == "open"
    assert changed["payload"]["data"]["previous_status"] == "resolved"
    assert await OutboxEvent.count() == 2
