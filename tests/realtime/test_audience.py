"""The one audience function: who receives each kind of event."""

from __future__ import annotations

from typing import Any

import pytest

from server.outbox.envelope import Envelope
from server.outbox.events import EventType
from server.realtime.audience import AGENT_NAMESPACE, VISITOR_NAMESPACE, audience

AGENTS = (AGENT_NAMESPACE, "a:7")
VISITOR = (VISITOR_NAMESPACE, "v:7:v_1")


def event(kind: str, **data: Any) -> Envelope:
    return Envelope(type=kind, project_id=7, at=0.0, data=data, conversation_id=3)


@pytest.mark.parametrize(
    ("envelope", "expected"),
    [
        (event("message.created", private=False), [AGENTS, VISITOR]),
        (event("message.created", private=True), [AGENTS]),
        (event("message.created"), [AGENTS]),  # unknown privacy: fail closed
        (event("message.created", private="false"), [AGENTS]),
        (event("conversation.status_changed"), [AGENTS, VISITOR]),
        (event("conversation.created"), [AGENTS, VISITOR]),
        (event("conversation.read", seq=3), [AGENTS, VISITOR]),
        (event("conversation.assigned"), [AGENTS]),
        (event("visitor.navigated", url="u"), [AGENTS]),
        (event("presence.changed", status="online"), [AGENTS]),
        (event("typing.started", sender={"kind": "agent", "user_id": 1}), [AGENTS, VISITOR]),
        (event("typing.started", sender={"kind": "agent"}, private=True), [AGENTS]),
        (event("typing.stopped", sender={"kind": "visitor", "visitor_uid": "v_1"}), [AGENTS]),
        (event("something.new"), [AGENTS]),
        # A screenshot goes to the agent who asked (all its tabs), to no one else.
        (event("screenshot.ready", agent_user_id=5, visitor_uid="v_1"), [(AGENT_NAMESPACE, "u:7:5")]),
        (event("screenshot.failed", agent_user_id=5), [(AGENT_NAMESPACE, "u:7:5")]),
        (event("screenshot.ready", agent_user_id="5"), []),
        (event("screenshot.ready"), []),
    ],
)
def test_audience(envelope: Envelope, expected: list[tuple[str, str]]) -> None:
    assert audience(envelope, "v_1") == expected


def test_no_visitor_without_a_known_owner() -> None:
    assert audience(event(EventType.MESSAGE_CREATED, private=False), None) == [AGENTS]


def test_agents_topic_is_per_project() -> None:
    other = Envelope(type="message.created", project_id=8, at=0.0, data={"private": False})
    assert audience(other, "v_1") == [(AGENT_NAMESPACE, "a:8"), (VISITOR_NAMESPACE, "v:8:v_1")]
