"""Invitations: how a person joins a project. A manager invites an address; only its owner accepts.

Joining a project is always the invitee's own act, never someone else's alone:

1. :func:`invite` (a manager) stores a **pending** :class:`Invitation` with the SHA-256 of a new
   secret and queues a job that mails the secret to the address. The secret is in no response
   and no log; the answer (and the work done before answering) is the same whether or not the
   address already has an account, so inviting tells a manager nothing about other projects.
2. The invitee follows the mailed link and either
   - **signs in as that address** and calls :func:`accept_invitation` (an existing account), or
   - **chooses a password** with :func:`accept_invitation_as_new_user` (no account yet): this
     creates the account and the membership together. An address that already has an account
     cannot take this path: whoever holds its password must sign in.
3. A manager can list pending invitations (:func:`list_invitations`), re-send one with a new
   secret (:func:`resend_invitation`: the old link stops working) or revoke it
   (:func:`revoke_invitation`). Links expire after :data:`INVITATION_TTL_SECONDS`.

A password set from an invitation or reset link bumps the account's ``link_generation``, which
ends every other outstanding reset link of the account (``server/accounts/resets.py``); other
projects' pending invitations of that address stay, but from then on only the signed-in owner
can accept them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from redis.asyncio import Redis
from saq.queue.base import Queue

from server.accounts import resets
from server.accounts import services as accounts
from server.accounts.links import (
    INVITATION_PREFIX,
    PASSWORD_RESET_PREFIX,
    link_token_hash,
    new_link_token,
)
from server.accounts.tables import User
from server.database import engine
from server.errors import Conflict, ErrorCode, Forbidden, Invalid, NotFound
from server.mail.messages import Mail, render_mail
from server.tenancy.access import ProjectRole
from server.tenancy.actor_cache import forget_cached_actors
from server.tenancy.tables import Invitation, Project, ProjectMember

INVITATION_TTL_SECONDS = 7 * 24 * 3600
SEND_INVITATION_JOB = "send_invitation"
LINK_INVALID = "This link is unknown, used, revoked or expired."


MAX_NAME_LENGTH = 100


def check_invitee_name(name: str) -> str:
    """The invitee's name, trimmed; :class:`Invalid` at ``name`` when too long or not printable."""
    name = " ".join(name.split())
    if len(name) > MAX_NAME_LENGTH:
        raise Invalid(
            f"A name has at most {MAX_NAME_LENGTH} characters.",
            fields={"name": f"at most {MAX_NAME_LENGTH} characters"},
        )
    if not name.isprintable():
        raise Invalid("A name cannot hold control characters.", fields={"name": "not printable"})
    return name


@dataclass(frozen=True, slots=True)
class InvitationPreview:
    """What the holder of an invitation link may see before accepting (the console's page)."""

    project_name: str
    email: str
    name: str
    """The name the manager gave (may be empty): the form's suggestion."""
    role: ProjectRole
    account_exists: bool
    """True: sign in as ``email`` to accept. False: choose a password to create the account."""


def _now() -> datetime:
    return datetime.now(UTC)


def _pending() -> Any:
    return (Invitation.accepted_at.is_null()) & (Invitation.revoked_at.is_null())


async def _issue(queue: Queue, invitation_id: int) -> None:
    """Give the invitation a new secret and expiry, and queue the mail that carries the secret."""
    token = new_link_token(INVITATION_PREFIX)
    await Invitation.update(
        {
            Invitation.token_hash: link_token_hash(token),
            Invitation.expires_at: _now() + timedelta(seconds=INVITATION_TTL_SECONDS),
        }
    ).where(Invitation.id == invitation_id)
    await queue.enqueue(SEND_INVITATION_JOB, invitation_id=invitation_id, token=token, retries=3, timeout=60)


