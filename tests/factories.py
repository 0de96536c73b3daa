"""Factories for the data model: small async functions with sensible defaults."""

from __future__ import annotations

import itertools
import uuid
from typing import Any

from piccolo.table import Table
from piccolo_api.session_auth.tables import SessionsBase

from server.accounts.passwords import hash_password
from server.accounts.services import create_user
from server.accounts.tables import User
from server.chat.tables import CannedReply, Conversation, Message, Visitor
from server.database import engine
from server.outbox.tables import OutboxEvent
from server.tenancy.tables import ApiKey, Invitation, Project, ProjectMember

_counter = itertools.count(1)

ALL_TABLES: tuple[type[Table], ...] = (
    User,
    Project,
    ProjectMember,
    ApiKey,
    Visitor,
    Conversation,
    Message,
    OutboxEvent,
    CannedReply,
    Invitation,
    SessionsBase,
)
DEFAULT_PASSWORD = "correct horse battery"


async def truncate_all() -> None:
    names = ", ".join(f'"{table._meta.tablename}"' for table in ALL_TABLES)
    await engine().run_ddl(f"TRUNCATE {names} RESTART IDENTITY CASCADE")


_DEFAULT_HASH: str | None = None


def _default_hash() -> str:
    # argon2 is slow on purpose; tests create many users with the same password, so hash it once.
    global _DEFAULT_HASH
    if _DEFAULT_HASH is None:
        _DEFAULT_HASH = hash_password(DEFAULT_PASSWORD)
    return _DEFAULT_HASH


async def make_user(
    *,
    email: str | None = None,
    password: str = DEFAULT_PASSWORD,
    role: User.GlobalRole = User.GlobalRole.USER,
    name: str = "",
    active: bool = True,
) -> User:
    email = email or f"user{next(_counter)}@example.com"
    if password != DEFAULT_PASSWORD:
        return await create_user(email, password, name=name, global_role=role, active=active)
    user = User(
        username=email.lower(),
        email=email.lower(),
        name=name,
        password=_default_hash(),
        global_role=role.value,
        admin=role is User.GlobalRole.ADMIN,
        active=active,
    )
    await user.save()
    return user


async def make_project(**values: Any) -> Project:
    values.setdefault("name", f"Project {next(_counter)}")
    values.setdefault("allowed_origins", ["https://shop.example"])
    project = Project(**values)
    await project.save()
    return project


async def make_member(project: Project, user: User, role: ProjectMember.ProjectRole) -> ProjectMember:
    member = ProjectMember(project=project.id, user=user.id, role=role.value)
    await member.save()
    return member


async def make_visitor(project: Project, **values: Any) -> Visitor:
    values.setdefault("uid", f"v_{uuid.uuid4().hex}")
    visitor = Visitor(project=project.id, **values)
    await visitor.save()
    return visitor


async def make_conversation(project: Project, visitor: Visitor, **values: Any) -> Conversation:
    conversation = Conversation(project=project.id, visitor=visitor.id, **values)
    await conversation.save()
    return conversation


async def make_message(
    conversation: Conversation, *, seq: int, body: str = "hello", **values: Any
) -> Message:
    values.setdefault("client_msg_id", uuid.uuid4())
    values.setdefault("sender_kind", Message.SenderKind.VISITOR.value)
    message = Message(
        project=conversation.project, conversation=conversation.id, seq=seq, body=body, **values
    )
    await message.save()
    return message


async def make_outbox_event(project: Project, type: str = "message.created", **payload: Any) -> OutboxEvent:
    event = OutboxEvent(project=project.id, type=type, payload=payload)
    await event.save()
    return event


async def make_api_key(user: User, project: Project | None = None, **values: Any) -> ApiKey:
    values.setdefault("name", "test key")
    values.setdefault("prefix", f"pk{next(_counter)}")
    values.setdefault("secret_hash", uuid.uuid4().hex + uuid.uuid4().hex)
    key = ApiKey(user=user.id, project=project.id if project else None, **values)
    await key.save()
    return key


async def make_canned_reply(project: Project, **values: Any) -> CannedReply:
    values.setdefault("shortcut", f"reply{next(_counter)}")
    values.setdefault("body", "Thanks for reaching out!")
    reply = CannedReply(project=project.id, **values)
    await reply.save()
    return reply


async def make_invitation(project: Project, email: str, **values: Any) -> Invitation:
    """A pending invitation whose token nobody knows (tests that need the token use the mailbox)."""
    from datetime import UTC, datetime, timedelta

    values.setdefault("role", Invitation.ProjectRole.AGENT.value)
    values.setdefault("expires_at", datetime.now(UTC) + timedelta(days=7))
    invitation = Invitation(project=project.id, email=email, token_hash=uuid.uuid4().hex * 2, **values)
    await invitation.save()
    return invitation
