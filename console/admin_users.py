"""Administration > Users (global admins): list and search, create, deactivate or reactivate,
make or unmake admin. The account services the REST API uses (``server/accounts/services.py``):
deactivating ends the user's sessions; nobody deactivates or demotes themself.
"""

from __future__ import annotations

from typing import Any

from litestar import Request, get, post
from litestar.params import FromPath

from console.flash import done
from console.forms import checkbox, field_errors, form_data
from console.paging import search_page
from console.render import Page, render
from console.shell import CurrentViewer, Need, needs
from server.accounts import services
from server.accounts.queries import find_users
from server.accounts.resets import request_password_reset
from server.accounts.tables import User
from server.errors import DomainError
from server.web_state import queue_of, redis_of

TEMPLATE = "console/admin_users.html"
PATH = "/console/admin/users"


async def _page(
    request: Request[Any, Any, Any],
    *,
    errors: dict[str, str] | None = None,
    values: dict[str, Any] | None = None,
    status_code: int = 200,
) -> Page:
    users, paging = await search_page(request, find_users)
    context = {
        "section": "admin-users",
        "users": users,
        **paging,
        "errors": errors or {},
        "values": values or {},
        "admin_role": User.GlobalRole.ADMIN.value,
    }
    return render(request, TEMPLATE, context, status_code=status_code)


@get("/admin/users", name="console:admin-users", opt=needs(Need.ADMIN))
async def users_page(request: Request[Any, Any, Any], viewer: CurrentViewer) -> Page:
    return await _page(request)


@post("/admin/users", opt=needs(Need.ADMIN))
async def create_user(request: Request[Any, Any, Any], viewer: CurrentViewer) -> Any:
    data = await form_data(request)
    role = User.GlobalRole.ADMIN if checkbox(data, "admin") else User.GlobalRole.USER
    try:
        user = await services.create_user(
            data.get("email", ""), data.get("password", ""), name=data.get("name", "")[:200], global_role=role
        )
    except DomainError as error:
        errors = field_errors(error)
        if error.code == "email_taken":
            errors["email"] = "A user with this e-mail address already exists"
        values = {key: value for key, value in data.items() if key != "password"}
        return await _page(request, errors=errors, values=values, status_code=422)
    return done(request, PATH, f"User {user.email} created.")


@post("/admin/users/{user_id:int}/active", opt=needs(Need.ADMIN))
async def set_active(request: Request[Any, Any, Any], viewer: CurrentViewer, user_id: FromPath[int]) -> Any:
    active = checkbox(await form_data(request), "active")
    user = await services.set_active(redis_of(request.app), user_id, active, acting_user_id=viewer.user.id)
    message = f"{user.email} can sign in again." if active else f"{user.email} is deactivated and signed out."
    return done(request, PATH, message)


@post("/admin/users/{user_id:int}/admin", opt=needs(Need.ADMIN))
async def set_admin(request: Request[Any, Any, Any], viewer: CurrentViewer, user_id: FromPath[int]) -> Any:
    make_admin = checkbox(await form_data(request), "admin")
    role = User.GlobalRole.ADMIN if make_admin else User.GlobalRole.USER
    user = await User.objects().where(User.id == user_id).first()
    if user is None:
        return done(request, PATH, "No such user.", kind="error")
    await services.set_global_role(user_id, role, acting_user_id=viewer.user.id)
    return done(request, PATH, f"{user.email} is {'now' if make_admin else 'no longer'} an admin.")


@post("/admin/users/{user_id:int}/send-reset", opt=needs(Need.ADMIN))
async def send_reset(request: Request[Any, Any, Any], viewer: CurrentViewer, user_id: FromPath[int]) -> Any:
    user = await User.objects().where(User.id == user_id).first()
    if user is None:
        return done(request, PATH, "No such user.", kind="error")
    await request_password_reset(queue_of(request.app), user.email)
    return done(request, PATH, f"A password reset link is on its way to {user.email}.")


route_handlers = [users_page, create_user, set_active, set_admin, send_reset]
