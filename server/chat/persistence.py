"""The worker's side of the send path: store queued messages, one PostgreSQL transaction per round.

:func:`drain` serves a drain job (see :mod:`server.chat.mailbox`): round after round it takes
everything waiting in one shard's mailboxes, stores it, and ends when a round finds that nothing
was appended meanwhile. :func:`persist_mailboxes` stores what waits in named mailboxes (the
mailbox sweep's jobs). A round is one transaction:

1. drops messages whose project is gone, makes sure each visiting sender has a ``visitor`` row
   and locks those rows (``FOR UPDATE``): one visitor's messages are stored by one transaction at
   a time;
2. finds each visitor's conversation (the newest), creating one when there is none and
   reopening it when it was resolved or snoozed;
3. locks every target conversation row in id order (no deadlocks between batches), dropping
   messages for conversations deleted meanwhile;
4. skips messages already stored (same ``client_msg_id``: a re-run job, a retried send), gives
   the others ``last_seq + 1, + 2, ...`` in arrival order and inserts them in one statement
   (``ON CONFLICT (conversation, client_msg_id) DO NOTHING`` as the last guard);
5. bumps ``last_seq`` / ``last_message_at`` and records the outbox events
   (``conversation.created``, ``conversation.status_changed``, ``message.created``), then commits.

After the commit it publishes the new events at once from memory (the fast path,
:class:`~server.outbox.relay.FastPublisher`) while it pops the stored items from their
mailboxes; the relay publishes whatever that misses. Every step tolerates a crash at any point:
a re-run stores nothing twice and skips no seq.
"""

from __future__ import annotations

import asyncio
import heapq
import logging
import time
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec

from server.chat.mailbox import Mailboxes, Shard, decode
from server.chat.schemas import MessageKind, MessageView, PendingMessage
from server.chat.tables import Conversation, Message
from server.database import engine
from server.outbox.envelope import Envelope
from server.outbox.events import EventType
from server.outbox.record import NewEvent, envelope_of_new, record_events
from server.outbox.relay import FastPublisher

log = logging.getLogger(__name__)

MAX_PER_MAILBOX = 500
"""Messages taken from one mailbox per transaction; a longer backlog takes several rounds."""
MAX_ROUNDS = 20
DRAIN_JOB_SECONDS = 5.0
"""A drain still busy after this hands over to a new job (SAQ's timeout, fairness between jobs)."""
FAIR_SHARE_SECONDS = 0.25
"""A drain that has run this long hands over to a new job (at the back of the queue) when other
jobs wait for a worker slot: a drain that lingers, or never runs dry, lets them have their turn."""
LINGER_SECONDS = 0.05
"""How long a busy shard's drain waits for the next message before it ends. At 200 messages/s
without it every message was a job of its own, and SAQ's bookkeeping (six Redis round trips, JSON)
took a third of the worker's CPU. Only shards with messages less than this apart linger, so a
worker slot is held only by a project that keeps it busy anyway."""

_REOPENED_FROM = {Conversation.Status.RESOLVED.value, Conversation.Status.SNOOZED.value}


class MessagesDropped(Exception):
    """Some messages can never be stored (their conversation or project was deleted).

    Not transient: the job that meets it must fail visibly instead of retrying. The messages are
    kept in ``parley:mailbox-dead`` with the reason.
    """


@dataclass
class PersistOutcome:
    taken: int = 0
    stored: int = 0
    duplicates: int = 0
    conversations_created: int = 0
    conversations_reopened: int = 0
    published: int = 0
    rounds: int = 0
    drained: bool = True
    """False when a drain stopped at its time limit with messages still coming: queue another."""
    dropped: list[str] = field(default_factory=list)
    """One line per reason messages were dropped (a failure: the job ends FAILED)."""
    deleted_project_messages: int = 0
    """Messages of projects deleted meanwhile: dropped without a trace, like the project."""

    def counts(self) -> dict[str, int]:
        return {
            "taken": self.taken,
            "stored": self.stored,
            "duplicates": self.duplicates,
            "conversations_created": self.conversations_created,
            "conversations_reopened": self.conversations_reopened,
            "published": self.published,
            "rounds": self.rounds,
            "dropped": len(self.dropped),
            "deleted_project_messages": self.deleted_project_messages,
        }


