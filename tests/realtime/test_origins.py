"""One origin rule, one table: the REST widget API and the socket handshake agree on every row.

Issue #9 found a ``*`` project refused by the socket (the widget could never go live) and
``https://Shop-Case.example/`` accepted by REST but refused by the socket. Every row below goes
through the project service (which normalises what is stored), then through
``POST /api/widget/v1/session`` and the ``/visitor`` handshake with the same ``Origin``.
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import httpx
import msgspec
import pytest

from server.errors import Invalid
from server.tenancy import services
from server.tenancy.origins import InvalidOrigin, normalise_allowed, normalise_origin, origin_allowed
from tests.realtime.conftest import GatewayProcess
from tests.realtime.helpers import visitor_auth

pytestmark = pytest.mark.slow

ORIGINS: list[tuple[list[str], str | None, bool]] = [
    # allowed_origins as a manager typed them, the page's Origin header, allowed?
    (["https://shop.example"], "https://shop.example", True),
    (["https://shop.example"], "https://Shop.EXAMPLE", True),
    (["https://shop.example"], "https://shop.example/", True),
    (["https://shop.example"], "https://shop.example:443", True),
    (["https://shop.example"], "http://shop.example", False),
    (["https://shop.example"], "https://shop.example:8443", False),
    (["https://shop.example"], "https://evil.example", False),
    (["https://shop.example"], "https://shop.example.evil.example", False),
    (["https://shop.example"], "https://www.shop.example", False),
    (["https://shop.example"], "null", False),
    (["https://shop.example"], "https://shop.example/page", False),
    (["https://shop.example"], None, True),  # no Origin: not a browser page
    (["https://Shop-Case.example/"], "https://shop-case.example", True),
    (["HTTP://Shop.Example:80"], "http://shop.example", True),
    (["*"], "https://anything.example", True),
    (["*"], "null", True),
    (["https://*.shop.example"], "https://a.shop.example", True),
    (["https://*.shop.example"], "https://A.B.Shop.Example", True),
    (["https://*.shop.example"], "https://shop.example", False),
    (["https://*.shop.example"], "https://evilshop.example", False),
    (["https://*.shop.example"], "http://a.shop.example", False),
    (["https://*.shop.example"], "https://a.shop.example:8443", False),
    (["https://*.shop.example", "https://shop.example"], "https://shop.example", True),
    (["http://localhost:3000"], "http://localhost:3000", True),
    (["http://localhost:3000"], "http://localhost", False),
    (["http://[::1]:8080"], "http://[::1]:8080", True),
    (["https://bücher.example"], "https://xn--bcher-kva.example", True),
    ([], "https://shop.example", False),
]


async def rest_allows(client: httpx.AsyncClient, public_key: str, origin: str | None) -> bool:
    headers = {"origin": origin} if origin is not None else {}
    response = await client.post("/api/widget/v1/session", json={"public_key": public_key}, headers=headers)
    if response.status_code == 403:
        assert response.json()["code"] == "origin_not_allowed", response.text
        return False
    assert response.status_code == 200, response.text
    return True


async def socket_allows(
    http: aiohttp.ClientSession, gateway: GatewayProcess, auth: str, origin: str | None
) -> bool:
    headers = {"Origin": origin} if origin is not None else {}
    async with http.ws_connect(gateway.ws_url, headers=headers) as ws:
        await ws.receive_str()
        await ws.send_str(f"40/visitor,{auth}")
        frame = await asyncio.wait_for(ws.receive_str(), 5)
        while frame == "2":
            frame = await asyncio.wait_for(ws.receive_str(), 5)
        if frame.startswith("44/visitor,"):
            assert "origin_not_allowed" in frame, frame
            return False
        assert frame.startswith("40/visitor,"), frame
        return True


async def test_rest_and_socket_follow_the_same_origin_table(
    client: httpx.AsyncClient, gateway: GatewayProcess, settings: Any
) -> None:
    results = []
    async with aiohttp.ClientSession() as http:
        for allowed, origin, expected in ORIGINS:
            project = await services.create_project("Origins", allowed)
            auth = msgspec.json.encode(visitor_auth(settings, project.id, "v_origin")).decode()
            rest = await rest_allows(client, project.public_key, origin)
            socket = await socket_allows(http, gateway, auth, origin)
            results.append((allowed, origin, expected, rest, socket))
    wrong = [row for row in results if not row[2] == row[3] == row[4]]
    assert wrong == [], "(allowed, origin, expected, REST, socket): " + repr(wrong)


def test_the_rule_itself_matches_the_table() -> None:
    wrong = [
        (allowed, origin)
        for allowed, origin, expected in ORIGINS
        if origin_allowed([normalise_allowed(a) for a in allowed], origin) is not expected
    ]
    assert wrong == []


@pytest.mark.parametrize(
    ("entry", "stored"),
    [
        ("HTTPS://Shop.Example:443/", "https://shop.example"),
        ("https://shop.example:8443", "https://shop.example:8443"),
        ("https://*.Shop.example", "https://*.shop.example"),
        (" * ", "*"),
        ("http://[::1]:8000", "http://[::1]:8000"),
        ("https://bücher.example", "https://xn--bcher-kva.example"),
    ],
)
def test_allowed_entries_are_stored_normalised(entry: str, stored: str) -> None:
    assert services.check_origins([entry]) == [stored]


BAD_ENTRIES = [
    "shop.example",
    "https://shop.example/path",
    "https://shop.example?x=1",
    "https://shop.example#top",
    "ftp://shop.example",
    "https://user@shop.example",
    "https://sh op.example",
    "https://*.example",
    "https://a.*.shop.example",
    "https://*shop.example",
    "https://*",
    "https://",
    "null",
    "https://shop.example:99999",
]


@pytest.mark.parametrize("entry", BAD_ENTRIES)
def test_bad_allowed_entries_are_refused_with_the_field_named(entry: str) -> None:
    with pytest.raises(Invalid) as raised:
        services.check_origins([entry])
    assert raised.value.fields == {"allowed_origins": "bad origin"}
    with pytest.raises(InvalidOrigin):
        normalise_allowed(entry)


def test_a_wildcard_is_never_a_request_origin() -> None:
    with pytest.raises(InvalidOrigin):
        normalise_origin("https://*.shop.example")
    assert not origin_allowed(["https://*.shop.example"], "https://*.shop.example")
