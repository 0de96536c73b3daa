"""Access changes reach open sockets within a second: the gateway's access watch.

A socket is authorised when it joins a namespace; later changes to who may see what must reach it
too. :class:`AccessWatch`, one per realtime process, LISTENs (``server/database_listen.py``) on

- ``parley_access_changed`` (triggers on ``parley_user``, ``project_member``, ``api_key`` and
  ``project``, whoever writes them: API, console, piccolo-admin, psql): it re-reads the access data
  of every ``/agent`` session on this node in three indexed queries (:func:`access_now`) and
  applies :func:`verdict` to each;
- ``parley_project_changed`` (``<key> deleted <id>`` when a project is deleted): every ``/visitor``
  session of that project is disconnected at once.

What a client sees (documented in ``docs/protocol.md``): an ``access:revoked`` event
``{"code", "message", "projects"}``, then, unless it only lost some of its projects, a Socket.IO
DISCONNECT of the namespace (official clients do not reconnect after one); a websocket left with
no namespace is closed with 1008 ``access revoked``. Codes: ``user_deactivated``,
``api_key_revoked``, ``member_removed`` (lost every project of the socket, or only some: then the
socket stays, for the rest) and ``project_deleted``.

Races. Notifications that come while a check runs start one more check after it (never two at
once). A session whose credentials were read before a change but joined after the check is
checked again (``Gateway.on_stale_join``). While the LISTEN connection is down nothing arrives:
after every reconnection everything is checked, and every :data:`RECHECK_SECONDS` anyway (an API
key's expiry sends no notification).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from server.database_listen import ChannelListener
from server.errors import ErrorCode
from server.realtime.audience import AGENT_NAMESPACE, VISITOR_NAMESPACE
from server.realtime.connection import AgentPrincipal, Connection, NamespaceSession, VisitorPrincipal
from server.tenancy.access import visible_project_ids
from server.tenancy.actor_cache import CHANNEL as ACCESS_CHANNEL
from server.tenancy.queries import AccessNow, access_now
from server.tenancy.widget_cache import CHANNEL as PROJECT_CHANNEL

if TYPE_CHECKING:
    from server.realtime.gateway import Gateway

log = logging.getLogger(__name__)

RECHECK_SECONDS = 60.0
MESSAGES: dict[str, str] = {
    ErrorCode.USER_DEACTIVATED: "your account was deactivated or deleted",
    ErrorCode.API_KEY_REVOKED: "the API key of this socket was revoked or has expired",
    ErrorCode.MEMBER_REMOVED: "you no longer have access to this project",
    ErrorCode.PROJECT_DELETED: "the project was deleted",
}


@dataclass(frozen=True, slots=True)
class Verdict:
    """What becomes of one ``/agent`` session after an access change."""

    principal: AgentPrincipal | None
    """The session's principal from now on; None: disconnect it."""
    code: str = ""
    lost: frozenset[int] = frozenset()
    """Projects the session no longer receives."""


def verdict(principal: AgentPrincipal, now: AccessNow) -> Verdict:
    """Pure: the session keeps the projects it had that its actor may still see and that exist.

    Access only shrinks here: a project the agent gained is theirs from their next connect.
    """
    actor, why = now.actor(principal.actor)
    if actor is None:
        return Verdict(None, why, principal.project_ids)
    visible = visible_project_ids(actor)
    kept = principal.project_ids & now.projects
    if visible is not None:
        kept &= visible
    lost = principal.project_ids - kept
    code = (
        "" if not lost else ErrorCode.PROJECT_DELETED if not lost & now.projects else ErrorCode.MEMBER_REMOVED
    )
    if lost and not kept:
        return Verdict(None, code, lost)
    return Verdict(AgentPrincipal(actor=actor, project_ids=kept), code, lost)


def _payload(code: str, lost: frozenset[int]) -> dict[str, object]:
    return {"code": code, "message": MESSAGES.get(code, ""), "projects": sorted(lost)}