@dataclass
class _Item:
    mailbox: str
    raw: bytes
    message: PendingMessage
    conversation_id: int | None = None


@dataclass
class _ConversationRow:
    id: int
    project_id: int
    status: str
    last_seq: int
    visitor_uid: str


@dataclass
class _Round:
    """What one transaction decided, kept for after the commit."""

    items: dict[str, list[_Item]]
    notify: bool
    """Record events with NOTIFY (for the relay) rather than publishing them ourselves."""
    dead: dict[str, list[bytes]] = field(default_factory=dict)
    envelopes: list[Envelope] = field(default_factory=list)


class DrainPace:
    """When each shard last had messages, in this process: drains linger only for busy shards."""

    MAX_SHARDS = 10_000

    def __init__(self, linger: float = LINGER_SECONDS) -> None:
        self.linger = linger
        self._last: dict[Shard, float] = {}

    def busy(self, shard: Shard, now: float) -> bool:
        """Note that ``shard`` has messages now; True if it had some less than ``linger`` ago."""
        last = self._last.get(shard)
        if len(self._last) >= self.MAX_SHARDS:
            self._last = {known: at for known, at in self._last.items() if now - at < self.linger}
        self._last[shard] = now
        return last is not None and now - last < self.linger


async def drain(
    mailboxes: Mailboxes,
    shard: Shard,
    *,
    fast_path: FastPublisher | None = None,
    pace: DrainPace | None = None,
    others_waiting: Callable[[], Awaitable[bool]] | None = None,
    max_seconds: float = DRAIN_JOB_SECONDS,
) -> PersistOutcome:
    """Store everything waiting in ``shard``'s mailboxes, until a round finds nothing new came.

    Each round reads the shard's token, then its mailboxes; after storing them it deletes the
    token only if no message was appended meanwhile, else it goes round again, with everything
    that arrived during the last round. With ``pace``, a drain whose shard is busy (messages less
    than ``pace.linger`` apart) waits that long for the next message before it tries to end, so
    steady traffic needs no job per message.

    ``outcome.drained`` is False when it stopped while still busy (the token stays: the caller
    queues the next drain job): after ``max_seconds``, or after :data:`FAIR_SHARE_SECONDS` if
    ``others_waiting`` (asked at most that often) says other jobs wait for a worker slot, so busy
    projects take turns. ``fast_path`` publishes each round's events right after its commit.
    Raises what PostgreSQL or Redis raise (transient: the job retries).
    """
    outcome = PersistOutcome()
    started = time.monotonic()
    next_turn_check = started + FAIR_SHARE_SECONDS
    linger = False
    while True:
        taken = await mailboxes.take(shard, MAX_PER_MAILBOX)
        if taken.items and pace is not None:
            linger = pace.busy(shard, time.monotonic())
        generation = taken.generation
        release = (shard, generation) if generation is not None and taken.complete and not linger else None
        ended = await _round(mailboxes, taken.items, outcome, fast_path, release, taken.empty)
        if ended or generation is None:
            return outcome
        now = time.monotonic()
        turn_over = now > started + max_seconds
        if not turn_over and others_waiting is not None and now >= next_turn_check:
            next_turn_check = now + FAIR_SHARE_SECONDS
            turn_over = await others_waiting()
        if turn_over:
            if linger and taken.complete and await mailboxes.release(shard, generation):
                return outcome  # idle after all: the next message queues a new drain
            outcome.drained = False
            return outcome
        if linger and taken.complete and pace is not None:
            if await mailboxes.wait(shard, pace.linger):
                continue  # a message came: next round
            linger = False
            if await mailboxes.release(shard, generation):
                return outcome