async def invite(
    queue: Queue,
    project_id: int,
    email: str,
    role: ProjectRole,
    *,
    invited_by: int | None,
    name: str = "",
) -> Invitation:
    """Invite ``email`` to the project with ``role``; inviting a pending address again re-sends.

    ``name`` (optional, what the manager calls them) greets them in the mail and becomes the new
    account's name unless they type another when they choose their password.

    :class:`Conflict` ``already_member`` when the address is already a member of this project
    (the manager sees the member list anyway); nothing is said about other projects.
    """
    normalized = accounts.check_email(email)
    name = check_invitee_name(name)
    if not await Project.exists().where(Project.id == project_id):
        raise NotFound("No such project.")
    if await ProjectMember.exists().where(
        (ProjectMember.project == project_id) & (ProjectMember.user.email == normalized)
    ):
        raise Conflict("This address is already a member of the project.", code=ErrorCode.ALREADY_MEMBER)
    async with engine().transaction():
        existing: Invitation | None = (
            await Invitation.objects()
            .where((Invitation.project == project_id) & (Invitation.email == normalized) & _pending())
            .first()
        )
        if existing is None:
            invitation = Invitation(
                project=project_id,
                email=normalized,
                name=name,
                role=role.value,
                invited_by=invited_by,
                token_hash=link_token_hash(new_link_token(INVITATION_PREFIX)),  # replaced by _issue
                expires_at=_now(),
            )
            await invitation.save()
            invitation_id = invitation.id
        else:
            invitation_id = existing.id
            changes: dict[Any, Any] = {Invitation.role: role.value, Invitation.invited_by: invited_by}
            if name:
                changes[Invitation.name] = name
            await Invitation.update(changes).where(Invitation.id == invitation_id)
        await _issue(queue, invitation_id)
    return await _get(project_id, invitation_id)


async def _get(project_id: int, invitation_id: int) -> Invitation:
    invitation: Invitation | None = (
        await Invitation.objects()
        .where((Invitation.id == invitation_id) & (Invitation.project == project_id))
        .first()
    )
    if invitation is None:
        raise NotFound("No such invitation.")
    return invitation


async def list_invitations(project_id: int) -> list[Invitation]:
    """The project's invitations that were neither accepted nor revoked (expired ones included)."""
    rows: list[Invitation] = (
        await Invitation.objects()
        .where((Invitation.project == project_id) & _pending())
        .order_by(Invitation.id)
    )
    return rows


async def _get_pending(project_id: int, invitation_id: int) -> Invitation:
    invitation: Invitation | None = (
        await Invitation.objects()
        .where((Invitation.id == invitation_id) & (Invitation.project == project_id) & _pending())
        .first()
    )
    if invitation is None:
        raise NotFound("No such pending invitation.")
    return invitation


async def resend_invitation(queue: Queue, project_id: int, invitation_id: int) -> Invitation:
    """Mail a pending invitation again, with a new secret and expiry; the previous link stops working."""
    await _get_pending(project_id, invitation_id)
    await _issue(queue, invitation_id)
    return await _get(project_id, invitation_id)


async def revoke_invitation(project_id: int, invitation_id: int) -> None:
    """Withdraw a pending invitation: its link stops working."""
    await _get_pending(project_id, invitation_id)
    await Invitation.update({Invitation.revoked_at: _now()}).where(Invitation.id == invitation_id)


async def _by_token(token: str, *, lock: bool) -> Invitation:
    """The pending, unexpired invitation of ``token``, or :class:`NotFound` ``link_invalid``."""
    if not token.startswith(INVITATION_PREFIX):
        raise NotFound(LINK_INVALID, code=ErrorCode.LINK_INVALID)
    query = Invitation.objects().where((Invitation.token_hash == link_token_hash(token)) & _pending())
    if lock:
        query = query.lock_rows("UPDATE")
    invitation: Invitation | None = await query.first()
    if invitation is None or invitation.expires_at <= _now():
        raise NotFound(LINK_INVALID, code=ErrorCode.LINK_INVALID)
    return invitation


async def invitation_preview(token: str) -> InvitationPreview:
    """What the link's holder is invited to, and whether they must sign in or choose a password."""
    invitation = await _by_token(token, lock=False)
    project: Project | None = await Project.objects().where(Project.id == invitation.project).first()
    if project is None:
        raise NotFound(LINK_INVALID, code=ErrorCode.LINK_INVALID)
    return InvitationPreview(
        project_name=project.name,
        email=invitation.email,
        name=invitation.name,
        role=ProjectRole(invitation.role),
        account_exists=await User.exists().where(User.email == invitation.email),
    )


