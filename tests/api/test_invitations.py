"""Invitations: the secret reaches only the invitee's mailbox, and only the invitee joins."""

from __future__ import annotations

from typing import Any

import httpx
from redis.asyncio import Redis

from server.tenancy.tables import Invitation, ProjectMember
from tests import factories as f
from tests.api.world import World, build_world
from tests.mail_helpers import last_mail_to, run_mail_jobs, token_in

PASSWORD = "attacker's choice 1"


def invitations_path(project_id: int) -> str:
    return f"/api/v1/projects/{project_id}/invitations"


async def invite(
    client: httpx.AsyncClient, world: World, email: str, *, who: str = "manager"
) -> httpx.Response:
    project_id = world.project.id if who == "manager" else world.other_project.id
    return await client.post(invitations_path(project_id), json={"email": email}, headers=world.headers(who))


async def mailed_token(settings: Any, redis: Redis, address: str) -> str:
    await run_mail_jobs(settings)
    return token_in((await last_mail_to(redis, address)).text)


async def sign_in(client: httpx.AsyncClient, email: str, password: str) -> dict[str, str]:
    response = await client.post("/api/v1/auth/login", json={"email": email, "password": password})
    assert response.status_code == 200, response.text
    return {"x-csrf-token": response.json()["csrf_token"]}


async def test_the_takeover_sequence_fails_where_b_data_would_be_read(
    client: httpx.AsyncClient, settings: Any, redis: Redis
) -> None:
    """Issue #10, item 1: A's manager invites, tries to set the password, removes; B invites; log in."""
    world = await build_world()
    victim = "victim@example.com"
    invited = await invite(client, world, victim)
    assert invited.status_code == 202, invited.text
    # Every string of the response tried as a link token: none sets a password.
    for value in invited.json().values():
        attempt = await client.post(
            "/api/v1/auth/set-password", json={"token": str(value), "password": PASSWORD}
        )
        assert attempt.status_code in (400, 404), attempt.text
    revoked = await client.delete(
        f"{invitations_path(world.project.id)}/{invited.json()['id']}", headers=world.headers("manager")
    )
    assert revoked.status_code == 204
    added_by_b = await invite(client, world, victim, who="other_manager")
    assert added_by_b.status_code == 202 and "active" not in added_by_b.json()
    login = await client.post("/api/v1/auth/login", json={"email": victim, "password": PASSWORD})
    assert login.status_code == 401
    read = await client.get(f"/api/v1/projects/{world.other_project.id}/conversations")
    assert read.status_code == 401  # the step where B's data was read: nobody is signed in as the victim
    assert not await ProjectMember.exists().where(ProjectMember.user.email == victim)
    # The mails went to the victim's mailbox only; A's revoked link is dead, B's works for the victim.
    await run_mail_jobs(settings)
    mails = [mail for mail in await _mailbox(redis) if mail.to == victim]
    assert len(mails) == 1, mails  # A's invitation was revoked before its mail went out
    assert "Globex" in mails[0].subject
    b_token = token_in(mails[0].text)
    assert b_token not in added_by_b.text
    joined = await client.post(
        "/api/v1/auth/set-password", json={"token": b_token, "password": "victim's own 1"}
    )
    assert joined.status_code == 200, joined.text
    headers = await sign_in(client, victim, "victim's own 1")
    assert (
        await client.get(f"/api/v1/projects/{world.other_project.id}/conversations", headers=headers)
    ).status_code == 200
    assert (
        await client.get(f"/api/v1/projects/{world.project.id}/conversations", headers=headers)
    ).status_code == 404


async def _mailbox(redis: Redis) -> list[Any]:
    from server.mail.delivery import dev_mailbox

    return await dev_mailbox(redis)


async def test_an_existing_account_joins_only_by_accepting_while_signed_in(
    client: httpx.AsyncClient, settings: Any, redis: Redis
) -> None:
    world = await build_world()
    outsider = world.users["outsider"]
    invited = await invite(client, world, outsider.email)
    assert invited.status_code == 202
    conversations = f"/api/v1/projects/{world.project.id}/conversations"
    assert (await client.get(conversations, headers=world.headers("outsider"))).status_code == 404
    token = await mailed_token(settings, redis, outsider.email)
    # The link cannot set the existing account's password...
    taken = await client.post("/api/v1/auth/set-password", json={"token": token, "password": PASSWORD})
    assert taken.status_code == 409 and taken.json()["code"] == "account_exists"
    # ...nor be accepted by another account...
    other = await client.post(
        "/api/v1/invitations/accept", json={"token": token}, headers=world.headers("agent")
    )
    assert other.status_code == 403 and other.json()["code"] == "invitation_for_another_address"
    # ...only by the invited account, signed in.
    preview = await client.post("/api/v1/invitations/preview", json={"token": token})
    assert preview.json() == {
        "project_name": "Acme",
        "email": outsider.email,
        "name": "",
        "role": "agent",
        "account_exists": True,
    }
    accepted = await client.post(
        "/api/v1/invitations/accept", json={"token": token}, headers=world.headers("outsider")
    )
    assert accepted.status_code == 200 and accepted.json() == {
        "project_id": world.project.id,
        "role": "agent",
    }
    assert (await client.get(conversations, headers=world.headers("outsider"))).status_code == 200
    again = await client.post(
        "/api/v1/invitations/accept", json={"token": token}, headers=world.headers("outsider")
    )
    assert again.status_code == 404 and again.json()["code"] == "link_invalid"


