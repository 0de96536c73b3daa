"""The widget API: origins, signed identities, resuming visits, the visitor's own history."""

from __future__ import annotations

import time
from typing import Any

import httpx
import jwt

from server.accounts.tokens import verify
from server.chat.identity import sign_user_id
from server.chat.tables import Visitor
from tests import factories as f

ORIGIN = {"origin": "https://shop.example"}


async def _session(
    client: httpx.AsyncClient, body: dict[str, Any], origin: str = "https://shop.example"
) -> Any:
    return await client.post("/api/widget/v1/session", json=body, headers={"origin": origin})


async def test_session_creates_then_resumes_a_visitor(client: httpx.AsyncClient, settings: Any) -> None:
    project = await f.make_project()
    first = await _session(client, {"public_key": project.public_key})
    assert first.status_code == 200, first.text
    body = first.json()
    assert body["visitor_uid"].startswith("v_")
    assert body["widget"]["greeting_text"]
    claims = verify(body["token"], settings.security.secret_key)
    assert (
        claims.kind == "visitor"
        and claims.project_id == project.id
        and claims.visitor_uid == body["visitor_uid"]
    )
    again = await _session(client, {"public_key": project.public_key, "visitor_uid": body["visitor_uid"]})
    assert again.json()["visitor_uid"] == body["visitor_uid"]
    assert await Visitor.count().where(Visitor.project == project.id) == 1
    assert first.headers["access-control-allow-origin"] == "https://shop.example"


async def test_origin_must_be_allowed(client: httpx.AsyncClient) -> None:
    project = await f.make_project(allowed_origins=["https://shop.example"])
    other = await _session(client, {"public_key": project.public_key}, origin="https://evil.example")
    assert other.status_code == 403 and other.json()["code"] == "origin_not_allowed"
    # No Origin header: not a browser page (browsers always send one here), so the one origin rule
    # (server/tenancy/origins.py) lets it through, on REST as on the socket handshake.
    missing = await client.post("/api/widget/v1/session", json={"public_key": project.public_key})
    assert missing.status_code == 200
    unknown = await _session(client, {"public_key": "pk_nope"})
    assert unknown.status_code == 404 and unknown.json()["code"] == "unknown_widget_key"


async def test_preflight_is_answered(client: httpx.AsyncClient) -> None:
    response = await client.options(
        "/api/widget/v1/session",
        headers={
            **ORIGIN,
            "access-control-request-method": "POST",
            "access-control-request-headers": "content-type",
        },
    )
    assert response.status_code == 204
    assert response.headers["access-control-allow-origin"] == "https://shop.example"
    assert "POST" in response.headers["access-control-allow-methods"]


async def test_hmac_identity_is_verified_and_resumes_across_devices(client: httpx.AsyncClient) -> None:
    project = await f.make_project()
    identity = {
        "user_id": "cust-42",
        "signature": sign_user_id("cust-42", project.identity_secret),
        "name": "Kim",
    }
    first = await _session(client, {"public_key": project.public_key, "identity": identity})
    assert first.status_code == 200
    second = await _session(
        client, {"public_key": project.public_key, "identity": identity}
    )  # another device
    assert second.json()["visitor_uid"] == first.json()["visitor_uid"]
    row = await Visitor.select().where(Visitor.uid == first.json()["visitor_uid"]).first()
    assert row is not None and row["external_id"] == "cust-42" and row["name"] == "Kim"
    forged = {"user_id": "cust-43", "signature": identity["signature"]}
    refused = await _session(client, {"public_key": project.public_key, "identity": forged})
    assert refused.status_code == 401 and refused.json()["code"] == "identity_invalid"


async def test_jwt_identity_with_expiry(client: httpx.AsyncClient) -> None:
    project = await f.make_project()
    good = jwt.encode(
        {"sub": "u-7", "exp": int(time.time()) + 60, "email": "u7@x.example"}, project.identity_secret
    )
    accepted = await _session(client, {"public_key": project.public_key, "identity": {"jwt": good}})
    assert accepted.status_code == 200
    expired = jwt.encode({"sub": "u-7", "exp": int(time.time()) - 3600}, project.identity_secret)
    refused = await _session(client, {"public_key": project.public_key, "identity": {"jwt": expired}})
    assert refused.status_code == 401 and refused.json()["code"] == "identity_expired"
    wrong_key = jwt.encode({"sub": "u-7", "exp": int(time.time()) + 60}, "not the secret")
    assert (
        await _session(client, {"public_key": project.public_key, "identity": {"jwt": wrong_key}})
    ).status_code == 401


async def test_enforced_identity_rejects_unsigned_claims(client: httpx.AsyncClient) -> None:
    project = await f.make_project(enforce_identity=True)
    unsigned = await _session(client, {"public_key": project.public_key, "identity": {"user_id": "cust-1"}})
    assert unsigned.status_code == 401 and unsigned.json()["code"] == "identity_required"
    anonymous = await _session(client, {"public_key": project.public_key})
    assert anonymous.status_code == 200
    relaxed = await f.make_project()
    claimed = await _session(
        client, {"public_key": relaxed.public_key, "identity": {"user_id": "cust-1", "name": "Al"}}
    )
    assert claimed.status_code == 200
    row = await Visitor.select().where(Visitor.uid == claimed.json()["visitor_uid"]).first()
    assert row is not None and row["external_id"] is None and row["name"] == "Al"  # unverified: no takeover


async def test_visitor_sees_own_conversations_without_private_notes(client: httpx.AsyncClient) -> None:
    project = await f.make_project()
    session = (await _session(client, {"public_key": project.public_key})).json()
    visitor = await Visitor.objects().where(Visitor.uid == session["visitor_uid"]).first()
    assert visitor is not None
    conversation = await f.make_conversation(project, visitor, last_seq=3)
    await f.make_message(conversation, seq=1, body="hi")
    await f.make_message(conversation, seq=2, body="internal", private=True, sender_kind="agent")
    await f.make_message(conversation, seq=3, body="hello!", sender_kind="agent")
    someone_else = await f.make_conversation(project, await f.make_visitor(project))
    await f.make_message(someone_else, seq=1, body="not yours")

    response = await client.get(
        "/api/widget/v1/conversations", headers={"authorization": f"Bearer {session['token']}"}
    )
    assert response.status_code == 200, response.text
    items = response.json()["items"]
    assert [item["id"] for item in items] == [conversation.id]
    assert [m["body"] for m in items[0]["messages"]] == ["hi", "hello!"]
    assert "internal" not in response.text and "not yours" not in response.text
    assert (await client.get("/api/widget/v1/conversations")).status_code == 401
    bad = await client.get("/api/widget/v1/conversations", headers={"authorization": "Bearer x.y"})
    assert bad.status_code == 401
