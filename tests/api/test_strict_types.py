"""Wrong JSON types are refused, never converted: one table across the routes and socket events.

Issue #10, item 5. Query parameters are strings by nature and stay parsed; bodies and socket
payloads are JSON, so a string is not a boolean or a number, a float is not an integer.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from server.realtime import handlers
from tests.api.world import World, build_world

P = "/api/v1/projects/{project_id}"
C = P + "/conversations/{conversation_id}"

WRONG_TYPES: list[tuple[str, str, dict[str, Any], str]] = [
    ("PATCH", P, {"enforce_identity": "true"}, "enforce_identity"),
    ("PATCH", P, {"enforce_identity": 0}, "enforce_identity"),
    ("PATCH", P, {"name": 5}, "name"),
    ("PATCH", P, {"allowed_origins": "https://shop.example"}, "allowed_origins"),
    ("POST", "/api/v1/projects", {"name": ["Acme"]}, "name"),
    ("POST", "/api/v1/api-keys", {"name": "k", "read_only": 1}, "read_only"),
    ("POST", "/api/v1/api-keys", {"name": "k", "project_id": "10"}, "project_id"),
    ("POST", "/api/v1/api-keys", {"name": "k", "project_id": 1.0}, "project_id"),
    ("PATCH", C, {"priority": "3"}, "priority"),
    ("PATCH", C, {"priority": 2.0}, "priority"),
    ("PATCH", C, {"assignee_id": "7"}, "assignee_id"),
    ("POST", C + "/read", {"seq": "1"}, "seq"),
    ("POST", C + "/messages", {"body": "hi", "private": "true"}, "private"),
    ("POST", C + "/messages", {"body": 1}, "body"),
    ("POST", P + "/canned-replies", {"shortcut": 1, "body": "b"}, "shortcut"),
    ("PATCH", P + "/members/{member_user_id}", {"role": 1}, "role"),
    ("POST", P + "/invitations", {"email": "a@example.com", "role": True}, "role"),
    ("POST", "/api/v1/users", {"email": "u@example.com", "password": 12345678}, "password"),
    ("POST", "/api/v1/auth/login", {"email": "a@example.com", "password": 1}, "password"),
    ("POST", "/api/v1/auth/set-password", {"token": 1, "password": "long enough"}, "token"),
    ("POST", "/api/v1/auth/password-reset", {"email": ["a@example.com"]}, "email"),
    ("POST", "/api/v1/invitations/accept", {"token": 5}, "token"),
    ("POST", "/api/widget/v1/session", {"public_key": 5}, "public_key"),
    ("POST", "/api/widget/v1/session", {"public_key": "pk_x", "visitor_uid": 7}, "visitor_uid"),
    ("POST", "/api/widget/v1/messages", {"body": False}, "body"),
]


async def _visitor_token(client: httpx.AsyncClient, world: World) -> str:
    opened = await client.post(
        "/api/widget/v1/session",
        json={"public_key": world.project.public_key},
        headers={"origin": "https://shop.example"},
    )
    token: str = opened.json()["token"]
    return token


@pytest.mark.parametrize(
    ("method", "path", "body", "field"), WRONG_TYPES, ids=[f"{r[0]} {r[1]} {r[3]}" for r in WRONG_TYPES]
)
async def test_a_wrong_json_type_is_400_naming_the_field(
    client: httpx.AsyncClient, method: str, path: str, body: dict[str, Any], field: str
) -> None:
    world = await build_world()
    headers = world.headers("admin")
    if path.startswith("/api/widget/v1/messages"):
        headers = {"authorization": f"Bearer {await _visitor_token(client, world)}"}
    response = await client.request(method, path.format(**world.ids), json=body, headers=headers)
    assert response.status_code == 400, response.text
    assert response.json()["code"] == "invalid"
    assert field in response.json()["fields"], response.text


SOCKET_WRONG_TYPES: list[tuple[type[Any], dict[str, Any]]] = [
    (handlers.ReadIn, {"conversation_id": 1, "seq": "1"}),
    (handlers.ReadIn, {"conversation_id": "1", "seq": 1}),
    (handlers.TypingIn, {"conversation_id": 1, "typing": "true"}),
    (handlers.TypingIn, {"conversation_id": 1, "typing": 1}),
    (handlers.SendIn, {"body": "hi", "private": "true"}),
    (handlers.SendIn, {"body": "hi", "conversation_id": 2.0}),
    (handlers.SyncIn, {"conversations": {"1": "3"}}),
    (handlers.NavigateIn, {"url": 5}),
    (handlers.PresenceIn, {"status": 1}),
]


@pytest.mark.parametrize(("kind", "payload"), SOCKET_WRONG_TYPES)
def test_a_wrong_json_type_in_a_socket_event_is_an_invalid_payload(
    kind: type[Any], payload: dict[str, Any]
) -> None:
    with pytest.raises(handlers.EventError) as refused:
        handlers.decode([payload], kind)
    assert refused.value.code == "invalid_payload"
