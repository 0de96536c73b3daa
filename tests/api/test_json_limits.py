"""Every JSON route, public ones included, refuses deeply nested bodies with 400 ``invalid``.

The routes are read from the app itself, so a route added later is covered without a new row.
"""

from __future__ import annotations

import re

import httpx
import pytest
from litestar import Litestar
from litestar.enums import RequestEncodingType
from litestar.handlers import HTTPRouteHandler

from server.json_depth import MAX_JSON_DEPTH
from tests.api.world import build_world


def json_routes(app: Litestar) -> list[tuple[str, str]]:
    """(method, path template) of every handler that takes a JSON ``data`` body."""
    found: list[tuple[str, str]] = []
    for route in app.routes:
        for handler in getattr(route, "route_handlers", []):
            if not isinstance(handler, HTTPRouteHandler):
                continue
            data = handler.parsed_fn_signature.parameters.get("data")
            if data is None:
                continue
            media_type = getattr(data.kwarg_definition, "media_type", RequestEncodingType.JSON)
            if media_type is not RequestEncodingType.JSON:
                continue
            for method in sorted(handler.http_methods):
                found.append((method, route.path))
    return found


def fill(path: str, ids: dict[str, int]) -> str:
    names = {"user_id": "member_user_id"}

    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        return str(ids.get(names.get(name, name), 1))

    return re.sub(r"\{(\w+)(?::\w+)?\}", value, path)


def test_the_route_list_is_not_empty(app: Litestar) -> None:
    routes = json_routes(app)
    assert ("POST", "/api/widget/v1/session") in routes and ("POST", "/api/v1/auth/login") in routes


@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH + 1, 1_000, 100_000])
async def test_deep_bodies_are_400_invalid_on_every_json_route(
    app: Litestar, client: httpx.AsyncClient, depth: int
) -> None:
    world = await build_world()
    body = ('{"a":' + "[" * (depth - 1) + "]" * (depth - 1) + "}").encode()
    for method, path in json_routes(app):
        for who in ("admin", "anonymous"):
            response = await client.request(
                method,
                fill(path, world.ids),
                content=body,
                headers={**world.headers(who), "content-type": "application/json"},
            )
            if response.status_code in (401, 403):
                continue  # refused before the body is read: nothing decoded either
            assert response.status_code == 400, (method, path, who, response.text)
            assert response.json()["code"] == "invalid", (method, path, response.text)
            assert "nested deeper" in response.text


async def test_deep_widget_session_is_400_for_anyone(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/widget/v1/session",
        content=b'{"public_key":' + b"[" * 1000 + b"]" * 1000 + b"}",
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 400 and response.json()["code"] == "invalid"
