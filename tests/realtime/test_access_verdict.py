"""server/realtime/access.py's rule for one session, without processes: what it keeps, and why not."""

from __future__ import annotations

from server.realtime.access import verdict
from server.realtime.connection import AgentPrincipal
from server.tenancy.access import Actor, GlobalRole, ProjectRole
from server.tenancy.queries import AccessNow, KeyAccess

AGENT, MANAGER = ProjectRole.AGENT, ProjectRole.MANAGER


def _principal(projects: set[int], **actor: object) -> AgentPrincipal:
    values: dict[str, object] = {
        "user_id": 1,
        "global_role": GlobalRole.USER,
        "memberships": {p: AGENT for p in projects},
    }
    return AgentPrincipal(actor=Actor(**{**values, **actor}), project_ids=frozenset(projects))  # type: ignore[arg-type]


def _now(memberships: dict[int, ProjectRole] | None, projects: set[int], **keys: KeyAccess) -> AccessNow:
    users = {} if memberships is None else {1: (GlobalRole.USER, memberships)}
    return AccessNow(users=users, keys={int(k[1:]): v for k, v in keys.items()}, projects=frozenset(projects))


def test_unchanged_access_keeps_the_same_principal() -> None:
    principal = _principal({1, 2})
    assert verdict(principal, _now({1: AGENT, 2: AGENT}, {1, 2})).principal == principal


def test_a_deactivated_user_or_a_revoked_key_ends_the_session() -> None:
    assert verdict(_principal({1}), _now(None, {1})).code == "user_deactivated"
    keyed = _principal({1}, api_key_id=7, key_project_id=1)
    assert verdict(keyed, _now({1: AGENT}, {1})).code == "api_key_revoked"
    assert verdict(
        keyed, _now({1: AGENT}, {1}, k7=KeyAccess(user_id=2, project_id=1, read_only=False))
    ).code == (
        "api_key_revoked"  # a key of someone else
    )
    alive = verdict(keyed, _now({1: AGENT}, {1}, k7=KeyAccess(user_id=1, project_id=1, read_only=True)))
    assert alive.principal is not None and alive.principal.actor.read_only and alive.lost == frozenset()


def test_losing_some_projects_narrows_and_losing_all_ends() -> None:
    narrowed = verdict(_principal({1, 2}), _now({1: AGENT}, {1, 2}))
    assert narrowed.principal is not None and narrowed.principal.project_ids == {1}
    assert (narrowed.code, narrowed.lost) == ("member_removed", frozenset({2}))
    ended = verdict(_principal({1}), _now({}, {1}))
    assert (ended.principal, ended.code, ended.lost) == (None, "member_removed", frozenset({1}))
    deleted = verdict(_principal({1, 2}), _now({1: AGENT}, {1}))
    assert deleted.principal is not None and deleted.code == "project_deleted"


def test_a_role_change_keeps_the_projects_with_the_new_role() -> None:
    changed = verdict(_principal({1}), _now({1: MANAGER}, {1}))
    assert changed.principal is not None and changed.principal.actor.memberships == {1: MANAGER}
    assert changed.lost == frozenset() and changed.code == ""


def test_an_admin_keeps_every_project_that_still_exists() -> None:
    admin = _principal({1, 2, 3}, global_role=GlobalRole.ADMIN, memberships={})
    now = AccessNow(users={1: (GlobalRole.ADMIN, {})}, keys={}, projects=frozenset({1, 3}))
    result = verdict(admin, now)
    assert result.principal is not None and result.principal.project_ids == {1, 3}
    assert result.code == "project_deleted"
    demoted = verdict(
        admin, AccessNow(users={1: (GlobalRole.USER, {3: AGENT})}, keys={}, projects=frozenset({1, 2, 3}))
    )
    assert (
        demoted.principal is not None
        and demoted.principal.project_ids == {3}
        and demoted.code == "member_removed"
    )
