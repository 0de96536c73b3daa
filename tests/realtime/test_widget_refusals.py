"""A widget on a site the project does not allow, or with a key rotated away, gets nothing.

Issue #13: the session is not the only door. A visitor token names the widget key it was opened
with, and every later call checks it again: the widget API's token routes and the ``/visitor``
handshake refuse a page whose origin is not (or no longer) allowed with 403 / ``connect_error``
``origin_not_allowed``, and a token whose key was rotated with 404 / ``unknown_widget_key``
(docs/widget.md, "Refusals").
"""

from __future__ import annotations

import asyncio
import uuid

import aiohttp
import httpx
import msgspec
import pytest
from redis.asyncio import Redis

from server.tenancy import services
from server.tenancy.schemas import ProjectUpdate
from tests.realtime.conftest import GatewayProcess

pytestmark = pytest.mark.slow

SHOP = "https://shop.example"
EVIL = "https://evil.example"


async def _session(client: httpx.AsyncClient, public_key: str, origin: str = SHOP) -> httpx.Response:
    return await client.post(
        "/api/widget/v1/session", json={"public_key": public_key}, headers={"origin": origin}
    )


async def _token_calls(client: httpx.AsyncClient, token: str, origin: str) -> list[tuple[int, str]]:
    """Every token route of the widget API, from ``origin``: (status, code) of each."""
    headers = {"authorization": f"Bearer {token}", "origin": origin}
    responses = [
        await client.get("/api/widget/v1/conversations", headers=headers),
        await client.post(
            "/api/widget/v1/messages",
            json={"body": "hello", "client_msg_id": str(uuid.uuid4())},
            headers=headers,
        ),
        await client.patch("/api/widget/v1/visitor", json={"name": "Kim"}, headers=headers),
        await client.post("/api/widget/v1/contact", json={"email": "kim@example.com"}, headers=headers),
        await client.get("/api/widget/v1/availability", headers=headers),
        await client.get("/api/widget/v1/agents", headers=headers),
    ]
    return [(response.status_code, response.json().get("code", "")) for response in responses]


async def _handshake(gateway: GatewayProcess, token: str, origin: str) -> str:
    """The gateway's answer to a ``/visitor`` CONNECT: ``40/visitor,…`` or ``44/visitor,…``."""
    auth = msgspec.json.encode({"token": token}).decode()
    async with (
        aiohttp.ClientSession() as http,
        http.ws_connect(gateway.ws_url, headers={"Origin": origin}) as ws,
    ):
        await ws.receive_str()
        await ws.send_str(f"40/visitor,{auth}")
        frame = await asyncio.wait_for(ws.receive_str(), 5)
        while frame == "2":
            frame = await asyncio.wait_for(ws.receive_str(), 5)
        return frame


def _refusal_code(frame: str) -> str | None:
    if not frame.startswith("44/visitor,"):
        return None
    code: str = msgspec.json.decode(frame.removeprefix("44/visitor,"))["data"]["code"]
    return code


async def test_a_page_whose_origin_is_not_allowed_gets_nothing_anywhere(
    client: httpx.AsyncClient, gateway: GatewayProcess, redis: Redis
) -> None:
    project = await services.create_project("Shop", [SHOP])
    refused = await _session(client, project.public_key, EVIL)
    assert refused.status_code == 403 and refused.json()["code"] == "origin_not_allowed"
    assert refused.json()["message"]

    token = (await _session(client, project.public_key)).json()["token"]
    assert {status for status, _ in await _token_calls(client, token, SHOP)} <= {200, 202}
    assert _refusal_code(await _handshake(gateway, token, SHOP)) is None
    # The token of a page on shop.example, replayed by a page elsewhere.
    assert await _token_calls(client, token, EVIL) == [(403, "origin_not_allowed")] * 6
    assert _refusal_code(await _handshake(gateway, token, EVIL)) == "origin_not_allowed"

    # The manager removes the origin: the token, still valid, opens nothing more from there.
    await services.update_project(redis, project.id, ProjectUpdate(allowed_origins=[]))
    assert await _token_calls(client, token, SHOP) == [(403, "origin_not_allowed")] * 6
    assert _refusal_code(await _handshake(gateway, token, SHOP)) == "origin_not_allowed"


async def test_a_rotated_key_is_refused_with_its_tokens(
    client: httpx.AsyncClient, gateway: GatewayProcess, redis: Redis
) -> None:
    project = await services.create_project("Shop", [SHOP])
    old_key = project.public_key
    token = (await _session(client, old_key)).json()["token"]
    assert _refusal_code(await _handshake(gateway, token, SHOP)) is None

    rotated = await services.rotate_widget_key(redis, project.id)
    assert rotated.public_key != old_key
    gone = await _session(client, old_key)
    assert gone.status_code == 404 and gone.json()["code"] == "unknown_widget_key"
    assert await _token_calls(client, token, SHOP) == [(404, "unknown_widget_key")] * 6
    assert _refusal_code(await _handshake(gateway, token, SHOP)) == "unknown_widget_key"

    fresh = await _session(client, rotated.public_key)
    assert fresh.status_code == 200
    new_token = fresh.json()["token"]
    assert {status for status, _ in await _token_calls(client, new_token, SHOP)} <= {200, 202}
    assert _refusal_code(await _handshake(gateway, new_token, SHOP)) is None