async def persist_mailboxes(
    mailboxes: Mailboxes, keys: Sequence[str], *, fast_path: FastPublisher | None = None
) -> PersistOutcome:
    """Store everything waiting in ``keys``' mailboxes. Idempotent; safe to run concurrently.

    ``fast_path`` publishes each round's events right after its commit. Raises whatever
    PostgreSQL or Redis raise (transient: the job retries); messages that can never be stored
    are reported in ``outcome.dropped`` after the rest is committed.
    """
    outcome = PersistOutcome()
    pending = list(dict.fromkeys(keys))
    for _ in range(MAX_ROUNDS):
        taken = await mailboxes.read(pending, MAX_PER_MAILBOX)
        if not taken:
            break
        await _round(mailboxes, taken, outcome, fast_path, None)
        pending = [key for key, items in taken.items() if len(items) >= MAX_PER_MAILBOX]
        if not pending:
            break
    return outcome


async def _round(
    mailboxes: Mailboxes,
    taken: dict[str, list[bytes]],
    outcome: PersistOutcome,
    fast_path: FastPublisher | None,
    release: tuple[Shard, bytes] | None,
    forget: Sequence[str] = (),
) -> bool:
    """One transaction for ``taken``, then publish and pop (and ``release``); returns whether released."""
    current = _Round(items=_decode(taken, outcome), notify=fast_path is None)
    if taken:
        outcome.rounds += 1
        async with engine().transaction():
            await _store(current, outcome)
        for reason, items in current.dead.items():
            await mailboxes.bury(items, reason)
        outcome.taken += sum(len(items) for items in taken.values())
    popping = mailboxes.pop(taken, release=release, forget=forget)
    if fast_path is None or not current.envelopes:
        return await popping
    published, released = await asyncio.gather(fast_path.publish(current.envelopes), popping)
    outcome.published += published
    return released


def _decode(taken: dict[str, list[bytes]], outcome: PersistOutcome) -> dict[str, list[_Item]]:
    decoded: dict[str, list[_Item]] = {}
    for key, raws in taken.items():
        items = []
        for raw in raws:
            try:
                items.append(_Item(mailbox=key, raw=raw, message=decode(raw)))
            except msgspec.DecodeError:
                log.error("undecodable message in %s dropped: %r", key, raw[:200])
                outcome.dropped.append(f"undecodable message in {key}")
        decoded[key] = items
    return decoded


def _drop(current: _Round, outcome: PersistOutcome, reason: str, items: list[_Item]) -> None:
    if not items:
        return
    ids = ", ".join(str(item.message.client_msg_id) for item in items[:10])
    more = f" and {len(items) - 10} more" if len(items) > 10 else ""
    line = f"{reason}: {len(items)} message(s) dropped (client_msg_id {ids}{more})"
    outcome.dropped.append(line)
    current.dead.setdefault(reason, []).extend(item.raw for item in items)
    log.warning("%s", line)


