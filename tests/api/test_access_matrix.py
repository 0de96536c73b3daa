"""Every route of /api/v1 against every kind of caller, with the written policy as the oracle.

The expected answer of each cell comes from ``tests/api/policy.py`` (written by hand), never from
the rule a route declares: a route declared with the wrong role fails here. Allowed callers must
get the right project's data, denied ones the documented status and error code. A route that the
app serves but the policy does not list (or the other way round) fails the completeness test,
which names the missing row; ``docs/api.md`` is checked against the same table.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from litestar import Litestar

from server.tenancy.apikeys import create_api_key
from server.tenancy.queries import actor_for
from tests.api.policy import POLICY, READS_THOUGH_UNSAFE, Level
from tests.api.world import ACTORS, World, build_world, summary

DOCS = Path(__file__).resolve().parents[2] / "docs" / "api.md"
Check = Callable[[World, str, Any], None]
"""Asserts on an allowed caller's JSON body: (world, actor, body)."""

OUTSIDERS = ("outsider", "other_manager", "other_project_key")
"""Callers with no role in ``world.project`` (a key limited to the other project counts so)."""
CALLERS = (*ACTORS, "read_only_manager")


def expect(actual: object, wanted: object) -> None:
    assert actual == wanted, f"got {actual!r}, policy wants {wanted!r}"


def _user(w: World, actor: str) -> Any:
    return w.users[actor.removeprefix("read_only_")]


def _ids(body: Any) -> list[int]:
    return [item["id"] for item in body]


def _emails(body: Any) -> set[str]:
    return {item["email"] for item in body}


def _projects_seen(w: World, a: str, body: Any) -> None:
    expected = {
        "outsider": set(),
        "other_manager": {"Globex"},
        "other_project_key": {"Globex"},
        "admin": {"Acme", "Globex"},
    }.get(a, {"Acme"})
    assert {project["name"] for project in body} == expected


def _own_keys(w: World, a: str, body: Any) -> None:
    owners = {key["user_id"] for key in body}
    if a == "admin":
        assert len(owners) > 1, "admins see every key"
    else:
        assert owners == {_user(w, a).id}


def _is_project(w: World, a: str, body: Any) -> None:
    assert (body["id"], body["name"]) == (w.project.id, "Acme")


def _conversation(w: World, a: str, body: Any) -> None:
    assert body["id"] == w.ids["conversation_id"]
    assert body["visitor"]["id"] == w.ids["visitor_id"]


@dataclass(frozen=True)
class Call:
    """How the matrix calls one route: the path with ``World.ids`` names, a body, and a check."""

    path: str
    body: Callable[[World, str], Any] | None = None
    check: Check | None = None


