"""The inbox's console routes over HTTP: who may see them, the actions, the fragments."""

from __future__ import annotations

import httpx

from server.chat.tables import Conversation
from tests import factories as f
from tests.api.world import build_world
from tests.console.helpers import HTMX, sign_in


async def test_an_agent_works_a_conversation_and_an_outsider_gets_404s(client: httpx.AsyncClient) -> None:
    world = await build_world()
    project_id, conversation_id = world.project.id, world.ids["conversation_id"]
    base = f"/console/projects/{project_id}/inbox"
    csrf = await sign_in(client, world.users["agent"].email)
    page = await client.get(f"{base}/{conversation_id}?filter=all")
    assert page.status_code == 200 and "Vera" in page.text and 'id="messages"' in page.text
    headers = {**HTMX, "X-CSRF-Token": csrf}

    assigned = await client.post(f"{base}/{conversation_id}/assign", data={"assignee": "me"}, headers=headers)
    assert assigned.status_code == 200 and assigned.headers["HX-Trigger"] == "inbox:list"
    assert 'id="thread-header"' in assigned.text and "<html" not in assigned.text
    resolved = await client.post(
        f"{base}/{conversation_id}/status", data={"status": "resolved"}, headers=headers
    )
    assert resolved.status_code == 200 and 'data-action="reopen"' in resolved.text
    bad = await client.post(f"{base}/{conversation_id}/priority", data={"priority": "9"}, headers=headers)
    assert bad.status_code == 422 and "Priority goes from 0" in bad.text
    snoozed = await client.post(f"{base}/{conversation_id}/snooze", data={"minutes": "60"}, headers=headers)
    assert snoozed.status_code == 200
    row = await Conversation.select().where(Conversation.id == conversation_id).first()
    assert row is not None
    assert (row["status"], row["assignee"]) == ("snoozed", world.users["agent"].id)
    assert row["snoozed_until"] is not None

    listing = await client.get(f"{base}/list?filter=mine&status=snoozed", headers=HTMX)
    assert f'data-conversation-id="{conversation_id}"' in listing.text and "<html" not in listing.text
    older = await client.get(f"{base}/{conversation_id}/messages?before_seq=5")
    assert older.json()["items"][0]["body"] == "hello"
    token = await client.get(f"{base}/token")
    assert token.json()["projects"] == [project_id] and token.json()["token"]

    # Someone without a role in the project: every inbox route is a 404, every action too.
    await client.post("/console/logout", data={"_csrf_token": csrf})
    outsider_csrf = await sign_in(client, world.users["other_manager"].email)
    for path in (
        base,
        f"{base}/{conversation_id}",
        f"{base}/list",
        f"{base}/token",
        f"{base}/{conversation_id}/panel",
    ):
        assert (await client.get(path)).status_code == 404, path
    stolen = await client.post(
        f"{base}/{conversation_id}/status",
        data={"status": "open"},
        headers={**HTMX, "X-CSRF-Token": outsider_csrf},
    )
    assert stolen.status_code == 404
    # Their own project's inbox does not show another project's conversation either.
    foreign = f"/console/projects/{world.other_project.id}/inbox/{conversation_id}"
    assert (await client.get(foreign)).status_code == 404


async def test_a_message_body_and_page_title_are_text(client: httpx.AsyncClient) -> None:
    world = await build_world()
    visitor = await f.make_visitor(world.project, name="<img src=x onerror=alert(1)>")
    conversation = await f.make_conversation(
        world.project, visitor, last_seq=1, last_message_preview="<script>alert(2)</script>"
    )
    await f.make_message(conversation, seq=1, body="<script>alert(2)</script>")
    await sign_in(client, world.users["agent"].email)
    page = await client.get(f"/console/projects/{world.project.id}/inbox/{conversation.id}?filter=all")
    assert "<img src=x" not in page.text and "&lt;img src=x onerror=alert(1)&gt;" in page.text
    assert "<script>alert(2)" not in page.text
