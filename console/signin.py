"""Signing in and out, and choosing a password from an invitation link."""

from __future__ import annotations

import time
from typing import Annotated, Any

from litestar import Request, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body
from litestar.response import Redirect
from msgspec import Struct

from console.admin import ADMIN_PATH, ADMIN_SESSION_COOKIE, close_admin_session, open_admin_session
from console.render import Page, render
from console.shell import Need, needs
from server.accounts.ratelimit_rules import LOGIN_PER_EMAIL, LOGIN_PER_IP
from server.accounts.services import authenticate, normalize_email
from server.accounts.sessions import SESSION_COOKIE, SESSION_TTL_SECONDS, create_session, destroy_session
from server.accounts.tables import User
from server.errors import DomainError
from server.ratelimit import hit, reset
from server.tenancy.invitations import set_password_from_link
from server.web_state import redis_of, settings_of


class LoginForm(Struct):
    email: str = ""
    password: str = ""
    next: str = ""


def safe_next(target: str) -> str:
    """Only same-site paths: refuse absolute and scheme-relative URLs (open redirects)."""
    if target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/console/"


@get("/login", name="console:login", opt=needs(Need.ANYONE))
async def login_page(request: Request[Any, Any, Any]) -> Page:
    next_path = safe_next(request.query_params.get("next", ""))
    return render(request, "console/login.html", {"next": next_path, "error": None})


@post("/login", name="console:login-submit", status_code=303, opt=needs(Need.ANYONE))
async def login_submit(
    request: Request[Any, Any, Any],
    data: Annotated[LoginForm, Body(media_type=RequestEncodingType.URL_ENCODED)],
) -> Page | Redirect:
    redis = redis_of(request.app)
    email = normalize_email(data.email)
    ip = request.client.host if request.client else "unknown"
    retry_after = await hit(redis, LOGIN_PER_IP, ip) or await hit(redis, LOGIN_PER_EMAIL, email)
    context = {"next": safe_next(data.next), "email": data.email}
    if retry_after is not None:
        context["error"] = "Too many attempts; try again later."
        return render(
            request, "console/login.html", context, status_code=429, headers={"Retry-After": str(retry_after)}
        )
    user = await authenticate(data.email, data.password)
    if user is None:
        context["error"] = "Wrong e-mail or password."
        return render(request, "console/login.html", context, status_code=401)
    await reset(redis, LOGIN_PER_EMAIL, email)
    return await signed_in_response(request, user, safe_next(data.next))


async def signed_in_response(request: Request[Any, Any, Any], user: User, to: str) -> Redirect:
    """A new console session for ``user`` (and piccolo-admin's, for admins), then on to ``to``."""
    settings = settings_of(request.app)
    session = await create_session(
        redis_of(request.app),
        user.id,
        now=time.time(),
        user_agent=request.headers.get("user-agent", ""),
        ip=request.client.host if request.client else "",
    )
    response = Redirect(to, status_code=303)
    secure = settings.security.secure_cookies
    response.set_cookie(
        SESSION_COOKIE,
        session.token,
        max_age=SESSION_TTL_SECONDS,
        path="/",
        httponly=True,
        samesite="lax",
        secure=secure,
    )
    if user.global_role == User.GlobalRole.ADMIN.value:
        token, max_age = await open_admin_session(user.id)
        response.set_cookie(
            ADMIN_SESSION_COOKIE,
            token,
            max_age=max_age,
            path=ADMIN_PATH,
            httponly=True,
            samesite="lax",
            secure=secure,
        )
    return response


@post("/logout", name="console:logout", status_code=303, opt=needs(Need.ANYONE))
async def logout(request: Request[Any, Any, Any]) -> Redirect:
    await destroy_session(redis_of(request.app), request.cookies.get(SESSION_COOKIE))
    await close_admin_session(request.cookies.get(ADMIN_SESSION_COOKIE))
    response = Redirect("/console/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    response.delete_cookie(ADMIN_SESSION_COOKIE, path=ADMIN_PATH)
    return response


class SetPasswordForm(Struct):
    token: str = ""
    password: str = ""
    password_again: str = ""


@get("/set-password", name="console:set-password", opt=needs(Need.ANYONE))
async def set_password_page(request: Request[Any, Any, Any]) -> Page:
    context = {"token": request.query_params.get("token", ""), "error": None}
    return render(request, "console/set_password.html", context)


@post("/set-password", name="console:set-password-submit", status_code=303, opt=needs(Need.ANYONE))
async def set_password_submit(
    request: Request[Any, Any, Any],
    data: Annotated[SetPasswordForm, Body(media_type=RequestEncodingType.URL_ENCODED)],
) -> Page | Redirect:
    """An invited user chooses a password: the invitation's one-time token activates the account."""
    error = "The two passwords differ." if data.password != data.password_again else None
    if error is None:
        try:
            await set_password_from_link(redis_of(request.app), data.token, data.password)
        except DomainError as failure:
            error = failure.message
    if error is not None:
        context = {"token": data.token, "error": error}
        return render(request, "console/set_password.html", context, status_code=400)
    return Redirect("/console/login?next=/console/", status_code=303)


route_handlers = [login_page, login_submit, logout, set_password_page, set_password_submit]
