"""Members (managers): who is in the project, their presence, invitations, roles, removal.

Invitations are ``server/tenancy/invitations.py`` (the invitee accepts from the mailed link;
nobody is made a member by someone else alone); role changes and removal are
``server/tenancy/services.py``, which refuse to leave a project without a manager. Presence is
the realtime gateway's (``server.chat.live.agent_statuses``); the member list refreshes itself.
"""

from __future__ import annotations

from typing import Any

from litestar import Request, get, post
from litestar.params import FromPath

from console.flash import done
from console.forms import field_errors, form_data
from console.paging import pager_of
from console.render import Page, render
from console.shell import CurrentViewer, Need, needs
from server.chat.live import agent_statuses
from server.errors import DomainError
from server.tenancy import invitations, services
from server.tenancy.access import ProjectRole
from server.web_state import queue_of, redis_of

TEMPLATE = "console/members.html"
ROLES = ("agent", "manager")


def members_path(project_id: int) -> str:
    return f"/console/projects/{project_id}/members"


async def _page(
    request: Request[Any, Any, Any],
    project_id: int,
    *,
    errors: dict[str, str] | None = None,
    values: dict[str, Any] | None = None,
    status_code: int = 200,
    blocks: list[str] | None = None,
) -> Page:
    pager = pager_of(request)
    rows = await services.list_members(project_id, limit=pager.fetch, offset=pager.offset)
    members, pager = pager.cut(rows)
    presence = await agent_statuses(redis_of(request.app), project_id, [row["user_id"] for row in members])
    context = {
        "section": "members",
        "members": members,
        "presence": presence,
        "pager": pager,
        "invitations": await invitations.list_invitations(project_id),
        "roles": ROLES,
        "errors": errors or {},
        "values": values or {},
    }
    return render(request, TEMPLATE, context, blocks=blocks, status_code=status_code)


@get("/projects/{project_id:int}/members", name="console:members", opt=needs(Need.MANAGER))
async def members_page(
    request: Request[Any, Any, Any], viewer: CurrentViewer, project_id: FromPath[int]
) -> Page:
    return await _page(request, project_id)


@get("/projects/{project_id:int}/members/list", opt=needs(Need.MANAGER))
async def member_list(
    request: Request[Any, Any, Any], viewer: CurrentViewer, project_id: FromPath[int]
) -> Page:
    """The list alone (the page's ``member_list`` block), which the page polls for presence."""
    return await _page(request, project_id, blocks=["member_list"])


def _role(raw: str) -> ProjectRole:
    return ProjectRole(raw) if raw in ROLES else ProjectRole.AGENT


@post("/projects/{project_id:int}/members/invite", opt=needs(Need.MANAGER))
async def invite(request: Request[Any, Any, Any], viewer: CurrentViewer, project_id: FromPath[int]) -> Any:
    data = await form_data(request)
    try:
        invitation = await invitations.invite(
            queue_of(request.app),
            project_id,
            data.get("email", ""),
            _role(data.get("role", "")),
            invited_by=viewer.user.id,
            name=data.get("name", ""),
        )
    except DomainError as error:
        errors = field_errors(error)
        if error.code == "already_member":
            errors["email"] = "Already a member of this project"
        return await _page(request, project_id, errors=errors, values=data, status_code=422)
    return done(request, members_path(project_id), f"Invitation sent to {invitation.email}.")


@post("/projects/{project_id:int}/invitations/{invitation_id:int}/resend", opt=needs(Need.MANAGER))
async def resend(
    request: Request[Any, Any, Any],
    viewer: CurrentViewer,
    project_id: FromPath[int],
    invitation_id: FromPath[int],
) -> Any:
    invitation = await invitations.resend_invitation(queue_of(request.app), project_id, invitation_id)
    return done(
        request,
        members_path(project_id),
        f"Invitation sent again to {invitation.email}; the old link stops working.",
    )


@post("/projects/{project_id:int}/invitations/{invitation_id:int}/revoke", opt=needs(Need.MANAGER))
async def revoke(
    request: Request[Any, Any, Any],
    viewer: CurrentViewer,
    project_id: FromPath[int],
    invitation_id: FromPath[int],
) -> Any:
    await invitations.revoke_invitation(project_id, invitation_id)
    return done(request, members_path(project_id), "Invitation revoked.")


@post("/projects/{project_id:int}/members/{user_id:int}/role", opt=needs(Need.MANAGER))
async def change_role(
    request: Request[Any, Any, Any], viewer: CurrentViewer, project_id: FromPath[int], user_id: FromPath[int]
) -> Any:
    role = _role((await form_data(request)).get("role", ""))
    try:
        member = await services.change_member_role(project_id, user_id, role)
    except DomainError as error:
        if error.code != "last_manager":
            raise
        return done(request, members_path(project_id), error.message, kind="error")
    return done(
        request, members_path(project_id), f"{member['name'] or member['email']} is now {role.value}."
    )


@post("/projects/{project_id:int}/members/{user_id:int}/remove", opt=needs(Need.MANAGER))
async def remove(
    request: Request[Any, Any, Any], viewer: CurrentViewer, project_id: FromPath[int], user_id: FromPath[int]
) -> Any:
    try:
        await services.remove_member(project_id, user_id)
    except DomainError as error:
        if error.code != "last_manager":
            raise
        return done(request, members_path(project_id), error.message, kind="error")
    return done(request, members_path(project_id), "Member removed: they lose the project at once.")


route_handlers = [members_page, member_list, invite, resend, revoke, change_role, remove]
