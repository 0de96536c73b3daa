"""Conversation state changes: status, assignee, read marks. Each records its outbox event in its transaction.

These are the write path for every transport (REST, socket, console): authorise with
:mod:`server.tenancy.access`, lock the row, change it, record the event, commit. Messages do not
go through here: they take the queued path in :mod:`server.chat.sending`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import msgspec

from server.chat.tables import Conversation
from server.database import engine
from server.errors import Forbidden, Invalid, NotFound
from server.outbox.events import EventType
from server.outbox.record import NewEvent, record_event, record_events
from server.tenancy.access import Actor, ProjectRole, can_write, has_project_role, role_in
from server.tenancy.tables import ProjectMember


class ConversationState(msgspec.Struct, frozen=True, kw_only=True):
    """A conversation's state after a change (also the core of the events' ``data``)."""

    id: int
    status: str
    assignee_id: int | None
    last_seq: int
    visitor_uid: str


def _require_agent(actor: Actor, project_id: int) -> None:
    if role_in(actor, project_id) is None:
        raise NotFound("No such conversation.")
    if not has_project_role(actor, project_id, ProjectRole.AGENT) or not can_write(actor):
        raise Forbidden("Only the project's agents may change conversations.")


async def _lock(project_id: int, conversation_id: int) -> dict[str, Any]:
    row = await (
        Conversation.select(
            Conversation.id,
            Conversation.status,
            Conversation.assignee,
            Conversation.last_seq,
            Conversation.visitor.uid.as_alias("visitor_uid"),
        )
        .where((Conversation.id == conversation_id) & (Conversation.project == project_id))
        .lock_rows("UPDATE", of=(Conversation,))
        .first()
    )
    if row is None:
        raise NotFound("No such conversation.")
    return row


def _state(row: dict[str, Any], **changes: Any) -> ConversationState:
    values = {
        "id": row["id"],
        "status": row["status"],
        "assignee_id": row["assignee"],
        "last_seq": row["last_seq"],
        "visitor_uid": row["visitor_uid"],
    }
    values.update(changes)
    return ConversationState(**values)


async def change_status(
    actor: Actor, project_id: int, conversation_id: int, status: Conversation.Status | str
) -> ConversationState:
    """Set a conversation's status (open, pending, snoozed, resolved).

    Records ``conversation.status_changed`` with ``previous_status`` and who changed it; a change to
    the current status records nothing.
    """
    _require_agent(actor, project_id)
    try:
        new_status = Conversation.Status(status)
    except ValueError:
        raise Invalid("Unknown status.", fields={"status": str(status)}) from None
    async with engine().transaction():
        row = await _lock(project_id, conversation_id)
        if row["status"] == new_status.value:
            return _state(row)
        # Leaving "snoozed" by hand forgets the alarm; snoozing without a time waits for the visitor.
        await Conversation.update(
            {Conversation.status: new_status.value, Conversation.snoozed_until: None}
        ).where(Conversation.id == conversation_id)
        state = _state(row, status=new_status.value)
        await record_event(
            EventType.CONVERSATION_STATUS_CHANGED,
            project_id=project_id,
            conversation_id=conversation_id,
            data={
                **msgspec.to_builtins(state),
                "previous_status": row["status"],
                "changed_by": actor.user_id,
            },
        )
    return state


async def assign(
    actor: Actor, project_id: int, conversation_id: int, assignee_id: int | None
) -> ConversationState:
    """Assign a conversation to a member of the project (agent or manager), or unassign with None.

    Records ``conversation.assigned`` with ``previous_assignee_id``; no change records nothing.
    """
    _require_agent(actor, project_id)
    async with engine().transaction():
        if assignee_id is not None:
            member = await ProjectMember.exists().where(
                (ProjectMember.project == project_id) & (ProjectMember.user == assignee_id)
            )
            if not member:
                raise Invalid(
                    "The assignee is not a member of this project.", fields={"assignee_id": "invalid"}
                )
        row = await _lock(project_id, conversation_id)
        if row["assignee"] == assignee_id:
            return _state(row)
        await Conversation.update({Conversation.assignee: assignee_id}).where(
            Conversation.id == conversation_id
        )
        state = _state(row, assignee_id=assignee_id)
        await record_event(
            EventType.CONVERSATION_ASSIGNED,
            project_id=project_id,
            conversation_id=conversation_id,
            data={
                **msgspec.to_builtins(state),
                "previous_assignee_id": row["assignee"],
                "assigned_by": actor.user_id,
            },
        )
    return state


async def mark_read(
    project_id: int,
    conversation_id: int,
    seq: int,
    *,
    actor: Actor | None = None,
    visitor_uid: str | None = None,
) -> int:
    """Record that an agent (``actor``) or the conversation's visitor (``visitor_uid``) read up to ``seq``.

    An agent's mark is kept per agent in ``conversation_read`` (the inbox's unread counts), the
    visitor's in ``conversation.visitor_read_seq`` (the agents' "read" marks); a mark never moves
    back. Every mark also records the outbox event ``conversation.read`` (``reader`` =
    ``{"kind": "agent", "user_id"}`` or ``{"kind": "visitor", "visitor_uid"}``), so other tabs and
    agents follow. ``seq`` is clamped to the conversation's ``last_seq``. Returns the seq recorded.
    """
    if (actor is None) == (visitor_uid is None):
        raise ValueError("mark_read needs exactly one reader: actor or visitor_uid")
    if seq < 0:
        raise Invalid("seq must not be negative.", fields={"seq": str(seq)})
    if actor is not None and role_in(actor, project_id) is None:
        raise NotFound("No such conversation.")
    async with engine().transaction():
        row = await (
            Conversation.select(Conversation.last_seq, Conversation.visitor.uid.as_alias("visitor_uid"))
            .where((Conversation.id == conversation_id) & (Conversation.project == project_id))
            .first()
        )
        if row is None or (visitor_uid is not None and row["visitor_uid"] != visitor_uid):
            raise NotFound("No such conversation.")
        read_seq: int = min(seq, row["last_seq"])
        connection: Any = engine().current_transaction.get().connection  # type: ignore[union-attr]
        if actor is not None:
            await connection.execute(
                'INSERT INTO conversation_read (project, conversation, "user", seq) VALUES ($1, $2, $3, $4) '
                'ON CONFLICT (conversation, "user") DO UPDATE '
                "SET seq = greatest(conversation_read.seq, excluded.seq), updated_at = now()",
                project_id,
                conversation_id,
                actor.user_id,
                read_seq,
            )
        else:
            await connection.execute(
                "UPDATE conversation SET visitor_read_seq = greatest(visitor_read_seq, $2) WHERE id = $1",
                conversation_id,
                read_seq,
            )
        reader: dict[str, Any] = (
            {"kind": "agent", "user_id": actor.user_id}
            if actor is not None
            else {"kind": "visitor", "visitor_uid": visitor_uid}
        )
        await record_event(
            EventType.CONVERSATION_READ,
            project_id=project_id,
            conversation_id=conversation_id,
            # The seq read goes in data only: the envelope's seq names a message (clients drop
            # duplicates by (conversation, seq)).
            data={
                "id": conversation_id,
                "seq": read_seq,
                "reader": reader,
                "visitor_uid": row["visitor_uid"],
            },
        )
    return read_seq


async def set_priority(actor: Actor, project_id: int, conversation_id: int, priority: int) -> int:
    """Set a conversation's priority (0 none … 4 urgent); records ``conversation.updated``."""
    _require_agent(actor, project_id)
    if not 0 <= priority <= 4:
        raise Invalid("Priority goes from 0 (none) to 4 (urgent).", fields={"priority": str(priority)})
    async with engine().transaction():
        row = await _lock(project_id, conversation_id)
        current = (
            await Conversation.select(Conversation.priority).where(Conversation.id == conversation_id).first()
        )
        if current is not None and current["priority"] == priority:
            return priority
        await Conversation.update({Conversation.priority: priority}).where(Conversation.id == conversation_id)
        await record_event(
            EventType.CONVERSATION_UPDATED,
            project_id=project_id,
            conversation_id=conversation_id,
            data={**msgspec.to_builtins(_state(row)), "priority": priority, "changed_by": actor.user_id},
        )
    return priority


