"""The widget after a key rotation through the REST API: the old public key or identity secret
refused with a clear error, the new one works, at once (the cached lookup is dropped)."""

from __future__ import annotations

import httpx

from tests.api.test_widget_cache import ORIGIN, hmac_identity, jwt_identity, session
from tests.api.world import build_world


async def test_after_a_widget_key_rotation_the_old_key_is_refused_and_the_new_one_works(
    client: httpx.AsyncClient,
) -> None:
    world = await build_world()
    old = world.project.public_key
    opened = await client.post("/api/widget/v1/session", json={"public_key": old}, headers=ORIGIN)
    assert opened.status_code == 200, opened.text  # and the lookup is cached now
    rotated = await client.post(
        f"/api/v1/projects/{world.project.id}/widget-key/rotate", headers=world.headers("manager")
    )
    assert rotated.status_code == 200, rotated.text
    new = rotated.json()["public_key"]
    assert new != old and new.startswith("pk_")

    refused = await client.post("/api/widget/v1/session", json={"public_key": old}, headers=ORIGIN)
    assert refused.status_code == 404, refused.text
    assert refused.json()["code"] == "unknown_widget_key"
    assert refused.json()["message"] == "Unknown widget key."
    demo = await client.get(f"/demo/{old}")
    assert demo.status_code == 404

    fresh = await client.post("/api/widget/v1/session", json={"public_key": new}, headers=ORIGIN)
    assert fresh.status_code == 200, fresh.text
    assert fresh.json()["widget"]["name"] == world.project.name
    # a token opened with the old key goes with it (tests/realtime/test_widget_refusals.py: the socket too)
    token = {"authorization": f"Bearer {opened.json()['token']}", **ORIGIN}
    sent = await client.post("/api/widget/v1/messages", json={"body": "still here?"}, headers=token)
    assert sent.status_code == 404 and sent.json()["code"] == "unknown_widget_key", sent.text
    fresh_token = {"authorization": f"Bearer {fresh.json()['token']}", **ORIGIN}
    sent = await client.post("/api/widget/v1/messages", json={"body": "hello again"}, headers=fresh_token)
    assert sent.status_code == 202, sent.text


async def test_after_an_identity_secret_rotation_old_signatures_are_refused_in_words(
    client: httpx.AsyncClient,
) -> None:
    world = await build_world()
    old = world.project.identity_secret
    key = world.project.public_key
    for identity in (hmac_identity(old), jwt_identity(old)):
        assert (await session(client, key, identity)).status_code == 200  # cached now
    rotated = await client.post(
        f"/api/v1/projects/{world.project.id}/identity-secret/rotate", headers=world.headers("manager")
    )
    assert rotated.status_code == 200, rotated.text
    new = rotated.json()["identity_secret"]
    assert new != old
    messages = {
        "hmac": "The identity signature does not match.",
        "jwt": "The identity token is not valid.",
    }
    for kind, identity in (("hmac", hmac_identity(old)), ("jwt", jwt_identity(old))):
        refused = await session(client, key, identity)
        assert refused.status_code == 401, refused.text
        assert refused.json()["code"] == "identity_invalid"
        assert refused.json()["message"] == messages[kind]
    for identity in (hmac_identity(new), jwt_identity(new)):
        accepted = await session(client, key, identity)
        assert accepted.status_code == 200, accepted.text
        assert accepted.json()["visitor"]["verified"] is True