async def _store(current: _Round, outcome: PersistOutcome) -> None:
    connection: Any = engine().current_transaction.get().connection  # type: ignore[union-attr]
    items = [item for stream in current.items.values() for item in stream]
    projects = await _live_projects(connection, {item.message.project_id for item in items})
    orphans = [i for i in items if i.message.project_id not in projects]
    if orphans:
        # Expected housekeeping, not a failure: the project and all its data are gone on purpose.
        outcome.deleted_project_messages += len(orphans)
        log.info(
            "%d message(s) of deleted project(s) %s dropped",
            len(orphans),
            sorted({i.message.project_id for i in orphans}),
        )
    live = [item for item in items if item.message.project_id in projects]

    visitors = [item for item in live if item.message.kind is MessageKind.VISITOR]
    events: list[NewEvent] = []
    closed: dict[int, str] = {}
    if visitors:
        closed = await _resolve_visitor_conversations(connection, visitors, events, outcome)

    targets = {item.conversation_id or item.message.conversation_id for item in live}
    rows = await _lock_conversations(connection, sorted(t for t in targets if t is not None))
    storable: dict[int, list[_Item]] = defaultdict(list)
    gone = []
    for item in live:
        row = rows.get(item.conversation_id or item.message.conversation_id or 0)
        if row is None or row.project_id != item.message.project_id:
            gone.append(item)
        else:
            storable[row.id].append(item)
    _drop(current, outcome, "conversation deleted", gone)

    existing = await _existing_ids(connection, storable)
    users = await _live_users(connection, storable)
    now = time.time()
    new_rows: list[tuple[int, _Item, int]] = []  # (conversation, item, seq)
    updates: list[_ConversationUpdate] = []
    for conversation_id, conversation_items in storable.items():
        row = rows[conversation_id]
        seen: set[uuid.UUID] = set()
        ordered = _interleave(conversation_items)
        seq = row.last_seq
        added: list[_Item] = []
        for item in ordered:
            client_msg_id = item.message.client_msg_id
            if client_msg_id in seen or (conversation_id, client_msg_id) in existing:
                outcome.duplicates += 1
                continue
            seen.add(client_msg_id)
            seq += 1
            new_rows.append((conversation_id, item, seq))
            added.append(item)
        if seq == row.last_seq:
            continue  # nothing new: a re-run, or only duplicates
        status = row.status
        if conversation_id in closed and any(i.message.kind is MessageKind.VISITOR for i in ordered):
            status = Conversation.Status.OPEN.value
            events.append(_reopened_event(row, closed[conversation_id], now))
            outcome.conversations_reopened += 1
        updates.append(_conversation_update(conversation_id, seq, status, added, users))

    stored = await _insert_messages(connection, new_rows, rows, users)
    await _update_conversations(connection, updates)
    for view, project_id in stored:
        events.append(
            NewEvent(
                type=EventType.MESSAGE_CREATED,
                project_id=project_id,
                conversation_id=view.conversation_id,
                seq=view.seq,
                data=msgspec.to_builtins(view),
                at=now,
            )
        )
    outcome.stored += len(stored)
    ids = await record_events(events, notify=current.notify)
    if not current.notify:
        current.envelopes = [
            envelope_of_new(event, event_id) for event, event_id in zip(events, ids, strict=True)
        ]


def _interleave(items: list[_Item]) -> list[_Item]:
    """Merge the streams meeting in one conversation by acceptance time.

    Each mailbox is already in arrival order and keeps it: ``heapq.merge`` only ever takes the
    head of a stream, so clocks that differ between API nodes cannot reorder one sender's messages.
    """
    streams: dict[str, list[_Item]] = defaultdict(list)
    for item in items:
        streams[item.mailbox].append(item)
    if len(streams) == 1:
        return items
    return list(heapq.merge(*streams.values(), key=lambda item: item.message.accepted_at))


async def _live_projects(connection: Any, project_ids: set[int]) -> set[int]:
    # FOR KEY SHARE: a project cannot be deleted under us between this check and the inserts.
    rows = await connection.fetch(
        "SELECT id FROM project WHERE id = ANY($1::int[]) FOR KEY SHARE", list(project_ids)
    )
    return {row["id"] for row in rows}


