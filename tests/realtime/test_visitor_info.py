"""The side panel's visitor data: device info (``visitor:info``) and the page trail, through a real gateway."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from server.chat.device import parse_user_agent
from tests.api.world import build_world
from tests.factories import make_conversation, make_visitor
from tests.realtime.conftest import GatewayProcess, connected
from tests.realtime.helpers import agent_auth, visitor_auth

pytestmark = pytest.mark.slow

FIREFOX_WINDOWS = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0"
SAFARI_IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
)
EDGE_MAC = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Safari/537.36 Edg/126.0.2592.87"
)
CHROME_ANDROID = (
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.6478.122 Mobile Safari/537.36"
)


@pytest.mark.parametrize(
    ("user_agent", "expected"),
    [
        (FIREFOX_WINDOWS, ("Firefox 128", "Windows 10/11")),
        (SAFARI_IPHONE, ("Safari 17", "iOS 17")),
        (EDGE_MAC, ("Edge 126", "macOS 10.15")),
        (CHROME_ANDROID, ("Chrome 126", "Android 14")),
        ("curl/8.0", ("Other", "Other")),
        ("", ("Unknown", "Unknown")),
    ],
)
def test_user_agents_are_named(user_agent: str, expected: tuple[str, str]) -> None:
    assert parse_user_agent(user_agent) == expected


async def test_device_info_and_page_trail_reach_the_side_panel(
    gateway: GatewayProcess, settings: Any, redis: Redis, client: httpx.AsyncClient
) -> None:
    world = await build_world()
    visitor = await make_visitor(world.project, uid="v_panel", name="Pia")
    await make_conversation(world.project, visitor)
    auth = visitor_auth(settings, world.project.id, "v_panel")
    async with (
        connected(gateway, "/agent", agent_auth(settings, world.users["agent"].id), ["visitor.updated"]) as (
            _,
            agent_rx,
        ),
        connected(gateway, "/visitor", auth) as (widget, _),
    ):
        info = {
            "user_agent": FIREFOX_WINDOWS,
            "language": "de-CH",
            "timezone": "Europe/Zurich",
            "screen": "1440x900",
        }
        ack = await widget.call("visitor:info", info, namespace="/visitor")
        assert ack == {"ok": True, "browser": "Firefox 128", "os": "Windows 10/11"}
        (updated,) = await agent_rx.wait_for(lambda: agent_rx.named("visitor.updated"))
        assert updated["data"]["visitor_uid"] == "v_panel"
        assert updated["data"]["device"]["timezone"] == "Europe/Zurich"
        bad = await widget.call("visitor:info", {"user_agent": 5}, namespace="/visitor")
        assert bad["error"]["code"] == "invalid_payload"
        unknown_field = await widget.call("visitor:info", {"cookies": "x"}, namespace="/visitor")
        assert unknown_field["error"]["code"] == "invalid_payload"
        for page in range(25):
            ack = await widget.call(
                "navigate",
                {"url": f"https://shop.example/p/{page}", "title": f"<b>P{page}</b>"},
                namespace="/visitor",
            )
            assert ack == {"ok": True}

    path = f"/api/v1/projects/{world.project.id}/visitors/{visitor.id}/profile"
    response = await client.get(path, headers=world.headers("agent"))
    assert response.status_code == 200, response.text
    profile = response.json()
    assert profile["visitor"]["name"] == "Pia" and profile["verified"] is False
    assert profile["device"]["browser"] == "Firefox 128" and profile["device"]["language"] == "de-CH"
    trail = profile["trail"]
    assert [visit["url"] for visit in trail] == [
        f"https://shop.example/p/{page}" for page in range(24, 4, -1)
    ]
    assert trail[0]["title"] == "<b>P24</b>" and trail[0]["at"] >= trail[-1]["at"]
    assert len(profile["conversations"]) == 1
    foreign = await client.get(path, headers=world.headers("other_manager"))
    assert foreign.status_code == 404


async def test_agents_cannot_send_visitor_info(gateway: GatewayProcess, settings: Any) -> None:
    world = await build_world()
    async with connected(gateway, "/agent", agent_auth(settings, world.users["agent"].id)) as (agent, _):
        ack = await agent.call("visitor:info", {"user_agent": "x"}, namespace="/agent")
        assert ack["error"]["code"] == "unknown_event"
