"""Sessions over the API, CSRF, login rate limits, API keys and their limits."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
from redis.asyncio import Redis

from server.accounts.tokens import verify
from server.redis_client import Keys
from server.tenancy.tables import ApiKey
from tests import factories as f
from tests.api.world import build_world


async def test_login_session_csrf_and_logout(client: httpx.AsyncClient) -> None:
    await f.make_user(email="ana@example.com", password="ana's password")
    login = await client.post(
        "/api/v1/auth/login", json={"email": "ANA@example.com", "password": "ana's password"}
    )
    assert login.status_code == 200, login.text
    csrf = login.json()["csrf_token"]
    assert login.json()["user"]["email"] == "ana@example.com"
    set_cookie = login.headers["set-cookie"]
    assert "HttpOnly" in set_cookie and "SameSite=lax" in set_cookie

    assert (await client.get("/api/v1/users/me")).json()["email"] == "ana@example.com"
    refused = await client.post("/api/v1/api-keys", json={"name": "x"})
    assert refused.status_code == 403 and refused.json()["code"] == "csrf_failed"
    wrong = await client.post("/api/v1/api-keys", json={"name": "x"}, headers={"x-csrf-token": "nope"})
    assert wrong.status_code == 403
    accepted = await client.post("/api/v1/api-keys", json={"name": "x"}, headers={"x-csrf-token": csrf})
    assert accepted.status_code == 201, accepted.text
    assert (await client.get("/api/v1/auth/session")).json()["csrf_token"] == csrf

    token = client.cookies["parley_session"]
    assert (await client.post("/api/v1/auth/logout")).status_code == 403  # the CSRF token, like any write
    assert (await client.post("/api/v1/auth/logout", headers={"x-csrf-token": csrf})).status_code == 204
    assert (await client.get("/api/v1/users/me")).status_code == 401
    assert (await client.post("/api/v1/auth/logout")).status_code == 204  # no session: nothing to end
    # Not only the client's jar: the server refuses the old cookie sent again.
    client.cookies.clear()
    replay = await client.get("/api/v1/users/me", headers={"cookie": f"parley_session={token}"})
    assert replay.status_code == 401


async def test_wrong_password_is_401_and_rate_limited_per_email(client: httpx.AsyncClient) -> None:
    await f.make_user(email="bob@example.com", password="bob's password")
    for _ in range(10):
        response = await client.post(
            "/api/v1/auth/login", json={"email": "bob@example.com", "password": "guess"}
        )
        assert response.status_code == 401
        assert response.json()["code"] == "invalid_credentials"
    limited = await client.post(
        "/api/v1/auth/login", json={"email": "bob@example.com", "password": "bob's password"}
    )
    assert limited.status_code == 429
    assert limited.json()["code"] == "rate_limited"
    assert 0 < int(limited.headers["retry-after"]) <= 300


async def test_login_is_rate_limited_per_ip_across_emails(client: httpx.AsyncClient) -> None:
    statuses = [
        (
            await client.post("/api/v1/auth/login", json={"email": f"u{i}@example.com", "password": "x"})
        ).status_code
        for i in range(31)
    ]
    assert statuses[:30] == [401] * 30
    assert statuses[30] == 429


async def test_api_key_secret_is_shown_once_and_stored_hashed(client: httpx.AsyncClient) -> None:
    world = await build_world()
    created = await client.post("/api/v1/api-keys", json={"name": "ci"}, headers=world.headers("manager"))
    assert created.status_code == 201
    secret = created.json()["secret"]
    key_id = created.json()["key"]["id"]
    assert secret.startswith(created.json()["key"]["prefix"])
    stored = await ApiKey.select().where(ApiKey.id == key_id).first()
    assert stored is not None and secret not in str(stored.values())
    listed = await client.get("/api/v1/api-keys", headers={"authorization": f"Bearer {secret}"})
    assert listed.status_code == 200
    assert "secret" not in listed.text
    mine = [key["id"] for key in listed.json()]
    assert key_id in mine and all(k["user_id"] == world.users["manager"].id for k in listed.json())
    used = await ApiKey.select(ApiKey.last_used_at).where(ApiKey.id == key_id).first()
    assert used is not None and used["last_used_at"] is not None


async def test_revoked_and_expired_keys_get_401(client: httpx.AsyncClient) -> None:
    world = await build_world()
    headers = world.headers("manager")
    secret = (await client.post("/api/v1/api-keys", json={"name": "a"}, headers=headers)).json()["secret"]
    key_id = (await client.get("/api/v1/api-keys", headers=headers)).json()[-1]["id"]
    revoked = await client.delete(f"/api/v1/api-keys/{key_id}", headers=headers)
    assert revoked.status_code == 200 and revoked.json()["revoked_at"] is not None
    response = await client.get("/api/v1/users/me", headers={"authorization": f"Bearer {secret}"})
    assert response.status_code == 401 and response.json()["code"] == "invalid_api_key"

    soon = (datetime.now(UTC) + timedelta(seconds=60)).isoformat()
    expiring = await client.post("/api/v1/api-keys", json={"name": "b", "expires_at": soon}, headers=headers)
    expiring_id = expiring.json()["key"]["id"]
    await ApiKey.update({ApiKey.expires_at: datetime.now(UTC) - timedelta(seconds=1)}).where(
        ApiKey.id == expiring_id
    )
    response = await client.get(
        "/api/v1/users/me", headers={"authorization": f"Bearer {expiring.json()['secret']}"}
    )
    assert response.status_code == 401


async def test_someone_elses_key_cannot_be_revoked(client: httpx.AsyncClient) -> None:
    world = await build_world()
    mine = await client.post("/api/v1/api-keys", json={"name": "m"}, headers=world.headers("manager"))
    key_id = mine.json()["key"]["id"]
    response = await client.delete(f"/api/v1/api-keys/{key_id}", headers=world.headers("agent"))
    assert response.status_code == 404
    assert (
        await client.delete(f"/api/v1/api-keys/{key_id}", headers=world.headers("admin"))
    ).status_code == 200


async def test_read_only_key_reads_but_cannot_write(client: httpx.AsyncClient) -> None:
    world = await build_world()
    created = await client.post(
        "/api/v1/api-keys", json={"name": "ro", "read_only": True}, headers=world.headers("manager")
    )
    headers = {"authorization": f"Bearer {created.json()['secret']}"}
    assert created.json()["key"]["read_only"] is True
    project = f"/api/v1/projects/{world.project.id}"
    assert (await client.get(project + "/conversations", headers=headers)).status_code == 200
    denied = await client.patch(project, json={"name": "Renamed"}, headers=headers)
    assert denied.status_code == 403 and denied.json()["code"] == "read_only_key"
    token = await client.post("/api/v1/realtime/token", headers=headers)
    assert token.status_code == 200  # reading the socket stream is reading


async def test_a_limited_key_cannot_mint_a_wider_key(client: httpx.AsyncClient) -> None:
    world = await build_world()
    escalation = await client.post(
        "/api/v1/api-keys", json={"name": "wide"}, headers=world.headers("other_project_key")
    )
    assert escalation.status_code == 422
    elsewhere = await client.post(
        "/api/v1/api-keys",
        json={"name": "p", "project_id": world.project.id},
        headers=world.headers("other_project_key"),
    )
    assert elsewhere.status_code == 404


async def test_realtime_token_is_signed_and_short_lived(client: httpx.AsyncClient, settings: object) -> None:
    world = await build_world()
    response = await client.post("/api/v1/realtime/token", headers=world.headers("agent"))
    assert response.status_code == 200
    claims = verify(response.json()["token"], settings.security.secret_key)  # type: ignore[attr-defined]
    assert claims.kind == "agent" and claims.user_id == world.users["agent"].id
    assert claims.exp == response.json()["expires_at"]
    limited = await client.post("/api/v1/realtime/token", headers=world.headers("other_project_key"))
    assert verify(limited.json()["token"], settings.security.secret_key).project_id == world.other_project.id  # type: ignore[attr-defined]


async def test_deactivated_user_loses_sessions_and_keys(client: httpx.AsyncClient, redis: Redis) -> None:
    world = await build_world()
    agent_id = world.users["agent"].id
    login = await client.post(
        "/api/v1/auth/login", json={"email": "agent@example.com", "password": f.DEFAULT_PASSWORD}
    )
    cookie = {"cookie": f"parley_session={login.cookies['parley_session']}"}
    client.cookies.clear()  # every request below carries exactly the credentials it names
    assert (await client.get("/api/v1/users/me", headers=cookie)).status_code == 200
    assert (await client.get("/api/v1/users/me", headers=world.headers("agent"))).status_code == 200
    response = await client.post(f"/api/v1/users/{agent_id}/deactivate", headers=world.headers("admin"))
    assert response.status_code == 200 and response.json()["active"] is False
    assert (await client.get("/api/v1/users/me", headers=world.headers("agent"))).status_code == 401
    assert (await client.get("/api/v1/users/me", headers=cookie)).status_code == 401
    assert not await redis.exists(Keys.user_sessions(agent_id))
