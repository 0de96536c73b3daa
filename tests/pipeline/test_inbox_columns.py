"""The worker keeps the inbox columns: preview, who wrote last, waiting since, the writers' read marks."""

from __future__ import annotations

from typing import Any

from server.chat.mailbox import Mailboxes
from server.chat.persistence import persist_mailboxes
from server.chat.schemas import MessageKind, SendMessage
from server.chat.sending import MessageSender
from server.chat.tables import Conversation, ConversationRead
from server.tenancy.queries import actor_for
from server.tenancy.tables import ProjectMember
from tests.factories import make_member, make_project, make_user


async def _flush(mailboxes: Mailboxes) -> None:
    await persist_mailboxes(mailboxes, await mailboxes.stale(older_than=-3600))


async def _row(conversation_id: int) -> dict[str, Any]:
    row = await Conversation.select().where(Conversation.id == conversation_id).first()
    assert row is not None
    return row


async def test_preview_waiting_time_and_read_marks_follow_the_messages(
    sender: MessageSender, mailboxes: Mailboxes
) -> None:
    project = await make_project()
    agent = await make_user()
    await make_member(project, agent, ProjectMember.ProjectRole.AGENT)
    actor = await actor_for(agent)

    async def visitor_says(body: str) -> None:
        await sender.send(
            SendMessage(kind=MessageKind.VISITOR, project_id=project.id, visitor_uid="v_w", body=body)
        )

    async def agent_says(
        conversation_id: int, body: str, kind: MessageKind = MessageKind.AGENT_REPLY
    ) -> None:
        command = SendMessage(kind=kind, project_id=project.id, conversation_id=conversation_id, body=body)
        await sender.send(command, actor=actor)

    await visitor_says("Hello,\n  is anyone   there?")
    await _flush(mailboxes)
    conversation_id = (await Conversation.select(Conversation.id).first())["id"]  # type: ignore[index]
    first = await _row(conversation_id)
    assert first["last_message_preview"] == "Hello, is anyone there?"
    assert first["last_message_kind"] == "visitor"
    assert first["waiting_since"] is not None

    await visitor_says("hello??")
    await _flush(mailboxes)
    second = await _row(conversation_id)
    assert second["waiting_since"] == first["waiting_since"], "waiting counts from the first unanswered one"

    await agent_says(conversation_id, "a note for colleagues", MessageKind.AGENT_NOTE)
    await _flush(mailboxes)
    noted = await _row(conversation_id)
    assert noted["waiting_since"] == first["waiting_since"], "a note is no answer"
    assert (noted["last_message_kind"], noted["last_message_preview"]) == ("note", "a note for colleagues")

    await agent_says(conversation_id, "Yes, how can I help?" + "!" * 300)
    await _flush(mailboxes)
    answered = await _row(conversation_id)
    assert answered["waiting_since"] is None
    assert answered["last_message_kind"] == "agent" and len(answered["last_message_preview"]) == 160
    read = await ConversationRead.select().where(ConversationRead.user == agent.id).first()
    assert read is not None and read["seq"] == answered["last_seq"] == 4

    # Reply and new question in one round: waiting again, from this round.
    await agent_says(conversation_id, "Anything else?")
    await visitor_says("Yes, one more thing")
    await _flush(mailboxes)
    again = await _row(conversation_id)
    assert again["waiting_since"] is not None and again["waiting_since"] > first["waiting_since"]
    assert again["last_message_kind"] == "visitor"
