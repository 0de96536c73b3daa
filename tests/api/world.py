"""A small world for API tests: two projects, one user of each kind, and an API key for each."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from server.accounts.tables import User
from server.tenancy.access import Actor
from server.tenancy.apikeys import create_api_key
from server.tenancy.queries import actor_for
from server.tenancy.tables import Project, ProjectMember
from tests import factories as f

Role = ProjectMember.ProjectRole

ACTORS = ("anonymous", "outsider", "agent", "other_manager", "manager", "admin", "other_project_key")


@dataclass
class World:
    project: Project
    other_project: Project
    users: dict[str, User]
    keys: dict[str, str] = field(default_factory=dict)
    """actor name -> bearer secret."""
    ids: dict[str, int] = field(default_factory=dict)

    def headers(self, actor: str) -> dict[str, str]:
        return {"authorization": f"Bearer {self.keys[actor]}"} if actor in self.keys else {}


async def _key_for(user: User, *, project_id: int | None = None) -> str:
    actor: Actor = await actor_for(user)
    created = await create_api_key(
        actor, name="test", project_id=project_id, read_only=False, expires_at=None
    )
    return created.secret


async def build_world() -> World:
    project, other = await f.make_project(name="Acme"), await f.make_project(name="Globex")
    users = {
        "outsider": await f.make_user(email="outsider@example.com"),
        "agent": await f.make_user(email="agent@example.com"),
        "other_manager": await f.make_user(email="othermgr@example.com"),
        "manager": await f.make_user(email="manager@example.com"),
        "admin": await f.make_user(email="admin@example.com", role=User.GlobalRole.ADMIN),
        # A global admin acting through a key limited to the other project: no admin powers leak.
        "other_project_key": await f.make_user(email="keyed@example.com", role=User.GlobalRole.ADMIN),
        "agent2": await f.make_user(email="agent2@example.com"),
    }
    await f.make_member(project, users["agent"], Role.AGENT)
    await f.make_member(project, users["agent2"], Role.AGENT)
    await f.make_member(project, users["manager"], Role.MANAGER)
    await f.make_member(other, users["other_manager"], Role.MANAGER)
    world = World(project=project, other_project=other, users=users)
    for name in ("outsider", "agent", "other_manager", "manager", "admin"):
        world.keys[name] = await _key_for(users[name])
    world.keys["other_project_key"] = await _key_for(users["other_project_key"], project_id=other.id)

    visitor = await f.make_visitor(project, name="Vera")
    conversation = await f.make_conversation(project, visitor, last_seq=1)
    await f.make_message(conversation, seq=1, body="hello")
    reply = await f.make_canned_reply(project, shortcut="hi")
    other_visitor = await f.make_visitor(other)
    other_conversation = await f.make_conversation(other, other_visitor)
    invitation = await f.make_invitation(project, "pending@example.com")
    world.ids.update(
        project_id=project.id,
        other_project_id=other.id,
        visitor_id=visitor.id,
        conversation_id=conversation.id,
        reply_id=reply.id,
        member_user_id=users["agent2"].id,
        other_visitor_id=other_visitor.id,
        other_conversation_id=other_conversation.id,
        invitation_id=invitation.id,
    )
    return world


def summary(response: Any) -> str:
    request = response.request
    return f"{request.method} {request.url.path} -> {response.status_code} {response.text[:200]}"
