"""The widget API (``/api/widget/v1``): what the visitor's browser calls, cross-origin.

Authentication is the project's public key plus the page's ``Origin`` (checked against the
project's allowed origins) for ``POST /session``, then the short-lived visitor token it returns
(``Authorization: Bearer``), bound to project + visitor. No cookies: CORS answers any origin
without credentials, and the real origin check happens per project inside the handlers.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Request, Router, get, post
from litestar.middleware import DefineMiddleware
from litestar.params import JSONBody
from litestar.types import ASGIApp, Receive

from server.accounts.tokens import InvalidToken, TokenClaims, verify, visitor_token
from server.api.access import public
from server.api.errors import document_errors
from server.chat import queries
from server.chat.identity import IdentityClaim, verify_identity
from server.chat.schemas import MessageKind, SendAck, SendMessage, WidgetMessageCreate
from server.chat.tables import Conversation
from server.chat.views import MessageView, Status
from server.chat.visitors import check_origin, open_visit, project_by_public_key, visitor_by_uid
from server.errors import Unauthorized
from server.ratelimit import Limit, enforce
from server.web_state import redis_of, sender_of, settings_of

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


class SessionView(msgspec.Struct):
    visitor_uid: str
    """Keep it (local storage) and send it back next time to resume the visit."""
    token: str
    """For the socket gateway's /visitor namespace and this API's other routes."""
    expires_at: int
    widget: WidgetSettings


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
    token, claims = visitor_token(project.id, visitor.uid, settings_of(request.app).security.secret_key)
    return SessionView(
        visitor_uid=visitor.uid,
        token=token,
        expires_at=claims.exp,
        widget=WidgetSettings(
            name=project.name,
            color=project.widget_color,
            greeting_text=project.greeting_text,
            offline_text=project.offline_text,
        ),
    )


def visitor_claims(request: Request[Any, Any, Any]) -> TokenClaims:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise Unauthorized("Send the visitor token as 'Authorization: Bearer <token>'.")
    try:
        claims = verify(token.strip(), settings_of(request.app).security.secret_key)
    except InvalidToken as error:
        raise Unauthorized(str(error), code="invalid_token") from None
    if claims.kind != "visitor" or claims.project_id is None or claims.visitor_uid is None:
        raise Unauthorized("This is not a visitor token.", code="invalid_token")
    return claims


@get("/conversations", opt=public(), summary="The visitor's own conversations with recent messages")
async def my_conversations(request: Request[Any, Any, Any]) -> VisitorConversations:
    claims = visitor_claims(request)
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
    claims = visitor_claims(request)
    assert claims.project_id is not None
    command = SendMessage(
        kind=MessageKind.VISITOR,
        project_id=claims.project_id,
        visitor_uid=claims.visitor_uid,
        body=data.body,
        client_msg_id=data.client_msg_id,
    )
    return await sender_of(request.app).send(command)


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
                (b"access-control-allow-methods", b"GET, POST, OPTIONS"),
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
    route_handlers=document_errors([open_session, my_conversations, send_visitor_message]),
    middleware=[DefineMiddleware(WidgetCORS)],
    tags=["widget"],
)
