"""The data model's guarantees: cascades from Project, unique constraints, indexes."""

from __future__ import annotations

import uuid

import asyncpg
import pytest

from server.accounts.services import create_user
from server.accounts.tables import User
from server.chat.tables import CannedReply, Conversation, ConversationRead, Message, Visitor
from server.database import engine
from server.errors import Conflict
from server.outbox.tables import OutboxEvent
from server.tenancy.tables import ApiKey, Invitation, Project, ProjectMember
from tests import factories as f

TENANT_TABLES = (
    ProjectMember,
    ApiKey,
    Visitor,
    Conversation,
    Message,
    OutboxEvent,
    CannedReply,
    ConversationRead,
    Invitation,
)


async def _populate(project: Project) -> None:
    agent = await f.make_user()
    await f.make_member(project, agent, ProjectMember.ProjectRole.AGENT)
    await f.make_api_key(agent, project)
    visitor = await f.make_visitor(project)
    conversation = await f.make_conversation(project, visitor)
    await f.make_message(conversation, seq=1)
    await ConversationRead(project=project.id, conversation=conversation.id, user=agent.id, seq=1).save()
    await f.make_outbox_event(project)
    await f.make_canned_reply(project)
    await f.make_invitation(project, "someone@example.com")


async def test_deleting_a_project_removes_its_rows_from_every_tenant_table() -> None:
    doomed, kept = await f.make_project(), await f.make_project()
    await _populate(doomed)
    await _populate(kept)

    await Project.delete().where(Project.id == doomed.id)

    for table in TENANT_TABLES:
        assert await table.count().where(table.project == doomed.id) == 0, table.__name__
        assert await table.count().where(table.project == kept.id) == 1, table.__name__
    assert await User.count() == 2  # users are not tenant rows: they survive


async def test_every_table_with_a_project_column_cascades_from_project() -> None:
    with_column = await engine().run_ddl(
        "SELECT table_name FROM information_schema.columns"
        " WHERE table_schema = 'public' AND column_name = 'project'"
    )
    foreign_keys = await engine().run_ddl(
        """
        SELECT cl.relname AS table_name, con.confdeltype::text AS on_delete, ref.relname AS target
        FROM pg_constraint con
        JOIN pg_class cl ON cl.oid = con.conrelid
        JOIN pg_class ref ON ref.oid = con.confrelid
        JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = ANY (con.conkey)
        WHERE con.contype = 'f' AND a.attname = 'project'
        """
    )
    tables = {row["table_name"] for row in with_column}
    assert tables == {table._meta.tablename for table in TENANT_TABLES}
    cascading = {
        row["table_name"] for row in foreign_keys if row["on_delete"] == "c" and row["target"] == "project"
    }
    assert cascading == tables


async def test_visitor_uid_is_unique_per_project_only() -> None:
    one, two = await f.make_project(), await f.make_project()
    await f.make_visitor(one, uid="same")
    await f.make_visitor(two, uid="same")  # another project may reuse it
    with pytest.raises(asyncpg.UniqueViolationError):
        await f.make_visitor(one, uid="same")


async def test_a_user_is_a_member_of_a_project_once() -> None:
    project, user = await f.make_project(), await f.make_user()
    await f.make_member(project, user, ProjectMember.ProjectRole.AGENT)
    with pytest.raises(asyncpg.UniqueViolationError):
        await f.make_member(project, user, ProjectMember.ProjectRole.MANAGER)


async def test_message_seq_and_client_msg_id_are_unique_per_conversation() -> None:
    project = await f.make_project()
    visitor = await f.make_visitor(project)
    first, second = await f.make_conversation(project, visitor), await f.make_conversation(project, visitor)
    client_msg_id = uuid.uuid4()
    await f.make_message(first, seq=1, client_msg_id=client_msg_id)
    await f.make_message(second, seq=1, client_msg_id=client_msg_id)  # other conversation: fine
    with pytest.raises(asyncpg.UniqueViolationError):
        await f.make_message(first, seq=1)
    with pytest.raises(asyncpg.UniqueViolationError):
        await f.make_message(first, seq=2, client_msg_id=client_msg_id)


async def test_email_is_unique_whatever_its_case() -> None:
    await create_user("Ana@Example.com", "a long password")
    with pytest.raises(Conflict):
        await create_user("ana@example.COM", "a long password")
    with pytest.raises(asyncpg.UniqueViolationError):  # the database holds it too, not only the service
        await User.insert(User(username="x", email="ANA@example.com", password="!"))


async def test_inbox_and_outbox_indexes_exist() -> None:
    rows = await engine().run_ddl("SELECT indexname FROM pg_indexes WHERE schemaname = 'public'")
    names = {row["indexname"] for row in rows}
    assert {"conversation_inbox_idx", "outbox_event_unpublished_idx", "parley_user_email_lower_key"} <= names


async def test_passwords_are_stored_as_argon2_hashes() -> None:
    user = await f.make_user(password="a long enough password")
    stored = await User.select(User.password).where(User.id == user.id).first()
    assert stored is not None and stored["password"].startswith("$argon2id$")


async def test_emptying_the_tables_between_tests_keeps_the_migrations_applied() -> None:
    from piccolo.apps.migrations.tables import Migration

    from tests.factories import truncate_all

    applied = await Migration.count()
    assert applied > 0
    await truncate_all()
    assert await Migration.count() == applied
