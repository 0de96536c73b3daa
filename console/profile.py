"""Profile (every signed-in user): name, password change, console sessions.

A password change needs the current password and, like every password change
(``server.accounts.services.set_password``), ends all the user's sessions; this browser gets a
new one at once. "Sign out everywhere else" ends every session but this one.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from litestar import Request, get, post

from console.flash import done, flash_cookie
from console.forms import field_errors, form_data
from console.render import Page, render
from console.shell import CurrentViewer, Need, Viewer, needs
from console.signin import signed_in_response
from server.accounts import services
from server.accounts.sessions import SESSION_COOKIE, destroy_other_sessions, session_id, user_sessions
from server.errors import DomainError, Invalid
from server.web_state import redis_of

TEMPLATE = "console/profile.html"
PATH = "/console/profile"


def _device(user_agent: str) -> str:
    """A short name for a browser ("Firefox on Linux"): enough to tell sessions apart."""
    browsers = (("Edg/", "Edge"), ("Firefox/", "Firefox"), ("Chrome/", "Chrome"), ("Safari/", "Safari"))
    systems = (
        ("Windows", "Windows"),
        ("Android", "Android"),
        ("iPhone", "iOS"),
        ("Mac OS", "macOS"),
        ("Linux", "Linux"),
    )
    browser = next((name for mark, name in browsers if mark in user_agent), "")
    system = next((name for mark, name in systems if mark in user_agent), "")
    if browser and system:
        return f"{browser} on {system}"
    return browser or system or (user_agent[:60] if user_agent else "Unknown browser")


async def _page(
    request: Request[Any, Any, Any],
    viewer: Viewer,
    *,
    form: str = "",
    errors: dict[str, str] | None = None,
    values: dict[str, Any] | None = None,
    status_code: int = 200,
) -> Page:
    current = request.cookies.get(SESSION_COOKIE)
    current_id = session_id(current) if current else ""
    sessions = [
        {
            "current": token_hash == current_id,
            "device": _device(data.user_agent),
            "ip": data.ip,
            "started": datetime.fromtimestamp(data.created_at, UTC),
        }
        for token_hash, data in await user_sessions(redis_of(request.app), viewer.user.id)
    ]
    context = {
        "section": "profile",
        "sessions": sessions,
        "form": form,
        "errors": errors or {},
        "values": values or {},
    }
    return render(request, TEMPLATE, context, status_code=status_code)


@get("/profile", name="console:profile", opt=needs(Need.SIGNED_IN))
async def profile_page(request: Request[Any, Any, Any], viewer: CurrentViewer) -> Page:
    return await _page(request, viewer)


@post("/profile/name", opt=needs(Need.SIGNED_IN))
async def save_name(request: Request[Any, Any, Any], viewer: CurrentViewer) -> Any:
    data = await form_data(request)
    try:
        await services.rename_user(viewer.user.id, data.get("name", ""))
    except DomainError as error:
        return await _page(
            request, viewer, form="name", errors=field_errors(error), values=data, status_code=422
        )
    return done(request, PATH, "Name saved.")


@post("/profile/password", opt=needs(Need.SIGNED_IN))
async def change_password(request: Request[Any, Any, Any], viewer: CurrentViewer) -> Any:
    data = await form_data(request)
    try:
        if data.get("password", "") != data.get("password_again", ""):
            raise Invalid("The two new passwords differ.", fields={"password_again": "Does not match"})
        await services.change_password(
            redis_of(request.app), viewer.user, data.get("current_password", ""), data.get("password", "")
        )
    except DomainError as error:
        return await _page(request, viewer, form="password", errors=field_errors(error), status_code=422)
    # Every session ended with the old password; this browser continues in a new one.
    response = await signed_in_response(request, viewer.user, PATH)
    response.cookies.append(flash_cookie(request, "Password changed. Other browsers were signed out."))
    return response


@post("/profile/sessions/sign-out-others", opt=needs(Need.SIGNED_IN))
async def sign_out_others(request: Request[Any, Any, Any], viewer: CurrentViewer) -> Any:
    ended = await destroy_other_sessions(
        redis_of(request.app), viewer.user.id, request.cookies.get(SESSION_COOKIE)
    )
    return done(request, PATH, f"Signed out {ended} other session{'s' if ended != 1 else ''}.")


route_handlers = [profile_page, save_name, change_password, sign_out_others]
