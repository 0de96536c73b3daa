"""Signing in and out, and choosing a password from an invitation link."""

from __future__ import annotations

import time
from typing import Annotated, Any
from urllib.parse import urlencode

from litestar import Request, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body
from litestar.response import Redirect
from msgspec import Struct

from console.admin import ADMIN_PATH, ADMIN_SESSION_COOKIE, close_admin_session, open_admin_session
from console.flash import done, flash_cookie
from console.render import Page, render
from console.shell import Need, load_viewer, needs
from server.accounts import ratelimit_rules
from server.accounts.links import INVITATION_PREFIX
from server.accounts.ratelimit_rules import LOGIN_PER_EMAIL, LOGIN_PER_IP
from server.accounts.resets import request_password_reset
from server.accounts.services import authenticate, normalize_email
from server.accounts.sessions import SESSION_COOKIE, SESSION_TTL_SECONDS, create_session, destroy_session
from server.accounts.tables import User
from server.errors import DomainError
from server.ratelimit import enforce, hit, reset
from server.tenancy import invitations
from server.tenancy.invitations import set_password_from_link
from server.web_state import queue_of, redis_of, settings_of


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
    name: str = ""


async def _preview(token: str) -> invitations.InvitationPreview | None:
    """What an invitation link offers (None for a reset link or a dead link)."""
    if not token.startswith(INVITATION_PREFIX):
        return None
    try:
        return await invitations.invitation_preview(token)
    except DomainError:
        return None


@get("/set-password", name="console:set-password", opt=needs(Need.ANYONE))
async def set_password_page(request: Request[Any, Any, Any]) -> Page:
    token = request.query_params.get("token", "")[:200]
    context = {"token": token, "error": None, "invitation": await _preview(token)}
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
            await set_password_from_link(
                redis_of(request.app), data.token, data.password, name=data.name[:200]
            )
        except DomainError as failure:
            error = failure.message
    if error is not None:
        context = {"token": data.token, "error": error, "invitation": await _preview(data.token)}
        return render(request, "console/set_password.html", context, status_code=400)
    response = Redirect("/console/login?next=/console/", status_code=303)
    response.cookies.append(flash_cookie(request, "Password saved: sign in with it."))
    return response


@get("/invitation", name="console:invitation", opt=needs(Need.ANYONE))
async def invitation_page(request: Request[Any, Any, Any]) -> Page | Redirect:
    """An existing account's invitation link: sign in as the invited address, then accept."""
    token = request.query_params.get("token", "")[:200]
    preview = await _preview(token)
    if preview is not None and not preview.account_exists:
        return Redirect(f"/console/set-password?{urlencode({'token': token})}", status_code=303)
    viewer = await load_viewer(request)
    context = {"token": token, "invitation": preview, "signed_in_as": viewer.user.email if viewer else None}
    return render(request, "console/invitation.html", context, status_code=200 if preview else 404)


@post("/invitation", opt=needs(Need.ANYONE))
async def accept_invitation(request: Request[Any, Any, Any]) -> Any:
    token = str((await request.form()).get("token", ""))[:200]
    viewer = await load_viewer(request)
    if viewer is None:
        return Redirect(
            "/console/login?" + urlencode({"next": f"/console/invitation?token={token}"}), status_code=303
        )
    joined = await invitations.accept_invitation(token, viewer.user.id)
    return done(request, f"/console/projects/{joined.project_id}/inbox", "Welcome: you joined the project.")


@get("/forgot-password", name="console:forgot-password", opt=needs(Need.ANYONE))
async def forgot_password_page(request: Request[Any, Any, Any]) -> Page:
    return render(request, "console/forgot_password.html", {"sent": False, "error": None, "email": ""})


@post("/forgot-password", opt=needs(Need.ANYONE))
async def forgot_password_submit(request: Request[Any, Any, Any]) -> Page:
    """Mail a reset link if the address has an account: the answer is the same either way."""
    email = str((await request.form()).get("email", ""))[:254]
    redis = redis_of(request.app)
    ip = request.client.host if request.client else "unknown"
    try:
        message = "Too many reset requests; try again later."
        await enforce(redis, ratelimit_rules.RESET_PER_IP, ip, message)
        await enforce(redis, ratelimit_rules.RESET_PER_EMAIL, normalize_email(email), message)
        await request_password_reset(queue_of(request.app), email)
    except DomainError as error:
        context = {"sent": False, "error": error.message, "email": email}
        return render(request, "console/forgot_password.html", context, status_code=error.status)
    return render(request, "console/forgot_password.html", {"sent": True, "error": None, "email": email})


route_handlers = [
    login_page,
    login_submit,
    logout,
    set_password_page,
    set_password_submit,
    invitation_page,
    accept_invitation,
    forgot_password_page,
    forgot_password_submit,
]
