"""The widget API (``/api/widget/v1``): what the visitor's browser calls, cross-origin.

Authentication is the project's public key plus the page's ``Origin`` (checked against the
project's allowed origins) for ``POST /session``, then the short-lived visitor token it returns
(``Authorization: Bearer``), bound to project + visitor. No cookies: CORS answers any origin
without credentials, and the real origin check happens per project inside the handlers.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

import msgspec
from litestar import Request, Router, get, patch, post
from litestar.middleware import DefineMiddleware
from litestar.params import FromPath, JSONBody
from litestar.types import ASGIApp, Receive

from server.accounts.tokens import InvalidToken, TokenClaims, verify, visitor_token
from server.api.access import public
from server.api.errors import document_errors
from server.chat import queries
from server.chat.identity import IdentityClaim, verify_identity
from server.chat.schemas import MAX_BODY_LENGTH, MessageKind, SendAck, SendMessage, WidgetMessageCreate
from server.chat.tables import Conversation
from server.chat.views import MessageView, Status
from server.chat.visitors import (
    agent_names,
    agents_online,
    check_origin,
    open_visit,
    project_by_public_key,
    update_visitor_profile,
    visitor_by_uid,
    visitor_profile,
)
from server.errors import ErrorCode, NotFound, Unauthorized
from server.ratelimit import Limit, enforce
from server.screenshots.schemas import SnapshotAck, SnapshotUpload
from server.screenshots.services import receive_snapshot
from server.tenancy.widget_cache import project_deleted
from server.web_state import redis_of, screenshot_queue_of, sender_of, settings_of

SESSIONS_PER_IP = Limit(scope="widget-session-ip", limit=120, window_seconds=60)
RECENT_MESSAGES = 50
MAX_CONVERSATIONS = 20


class SessionRequest(msgspec.Struct, forbid_unknown_fields=True):
    public_key: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    visitor_uid: Annotated[str, msgspec.Meta(min_length=1, max_length=64)] | None = None
    identity: IdentityClaim | None = None


class WidgetSettings(msgspec.Struct):
    name: str
    color: str
    greeting_text: str
    offline_text: str
    launcher_position: str
    """``right`` or ``left``: the bottom corner of the page."""
    prechat_fields: list[str]
    """``name`` / ``email``: asked before the first message (empty: nothing)."""


class VisitorProfileView(msgspec.Struct):
    name: str | None
    email: str | None
    verified: bool


class SessionView(msgspec.Struct):
    visitor_uid: str
    """Keep it (local storage) and send it back next time to resume the visit."""
    token: str
    """For the socket gateway's /visitor namespace and this API's other routes."""
    expires_at: int
    widget: WidgetSettings
    realtime_url: str
    """The socket gateway the widget connects to (``/visitor`` namespace)."""
    agents_online: bool
    """Someone of the project's agents is connected now."""
    visitor: VisitorProfileView


class VisitorConversation(msgspec.Struct):
    id: int
    status: Status
    last_seq: int
    messages: list[MessageView]
    """The most recent messages, ascending seq; private notes never appear here."""


class VisitorConversations(msgspec.Struct):
    items: list[VisitorConversation]


@post("/session", opt=public(), status_code=200, summary="Start or resume a visit")
async def open_session(request: Request[Any, Any, Any], data: JSONBody[SessionRequest]) -> SessionView:
    redis = redis_of(request.app)
    await enforce(
        redis, SESSIONS_PER_IP, request.client.host if request.client else "-", "Too many sessions."
    )
    project = await project_by_public_key(redis, data.public_key)
    check_origin(project, request.headers.get("origin"))
    identity = verify_identity(data.identity, project.identity_secret, enforce=project.enforce_identity)
    visitor = await open_visit(project.id, data.visitor_uid, identity)
    settings = settings_of(request.app)
    token, claims = visitor_token(
        project.id,
        visitor.uid,
        settings.security.secret_key,
        public_key=data.public_key,
        ttl_seconds=settings.security.visitor_token_seconds,
    )
    profile = await visitor_profile(project.id, visitor.uid)
    return SessionView(
        visitor_uid=visitor.uid,
        token=token,
        expires_at=claims.exp,
        widget=WidgetSettings(
            name=project.name,
            color=project.widget_color,
            greeting_text=project.greeting_text,
            offline_text=project.offline_text,
            launcher_position=project.launcher_position,
            prechat_fields=project.prechat_fields,
        ),
        realtime_url=settings.realtime.public_url,
        agents_online=await agents_online(redis, project.id),
        visitor=VisitorProfileView(name=profile.name, email=profile.email, verified=profile.verified),
    )


