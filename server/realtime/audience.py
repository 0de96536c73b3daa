"""Who receives an event: the one function that decides it (DESIGN §4.4, STYLE "audience").

Local socketify topics carry the decision out:

- ``a:<project>``: every agent socket that may see the project (``/agent`` namespace);
- ``v:<project>:<visitor uid>``: every socket (all tabs and devices) of one visitor (``/visitor``).

Rules, failing closed:

- agents receive every event of their own projects and nothing of another project (the topic
  carries the project id, and an agent joins only the topics of projects it may see);
- an agent-targeted event (:data:`~server.outbox.events.AGENT_TARGETED_EVENTS`, e.g. a
  screenshot the agent asked for) goes to that agent's own sockets only, ``u:<project>:<user id>``,
  and to nobody when it names no agent;
- a visitor-targeted event (:data:`~server.outbox.events.VISITOR_TARGETED_EVENTS`: an agent's
  request for a DOM snapshot) goes to the sockets of the visitor its ``data.visitor_uid`` names,
  of the envelope's project, and to no agent;
- a visitor receives only events of its own conversations, only of the kinds in
  :data:`VISITOR_EVENTS`, never a private note (a ``message.created`` whose ``private`` is not
  explicitly ``false`` counts as private), never another visitor's data (navigation and presence
  go to agents only), and not its own typing back.
"""

from __future__ import annotations

from typing import Any

from server.outbox.envelope import Envelope
from server.outbox.events import AGENT_TARGETED_EVENTS, VISITOR_TARGETED_EVENTS, EventType

VISITOR_NAMESPACE = "/visitor"
AGENT_NAMESPACE = "/agent"

VISITOR_EVENTS = frozenset(
    {
        EventType.MESSAGE_CREATED,
        EventType.CONVERSATION_CREATED,
        EventType.CONVERSATION_STATUS_CHANGED,
        EventType.CONVERSATION_READ,
        EventType.TYPING_STARTED,
        EventType.TYPING_STOPPED,
    }
)


def agent_topic(project_id: int) -> str:
    return f"a:{project_id}"


def agent_user_topic(project_id: int, user_id: int) -> str:
    """The sockets of one agent in one project: what agent-targeted events go to."""
    return f"u:{project_id}:{user_id}"


def visitor_topic(project_id: int, visitor_uid: str) -> str:
    return f"v:{project_id}:{visitor_uid}"


def visitor_of_topic(topic: str) -> tuple[int, str] | None:
    """``(project id, visitor uid)`` when ``topic`` is a :func:`visitor_topic`, else None."""
    if not topic.startswith("v:"):
        return None
    project, _, visitor_uid = topic[2:].partition(":")
    return int(project), visitor_uid


def conversation_id_of(envelope: Envelope) -> int | None:
    if envelope.conversation_id is not None:
        return envelope.conversation_id
    value = envelope.data.get("conversation_id")
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def visitor_uid_in(data: dict[str, Any]) -> str | None:
    """The conversation's visitor uid when the payload carries it (``MessageView`` and ours do)."""
    value = data.get("visitor_uid")
    if isinstance(value, str):
        return value
    visitor = data.get("visitor")
    if isinstance(visitor, dict) and isinstance(visitor.get("uid"), str):
        uid: str = visitor["uid"]
        return uid
    return None


def is_private(envelope: Envelope) -> bool:
    if envelope.type == EventType.MESSAGE_CREATED:
        return envelope.data.get("private") is not False
    return envelope.data.get("private") is True


def _sent_by_visitor(envelope: Envelope) -> bool:
    sender = envelope.data.get("sender")
    return isinstance(sender, dict) and sender.get("kind") == "visitor"


def audience(envelope: Envelope, conversation_visitor_uid: str | None) -> list[tuple[str, str]]:
    """The ``(namespace, topic)`` pairs an event goes to.

    ``conversation_visitor_uid`` is the uid of the visitor whose conversation the event is about,
    looked up by the caller (from the payload, else from PostgreSQL); None when the event is not
    about a conversation or the owner is unknown, and then no visitor receives it.
    """
    if envelope.type in AGENT_TARGETED_EVENTS:
        user_id = envelope.data.get("agent_user_id")
        if not isinstance(user_id, int) or isinstance(user_id, bool):
            return []
        return [(AGENT_NAMESPACE, agent_user_topic(envelope.project_id, user_id))]
    if envelope.type in VISITOR_TARGETED_EVENTS:
        visitor_uid = envelope.data.get("visitor_uid")
        if not isinstance(visitor_uid, str) or not visitor_uid:
            return []
        return [(VISITOR_NAMESPACE, visitor_topic(envelope.project_id, visitor_uid))]
    targets = [(AGENT_NAMESPACE, agent_topic(envelope.project_id))]
    if (
        conversation_visitor_uid is not None
        and envelope.type in VISITOR_EVENTS
        and not is_private(envelope)
        and not (
            envelope.type in (EventType.TYPING_STARTED, EventType.TYPING_STOPPED)
            and _sent_by_visitor(envelope)
        )
    ):
        targets.append((VISITOR_NAMESPACE, visitor_topic(envelope.project_id, conversation_visitor_uid)))
    return targets