V1 = "/api/v1"
P = V1 + "/projects/{project_id}"
C = P + "/conversations/{conversation_id}"
CALLS: dict[tuple[str, str], Call] = {
    ("GET", V1 + "/users/me"): Call(V1 + "/users/me", check=lambda w, a, b: expect(b["id"], _user(w, a).id)),
    ("GET", V1 + "/auth/session"): Call(
        V1 + "/auth/session", check=lambda w, a, b: expect(b["user"]["id"], _user(w, a).id)
    ),
    ("GET", V1 + "/users"): Call(
        V1 + "/users", check=lambda w, a, b: expect(_emails(b), {u.email for u in w.users.values()})
    ),
    ("POST", V1 + "/users"): Call(
        V1 + "/users",
        lambda w, a: {"email": "new@example.com", "password": "long enough pw"},
        lambda w, a, b: expect(b["email"], "new@example.com"),
    ),
    ("POST", V1 + "/users/{user_id}/deactivate"): Call(
        V1 + "/users/{member_user_id}/deactivate",
        check=lambda w, a, b: expect((b["id"], b["active"]), (w.ids["member_user_id"], False)),
    ),
    ("GET", V1 + "/projects"): Call(V1 + "/projects", check=_projects_seen),
    ("POST", V1 + "/projects"): Call(
        V1 + "/projects", lambda w, a: {"name": "New"}, lambda w, a, b: expect(b["name"], "New")
    ),
    ("GET", P): Call(P, check=_is_project),
    ("PATCH", P): Call(
        P,
        lambda w, a: {"greeting_text": "Hello!"},
        lambda w, a, b: expect((b["id"], b["greeting_text"]), (w.project.id, "Hello!")),
    ),
    ("DELETE", P): Call(P),
    ("POST", P + "/widget-key/rotate"): Call(
        P + "/widget-key/rotate",
        check=lambda w, a, b: expect(
            (b["id"], b["public_key"] != w.project.public_key), (w.project.id, True)
        ),
    ),
    ("GET", P + "/identity-secret"): Call(
        P + "/identity-secret", check=lambda w, a, b: expect(b["identity_secret"], w.project.identity_secret)
    ),
    ("POST", P + "/identity-secret/rotate"): Call(
        P + "/identity-secret/rotate",
        check=lambda w, a, b: expect(b["identity_secret"] not in ("", w.project.identity_secret), True),
    ),
    ("GET", P + "/members"): Call(
        P + "/members",
        check=lambda w, a, b: expect(
            _emails(b), {"agent@example.com", "agent2@example.com", "manager@example.com"}
        ),
    ),
    ("GET", P + "/invitations"): Call(
        P + "/invitations", check=lambda w, a, b: expect(_ids(b), [w.ids["invitation_id"]])
    ),
    ("POST", P + "/invitations"): Call(
        P + "/invitations",
        lambda w, a: {"email": "fresh@example.com", "role": "agent"},
        lambda w, a, b: expect((b["email"], "token" in repr(b)), ("fresh@example.com", False)),
    ),
    ("POST", P + "/invitations/{invitation_id}/resend"): Call(
        P + "/invitations/{invitation_id}/resend",
        check=lambda w, a, b: expect((b["id"], b["email"]), (w.ids["invitation_id"], "pending@example.com")),
    ),
    ("DELETE", P + "/invitations/{invitation_id}"): Call(P + "/invitations/{invitation_id}"),
    ("PATCH", P + "/members/{user_id}"): Call(
        P + "/members/{member_user_id}",
        lambda w, a: {"role": "manager"},
        lambda w, a, b: expect((b["user_id"], b["role"]), (w.ids["member_user_id"], "manager")),
    ),
    ("DELETE", P + "/members/{user_id}"): Call(P + "/members/{member_user_id}"),
    ("GET", P + "/visitors"): Call(
        P + "/visitors", check=lambda w, a, b: expect(_ids(b["items"]), [w.ids["visitor_id"]])
    ),
    ("GET", P + "/visitors/{visitor_id}"): Call(
        P + "/visitors/{visitor_id}",
        check=lambda w, a, b: expect((b["id"], b["name"]), (w.ids["visitor_id"], "Vera")),
    ),
    ("GET", P + "/visitors/{visitor_id}/profile"): Call(
        P + "/visitors/{visitor_id}/profile",
        check=lambda w, a, b: expect(
            (b["visitor"]["id"], [c["id"] for c in b["conversations"]]),
            (w.ids["visitor_id"], [w.ids["conversation_id"]]),
        ),
    ),
    ("GET", P + "/conversations"): Call(
        P + "/conversations", check=lambda w, a, b: expect(_ids(b["items"]), [w.ids["conversation_id"]])
    ),
    ("GET", P + "/conversations/counts"): Call(
        P + "/conversations/counts", check=lambda w, a, b: expect(b["open"]["all"], 1)
    ),
    ("GET", C): Call(C, check=_conversation),
    ("GET", C + "/messages"): Call(
        C + "/messages",
        check=lambda w, a, b: expect(
            [(m["conversation_id"], m["body"]) for m in b["items"]], [(w.ids["conversation_id"], "hello")]
        ),
    ),
    ("POST", C + "/messages"): Call(
        C + "/messages", lambda w, a: {"body": "Hello from " + a}, lambda w, a, b: expect(b["accepted"], True)
    ),
    ("PATCH", C): Call(
        C,
        lambda w, a: {"status": "pending", "priority": 2},
        lambda w, a, b: expect(
            (b["id"], b["status"], b["priority"]), (w.ids["conversation_id"], "pending", 2)
        ),
    ),
    ("POST", C + "/read"): Call(
        C + "/read",
        lambda w, a: {"seq": 1},
        lambda w, a, b: expect((b["conversation_id"], b["seq"]), (w.ids["conversation_id"], 1)),
    ),
    ("GET", P + "/canned-replies"): Call(
        P + "/canned-replies", check=lambda w, a, b: expect(_ids(b), [w.ids["reply_id"]])
    ),
    ("POST", P + "/canned-replies"): Call(
        P + "/canned-replies",
        lambda w, a: {"shortcut": "bye", "body": "Bye!"},
        lambda w, a, b: expect(b["shortcut"], "bye"),
    ),
    ("PATCH", P + "/canned-replies/{reply_id}"): Call(
        P + "/canned-replies/{reply_id}",
        lambda w, a: {"body": "Hi!"},
        lambda w, a, b: expect((b["id"], b["body"]), (w.ids["reply_id"], "Hi!")),
    ),
    ("DELETE", P + "/canned-replies/{reply_id}"): Call(P + "/canned-replies/{reply_id}"),
    # A key limited to a project may only mint keys for that project (see test_api_keys.py).
    ("POST", V1 + "/api-keys"): Call(
        V1 + "/api-keys",
        lambda w, a: (
            {"name": "ci", "project_id": w.other_project.id} if a == "other_project_key" else {"name": "ci"}
        ),
        lambda w, a, b: expect(
            (b["key"]["name"], b["key"]["user_id"], bool(b["secret"])), ("ci", _user(w, a).id, True)
        ),
    ),
    ("GET", V1 + "/api-keys"): Call(V1 + "/api-keys", check=_own_keys),
    ("POST", V1 + "/realtime/token"): Call(
        V1 + "/realtime/token", check=lambda w, a, b: expect(bool(b["token"] and b["url"]), True)
    ),
}
OWN_TESTS: dict[tuple[str, str], str] = {
    ("POST", V1 + "/auth/login"): "tests/api/test_auth.py",
    ("POST", V1 + "/auth/logout"): "tests/api/test_auth.py",
    ("POST", V1 + "/auth/set-password"): "tests/api/test_invitations.py, tests/api/test_password_reset.py",
    ("POST", V1 + "/auth/password-reset"): "tests/api/test_password_reset.py",
    ("POST", V1 + "/invitations/preview"): "tests/api/test_invitations.py (the link's holder only)",
    ("POST", V1 + "/invitations/accept"): "tests/api/test_invitations.py (the invited address only)",
    ("DELETE", V1 + "/api-keys/{key_id}"): "tests/api/test_actor_cache.py (revoking: own keys only)",
    ("POST", V1 + "/projects/{project_id}/visitors/{visitor_id}/screenshot"): (
        "tests/screenshots/test_api.py (needs a visitor on a page and a renderer)"
    ),
    ("GET", V1 + "/projects/{project_id}/screenshots/{screenshot_id}"): "tests/screenshots/test_api.py",
}
"""Routes in the policy but outside the matrix: public ones, or per-owner objects."""


