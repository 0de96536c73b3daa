"""Canned replies in the console: create, search, edit, delete; a taken shortcut is an inline error."""

from __future__ import annotations

import httpx

from server.chat.tables import CannedReply
from server.tenancy.tables import Project, ProjectMember
from tests import factories as f
from tests.console.helpers import HTMX, field_error, post, sign_in

Role = ProjectMember.ProjectRole


async def _setup(client: httpx.AsyncClient) -> tuple[Project, str, str]:
    project = await f.make_project(name="Shop")
    manager = await f.make_user(email="boss@example.com")
    await f.make_member(project, manager, Role.MANAGER)
    csrf = await sign_in(client, "boss@example.com")
    return project, csrf, f"/console/projects/{project.id}/canned-replies"


async def test_create_search_edit_and_delete(client: httpx.AsyncClient) -> None:
    _project, csrf, base = await _setup(client)
    created = await post(
        client, base, csrf, {"shortcut": "hello", "title": "Greeting", "body": "Hi <b>there</b>!"}
    )
    assert created.status_code == 303
    await post(client, base, csrf, {"shortcut": "refund", "title": "Refunds", "body": "Within 30 days."})
    page = await client.get(base)
    assert "<code>/hello</code>" in page.text and "Hi &lt;b&gt;there&lt;/b&gt;!" in page.text
    found = await client.get(base + "/search?q=ref", headers=HTMX)
    assert found.text.lstrip().startswith('<div id="canned-list">')
    assert "/refund" in found.text and "/hello" not in found.text
    refund = await CannedReply.objects().where(CannedReply.shortcut == "refund").first()
    assert refund is not None
    for listing in (page, found):  # the list block keeps the page's path (it lost it once)
        assert f'href="{base}/{refund.id}/edit"' in listing.text
        assert f'action="{base}/{refund.id}/delete"' in listing.text
    assert found.headers["hx-push-url"] == base + "?q=ref"
    reply = await CannedReply.objects().where(CannedReply.shortcut == "hello").first()
    assert reply is not None
    edited = await post(
        client, f"{base}/{reply.id}/edit", csrf, {"shortcut": "hi", "title": "", "body": "Hello!"}
    )
    assert edited.status_code == 303
    assert await CannedReply.select(CannedReply.shortcut, CannedReply.body).where(
        CannedReply.id == reply.id
    ).first() == {
        "shortcut": "hi",
        "body": "Hello!",
    }
    await post(client, f"{base}/{reply.id}/delete", csrf)
    assert not await CannedReply.exists().where(CannedReply.id == reply.id)


async def test_a_taken_or_malformed_shortcut_is_shown_at_the_field(client: httpx.AsyncClient) -> None:
    project, csrf, base = await _setup(client)
    await f.make_canned_reply(project, shortcut="hello")
    taken = await post(client, base, csrf, {"shortcut": "hello", "body": "again"})
    assert taken.status_code == 422
    assert field_error(taken.text, "reply-shortcut") == "Another reply already uses this shortcut."
    assert ">again</textarea>" in taken.text  # the typed text is kept
    malformed = await post(client, base, csrf, {"shortcut": "Hello World", "body": "x"})
    assert field_error(malformed.text, "reply-shortcut") == "Is not in the expected format"
    empty = await post(client, base, csrf, {"shortcut": "ok", "body": ""})
    assert field_error(empty.text, "reply-body") == "Must not be empty"
    assert await CannedReply.count().where(CannedReply.project == project.id) == 1


async def test_replies_of_another_project_cannot_be_touched(client: httpx.AsyncClient) -> None:
    _project, csrf, base = await _setup(client)
    other = await f.make_project(name="Other")
    theirs = await f.make_canned_reply(other, shortcut="secret", body="their text")
    assert (await client.get(f"{base}/{theirs.id}/edit")).status_code == 404
    assert (await post(client, f"{base}/{theirs.id}/delete", csrf)).status_code == 404
    assert await CannedReply.exists().where(CannedReply.id == theirs.id)


async def test_the_list_is_paged(client: httpx.AsyncClient) -> None:
    project, _, base = await _setup(client)
    for number in range(55):
        await f.make_canned_reply(project, shortcut=f"r{number:03d}")
    first = await client.get(base)
    assert "/r049" in first.text and "/r050" not in first.text and 'rel="next"' in first.text
    second = await client.get(base + "?page=2")
    assert "/r050" in second.text and "/r054" in second.text and 'rel="next"' not in second.text
