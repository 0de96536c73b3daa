"""The event vocabulary: ``aggregate.past_tense`` names, used by the outbox, sockets, console and webhooks.

Add new names here and nowhere else.
"""

from __future__ import annotations

from enum import StrEnum


class EventType(StrEnum):
    MESSAGE_CREATED = "message.created"
    CONVERSATION_CREATED = "conversation.created"
    CONVERSATION_STATUS_CHANGED = "conversation.status_changed"
    CONVERSATION_ASSIGNED = "conversation.assigned"
    CONVERSATION_UPDATED = "conversation.updated"
    CONVERSATION_READ = "conversation.read"
    VISITOR_NAVIGATED = "visitor.navigated"
    VISITOR_UPDATED = "visitor.updated"
    PRESENCE_CHANGED = "presence.changed"
    TYPING_STARTED = "typing.started"
    TYPING_STOPPED = "typing.stopped"
    SCREENSHOT_READY = "screenshot.ready"
    SCREENSHOT_FAILED = "screenshot.failed"
    SCREENSHOT_REQUESTED = "screenshot.requested"


AGENT_TARGETED_EVENTS = frozenset({EventType.SCREENSHOT_READY, EventType.SCREENSHOT_FAILED})
"""Events for one agent only (its every tab): their ``data.agent_user_id`` names the agent."""

VISITOR_TARGETED_EVENTS = frozenset({EventType.SCREENSHOT_REQUESTED})
"""Events for one visitor only (its every tab), never agents: ``data.visitor_uid`` names it."""
