"""Snooze until a time: the service, the REST field, and the sweep that reopens it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx

from server.chat import services
from server.chat.tables import Conversation
from server.outbox.tables import OutboxEvent
from tests.api.world import build_world


async def test_snooze_until_a_time_then_the_sweep_reopens_it(client: httpx.AsyncClient) -> None:
    world = await build_world()
    path = f"/api/v1/projects/{world.project.id}/conversations/{world.ids['conversation_id']}"
    headers = world.headers("agent")
    until = datetime.now(UTC) + timedelta(hours=2)
    response = await client.patch(
        path, json={"status": "snoozed", "snoozed_until": until.isoformat()}, headers=headers
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "snoozed"
    assert datetime.fromisoformat(body["snoozed_until"]) == until

    assert await services.reopen_due_snoozes() == 0, "not yet"
    # Time passes (moved in the database: no sleeping in tests).
    await Conversation.update({Conversation.snoozed_until: datetime.now(UTC) - timedelta(seconds=1)}).where(
        Conversation.id == world.ids["conversation_id"]
    )
    assert await services.reopen_due_snoozes() == 1
    assert await services.reopen_due_snoozes() == 0, "idempotent"
    row = await Conversation.select().where(Conversation.id == world.ids["conversation_id"]).first()
    assert row is not None and row["status"] == "open" and row["snoozed_until"] is None
    events = (
        await OutboxEvent.select()
        .where(OutboxEvent.type == "conversation.status_changed")
        .output(load_json=True)
    )
    reasons = [event["payload"]["data"].get("reason") for event in events]
    assert reasons[-1] == "snooze_ended"


async def test_bad_snoozes_are_refused(client: httpx.AsyncClient) -> None:
    world = await build_world()
    path = f"/api/v1/projects/{world.project.id}/conversations/{world.ids['conversation_id']}"
    headers = world.headers("agent")
    past = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    refused = await client.patch(path, json={"snoozed_until": past}, headers=headers)
    assert refused.status_code == 422 and refused.json()["fields"] == {"snoozed_until": "in the past"}
    future = (datetime.now(UTC) + timedelta(minutes=5)).isoformat()
    conflicting = await client.patch(path, json={"status": "open", "snoozed_until": future}, headers=headers)
    assert conflicting.status_code == 422
    garbage = await client.patch(path, json={"snoozed_until": "tomorrow"}, headers=headers)
    assert garbage.status_code == 400
    # Reopening by hand forgets the alarm.
    await client.patch(path, json={"snoozed_until": future}, headers=headers)
    reopened = await client.patch(path, json={"status": "open"}, headers=headers)
    assert reopened.json()["snoozed_until"] is None
    elsewhere = f"/api/v1/projects/{world.project.id}/conversations/{world.ids['other_conversation_id']}"
    assert (await client.patch(elsewhere, json={"snoozed_until": future}, headers=headers)).status_code == 404
