"""Forgot password from the sign-in page, the development mailbox page, invitations of existing accounts."""

from __future__ import annotations

from typing import Any

import httpx

from server.accounts.tables import User
from server.tenancy.tables import ProjectMember
from tests import factories as f
from tests.console.helpers import csrf_of, post, sign_in
from tests.mail_helpers import last_mail_to, run_mail_jobs, token_in

Role = ProjectMember.ProjectRole


async def _forgot(client: httpx.AsyncClient, email: str) -> httpx.Response:
    page = await client.get("/console/forgot-password")
    return await client.post(
        "/console/forgot-password", data={"email": email, "_csrf_token": csrf_of(page.text)}
    )


async def test_a_reset_link_from_the_mailbox_sets_a_new_password(
    client: httpx.AsyncClient, settings: Any, redis: Any
) -> None:
    await f.make_user(email="ann@example.com")
    known, unknown = await _forgot(client, "ann@example.com"), await _forgot(client, "nobody@example.com")
    assert known.status_code == unknown.status_code == 200
    assert "a link to choose a new password is on its way" in known.text
    assert known.text.replace("ann@example.com", "X") == unknown.text.replace("nobody@example.com", "X")
    await run_mail_jobs(settings)
    token = token_in((await last_mail_to(redis, "ann@example.com")).text)

    await f.make_user(email="root@example.com", role=User.GlobalRole.ADMIN)
    async with httpx.AsyncClient(transport=client._transport, base_url=str(client.base_url)) as admin:
        await sign_in(admin, "root@example.com")
        mailbox = await admin.get("/console/admin/mailbox")
        assert "to ann@example.com" in mailbox.text and token in mailbox.text

    form = await client.get(f"/console/set-password?token={token}")
    done = await client.post(
        "/console/set-password",
        data={
            "token": token,
            "password": "brand new secret",
            "password_again": "brand new secret",
            "_csrf_token": csrf_of(form.text),
        },
        follow_redirects=False,
    )
    assert done.status_code == 303
    await sign_in(client, "ann@example.com", "brand new secret")
    again = await client.post(
        "/console/set-password",
        data={
            "token": token,
            "password": "third password",
            "password_again": "third password",
            "_csrf_token": csrf_of(form.text),
        },
    )
    assert again.status_code == 400 and "unknown, used or expired" in again.text


async def test_an_existing_account_accepts_an_invitation_after_signing_in(
    client: httpx.AsyncClient, settings: Any, redis: Any
) -> None:
    project = await f.make_project(name="Shop")
    boss = await f.make_user(email="boss@example.com")
    await f.make_member(project, boss, Role.MANAGER)
    await f.make_user(email="ann@example.com")
    csrf = await sign_in(client, "boss@example.com")
    await post(client, f"/console/projects/{project.id}/members/invite", csrf, {"email": "ann@example.com"})
    await run_mail_jobs(settings)
    token = token_in((await last_mail_to(redis, "ann@example.com")).text)
    async with httpx.AsyncClient(transport=client._transport, base_url=str(client.base_url)) as ann:
        offer = await ann.get(f"/console/invitation?token={token}")
        assert "Join Shop" in offer.text and "Sign in to accept" in offer.text
        ann_csrf = await sign_in(ann, "ann@example.com")
        accepted = await post(ann, "/console/invitation", ann_csrf, {"token": token})
        assert (
            accepted.status_code == 303
            and accepted.headers["location"] == f"/console/projects/{project.id}/inbox"
        )
        assert (await ann.get(f"/console/projects/{project.id}/inbox")).status_code == 200
    wrong = await post(client, "/console/invitation", csrf, {"token": token})
    assert wrong.status_code == 404  # used