async def _resolve_visitor_conversations(
    connection: Any, items: list[_Item], events: list[NewEvent], outcome: PersistOutcome
) -> dict[int, str]:
    """Set ``conversation_id`` on visitor items; return those that are resolved or snoozed (id -> status).

    A closed conversation is reopened by the caller only if the visitor's batch adds a message.
    """
    pairs = sorted({(item.message.project_id, item.message.visitor_uid or "") for item in items})
    projects = [project for project, _ in pairs]
    uids = [uid for _, uid in pairs]
    await connection.execute(
        "INSERT INTO visitor (project, uid) SELECT * FROM unnest($1::int[], $2::varchar[]) "
        "ON CONFLICT (project, uid) DO NOTHING",
        projects,
        uids,
    )
    visitor_rows = await connection.fetch(
        "SELECT v.id, v.project, v.uid FROM visitor v "
        "JOIN unnest($1::int[], $2::varchar[]) AS w(project, uid) ON v.project = w.project AND v.uid = w.uid "
        "ORDER BY v.id FOR UPDATE OF v",
        projects,
        uids,
    )
    visitor_ids = {(row["project"], row["uid"]): row["id"] for row in visitor_rows}
    latest = await connection.fetch(
        "SELECT DISTINCT ON (visitor) id, visitor, status FROM conversation "
        "WHERE visitor = ANY($1::int[]) ORDER BY visitor, created_at DESC, id DESC",
        list(visitor_ids.values()),
    )
    conversation_of = {row["visitor"]: (row["id"], row["status"]) for row in latest}
    missing = [
        (key, visitor_id) for key, visitor_id in visitor_ids.items() if visitor_id not in conversation_of
    ]
    now = time.time()
    if missing:
        created = await connection.fetch(
            "INSERT INTO conversation (project, visitor) SELECT * FROM unnest($1::int[], $2::int[]) "
            "RETURNING id, project, visitor, status, extract(epoch FROM created_at) AS created_at",
            [project for (project, _), _ in missing],
            [visitor_id for _, visitor_id in missing],
        )
        uid_of = {visitor_id: uid for (_, uid), visitor_id in missing}
        for row in created:
            conversation_of[row["visitor"]] = (row["id"], row["status"])
            events.append(
                NewEvent(
                    type=EventType.CONVERSATION_CREATED,
                    project_id=row["project"],
                    conversation_id=row["id"],
                    data={
                        "id": row["id"],
                        "visitor_uid": uid_of[row["visitor"]],
                        "status": row["status"],
                        "created_at": float(row["created_at"]),
                    },
                    at=now,
                )
            )
        outcome.conversations_created += len(created)
    closed: dict[int, str] = {}
    for visitor_id in visitor_ids.values():
        conversation_id, status = conversation_of[visitor_id]
        if status in _REOPENED_FROM:
            closed[conversation_id] = status
    for item in items:
        visitor_id = visitor_ids[(item.message.project_id, item.message.visitor_uid or "")]
        item.conversation_id = conversation_of[visitor_id][0]
    return closed


def _reopened_event(row: _ConversationRow, previous: str, at: float) -> NewEvent:
    return NewEvent(
        type=EventType.CONVERSATION_STATUS_CHANGED,
        project_id=row.project_id,
        conversation_id=row.id,
        data={
            "id": row.id,
            "status": Conversation.Status.OPEN.value,
            "previous_status": previous,
            "visitor_uid": row.visitor_uid,
            "reason": "visitor_wrote",
        },
        at=at,
    )


async def _lock_conversations(connection: Any, ids: list[int]) -> dict[int, _ConversationRow]:
    if not ids:
        return {}
    rows = await connection.fetch(
        "SELECT c.id, c.project, c.status, c.last_seq, v.uid FROM conversation c "
        "JOIN visitor v ON v.id = c.visitor WHERE c.id = ANY($1::int[]) ORDER BY c.id FOR UPDATE OF c",
        ids,
    )
    return {
        row["id"]: _ConversationRow(
            id=row["id"],
            project_id=row["project"],
            status=row["status"],
            last_seq=row["last_seq"],
            visitor_uid=row["uid"],
        )
        for row in rows
    }


