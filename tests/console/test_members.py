"""Members and invitations in the console, with the mail delivered to a real SMTP server on loopback.

The manager's journey: invite an agent, the mail arrives, the agent follows the link, chooses a
password and signs in, the manager changes the role, then removes the agent: the agent's next
request no longer reaches the project. The last manager cannot be removed.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from litestar import Litestar

from server.tenancy.tables import Invitation, Project, ProjectMember
from tests import factories as f
from tests.conftest import serve_in_process
from tests.console.helpers import csrf_of, field_error, post, sign_in
from tests.mail_helpers import SMTPSink, run_mail_jobs, text_part, token_in, with_smtp

Role = ProjectMember.ProjectRole


@pytest.fixture
def smtp() -> Any:
    sink = SMTPSink()
    sink.start()
    yield sink
    sink.stop()


@pytest.fixture
async def mailing(settings: Any, smtp: SMTPSink) -> AsyncIterator[tuple[httpx.AsyncClient, Any]]:
    from server.web import create_app

    mail_settings = with_smtp(settings, smtp.url)
    app: Litestar = create_app(mail_settings)
    async with serve_in_process(app) as http:
        yield http, mail_settings


def _browser(client: httpx.AsyncClient) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=client._transport, base_url=str(client.base_url))


async def test_the_manager_journey(mailing: tuple[httpx.AsyncClient, Any], smtp: SMTPSink) -> None:
    client, mail_settings = mailing
    project = await f.make_project(name="Shop")
    boss = await f.make_user(email="boss@example.com", name="Boss")
    await f.make_member(project, boss, Role.MANAGER)
    csrf = await sign_in(client, "boss@example.com")
    base = f"/console/projects/{project.id}"

    invited = await post(
        client, base + "/members/invite", csrf, {"email": "Agent@Example.com", "role": "agent"}
    )
    assert invited.status_code == 303
    page = await client.get(base + "/members")
    assert "Invitation sent to agent@example.com." in page.text and "agent@example.com" in page.text
    await run_mail_jobs(mail_settings)
    [mail] = smtp.to("agent@example.com")
    token = token_in(text_part(mail))

    async with _browser(client) as agent:
        offer = await agent.get(f"/console/set-password?token={token}")
        assert "Join Shop" in offer.text and "agent@example.com" in offer.text
        chosen = await agent.post(
            "/console/set-password",
            data={
                "token": token,
                "name": "Agnes",
                "password": "agent password",
                "password_again": "agent password",
                "_csrf_token": csrf_of(offer.text),
            },
            follow_redirects=False,
        )
        assert chosen.status_code == 303
        await sign_in(agent, "agent@example.com", "agent password")
        assert (await agent.get(base + "/inbox")).status_code == 200
        assert (await agent.get(base + "/settings")).status_code == 403

        members = await client.get(base + "/members")
        assert "Agnes" in members.text and "None." in members.text  # no invitation pending any more
        agent_row = (
            await ProjectMember.objects().where(ProjectMember.user.email == "agent@example.com").first()
        )
        assert agent_row is not None
        await post(client, f"{base}/members/{agent_row.user}/role", csrf, {"role": "manager"})
        assert (await agent.get(base + "/settings")).status_code == 200  # at the next request
        await post(client, f"{base}/members/{agent_row.user}/remove", csrf)
        gone = await agent.get(base + "/inbox")
        assert gone.status_code == 404 and "Shop" not in gone.text


async def test_pending_invitations_are_resent_and_revoked(
    mailing: tuple[httpx.AsyncClient, Any], smtp: SMTPSink
) -> None:
    client, mail_settings = mailing
    project = await f.make_project(name="Shop")
    boss = await f.make_user(email="boss@example.com")
    await f.make_member(project, boss, Role.MANAGER)
    csrf = await sign_in(client, "boss@example.com")
    base = f"/console/projects/{project.id}"
    await post(client, base + "/members/invite", csrf, {"email": "new@example.com", "role": "manager"})
    invitation = await Invitation.objects().where(Invitation.email == "new@example.com").first()
    assert invitation is not None
    await run_mail_jobs(mail_settings)
    await post(client, f"{base}/invitations/{invitation.id}/resend", csrf)
    await run_mail_jobs(mail_settings)
    first, second = (token_in(text_part(m)) for m in smtp.to("new@example.com")[:2])
    async with _browser(client) as stranger:
        old = await stranger.get(f"/console/set-password?token={first}")
        assert "Join Shop" not in old.text  # the first link died with the resend
        await post(client, f"{base}/invitations/{invitation.id}/revoke", csrf)
        revoked = await stranger.get(f"/console/set-password?token={second}")
        assert "Join Shop" not in revoked.text
    taken = await post(client, base + "/members/invite", csrf, {"email": "boss@example.com"})
    assert (
        taken.status_code == 422
        and field_error(taken.text, "invite-email") == "Already a member of this project"
    )


async def test_the_last_manager_stays(client: httpx.AsyncClient) -> None:
    project = await f.make_project(name="Shop")
    boss = await f.make_user(email="boss@example.com")
    await f.make_member(project, boss, Role.MANAGER)
    csrf = await sign_in(client, "boss@example.com")
    base = f"/console/projects/{project.id}"
    removed = await post(client, f"{base}/members/{boss.id}/remove", csrf)
    assert removed.status_code == 303
    page = await client.get(base + "/members")
    assert "A project must keep at least one manager." in page.text
    demoted = await post(client, f"{base}/members/{boss.id}/role", csrf, {"role": "agent"})
    assert demoted.status_code == 303
    assert await ProjectMember.select(ProjectMember.role).where(ProjectMember.user == boss.id).first() == {
        "role": "manager"
    }
    assert await Project.exists().where(Project.id == project.id)


async def test_the_invitation_carries_the_name_the_manager_typed(
    mailing: tuple[httpx.AsyncClient, Any], smtp: SMTPSink
) -> None:
    """The console's invite form has a name: the same service as ``POST …/invitations`` stores it,
    the mail greets them by it, and it names the new account unless they type another."""
    client, mail_settings = mailing
    project = await f.make_project(name="Shop")
    boss = await f.make_user(email="boss@example.com")
    await f.make_member(project, boss, Role.MANAGER)
    csrf = await sign_in(client, "boss@example.com")
    base = f"/console/projects/{project.id}"
    too_long = await post(
        client, base + "/members/invite", csrf, {"email": "x@example.com", "name": "n" * 101}
    )
    assert (
        too_long.status_code == 422 and field_error(too_long.text, "invite-name") == "at most 100 characters"
    )
    sent = await post(
        client,
        base + "/members/invite",
        csrf,
        {"email": "nina@example.com", "name": "  Nina   <b>Agent</b> "},
    )
    assert sent.status_code == 303
    invitation = await Invitation.objects().where(Invitation.email == "nina@example.com").first()
    assert invitation is not None and invitation.name == "Nina <b>Agent</b>"
    listed = await client.get(base + "/members")
    assert "Nina &lt;b&gt;Agent&lt;/b&gt;" in listed.text  # escaped, in the pending list
    await run_mail_jobs(mail_settings)
    [mail] = smtp.to("nina@example.com")
    assert text_part(mail).startswith("Hello Nina <b>Agent</b>,")
    token = token_in(text_part(mail))
    async with _browser(client) as nina:
        offer = await nina.get(f"/console/set-password?token={token}")
        assert 'value="Nina &lt;b&gt;Agent&lt;/b&gt;"' in offer.text  # suggested in the form
        chosen = await nina.post(
            "/console/set-password",
            data={
                "token": token,
                "password": "nina password",
                "password_again": "nina password",
                "_csrf_token": csrf_of(offer.text),
            },
            follow_redirects=False,
        )
        assert chosen.status_code == 303
    member = (
        await ProjectMember.select(ProjectMember.user.name)
        .where(ProjectMember.user.email == "nina@example.com")
        .first()
    )
    assert member == {"user.name": "Nina <b>Agent</b>"}


async def test_the_member_list_links_into_its_project(client: httpx.AsyncClient) -> None:
    """The list is a block of its own (polled every 15 s): its forms must not lose the project's
    path (a block does not see the page's variables; they posted to /members/<id>/role)."""
    project = await f.make_project(name="Shop")
    boss, agent = await f.make_user(email="boss@example.com"), await f.make_user()
    await f.make_member(project, boss, Role.MANAGER)
    await f.make_member(project, agent, Role.AGENT)
    await sign_in(client, "boss@example.com")
    base = f"/console/projects/{project.id}"
    for page in (await client.get(base + "/members"), await client.get(base + "/members/list")):
        assert f'action="{base}/members/{agent.id}/role"' in page.text
        assert f'action="{base}/members/{agent.id}/remove"' in page.text
    assert f'hx-get="{base}/members/list"' in (await client.get(base + "/members")).text