@dataclass(frozen=True, slots=True)
class Joined:
    project_id: int
    role: ProjectRole


async def _join(invitation: Invitation, user_id: int) -> Joined:
    """Make the membership and mark the invitation accepted (inside the caller's transaction).

    Someone already a member keeps the role they have.
    """
    current = (
        await ProjectMember.select(ProjectMember.role)
        .where((ProjectMember.project == invitation.project) & (ProjectMember.user == user_id))
        .first()
    )
    if current is None:
        await ProjectMember(project=invitation.project, user=user_id, role=invitation.role).save()
    await Invitation.update({Invitation.accepted_at: _now(), Invitation.accepted_by: user_id}).where(
        Invitation.id == invitation.id
    )
    return Joined(int(invitation.project), ProjectRole(current["role"] if current else invitation.role))


async def accept_invitation(token: str, user_id: int) -> Joined:
    """The signed-in user ``user_id`` accepts the invitation of ``token``: now a member.

    Only the account whose address was invited can accept: another account gets
    :class:`Forbidden` ``invitation_for_another_address``.
    """
    async with engine().transaction():
        invitation = await _by_token(token, lock=True)
        user: User | None = (
            await User.objects().where((User.id == user_id) & (User.active == True)).first()  # noqa: E712
        )
        if user is None or accounts.normalize_email(user.email) != invitation.email:
            raise Forbidden(
                "This invitation is for another address: sign in as the invited address.",
                code=ErrorCode.INVITATION_FOR_ANOTHER_ADDRESS,
            )
        joined = await _join(invitation, user.id)
    forget_cached_actors()
    return joined


async def accept_invitation_as_new_user(token: str, password: str, *, name: str = "") -> User:
    """Create the invited account with ``password`` and join the project, in one transaction.

    The account is named ``name``, else the name the manager gave in the invitation.

    An address that already has an account gets :class:`Conflict` ``account_exists``: the
    invitee signs in and accepts instead (only the holder of the link learns this).
    """
    accounts.check_new_password(password)
    async with engine().transaction():
        invitation = await _by_token(token, lock=True)
        if await User.exists().where(User.email == invitation.email):
            raise Conflict(
                "An account with this address exists: sign in as it to accept the invitation.",
                code=ErrorCode.ACCOUNT_EXISTS,
            )
        user = await accounts.create_user(invitation.email, password, name=name.strip() or invitation.name)
        await _join(invitation, user.id)
    forget_cached_actors()
    return user


async def set_password_from_link(redis: Redis, token: str, password: str, *, name: str = "") -> User:
    """Choose a password with a mailed link: an invitation for a new account, or a password reset."""
    if token.startswith(PASSWORD_RESET_PREFIX):
        return await resets.reset_password(redis, token, password)
    return await accept_invitation_as_new_user(token, password, name=name)


async def invitation_mail(invitation_id: int, token: str, public_url: str) -> Mail | None:
    """For the worker: the mail carrying ``token``, or None if that token is no longer the
    invitation's (re-sent, revoked, accepted, or the transaction that made it rolled back).

    The wording depends on whether the address has an account (sign in and accept, or choose a
    password): decided here, in the job, so the inviting request does the same work either way.
    """
    invitation: Invitation | None = (
        await Invitation.objects()
        .where(
            (Invitation.id == invitation_id) & (Invitation.token_hash == link_token_hash(token)) & _pending()
        )
        .first()
    )
    if invitation is None:
        return None
    project: Project | None = await Project.objects().where(Project.id == invitation.project).first()
    if project is None:
        return None
    inviter: User | None = None
    if invitation.invited_by is not None:
        inviter = await User.objects().where(User.id == invitation.invited_by).first()
    account_exists = await User.exists().where(User.email == invitation.email)
    path = "/console/invitation" if account_exists else "/console/set-password"
    context = {
        "project_name": project.name,
        "name": invitation.name,
        "inviter": (inviter.name or inviter.email) if inviter is not None else "A manager",
        "role": invitation.role,
        "link": f"{public_url}{path}?{urlencode({'token': token})}",
        "account_exists": account_exists,
        "expires_at": invitation.expires_at,
    }
    return render_mail("invitation", invitation.email, context)
