"""The inbox's actions on one conversation: assign, status, snooze, priority.

Each posts a small form (CSRF-protected like every console form), calls the chat service the REST
API calls, and answers with the thread header re-rendered; ``HX-Trigger: inbox:list`` makes the
list refresh itself. Other tabs and agents follow through the socket events the services record.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from litestar import Request, post
from litestar.params import FromPath

from console.forms import form_data
from console.inbox import TEMPLATE, members_of
from console.render import Page, render
from console.shell import CurrentViewer, Need, Viewer, needs
from server.chat import queries, services
from server.errors import DomainError, Invalid
from server.web_state import redis_of

BASE = "/projects/{project_id:int}/inbox/{conversation_id:int}"


async def _header(
    request: Request[Any, Any, Any],
    viewer_id: int,
    project_id: int,
    conversation_id: int,
    error: str | None = None,
) -> Page:
    conversation = await queries.get_conversation(redis_of(request.app), project_id, conversation_id)
    context = {
        "project_id": project_id,
        "conversation": conversation,
        "members": await members_of(project_id),
        "action_error": error,
        "viewer_id": viewer_id,
    }
    return render(
        request,
        TEMPLATE,
        context,
        blocks=["thread_header"],
        status_code=422 if error else 200,
        headers={"HX-Trigger": "inbox:list"},
    )


async def _act(
    request: Request[Any, Any, Any], viewer: Viewer, project_id: int, conversation_id: int, action: Any
) -> Page:
    try:
        await action
    except DomainError as error:
        return await _header(request, viewer.actor.user_id, project_id, conversation_id, error.message)
    return await _header(request, viewer.actor.user_id, project_id, conversation_id)


def _int(value: str, field: str) -> int:
    if not value.strip().lstrip("-").isdigit():
        raise Invalid(f"{field} must be a number.", fields={field: "invalid"})
    return int(value)


@post(BASE + "/assign", opt=needs(Need.AGENT))
async def assign(
    request: Request[Any, Any, Any],
    viewer: CurrentViewer,
    project_id: FromPath[int],
    conversation_id: FromPath[int],
) -> Page:
    """``assignee``: ``me``, a member's user id, or empty to unassign."""
    raw = (await form_data(request)).get("assignee", "")

    async def run() -> None:
        assignee = viewer.actor.user_id if raw == "me" else (None if raw == "" else _int(raw, "assignee"))
        await services.assign(viewer.actor, project_id, conversation_id, assignee)

    return await _act(request, viewer, project_id, conversation_id, run())


@post(BASE + "/status", opt=needs(Need.AGENT))
async def change_status(
    request: Request[Any, Any, Any],
    viewer: CurrentViewer,
    project_id: FromPath[int],
    conversation_id: FromPath[int],
) -> Page:
    status = (await form_data(request)).get("status", "")
    return await _act(
        request,
        viewer,
        project_id,
        conversation_id,
        services.change_status(viewer.actor, project_id, conversation_id, status),
    )


def snooze_time(data: dict[str, str], now: datetime) -> datetime:
    """``minutes`` from now, or ``until`` (a ``datetime-local`` value) at ``tz_offset`` minutes
    (JavaScript's ``getTimezoneOffset()``: UTC minus local time)."""
    if data.get("minutes"):
        return now + timedelta(minutes=_int(data["minutes"], "minutes"))
    try:
        local = datetime.fromisoformat(data.get("until", ""))
    except ValueError:
        raise Invalid("Choose when the conversation should reopen.", fields={"until": "invalid"}) from None
    offset = _int(data.get("tz_offset") or "0", "tz_offset")
    if local.tzinfo is None:
        local = local.replace(tzinfo=UTC) + timedelta(minutes=offset)
    return local.astimezone(UTC)


@post(BASE + "/snooze", opt=needs(Need.AGENT))
async def snooze(
    request: Request[Any, Any, Any],
    viewer: CurrentViewer,
    project_id: FromPath[int],
    conversation_id: FromPath[int],
) -> Page:
    data = await form_data(request)

    async def run() -> None:
        until = snooze_time(data, datetime.now(UTC))
        await services.snooze(viewer.actor, project_id, conversation_id, until)

    return await _act(request, viewer, project_id, conversation_id, run())


@post(BASE + "/priority", opt=needs(Need.AGENT))
async def set_priority(
    request: Request[Any, Any, Any],
    viewer: CurrentViewer,
    project_id: FromPath[int],
    conversation_id: FromPath[int],
) -> Page:
    raw = (await form_data(request)).get("priority", "")

    async def run() -> None:
        await services.set_priority(viewer.actor, project_id, conversation_id, _int(raw, "priority"))

    return await _act(request, viewer, project_id, conversation_id, run())


route_handlers = [assign, change_status, snooze, set_priority]