def _declared_routes(app: Litestar) -> set[tuple[str, str]]:
    routes: set[tuple[str, str]] = set()
    for route in app.routes:
        if not route.path.startswith(V1):
            continue
        for method in getattr(route, "route_handler_map", {}):
            if method not in ("OPTIONS", "HEAD"):
                routes.add((method, route.path_format))
    return routes


def _row(route: tuple[str, str]) -> str:
    return f"    ({route[0]!r}, {route[1]!r}): Level.<lowest role>,"


def test_every_served_route_is_in_the_written_policy(app: Litestar) -> None:
    served = _declared_routes(app)
    unwritten = sorted(served - set(POLICY))
    assert not unwritten, "routes served but missing from tests/api/policy.py POLICY; add:\n" + "\n".join(
        map(_row, unwritten)
    )
    stale = sorted(set(POLICY) - served)
    assert not stale, f"rows of tests/api/policy.py POLICY that the app no longer serves: {stale}"
    untested = sorted(set(POLICY) - set(CALLS) - set(OWN_TESTS))
    assert not untested, f"add a Call to CALLS in {Path(__file__).name} for: {untested}"
    assert not set(CALLS) & set(OWN_TESTS)


def _normal(path: str) -> str:
    return re.sub(r"\{[^}]*\}", "{}", path)


def _documented_routes() -> Iterator[tuple[str, str, str]]:
    """(method, path, role) of each route in the "Routes" table of docs/api.md."""
    section = DOCS.read_text().split("\n## Routes\n", 1)[1].split("\n## ", 1)[0]
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) < 2 or not cells[0].startswith("`"):
            continue
        for item in re.findall(r"`([^`]+)`", cells[0]):
            methods, _, path = item.partition(" ")
            for method in methods.split("/"):
                yield method, path, cells[1]


def test_docs_routes_table_matches_the_policy() -> None:
    policy = {(method, _normal(path)): level.value for (method, path), level in POLICY.items()}
    documented: dict[tuple[str, str], str] = {}
    for method, path, role in _documented_routes():
        if path.startswith(V1 + "/"):
            documented[(method, _normal(path))] = role
    missing = sorted(set(policy) - set(documented))
    assert not missing, f"docs/api.md 'Routes' has no row for: {missing}"
    extra = sorted(set(documented) - set(policy))
    assert not extra, f"docs/api.md 'Routes' documents routes the policy lacks: {extra}"
    wrong = {
        route: (documented[route], policy[route]) for route in policy if documented[route] != policy[route]
    }
    assert not wrong, f"docs/api.md role differs from the policy (docs, policy): {wrong}"