async def test_answers_are_the_same_whether_or_not_the_address_has_an_account(
    client: httpx.AsyncClient,
) -> None:
    world = await build_world()
    known = await invite(client, world, world.users["outsider"].email)
    unknown = await invite(client, world, "nobody.yet@example.com")
    assert known.status_code == unknown.status_code == 202
    assert (
        set(known.json())
        == set(unknown.json())
        == {
            "id",
            "email",
            "name",
            "role",
            "invited_by",
            "created_at",
            "expires_at",
            "expired",
        }
    )
    assert known.headers.keys() == unknown.headers.keys()
    listed = await client.get(invitations_path(world.project.id), headers=world.headers("manager"))
    assert [row["email"] for row in listed.json()] == [
        "pending@example.com",  # the world's own
        world.users["outsider"].email,
        "nobody.yet@example.com",
    ]
    assert "token" not in listed.text


async def test_resend_replaces_the_link_and_revoke_kills_it(
    client: httpx.AsyncClient, settings: Any, redis: Redis
) -> None:
    world = await build_world()
    invited = await invite(client, world, "new.agent@example.com")
    first = await mailed_token(settings, redis, "new.agent@example.com")
    path = f"{invitations_path(world.project.id)}/{invited.json()['id']}"
    resent = await client.post(path + "/resend", headers=world.headers("manager"))
    assert resent.status_code == 202
    second = await mailed_token(settings, redis, "new.agent@example.com")
    assert second != first
    stale = await client.post(
        "/api/v1/auth/set-password", json={"token": first, "password": "a good password"}
    )
    assert stale.status_code == 404
    assert (await client.delete(path, headers=world.headers("manager"))).status_code == 204
    revoked = await client.post(
        "/api/v1/auth/set-password", json={"token": second, "password": "a good password"}
    )
    assert revoked.status_code == 404 and revoked.json()["code"] == "link_invalid"
    assert (await client.delete(path, headers=world.headers("manager"))).status_code == 404
    # Another project's manager cannot see, re-send or revoke it.
    other = f"{invitations_path(world.other_project.id)}/{invited.json()['id']}"
    assert (await client.post(other + "/resend", headers=world.headers("other_manager"))).status_code == 404


async def test_a_new_account_chooses_its_password_from_the_mailed_link(
    client: httpx.AsyncClient, settings: Any, redis: Redis
) -> None:
    world = await build_world()
    response = await client.post(
        invitations_path(world.project.id),
        json={"email": "New.Manager@Example.com", "role": "manager"},
        headers=world.headers("manager"),
    )
    assert response.status_code == 202 and response.json()["email"] == "new.manager@example.com"
    token = await mailed_token(settings, redis, "new.manager@example.com")
    short = await client.post("/api/v1/auth/set-password", json={"token": token, "password": "short"})
    assert short.status_code == 400
    created = await client.post(
        "/api/v1/auth/set-password", json={"token": token, "password": "my new password", "name": "Nia"}
    )
    assert created.status_code == 200 and created.json()["active"] is True, created.text
    reused = await client.post(
        "/api/v1/auth/set-password", json={"token": token, "password": "other password"}
    )
    assert reused.status_code == 404
    headers = await sign_in(client, "new.manager@example.com", "my new password")
    project = await client.get(f"/api/v1/projects/{world.project.id}", headers=headers)
    assert project.status_code == 200 and project.json()["role"] == "manager"
    assert await Invitation.count().where(Invitation.accepted_at.is_not_null()) == 1


async def test_members_cannot_be_added_directly(client: httpx.AsyncClient) -> None:
    world = await build_world()
    user = await f.make_user(email="direct@example.com")
    response = await client.post(
        f"/api/v1/projects/{world.project.id}/members",
        json={"email": user.email},
        headers=world.headers("admin"),
    )
    assert response.status_code == 405


async def test_an_invitation_may_name_the_invitee(
    client: httpx.AsyncClient, settings: Any, redis: Redis
) -> None:
    world = await build_world()
    response = await client.post(
        invitations_path(world.project.id),
        json={"email": "named@example.com", "name": " Nora  Newcomer "},
        headers=world.headers("manager"),
    )
    assert response.status_code == 202 and response.json()["name"] == "Nora Newcomer", response.text
    too_long = await client.post(
        invitations_path(world.project.id),
        json={"email": "long@example.com", "name": "n" * 101},
        headers=world.headers("manager"),
    )
    assert too_long.status_code == 400 and too_long.json()["code"] == "invalid", too_long.text
    token = await mailed_token(settings, redis, "named@example.com")
    preview = await client.post("/api/v1/invitations/preview", json={"token": token})
    assert preview.json()["name"] == "Nora Newcomer"
    created = await client.post(
        "/api/v1/auth/set-password", json={"token": token, "password": "my new password"}
    )
    assert created.status_code == 200 and created.json()["name"] == "Nora Newcomer", created.text
