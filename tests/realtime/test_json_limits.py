"""Over a real socket, a deeply nested frame closes that socket with a reason; the gateway lives on."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest

from server.json_depth import MAX_JSON_DEPTH
from tests.factories import make_project
from tests.realtime.conftest import GatewayProcess, connected
from tests.realtime.helpers import raw_socket, visitor_auth


@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH + 1, 1_000, 20_000])
async def test_deep_frame_is_a_protocol_error(gateway: GatewayProcess, settings: Any, depth: int) -> None:
    project = await make_project()
    auth = visitor_auth(settings, project.id, "v_deep")
    async with aiohttp.ClientSession() as http:
        ws = await raw_socket(http, gateway.ws_url, "/visitor", auth)
        await ws.send_str('42/visitor,1["navigate",' + "[" * depth + "]" * depth + "]")
        message = await asyncio.wait_for(ws.receive(), 5)
        while message.type == aiohttp.WSMsgType.TEXT:
            message = await asyncio.wait_for(ws.receive(), 5)
        assert message.type is aiohttp.WSMsgType.CLOSE, message
        assert message.data == 1002 and "nested deeper" in (message.extra or ""), message
    async with connected(gateway, "/visitor", auth) as (client, _):
        answer = await client.call("navigate", {"url": "https://shop.example/ok"}, namespace="/visitor")
        assert answer == {"ok": True}
    assert "RecursionError" not in gateway.output() and "Traceback" not in gateway.output()