class AccessWatch:
    """Keeps the gateway's open sessions within their current access."""

    def __init__(self, gateway: Gateway, *, recheck_seconds: float = RECHECK_SECONDS) -> None:
        self.gateway = gateway
        self.recheck_seconds = recheck_seconds
        self.listener = ChannelListener(
            "realtime access watch",
            {ACCESS_CHANNEL: self._on_access_changed, PROJECT_CHANNEL: self._on_project_changed},
            on_connected=self._caught_up,
        )
        self._dirty = False
        self._checking: asyncio.Task[None] | None = None
        self._periodic: asyncio.Task[None] | None = None
        gateway.on_stale_join = self.schedule

    async def start(self) -> None:
        await self.listener.start()
        self._periodic = asyncio.create_task(self._every(), name="access-recheck")

    async def stop(self) -> None:
        await self.listener.stop()
        for task in (self._periodic, self._checking):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    # -- notifications ----------------------------------------------------------------------

    def _on_access_changed(self, _table: str) -> None:
        self.schedule()

    def _on_project_changed(self, payload: str) -> None:
        _, _, deleted_id = payload.partition(" deleted ")
        if deleted_id.isdigit():
            self.drop_visitors_of(int(deleted_id))
            self.schedule()  # agents of the project lose it too

    async def _caught_up(self) -> None:
        self.schedule()  # whatever changed while nobody listened

    def schedule(self) -> None:
        """Check every session soon: now, or right after the check that is running."""
        self.gateway.access_epoch += 1
        self._dirty = True
        if self._checking is None or self._checking.done():
            self._checking = asyncio.create_task(self._check_while_dirty(), name="access-check")

    async def _check_while_dirty(self) -> None:
        while self._dirty:
            self._dirty = False
            try:
                await self.check()
            except Exception as error:  # PostgreSQL away: the reconnection or the next round checks
                log.warning("access check failed (%s): %s", type(error).__name__, error)

    async def _every(self) -> None:
        while True:
            await asyncio.sleep(self.recheck_seconds)
            self.schedule()

    # -- applying ---------------------------------------------------------------------------

    def drop_visitors_of(self, project_id: int) -> int:
        """Disconnect every visitor session of a deleted project; returns how many."""
        dropped = 0
        for conn in self.gateway.visitors.in_project(project_id):
            session = conn.session(VISITOR_NAMESPACE)
            principal = session.principal if session is not None else None
            if (
                session is not None
                and isinstance(principal, VisitorPrincipal)
                and principal.project_id == project_id
            ):
                self.gateway.revoke_session(
                    conn, session, _payload("project_deleted", frozenset({project_id}))
                )
                dropped += 1
        if dropped:
            log.info("project %d deleted: %d visitor socket(s) disconnected", project_id, dropped)
        return dropped

    async def check(self) -> None:
        """Re-read the access of every session on this node and apply it."""
        agents: list[tuple[Connection, NamespaceSession, AgentPrincipal]] = []
        for conn in self.gateway.sockets.snapshot():
            session = conn.session(AGENT_NAMESPACE)
            if session is not None and isinstance(session.principal, AgentPrincipal):
                agents.append((conn, session, session.principal))
        visitor_projects = self.gateway.visitors.project_ids()
        if not agents and not visitor_projects:
            return
        now = await access_now(
            (p.actor.user_id for _, _, p in agents),
            (p.actor.api_key_id for _, _, p in agents if p.actor.api_key_id is not None),
            [*visitor_projects, *(project for _, _, p in agents for project in p.project_ids)],
        )
        revoked = narrowed = 0
        for conn, session, principal in agents:
            if session.principal is not principal:
                continue  # changed while we read (an earlier check applied, or a reconnect)
            result = verdict(principal, now)
            if result.principal is None:
                self.gateway.revoke_session(conn, session, _payload(result.code, result.lost))
                revoked += 1
            elif result.principal != principal:
                self.gateway.narrow_session(
                    conn, session, result.principal, _payload(result.code, result.lost)
                )
                narrowed += bool(result.lost)
        for project_id in visitor_projects:
            if project_id not in now.projects:
                self.drop_visitors_of(project_id)
        if revoked or narrowed:
            log.info("access changed: %d agent socket(s) disconnected, %d lost projects", revoked, narrowed)