SNOOZE_BATCH = 500


async def snooze(
    actor: Actor, project_id: int, conversation_id: int, until: datetime, *, now: datetime | None = None
) -> ConversationState:
    """Snooze a conversation until ``until``: the worker's sweep reopens it then (or the visitor
    reopens it by writing). Records ``conversation.status_changed`` with ``snoozed_until``."""
    _require_agent(actor, project_id)
    if until.tzinfo is None:
        raise Invalid("snoozed_until needs a time zone.", fields={"snoozed_until": "naive"})
    if until <= (now or datetime.now(UTC)):
        raise Invalid("snoozed_until must be in the future.", fields={"snoozed_until": "in the past"})
    async with engine().transaction():
        row = await _lock(project_id, conversation_id)
        await Conversation.update(
            {Conversation.status: Conversation.Status.SNOOZED.value, Conversation.snoozed_until: until}
        ).where(Conversation.id == conversation_id)
        state = _state(row, status=Conversation.Status.SNOOZED.value)
        await record_event(
            EventType.CONVERSATION_STATUS_CHANGED,
            project_id=project_id,
            conversation_id=conversation_id,
            data={
                **msgspec.to_builtins(state),
                "previous_status": row["status"],
                "changed_by": actor.user_id,
                "snoozed_until": until.timestamp(),
            },
        )
    return state


_DUE_SNOOZES = """
SELECT c.id, c.project, c.status, c.assignee, c.last_seq, v.uid AS visitor_uid
FROM conversation c JOIN visitor v ON v.id = c.visitor
WHERE c.status = 'snoozed' AND c.snoozed_until <= now()
ORDER BY c.snoozed_until LIMIT $1
FOR UPDATE OF c SKIP LOCKED
"""


async def reopen_due_snoozes() -> int:
    """Reopen every snoozed conversation whose time has come (the worker's cron job runs it).

    Idempotent and safe with several workers (``SKIP LOCKED``); each reopening records
    ``conversation.status_changed`` with ``reason: "snooze_ended"``. Returns how many it reopened.
    """
    async with engine().transaction():
        connection: Any = engine().current_transaction.get().connection  # type: ignore[union-attr]
        rows = await connection.fetch(_DUE_SNOOZES, SNOOZE_BATCH)
        if not rows:
            return 0
        await connection.execute(
            "UPDATE conversation SET status = 'open', snoozed_until = NULL WHERE id = ANY($1::int[])",
            [row["id"] for row in rows],
        )
        await record_events(
            [
                NewEvent(
                    type=EventType.CONVERSATION_STATUS_CHANGED,
                    project_id=row["project"],
                    conversation_id=row["id"],
                    data={
                        "id": row["id"],
                        "status": Conversation.Status.OPEN.value,
                        "assignee_id": row["assignee"],
                        "last_seq": row["last_seq"],
                        "visitor_uid": row["visitor_uid"],
                        "previous_status": row["status"],
                        "reason": "snooze_ended",
                    },
                )
                for row in rows
            ]
        )
    return len(rows)
