"""Every route of /api/v1 against every kind of caller: each cell is allowed with data or denied
with the right status. New routes must be added to ROUTES, or the completeness test fails."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from litestar import Litestar

from server.api.access import ACCESS_OPT, Rule
from server.tenancy.access import GlobalRole, ProjectRole
from tests.api.world import ACTORS, World, build_world, summary


@dataclass(frozen=True)
class Call:
    method: str
    path: str
    body: Callable[[World, str], Any] | None = None


P = "/api/v1/projects/{project_id}"
ROUTES: dict[tuple[str, str], Call] = {
    ("GET", "/api/v1/users/me"): Call("GET", "/api/v1/users/me"),
    ("GET", "/api/v1/users"): Call("GET", "/api/v1/users"),
    ("POST", "/api/v1/users"): Call(
        "POST", "/api/v1/users", lambda w, a: {"email": "new@example.com", "password": "long enough pw"}
    ),
    ("POST", "/api/v1/users/{user_id}/deactivate"): Call("POST", "/api/v1/users/{member_user_id}/deactivate"),
    ("GET", "/api/v1/projects"): Call("GET", "/api/v1/projects"),
    ("POST", "/api/v1/projects"): Call("POST", "/api/v1/projects", lambda w, a: {"name": "New"}),
    ("GET", P): Call("GET", P),
    ("PATCH", P): Call("PATCH", P, lambda w, a: {"greeting_text": "Hello!"}),
    ("DELETE", P): Call("DELETE", P),
    ("POST", P + "/widget-key/rotate"): Call("POST", P + "/widget-key/rotate"),
    ("GET", P + "/identity-secret"): Call("GET", P + "/identity-secret"),
    ("POST", P + "/identity-secret/rotate"): Call("POST", P + "/identity-secret/rotate"),
    ("GET", P + "/members"): Call("GET", P + "/members"),
    ("POST", P + "/members"): Call(
        "POST", P + "/members", lambda w, a: {"email": "fresh@example.com", "role": "agent"}
    ),
    ("PATCH", P + "/members/{user_id}"): Call(
        "PATCH", P + "/members/{member_user_id}", lambda w, a: {"role": "manager"}
    ),
    ("DELETE", P + "/members/{user_id}"): Call("DELETE", P + "/members/{member_user_id}"),
    ("GET", P + "/visitors"): Call("GET", P + "/visitors"),
    ("GET", P + "/visitors/{visitor_id}"): Call("GET", P + "/visitors/{visitor_id}"),
    ("GET", P + "/conversations"): Call("GET", P + "/conversations"),
    ("GET", P + "/conversations/{conversation_id}"): Call("GET", P + "/conversations/{conversation_id}"),
    ("GET", P + "/conversations/{conversation_id}/messages"): Call(
        "GET", P + "/conversations/{conversation_id}/messages"
    ),
    ("POST", P + "/conversations/{conversation_id}/messages"): Call(
        "POST", P + "/conversations/{conversation_id}/messages", lambda w, a: {"body": "Hello from " + a}
    ),
    ("PATCH", P + "/conversations/{conversation_id}"): Call(
        "PATCH", P + "/conversations/{conversation_id}", lambda w, a: {"status": "pending", "priority": 2}
    ),
    ("POST", P + "/conversations/{conversation_id}/read"): Call(
        "POST", P + "/conversations/{conversation_id}/read", lambda w, a: {"seq": 1}
    ),
    ("GET", P + "/canned-replies"): Call("GET", P + "/canned-replies"),
    ("POST", P + "/canned-replies"): Call(
        "POST", P + "/canned-replies", lambda w, a: {"shortcut": "bye", "body": "Bye!"}
    ),
    ("PATCH", P + "/canned-replies/{reply_id}"): Call(
        "PATCH", P + "/canned-replies/{reply_id}", lambda w, a: {"body": "Hi!"}
    ),
    ("DELETE", P + "/canned-replies/{reply_id}"): Call("DELETE", P + "/canned-replies/{reply_id}"),
    # A key limited to a project may only mint keys for that project (see test_api_keys.py).
    ("POST", "/api/v1/api-keys"): Call(
        "POST",
        "/api/v1/api-keys",
        lambda w, a: (
            {"name": "ci", "project_id": w.other_project.id} if a == "other_project_key" else {"name": "ci"}
        ),
    ),
    ("GET", "/api/v1/api-keys"): Call("GET", "/api/v1/api-keys"),
    ("POST", "/api/v1/realtime/token"): Call("POST", "/api/v1/realtime/token"),
    ("GET", "/api/v1/auth/session"): Call("GET", "/api/v1/auth/session"),
}
# Routes with their own tests instead of the matrix (public, or per-owner objects).
NOT_IN_MATRIX = {
    ("POST", "/api/v1/auth/login"),
    ("POST", "/api/v1/auth/logout"),
    ("POST", "/api/v1/auth/set-password"),
    ("DELETE", "/api/v1/api-keys/{key_id}"),
}


def _declared_routes(app: Litestar) -> dict[tuple[str, str], Rule]:
    routes: dict[tuple[str, str], Rule] = {}
    for route in app.routes:
        if not route.path.startswith("/api/v1"):
            continue
        for method, (handler, _) in getattr(route, "route_handler_map", {}).items():
            if method in ("OPTIONS", "HEAD"):
                continue
            routes[(method, route.path_format)] = handler.opt.get(ACCESS_OPT)
    return routes


def test_every_api_route_declares_access_and_is_in_the_matrix(app: Litestar) -> None:
    declared = _declared_routes(app)
    assert all(isinstance(rule, Rule) for rule in declared.values()), declared
    assert set(declared) == set(ROUTES) | NOT_IN_MATRIX


def expected_status(rule: Rule, actor: str, project_route: bool) -> int | None:
    """None means allowed (2xx with data)."""
    if not rule.authenticated:
        return None
    if actor == "anonymous":
        return 401
    if project_route and actor in ("outsider", "other_manager", "other_project_key"):
        return 404
    if rule.project_role is ProjectRole.MANAGER and actor == "agent":
        return 403
    if rule.global_role is GlobalRole.ADMIN and actor != "admin":
        return 403
    return None


@pytest.mark.parametrize("route", list(ROUTES), ids=[f"{m} {p}" for m, p in ROUTES])
async def test_route_for_every_caller(
    app: Litestar, client: httpx.AsyncClient, route: tuple[str, str]
) -> None:
    """One row of the matrix: each caller is asserted in turn. A caller who was allowed to write
    gets the next caller a fresh world, so every cell sees the same starting state."""
    from tests.factories import truncate_all

    call = ROUTES[route]
    rule = _declared_routes(app)[route]
    world = await build_world()
    dirty = False
    for actor in ACTORS:
        if dirty:
            await truncate_all()
            world = await build_world()
        path = call.path.format(**world.ids)
        body = call.body(world, actor) if call.body else None
        response = await client.request(call.method, path, json=body, headers=world.headers(actor))
        expected = expected_status(rule, actor, "{project_id}" in route[1])
        cell = f"[{actor}] {summary(response)}"
        if expected is None:
            assert 200 <= response.status_code < 300, cell
            if response.status_code != 204:
                assert response.content and response.json() is not None, cell
            dirty = call.method != "GET"
        else:
            assert response.status_code == expected, cell
            assert response.json()["code"], cell
