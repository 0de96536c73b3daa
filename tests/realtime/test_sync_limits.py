"""sync's limits: 200 messages per conversation per answer (then has_more), 50 conversations per call."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from server.chat.tables import Message
from server.realtime.handlers import MAX_SYNC_CONVERSATIONS, SYNC_PAGE
from server.tenancy.tables import ProjectMember
from tests.factories import make_conversation, make_member, make_project, make_user, make_visitor
from tests.realtime.conftest import GatewayProcess, connected
from tests.realtime.helpers import agent_auth, visitor_auth

pytestmark = pytest.mark.slow


async def test_sync_answers_200_messages_at_a_time_with_has_more(
    gateway: GatewayProcess, settings: Any
) -> None:
    assert SYNC_PAGE == 200  # what docs/protocol.md promises
    project = await make_project()
    chat = await make_conversation(project, await make_visitor(project, uid="v_long"), last_seq=450)
    await Message.insert(
        *[
            Message(
                project=project.id,
                conversation=chat.id,
                seq=seq,
                body=f"m{seq}",
                sender_kind="visitor",
                client_msg_id=uuid.uuid4(),
            )
            for seq in range(1, 451)
        ]
    )
    async with connected(gateway, "/visitor", visitor_auth(settings, project.id, "v_long")) as (client, _):

        async def page(after: int) -> dict[str, Any]:
            answer = await client.call("sync", {"conversations": {str(chat.id): after}}, namespace="/visitor")
            synced: dict[str, Any] = answer["conversations"][str(chat.id)]
            return synced

        seen: list[int] = []
        after, pages = 0, []
        while True:
            synced = await page(after)
            seqs = [m["seq"] for m in synced["messages"]]
            pages.append((len(seqs), synced["has_more"]))
            seen += seqs
            if not synced["has_more"]:
                break
            after = seqs[-1]
        assert pages == [(200, True), (200, True), (50, False)]
        assert seen == list(range(1, 451))  # every message once, in order, across the pages
        exactly = await page(250)  # exactly one page left: no more after it
        assert [m["seq"] for m in exactly["messages"]] == list(range(251, 451))
        assert exactly["has_more"] is False
        one_more = await page(249)
        assert len(one_more["messages"]) == 200 and one_more["has_more"] is True


async def test_sync_takes_at_most_50_conversations(gateway: GatewayProcess, settings: Any) -> None:
    assert MAX_SYNC_CONVERSATIONS == 50
    project = await make_project()
    agent = await make_user()
    await make_member(project, agent, ProjectMember.ProjectRole.AGENT)
    chats = [await make_conversation(project, await make_visitor(project)) for _ in range(51)]
    async with connected(gateway, "/agent", agent_auth(settings, agent.id)) as (client, _):
        fifty = await client.call(
            "sync", {"conversations": {str(chat.id): 0 for chat in chats[:50]}}, namespace="/agent"
        )
        assert set(fifty["conversations"]) == {str(chat.id) for chat in chats[:50]}
        assert "errors" not in fifty
        too_many = await client.call(
            "sync", {"conversations": {str(chat.id): 0 for chat in chats}}, namespace="/agent"
        )
    assert too_many["error"]["code"] == "invalid_payload", too_many
    assert "at most 50 conversations" in too_many["error"]["message"]
    assert "conversations" not in too_many