async def visitor_claims(request: Request[Any, Any, Any]) -> TokenClaims:
    """The visitor token's claims, checked like the session: its widget key must still be the
    project's (a rotated key: 404 ``unknown_widget_key``) and the page's ``Origin`` one of the
    project's allowed origins (403 ``origin_not_allowed``), on every call, not only at ``/session``."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise Unauthorized("Send the visitor token as 'Authorization: Bearer <token>'.")
    try:
        claims = verify(token.strip(), settings_of(request.app).security.secret_key)
    except InvalidToken as error:
        raise Unauthorized(str(error), code=ErrorCode.INVALID_TOKEN) from None
    if claims.kind != "visitor" or claims.project_id is None or claims.visitor_uid is None:
        raise Unauthorized("This is not a visitor token.", code=ErrorCode.INVALID_TOKEN)
    if claims.public_key is not None:  # tokens made before keys were bound carry none
        project = await project_by_public_key(redis_of(request.app), claims.public_key)
        if project.id != claims.project_id:
            raise NotFound("Unknown widget key.", code=ErrorCode.UNKNOWN_WIDGET_KEY)
        check_origin(project, request.headers.get("origin"))
    return claims


@get("/conversations", opt=public(), summary="The visitor's own conversations with recent messages")
async def my_conversations(request: Request[Any, Any, Any]) -> VisitorConversations:
    claims = await visitor_claims(request)
    assert claims.project_id is not None and claims.visitor_uid is not None
    visitor = await visitor_by_uid(claims.project_id, claims.visitor_uid)
    rows = (
        await Conversation.select(Conversation.id, Conversation.status, Conversation.last_seq)
        .where((Conversation.project == visitor.project_id) & (Conversation.visitor == visitor.id))
        .order_by(Conversation.id, ascending=False)
        .limit(MAX_CONVERSATIONS)
    )
    items = []
    for row in rows:
        messages = await queries.list_messages(
            visitor.project_id, row["id"], limit=RECENT_MESSAGES, include_private=False
        )
        items.append(
            VisitorConversation(
                id=row["id"], status=row["status"], last_seq=row["last_seq"], messages=messages.items
            )
        )
    return VisitorConversations(items=items)


@post("/messages", opt=public(), status_code=202, summary="Send a message as the visitor; 202 once queued")
async def send_visitor_message(
    request: Request[Any, Any, Any], data: JSONBody[WidgetMessageCreate]
) -> SendAck:
    """Opens a conversation when the visitor has no open one (the worker decides, in order)."""
    claims = await visitor_claims(request)
    assert claims.project_id is not None
    if await project_deleted(redis_of(request.app), claims.project_id):
        raise NotFound("No such project.")
    command = SendMessage(
        kind=MessageKind.VISITOR,
        project_id=claims.project_id,
        visitor_uid=claims.visitor_uid,
        body=data.body,
        client_msg_id=data.client_msg_id,
    )
    return await sender_of(request.app).send(command)


MAX_EMAIL_LENGTH = 254
Email = Annotated[
    str, msgspec.Meta(min_length=3, max_length=MAX_EMAIL_LENGTH, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
]
CONTACT_FOOTER = "\n\nE-mail: "
"""The offline form's message is sent with the address under it, within the one body limit."""
AttributeValue = Annotated[str, msgspec.Meta(max_length=500)] | int | float | bool | None


class ProfileUpdate(msgspec.Struct, forbid_unknown_fields=True):
    """The pre-chat form and ``Parley.setAttributes``: only the fields present change."""

    name: Annotated[str, msgspec.Meta(max_length=200)] | None = None
    email: Email | None = None
    attributes: (
        Annotated[
            dict[Annotated[str, msgspec.Meta(min_length=1, max_length=64)], AttributeValue],
            msgspec.Meta(max_length=50),
        ]
        | None
    ) = None


class ContactRequest(msgspec.Struct, forbid_unknown_fields=True):
    """The offline form: "leave your e-mail" while no agent is online."""

    email: Email
    name: Annotated[str, msgspec.Meta(max_length=200)] | None = None
    message: Annotated[
        str, msgspec.Meta(max_length=MAX_BODY_LENGTH - len(CONTACT_FOOTER) - MAX_EMAIL_LENGTH)
    ] = ""
    client_msg_id: uuid.UUID | None = None


class Availability(msgspec.Struct):
    agents_online: bool


class AgentView(msgspec.Struct):
    id: int
    name: str