async def _existing_ids(connection: Any, storable: dict[int, list[_Item]]) -> set[tuple[int, uuid.UUID]]:
    if not storable:
        return set()
    ids = list({item.message.client_msg_id for items in storable.values() for item in items})
    rows = await connection.fetch(
        "SELECT conversation, client_msg_id FROM message "
        "WHERE conversation = ANY($1::int[]) AND client_msg_id = ANY($2::uuid[])",
        list(storable),
        ids,
    )
    return {(row["conversation"], row["client_msg_id"]) for row in rows}


async def _live_users(connection: Any, storable: dict[int, list[_Item]]) -> set[int]:
    """Senders still present; a deleted agent's message is kept without a sender (SET NULL)."""
    ids = {item.message.sender_user_id for items in storable.values() for item in items}
    ids.discard(None)
    if not ids:
        return set()
    rows = await connection.fetch("SELECT id FROM parley_user WHERE id = ANY($1::int[])", list(ids))
    return {row["id"] for row in rows}


_SENDER_KIND = {
    MessageKind.VISITOR: Message.SenderKind.VISITOR.value,
    MessageKind.AGENT_REPLY: Message.SenderKind.AGENT.value,
    MessageKind.AGENT_NOTE: Message.SenderKind.AGENT.value,
    MessageKind.SYSTEM: Message.SenderKind.SYSTEM.value,
}


async def _insert_messages(
    connection: Any,
    new_rows: list[tuple[int, _Item, int]],
    conversations: dict[int, _ConversationRow],
    users: set[int],
) -> list[tuple[MessageView, int]]:
    if not new_rows:
        return []
    senders = [item.message.sender_user_id for _, item, _ in new_rows]
    rows = await connection.fetch(
        "INSERT INTO message (project, conversation, seq, sender_kind, sender_user, body, private, "
        "client_msg_id) SELECT * FROM unnest($1::int[], $2::int[], $3::int[], $4::varchar[], $5::int[], "
        "$6::text[], $7::bool[], $8::uuid[]) ON CONFLICT (conversation, client_msg_id) DO NOTHING "
        "RETURNING id, conversation, seq, client_msg_id, extract(epoch FROM created_at) AS created_at",
        [item.message.project_id for _, item, _ in new_rows],
        [conversation_id for conversation_id, _, _ in new_rows],
        [seq for _, _, seq in new_rows],
        [_SENDER_KIND[item.message.kind] for _, item, _ in new_rows],
        [sender if sender in users else None for sender in senders],
        [item.message.body for _, item, _ in new_rows],
        [item.message.kind is MessageKind.AGENT_NOTE for _, item, _ in new_rows],
        [item.message.client_msg_id for _, item, _ in new_rows],
    )
    if len(rows) != len(new_rows):
        # Under the row locks no other writer can have inserted these ids; if one did, storing
        # the rest would leave a seq gap. Roll back; the job retries and skips them cleanly.
        raise RuntimeError(f"{len(new_rows) - len(rows)} message(s) appeared concurrently; retrying")
    by_key = {(row["conversation"], row["seq"]): row for row in rows}
    stored = []
    for conversation_id, item, seq in new_rows:
        row = by_key[(conversation_id, seq)]
        message = item.message
        sender = message.sender_user_id if message.sender_user_id in users else None
        view = MessageView(
            id=row["id"],
            conversation_id=conversation_id,
            seq=seq,
            sender_kind=_SENDER_KIND[message.kind],
            sender_user_id=sender,
            visitor_uid=conversations[conversation_id].visitor_uid,
            body=message.body,
            private=message.kind is MessageKind.AGENT_NOTE,
            client_msg_id=message.client_msg_id,
            created_at=float(row["created_at"]),
        )
        stored.append((view, message.project_id))
    return stored


PREVIEW_LENGTH = 160

