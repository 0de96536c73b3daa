"""Who may do what: pure predicates of (actor, target), reused by REST, console, socket and jobs.

An :class:`Actor` is resolved once per request or socket (user, memberships, and the limits of
the API key used, if any); the predicates never touch the database.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from server.accounts.tables import User
from server.tenancy.tables import ProjectMember

GlobalRole = User.GlobalRole
ProjectRole = ProjectMember.ProjectRole

# A role includes every role ranked below it: MANAGER can do all an AGENT can.
_RANK = {ProjectRole.AGENT: 1, ProjectRole.MANAGER: 2}


@dataclass(frozen=True, slots=True)
class Actor:
    user_id: int
    global_role: GlobalRole
    memberships: Mapping[int, ProjectRole] = field(default_factory=dict)
    """project id -> the role held there."""
    key_project_id: int | None = None
    """Set when acting through an API key limited to one project."""
    read_only: bool = False
    """Set when acting through a read-only API key."""
    api_key_id: int | None = None


def is_admin(actor: Actor) -> bool:
    return actor.global_role is GlobalRole.ADMIN and actor.key_project_id is None


def can_reach_project(actor: Actor, project_id: int) -> bool:
    """The key's project limit, if any, allows this project."""
    return actor.key_project_id is None or actor.key_project_id == project_id


def role_in(actor: Actor, project_id: int) -> ProjectRole | None:
    """The effective role in a project: global admins act as managers everywhere."""
    if not can_reach_project(actor, project_id):
        return None
    if actor.global_role is GlobalRole.ADMIN:
        return ProjectRole.MANAGER
    return actor.memberships.get(project_id)


def has_project_role(actor: Actor, project_id: int, required: ProjectRole) -> bool:
    role = role_in(actor, project_id)
    return role is not None and _RANK[role] >= _RANK[required]


def has_global_role(actor: Actor, required: GlobalRole) -> bool:
    return required is GlobalRole.USER or is_admin(actor)


def can_write(actor: Actor) -> bool:
    return not actor.read_only


def visible_project_ids(actor: Actor) -> frozenset[int] | None:
    """The projects the actor sees; None means all of them (a global admin)."""
    if actor.key_project_id is not None:
        return frozenset({actor.key_project_id}) if role_in(actor, actor.key_project_id) else frozenset()
    if actor.global_role is GlobalRole.ADMIN:
        return None
    return frozenset(actor.memberships)