# The rows of "Who may do what" in docs/api.md, and the level and kind of route each one means.
KIND_ROWS = {
    "project route, agent level": (Level.AGENT, True),
    "project route, manager level": (Level.MANAGER, True),
    "project route, admin level": (Level.ADMIN, True),
    "global admin route": (Level.ADMIN, False),
    "signed-in route": (Level.SIGNED_IN, False),
}
KIND_COLUMNS = ("anonymous", "outsider", "agent", "manager", "admin")


def test_docs_who_may_do_what_matches_the_matrix_rule() -> None:
    section = DOCS.read_text().split("\n## Who may do what\n", 1)[1].split("\n## ", 1)[0]
    seen = set()
    for line in section.splitlines():
        cells = [cell.strip().strip("*") for cell in line.strip().strip("|").split("|")]
        kind = next((k for k in KIND_ROWS if cells[0].startswith(k)), None)
        if kind is None:
            continue
        seen.add(kind)
        level, in_project = KIND_ROWS[kind]
        for actor, cell in zip(KIND_COLUMNS, cells[1:], strict=True):
            expected = expected_status(level, actor, in_project=in_project, method="GET")
            assert cell == ("✓" if expected is None else str(expected[0])), (kind, actor)
    assert seen == set(KIND_ROWS)


def expected_status(
    level: Level, actor: str, *, in_project: bool, method: str, reads: bool = False
) -> tuple[int, str] | None:
    """The policy's answer for one caller, (status, code); None means allowed (2xx, right data).

    A read-only key is refused on any write before its role is looked at (docs/api.md).
    """
    if level is Level.PUBLIC:
        return None
    if actor == "anonymous":
        return 401, "unauthorized"
    if actor.startswith("read_only_") and method not in ("GET", "HEAD") and not reads:
        return 403, "read_only_key"
    if in_project and actor in OUTSIDERS:
        return 404, "not_found"
    allowed = {
        Level.SIGNED_IN: True,
        Level.AGENT: True,
        Level.MANAGER: actor.endswith("manager") or actor == "admin",
        Level.ADMIN: actor == "admin",
    }[level]
    return None if allowed else (403, "forbidden")


async def _world() -> World:
    world = await build_world()
    manager = await actor_for(world.users["manager"])
    read_only = await create_api_key(manager, name="ro", project_id=None, read_only=True, expires_at=None)
    world.keys["read_only_manager"] = read_only.secret
    return world


def _no_other_project_data(world: World, route: tuple[str, str], body: Any) -> None:
    """A project route's answer carries nothing of the other project."""
    text = repr(body)
    assert "Globex" not in text
    assert world.other_project.public_key not in text
    for key in ("project_id",):
        for found in re.findall(rf"'{key}': (\d+)", text):
            assert int(found) == world.project.id, (route, body)


@pytest.mark.parametrize("route", list(CALLS), ids=[f"{m} {p}" for m, p in CALLS])
async def test_route_for_every_caller(client: httpx.AsyncClient, route: tuple[str, str]) -> None:
    """One row of the matrix: each caller is asserted in turn. A caller who was allowed to write
    gets the next caller a fresh world, so every cell sees the same starting state."""
    from tests.factories import truncate_all

    call, level = CALLS[route], POLICY[route]
    in_project = "{project_id}" in route[1]
    world = await _world()
    dirty = False
    for actor in CALLERS:
        if dirty:
            await truncate_all()
            world = await _world()
        path = call.path.format(**world.ids)
        body = call.body(world, actor) if call.body else None
        response = await client.request(route[0], path, json=body, headers=world.headers(actor))
        expected = expected_status(
            level, actor, in_project=in_project, method=route[0], reads=route in READS_THOUGH_UNSAFE
        )
        cell = f"[{actor}] policy says {expected or '2xx'}: {summary(response)}"
        if expected is None:
            assert 200 <= response.status_code < 300, cell
            if response.status_code != 204:
                payload = response.json()
                if in_project:
                    _no_other_project_data(world, route, payload)
                if call.check is not None:
                    call.check(world, actor, payload)
            dirty = route[0] != "GET"
        else:
            assert response.status_code == expected[0], cell
            assert response.json().get("code") == expected[1], cell