# What a round does to a conversation's "waiting since" (the inbox's waiting time).
_WAITING_KEEP = 0
"""No public message in the round (notes, system lines): unchanged."""
_WAITING_CLEAR = 1
"""The round's last public message is an agent's reply: nobody is waiting."""
_WAITING_START = 2
"""Only visitor messages: waiting since the first unanswered one (kept if already waiting)."""
_WAITING_RESTART = 3
"""An agent replied, then the visitor wrote again in the same round: waiting from now."""


@dataclass(frozen=True, slots=True)
class _ConversationUpdate:
    id: int
    last_seq: int
    status: str
    preview: str
    kind: str
    waiting: int
    readers: tuple[int, ...]
    """Agents who wrote in this round: they have read the conversation up to ``last_seq``."""


def _kind_of(message: PendingMessage) -> str:
    if message.kind is MessageKind.AGENT_NOTE:
        return "note"
    return _SENDER_KIND[message.kind]


def _conversation_update(
    conversation_id: int, last_seq: int, status: str, added: list[_Item], users: set[int]
) -> _ConversationUpdate:
    """The inbox columns after ``added`` (this round's new messages of one conversation, in seq order).

    ``users``: the senders still present (a deleted agent's read mark cannot be kept).
    """
    waiting = _WAITING_KEEP
    for item in added:
        kind = item.message.kind
        if kind is MessageKind.VISITOR:
            waiting = _WAITING_RESTART if waiting == _WAITING_CLEAR else max(waiting, _WAITING_START)
        elif kind is MessageKind.AGENT_REPLY:
            waiting = _WAITING_CLEAR
    last = added[-1].message
    readers = {
        item.message.sender_user_id
        for item in added
        if item.message.sender_user_id in users and item.message.kind is not MessageKind.VISITOR
    }
    return _ConversationUpdate(
        id=conversation_id,
        last_seq=last_seq,
        status=status,
        preview=" ".join(last.body.split())[:PREVIEW_LENGTH],
        kind=_kind_of(last),
        waiting=waiting,
        readers=tuple(sorted(readers)),
    )


async def _update_conversations(connection: Any, updates: list[_ConversationUpdate]) -> None:
    """Bump ``last_seq`` and the inbox columns; an agent who wrote has read up to ``last_seq``."""
    if not updates:
        return
    await connection.execute(
        "UPDATE conversation c SET last_seq = u.last_seq, status = u.status, "
        "last_message_at = CASE WHEN u.last_seq > c.last_seq THEN now() ELSE c.last_message_at END, "
        "last_message_preview = u.preview, last_message_kind = u.kind, "
        "waiting_since = CASE u.waiting WHEN 1 THEN NULL WHEN 2 THEN coalesce(c.waiting_since, now()) "
        "WHEN 3 THEN now() ELSE c.waiting_since END, "
        "snoozed_until = CASE WHEN u.status = 'snoozed' THEN c.snoozed_until END "
        "FROM unnest($1::int[], $2::int[], $3::varchar[], $4::varchar[], $5::varchar[], $6::int[]) "
        "AS u(id, last_seq, status, preview, kind, waiting) WHERE c.id = u.id",
        [update.id for update in updates],
        [update.last_seq for update in updates],
        [update.status for update in updates],
        [update.preview for update in updates],
        [update.kind for update in updates],
        [update.waiting for update in updates],
    )
    reads = [(update.id, user, update.last_seq) for update in updates for user in update.readers]
    if reads:
        await connection.execute(
            'INSERT INTO conversation_read (project, conversation, "user", seq) '
            "SELECT c.project, r.conversation, r.reader, r.seq "
            "FROM unnest($1::int[], $2::int[], $3::int[]) AS r(conversation, reader, seq) "
            "JOIN conversation c ON c.id = r.conversation "
            'ON CONFLICT (conversation, "user") DO UPDATE '
            "SET seq = greatest(conversation_read.seq, excluded.seq), updated_at = now()",
            [conversation for conversation, _, _ in reads],
            [user for _, user, _ in reads],
            [seq for _, _, seq in reads],
        )
