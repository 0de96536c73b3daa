"""Sessions over the API: log in (sets the console cookie), log out, who am I, invitations."""

from __future__ import annotations

import hmac
import time
from typing import Any

from litestar import Request, Response, get, post
from litestar.datastructures import Cookie
from litestar.params import JSONBody

from server.accounts import ratelimit_rules
from server.accounts.resets import request_password_reset
from server.accounts.schemas import (
    LoginRequest,
    PasswordResetQueued,
    PasswordResetRequest,
    SessionView,
    SetPasswordRequest,
    UserView,
    user_view,
)
from server.accounts.services import authenticate, normalize_email
from server.accounts.sessions import (
    SESSION_COOKIE,
    SESSION_TTL_SECONDS,
    create_session,
    destroy_session,
    load_session,
)
from server.accounts.tables import User
from server.api.access import CSRF_HEADER, CurrentActor, public, signed_in
from server.errors import ErrorCode, Forbidden, Unauthorized
from server.ratelimit import enforce, reset
from server.tenancy.invitations import set_password_from_link
from server.web_state import queue_of, redis_of, settings_of


def client_ip(request: Request[Any, Any, Any]) -> str:
    return request.client.host if request.client else "unknown"


@post(
    "/auth/login",
    opt=public(),
    status_code=200,
    summary="Log in with e-mail and password (sets the session cookie)",
)
async def login(request: Request[Any, Any, Any], data: JSONBody[LoginRequest]) -> Response[SessionView]:
    redis = redis_of(request.app)
    email = normalize_email(data.email)
    message = "Too many login attempts; try again later."
    await enforce(redis, ratelimit_rules.LOGIN_PER_IP, client_ip(request), message)
    await enforce(redis, ratelimit_rules.LOGIN_PER_EMAIL, email, message)
    user = await authenticate(email, data.password)
    if user is None:
        raise Unauthorized("Wrong e-mail or password.", code=ErrorCode.INVALID_CREDENTIALS)
    await reset(redis, ratelimit_rules.LOGIN_PER_EMAIL, email)
    session = await create_session(redis, user.id, now=time.time())
    cookie = Cookie(
        key=SESSION_COOKIE,
        value=session.token,
        max_age=SESSION_TTL_SECONDS,
        httponly=True,
        samesite="lax",
        secure=settings_of(request.app).security.secure_cookies,
    )
    return Response(SessionView(user=user_view(user), csrf_token=session.data.csrf_token), cookies=[cookie])


@post(
    "/auth/logout",
    opt=public(),
    status_code=204,
    summary="End the session of this cookie",
    response_cookies=[Cookie(key=SESSION_COOKIE, value="", max_age=0, httponly=True, samesite="lax")],
)
async def logout(request: Request[Any, Any, Any]) -> None:
    """Like every unsafe call made with the session cookie, it needs the session's CSRF token; a
    request without a live session has nothing to end (204 all the same)."""
    redis = redis_of(request.app)
    token = request.cookies.get(SESSION_COOKIE)
    session = await load_session(redis, token)
    if session is not None:
        sent = request.headers.get(CSRF_HEADER, "")
        if not session.csrf_token or not hmac.compare_digest(sent, session.csrf_token):
            raise Forbidden("Missing or wrong X-CSRF-Token header.", code=ErrorCode.CSRF_FAILED)
    await destroy_session(redis, token)


@get("/auth/session", opt=signed_in(), summary="The signed-in user and the session's CSRF token")
async def session_info(request: Request[Any, Any, Any], actor: CurrentActor) -> SessionView:
    session = await load_session(redis_of(request.app), request.cookies.get(SESSION_COOKIE))
    user = await User.objects().where(User.id == actor.user_id).first()
    return SessionView(user=user_view(user), csrf_token=session.csrf_token if session else "")


@post(
    "/auth/set-password",
    opt=public(),
    status_code=200,
    summary="Choose a password with a mailed link's token: a new account's invitation, or a reset",
)
async def set_password(request: Request[Any, Any, Any], data: JSONBody[SetPasswordRequest]) -> UserView:
    redis = redis_of(request.app)
    await enforce(
        redis, ratelimit_rules.LINK_PER_IP, client_ip(request), "Too many attempts; try again later."
    )
    return user_view(await set_password_from_link(redis, data.token, data.password, name=data.name))


@post(
    "/auth/password-reset",
    opt=public(),
    status_code=202,
    summary="Mail a password-reset link to this address if it has an account (same answer either way)",
)
async def password_reset(
    request: Request[Any, Any, Any], data: JSONBody[PasswordResetRequest]
) -> PasswordResetQueued:
    redis = redis_of(request.app)
    message = "Too many reset requests; try again later."
    await enforce(redis, ratelimit_rules.RESET_PER_IP, client_ip(request), message)
    await enforce(redis, ratelimit_rules.RESET_PER_EMAIL, normalize_email(data.email), message)
    await request_password_reset(queue_of(request.app), data.email)
    return PasswordResetQueued()


route_handlers = [login, logout, session_info, set_password, password_reset]