class AgentList(msgspec.Struct):
    items: list[AgentView]


async def _visitor_of(request: Request[Any, Any, Any]) -> tuple[int, str]:
    claims = await visitor_claims(request)
    assert claims.project_id is not None and claims.visitor_uid is not None
    return claims.project_id, claims.visitor_uid


@patch("/visitor", opt=public(), summary="What the visitor says of themselves: name, e-mail, attributes")
async def update_visitor(
    request: Request[Any, Any, Any], data: JSONBody[ProfileUpdate]
) -> VisitorProfileView:
    """Never changes a verified (signed) visitor's name or e-mail; attributes merge (null removes)."""
    project_id, uid = await _visitor_of(request)
    profile = await update_visitor_profile(
        project_id, uid, name=data.name, email=data.email, attributes=data.attributes
    )
    return VisitorProfileView(name=profile.name, email=profile.email, verified=profile.verified)


@post("/contact", opt=public(), status_code=202, summary="Leave an e-mail address while nobody is online")
async def leave_contact(request: Request[Any, Any, Any], data: JSONBody[ContactRequest]) -> SendAck:
    """Kept on the visitor, and sent as the visitor's message so that agents find it in the inbox."""
    project_id, uid = await _visitor_of(request)
    await update_visitor_profile(project_id, uid, name=data.name, email=data.email)
    body = data.message.strip() or "(left an e-mail address)"
    command = SendMessage(
        kind=MessageKind.VISITOR,
        project_id=project_id,
        visitor_uid=uid,
        body=f"{body}{CONTACT_FOOTER}{data.email}",
        client_msg_id=data.client_msg_id,
    )
    return await sender_of(request.app).send(command)


@get("/availability", opt=public(), summary="Whether an agent is online now")
async def availability(request: Request[Any, Any, Any]) -> Availability:
    project_id, _ = await _visitor_of(request)
    return Availability(agents_online=await agents_online(redis_of(request.app), project_id))


@get("/agents", opt=public(), summary="Display names of the project's agents, for their messages")
async def agents(request: Request[Any, Any, Any]) -> AgentList:
    project_id, _ = await _visitor_of(request)
    return AgentList(
        items=[AgentView(id=agent.id, name=agent.name) for agent in await agent_names(project_id)]
    )


@post(
    "/snapshots/{snapshot_id:str}",
    opt=public(),
    status_code=202,
    request_max_body_size=4_200_000,
    summary="The widget's sanitised copy of its page, asked for by screenshot.requested",
)
async def send_snapshot(
    request: Request[Any, Any, Any], snapshot_id: FromPath[str], data: JSONBody[SnapshotUpload]
) -> SnapshotAck:
    """Only for a request made to this visitor (the event's ``snapshot_id``), once; the body's size
    is capped by ``SCREENSHOT_SNAPSHOT_MAX_BYTES`` (docs/screenshots.md, "DOM snapshots")."""
    project_id, uid = await _visitor_of(request)
    accepted = await receive_snapshot(
        redis_of(request.app),
        screenshot_queue_of(request.app),
        settings_of(request.app).screenshots,
        project_id=project_id,
        visitor_uid=uid,
        snapshot_id=snapshot_id,
        upload=data,
    )
    return SnapshotAck(accepted=accepted)


class WidgetCORS:
    """CORS for the widget API: any origin, no credentials; preflights answered here."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Receive, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        origin = next((value for name, value in scope["headers"] if name == b"origin"), None)
        cors = [(b"access-control-allow-origin", origin), (b"vary", b"Origin")] if origin else []
        if scope["method"] == "OPTIONS" and origin:
            headers = [
                *cors,
                (b"access-control-allow-methods", b"GET, POST, PATCH, OPTIONS"),
                (b"access-control-allow-headers", b"authorization, content-type"),
                (b"access-control-max-age", b"600"),
            ]
            await send({"type": "http.response.start", "status": 204, "headers": headers})
            await send({"type": "http.response.body", "body": b""})
            return

        async def send_with_cors(message: Any) -> None:
            if message["type"] == "http.response.start" and cors:
                message = {**message, "headers": [*message.get("headers", []), *cors]}
            await send(message)

        await self.app(scope, receive, send_with_cors)


widget_router = Router(
    path="/api/widget/v1",
    route_handlers=document_errors(
        [
            open_session,
            my_conversations,
            send_visitor_message,
            update_visitor,
            leave_contact,
            availability,
            agents,
            send_snapshot,
        ]
    ),
    middleware=[DefineMiddleware(WidgetCORS)],
    tags=["widget"],
)
