"""Status, assignment and read marks: each change records its event in the same transaction."""

from __future__ import annotations

import pytest

from server.chat.services import assign, change_status, mark_read
from server.chat.tables import Conversation
from server.errors import Forbidden, Invalid, NotFound
from server.outbox.events import EventType
from server.outbox.tables import OutboxEvent
from server.tenancy.access import Actor, GlobalRole, ProjectRole
from tests.factories import make_conversation, make_member, make_project, make_user, make_visitor
from tests.pipeline.helpers import events_of


async def _setup() -> tuple[int, int, Actor, int]:
    project = await make_project()
    agent = await make_user()
    await make_member(project, agent, ProjectRole.AGENT)
    conversation = await make_conversation(project, await make_visitor(project, uid="v_state"), last_seq=3)
    actor = Actor(user_id=agent.id, global_role=GlobalRole.USER, memberships={project.id: ProjectRole.AGENT})
    return project.id, conversation.id, actor, agent.id


async def test_change_status_records_status_changed() -> None:
    project_id, conversation_id, actor, agent_id = await _setup()
    state = await change_status(actor, project_id, conversation_id, "resolved")
    assert state.status == "resolved" and state.visitor_uid == "v_state"
    assert await change_status(actor, project_id, conversation_id, "resolved") == state  # no change, no event
    (event,) = await events_of(EventType.CONVERSATION_STATUS_CHANGED)
    assert event["payload"]["conversation_id"] == conversation_id
    data = event["payload"]["data"]
    assert (data["status"], data["previous_status"], data["changed_by"]) == ("resolved", "open", agent_id)
    stored = await Conversation.objects().get(Conversation.id == conversation_id)
    assert stored is not None and stored.status == "resolved"
    with pytest.raises(Invalid):
        await change_status(actor, project_id, conversation_id, "closed")


async def test_assign_records_assigned_and_checks_membership() -> None:
    project_id, conversation_id, actor, agent_id = await _setup()
    state = await assign(actor, project_id, conversation_id, agent_id)
    assert state.assignee_id == agent_id
    stranger = await make_user()
    with pytest.raises(Invalid):
        await assign(actor, project_id, conversation_id, stranger.id)
    await assign(actor, project_id, conversation_id, None)
    events = await events_of(EventType.CONVERSATION_ASSIGNED)
    assert [
        (e["payload"]["data"]["assignee_id"], e["payload"]["data"]["previous_assignee_id"]) for e in events
    ] == [
        (agent_id, None),
        (None, agent_id),
    ]


async def test_mark_read_records_the_reader_and_clamps_seq() -> None:
    project_id, conversation_id, actor, agent_id = await _setup()
    assert await mark_read(project_id, conversation_id, 99, actor=actor) == 3
    assert await mark_read(project_id, conversation_id, 2, visitor_uid="v_state") == 2
    with pytest.raises(NotFound):
        await mark_read(project_id, conversation_id, 2, visitor_uid="v_someone_else")
    readers = [e["payload"]["data"]["reader"] for e in await events_of(EventType.CONVERSATION_READ)]
    assert readers == [{"kind": "agent", "user_id": agent_id}, {"kind": "visitor", "visitor_uid": "v_state"}]


async def test_outsiders_cannot_change_conversations() -> None:
    project_id, conversation_id, _, _ = await _setup()
    outsider = Actor(user_id=999, global_role=GlobalRole.USER)
    with pytest.raises(NotFound):
        await change_status(outsider, project_id, conversation_id, "resolved")
    reader = Actor(
        user_id=998, global_role=GlobalRole.USER, memberships={project_id: ProjectRole.AGENT}, read_only=True
    )
    with pytest.raises(Forbidden):
        await assign(reader, project_id, conversation_id, None)
    assert await OutboxEvent.count() == 0
