"""Invitations: managers invite, list, re-send and revoke; the invitee previews and accepts.

The invitation's secret is never in a response here: it reaches the invitee's mailbox only
(``server/tenancy/invitations.py``). New accounts accept by choosing a password with
``POST /api/v1/auth/set-password``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from litestar import Request, delete, get, post
from litestar.params import JSONBody

from server.accounts import ratelimit_rules
from server.api.access import CurrentActor, project_role, public, signed_in
from server.api.params import InvitationId, ProjectId
from server.ratelimit import enforce
from server.tenancy import invitations
from server.tenancy.access import ProjectRole
from server.tenancy.schemas import (
    InvitationAccept,
    InvitationAccepted,
    InvitationCreate,
    InvitationPreviewView,
    InvitationView,
)
from server.tenancy.tables import Invitation
from server.web_state import queue_of, redis_of


def invitation_view(invitation: Invitation) -> InvitationView:
    return InvitationView(
        id=invitation.id,
        email=invitation.email,
        name=invitation.name,
        role="manager" if invitation.role == ProjectRole.MANAGER.value else "agent",
        invited_by=invitation.invited_by,
        created_at=invitation.created_at,
        expires_at=invitation.expires_at,
        expired=invitation.expires_at <= datetime.now(UTC),
    )


def client_ip(request: Request[Any, Any, Any]) -> str:
    return request.client.host if request.client else "unknown"


@get(
    "/projects/{project_id:int}/invitations",
    opt=project_role(ProjectRole.MANAGER),
    summary="Pending invitations (managers)",
)
async def list_invitations(project_id: ProjectId) -> list[InvitationView]:
    return [invitation_view(row) for row in await invitations.list_invitations(project_id)]


@post(
    "/projects/{project_id:int}/invitations",
    opt=project_role(ProjectRole.MANAGER),
    status_code=202,
    summary="Invite an address (managers): the link is mailed to it; inviting again re-sends",
)
async def create_invitation(
    request: Request[Any, Any, Any],
    actor: CurrentActor,
    project_id: ProjectId,
    data: JSONBody[InvitationCreate],
) -> InvitationView:
    invitation = await invitations.invite(
        queue_of(request.app),
        project_id,
        data.email,
        ProjectRole(data.role),
        invited_by=actor.user_id,
        name=data.name,
    )
    return invitation_view(invitation)


@post(
    "/projects/{project_id:int}/invitations/{invitation_id:int}/resend",
    opt=project_role(ProjectRole.MANAGER),
    status_code=202,
    summary="Mail a pending invitation again with a new link; the old link stops working (managers)",
)
async def resend_invitation(
    request: Request[Any, Any, Any], project_id: ProjectId, invitation_id: InvitationId
) -> InvitationView:
    return invitation_view(
        await invitations.resend_invitation(queue_of(request.app), project_id, invitation_id)
    )


@delete(
    "/projects/{project_id:int}/invitations/{invitation_id:int}",
    opt=project_role(ProjectRole.MANAGER),
    status_code=204,
    summary="Revoke a pending invitation (managers)",
)
async def revoke_invitation(project_id: ProjectId, invitation_id: InvitationId) -> None:
    await invitations.revoke_invitation(project_id, invitation_id)


@post(
    "/invitations/preview",
    opt=public(),
    status_code=200,
    summary="What an invitation link invites to, and whether to sign in or choose a password",
    security=[],
)
async def preview_invitation(
    request: Request[Any, Any, Any], data: JSONBody[InvitationAccept]
) -> InvitationPreviewView:
    await enforce(
        redis_of(request.app),
        ratelimit_rules.LINK_PER_IP,
        client_ip(request),
        "Too many attempts; try again later.",
    )
    preview = await invitations.invitation_preview(data.token)
    return InvitationPreviewView(
        project_name=preview.project_name,
        email=preview.email,
        name=preview.name,
        role=preview.role.value,
        account_exists=preview.account_exists,
    )


@post(
    "/invitations/accept",
    opt=signed_in(writes=True),
    status_code=200,
    summary="Accept an invitation as the signed-in user (the invited address)",
)
async def accept_invitation(
    request: Request[Any, Any, Any], actor: CurrentActor, data: JSONBody[InvitationAccept]
) -> InvitationAccepted:
    await enforce(
        redis_of(request.app),
        ratelimit_rules.LINK_PER_IP,
        client_ip(request),
        "Too many attempts; try again later.",
    )
    joined = await invitations.accept_invitation(data.token, actor.user_id)
    return InvitationAccepted(project_id=joined.project_id, role=joined.role.value)


route_handlers = [
    list_invitations,
    create_invitation,
    resend_invitation,
    revoke_invitation,
    preview_invitation,
    accept_invitation,
]
