"""The live inbox: the page, the fragments that refresh themselves, and what its script asks for.

What is rendered where (and why):

- the conversation list, the thread header (actions) and the visitor panel are server-rendered
  blocks of ``templates/console/inbox.html``. Each refreshes itself when ``static/js/inbox.js``
  turns a socket event into a DOM event (``inbox:list``, ``inbox:header``, ``inbox:panel``;
  ``hx-trigger="... from:body"``): their rows need server-side joins (the agent's unread counts,
  filters, names, Redis hydration), so re-rendering the block is simpler and always right;
- the messages of the open thread are rendered by the script from the event itself
  (``message.created`` carries everything a message shows): one renderer for live, synced and
  older messages, no round trip per message (the send -> screen budget is 100 ms), and order
  and exactly-once are kept by ``seq`` in one place.

Every view calls the same queries and services as the REST API.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import msgspec
from litestar import Request, Response, get
from litestar.params import FromPath

from console.render import Page, render
from console.shell import CurrentViewer, Need, Viewer, needs
from server.accounts.tables import User
from server.accounts.tokens import agent_token
from server.chat import queries
from server.chat.canned import list_canned_replies
from server.chat.live import agent_statuses
from server.chat.tables import Conversation
from server.errors import NotFound
from server.tenancy.tables import ProjectMember
from server.web_state import redis_of, settings_of

TEMPLATE = "console/inbox.html"
THREAD_PAGE = 50
FILTERS = ("mine", "unassigned", "all")
STATUSES = tuple(status.value for status in Conversation.Status)


@dataclass(frozen=True, slots=True)
class InboxView:
    """The list's filters as the URL says them (unknown values fall back to the defaults)."""

    filter: str = "mine"
    status: str = "open"
    q: str = ""

    @classmethod
    def of(cls, request: Request[Any, Any, Any]) -> InboxView:
        params = request.query_params
        chosen = params.get("filter", "mine")
        status = params.get("status", "open")
        return cls(
            filter=chosen if chosen in FILTERS else "mine",
            status=status if status in STATUSES else "open",
            q=(params.get("q") or "")[:100],
        )

    def query(self) -> str:
        from urllib.parse import urlencode

        return urlencode({"filter": self.filter, "status": self.status, "q": self.q})


def inbox_path(project_id: int, conversation_id: int | None = None) -> str:
    base = f"/console/projects/{project_id}/inbox"
    return base if conversation_id is None else f"{base}/{conversation_id}"


async def members_of(project_id: int) -> list[dict[str, Any]]:
    rows = await (
        ProjectMember.select(
            ProjectMember.user.as_alias("id"),
            ProjectMember.user.name.as_alias("name"),
            ProjectMember.user.email.as_alias("email"),
        )
        .where(ProjectMember.project == project_id)
        .order_by(ProjectMember.user.name)
    )
    return [{"id": row["id"], "name": row["name"] or row["email"]} for row in rows]


async def _list_context(request: Request[Any, Any, Any], viewer: Viewer, project_id: int) -> dict[str, Any]:
    view = InboxView.of(request)
    user_id = viewer.actor.user_id
    filters = queries.ConversationFilters(
        status=view.status,
        assignee_id=user_id if view.filter == "mine" else None,
        unassigned=view.filter == "unassigned",
        search=view.q or None,
        reader_id=user_id,
    )
    page = await queries.list_conversations(redis_of(request.app), project_id, filters, limit=50)
    counts = await queries.conversation_counts(project_id, user_id)
    members = await members_of(project_id)
    return {
        "view": view,
        "conversations": page.items,
        "counts": counts,
        "member_names": {member["id"]: member["name"] for member in members},
        "waiting_label": waiting_label,
        "viewer_id": user_id,
    }


async def _thread_context(
    request: Request[Any, Any, Any], viewer: Viewer, project_id: int, conversation_id: int
) -> dict[str, Any]:
    redis = redis_of(request.app)
    conversation = await queries.get_conversation(
        redis, project_id, conversation_id, reader_id=viewer.actor.user_id
    )
    history = await queries.list_messages(project_id, conversation_id, limit=THREAD_PAGE)
    profile = await queries.visitor_profile(redis, project_id, conversation.visitor.id)
    return {
        "viewer_id": viewer.actor.user_id,
        "conversation": conversation,
        "messages_json": msgspec.json.encode({"items": history.items, "has_more": history.has_more}).decode(),
        "profile": profile,
    }


async def _page_context(
    request: Request[Any, Any, Any], viewer: Viewer, project_id: int, conversation_id: int | None
) -> dict[str, Any]:
    members = await members_of(project_id)
    settings = settings_of(request.app)
    context: dict[str, Any] = {
        "section": "inbox",
        "project_id": project_id,
        "members": members,
        "conversation": None,
        **await _list_context(request, viewer, project_id),
    }
    if conversation_id is not None:
        context.update(await _thread_context(request, viewer, project_id, conversation_id))
    config = {
        "project_id": project_id,
        "user_id": viewer.actor.user_id,
        "realtime_url": settings.realtime.public_url,
        "inbox_path": inbox_path(project_id),
        "members": {str(member["id"]): member["name"] for member in members},
        "idle_activity_ms": 60_000,
    }
    context["config_json"] = msgspec.json.encode(config).decode()
    return context


@get("/projects/{project_id:int}/inbox", name="console:inbox", opt=needs(Need.AGENT))
async def inbox_page(
    request: Request[Any, Any, Any], viewer: CurrentViewer, project_id: FromPath[int]
) -> Page:
    return render(request, TEMPLATE, await _page_context(request, viewer, project_id, None))


