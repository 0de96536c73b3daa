"""Users: who am I; global admins create, list and deactivate users."""

from __future__ import annotations

from typing import Any

from litestar import Request, get, post
from litestar.params import JSONBody

from server.accounts import services
from server.accounts.schemas import UserCreate, UserView, user_view
from server.accounts.tables import User
from server.api.access import CurrentActor, global_role, signed_in
from server.api.params import UserId
from server.tenancy.access import GlobalRole
from server.web_state import redis_of


@get("/users/me", opt=signed_in(), summary="The caller")
async def me(actor: CurrentActor) -> UserView:
    return user_view(await User.objects().where(User.id == actor.user_id).first())


@get("/users", opt=global_role(GlobalRole.ADMIN), summary="List users (admins)")
async def list_users() -> list[UserView]:
    return [user_view(user) for user in await User.objects().order_by(User.id)]


@post("/users", opt=global_role(GlobalRole.ADMIN), summary="Create a user (admins)")
async def create_user(data: JSONBody[UserCreate]) -> UserView:
    user = await services.create_user(
        data.email, data.password, name=data.name, global_role=GlobalRole(data.global_role)
    )
    return user_view(user)


@post(
    "/users/{user_id:int}/deactivate",
    opt=global_role(GlobalRole.ADMIN),
    status_code=200,
    summary="Deactivate a user (admins)",
)
async def deactivate_user(request: Request[Any, Any, Any], actor: CurrentActor, user_id: UserId) -> UserView:
    user = await services.set_active(redis_of(request.app), user_id, False, acting_user_id=actor.user_id)
    return user_view(user)


route_handlers = [me, list_users, create_user, deactivate_user]