@get("/projects/{project_id:int}/inbox/{conversation_id:int}", opt=needs(Need.AGENT))
async def conversation_page(
    request: Request[Any, Any, Any],
    viewer: CurrentViewer,
    project_id: FromPath[int],
    conversation_id: FromPath[int],
) -> Page:
    return render(request, TEMPLATE, await _page_context(request, viewer, project_id, conversation_id))


@get("/projects/{project_id:int}/inbox/list", opt=needs(Need.AGENT))
async def list_fragment(
    request: Request[Any, Any, Any], viewer: CurrentViewer, project_id: FromPath[int]
) -> Page:
    """The list block alone: the filters' target, and what refreshes on ``inbox:list``."""
    context = {"project_id": project_id, **await _list_context(request, viewer, project_id)}
    return render(request, TEMPLATE, context, blocks=["conversation_list"])


@get("/projects/{project_id:int}/inbox/{conversation_id:int}/work", opt=needs(Need.AGENT))
async def work_fragment(
    request: Request[Any, Any, Any],
    viewer: CurrentViewer,
    project_id: FromPath[int],
    conversation_id: FromPath[int],
) -> Page:
    """Thread and visitor panel of one conversation (what opening a row swaps in)."""
    context = {
        "project_id": project_id,
        "members": await members_of(project_id),
        **await _thread_context(request, viewer, project_id, conversation_id),
    }
    return render(request, TEMPLATE, context, blocks=["inbox_work"])


@get("/projects/{project_id:int}/inbox/{conversation_id:int}/header", opt=needs(Need.AGENT))
async def header_fragment(
    request: Request[Any, Any, Any],
    viewer: CurrentViewer,
    project_id: FromPath[int],
    conversation_id: FromPath[int],
) -> Page:
    conversation = await queries.get_conversation(redis_of(request.app), project_id, conversation_id)
    context = {
        "project_id": project_id,
        "conversation": conversation,
        "members": await members_of(project_id),
        "viewer_id": viewer.actor.user_id,
    }
    return render(request, TEMPLATE, context, blocks=["thread_header"])


@get("/projects/{project_id:int}/inbox/{conversation_id:int}/panel", opt=needs(Need.AGENT))
async def panel_fragment(
    request: Request[Any, Any, Any],
    viewer: CurrentViewer,
    project_id: FromPath[int],
    conversation_id: FromPath[int],
) -> Page:
    redis = redis_of(request.app)
    conversation = await queries.get_conversation(redis, project_id, conversation_id)
    profile = await queries.visitor_profile(redis, project_id, conversation.visitor.id)
    context = {"project_id": project_id, "conversation": conversation, "profile": profile}
    return render(request, TEMPLATE, context, blocks=["visitor_panel"])


@get("/projects/{project_id:int}/inbox/{conversation_id:int}/messages", opt=needs(Need.AGENT))
async def older_messages(
    request: Request[Any, Any, Any],
    viewer: CurrentViewer,
    project_id: FromPath[int],
    conversation_id: FromPath[int],
) -> Response[bytes]:
    """Older messages for the upward infinite scroll, as JSON: the script renders every message."""
    raw = request.query_params.get("before_seq", "")
    if not raw.isdigit() or not 0 < int(raw) < 2**31:
        raise NotFound("No such page.")
    history = await queries.list_messages(project_id, conversation_id, before_seq=int(raw), limit=THREAD_PAGE)
    return Response(msgspec.json.encode(history), media_type="application/json")


@get("/projects/{project_id:int}/inbox/token", opt=needs(Need.AGENT))
async def socket_token(
    request: Request[Any, Any, Any], viewer: CurrentViewer, project_id: FromPath[int]
) -> Response[bytes]:
    """A fresh ``/agent`` token for the inbox's socket (asked before every (re)connect)."""
    token, claims = agent_token(viewer.actor.user_id, settings_of(request.app).security.secret_key)
    body = {"token": token, "expires_at": claims.exp, "projects": [project_id]}
    return Response(msgspec.json.encode(body), media_type="application/json")


@get("/projects/{project_id:int}/inbox/canned", opt=needs(Need.AGENT))
async def canned_replies(
    request: Request[Any, Any, Any], viewer: CurrentViewer, project_id: FromPath[int]
) -> Response[bytes]:
    """The ``/`` picker's choices (searched in the browser: a project has tens, not thousands)."""
    replies = await list_canned_replies(project_id, None)
    body = [{"shortcut": r.shortcut, "title": r.title, "body": r.body} for r in replies]
    return Response(msgspec.json.encode(body), media_type="application/json")


@get("/projects/{project_id:int}/inbox/agents", opt=needs(Need.AGENT))
async def agent_presence(
    request: Request[Any, Any, Any], viewer: CurrentViewer, project_id: FromPath[int]
) -> Response[bytes]:
    """Each member's presence (online / away / offline), as JSON."""
    members = await members_of(project_id)
    statuses = await agent_statuses(redis_of(request.app), project_id, [m["id"] for m in members])
    return Response(
        msgspec.json.encode({str(k): v for k, v in statuses.items()}), media_type="application/json"
    )


def waiting_label(since: datetime | None, now: datetime | None = None) -> str:
    """``3 min``, ``2 h``, ``4 d``: how long the visitor has waited for an answer."""
    if since is None:
        return ""
    seconds = max(0, int(((now or datetime.now(UTC)) - since).total_seconds()))
    if seconds < 60:
        return "<1 min"
    if seconds < 3600:
        return f"{seconds // 60} min"
    if seconds < 86_400:
        return f"{seconds // 3600} h"
    return f"{seconds // 86_400} d"


_ = User  # the members query joins parley_user through ProjectMember.user

route_handlers = [
    inbox_page,
    list_fragment,
    socket_token,
    canned_replies,
    agent_presence,
    conversation_page,
    work_fragment,
    header_fragment,
    panel_fragment,
    older_messages,
]
