"""One message body limit (``MAX_BODY_LENGTH``, 5,000 characters) for the schema, REST and the socket.

Issue #9: the OpenAPI schema and the socket's decoder said 20,000 characters while the service
refused more than 5,000. Now the schemas' ``maxLength`` is the constant and the send service's
check is the only one: 5,000 characters are accepted everywhere, 5,001 answer ``body_too_long``
(422 over REST, an error ack on the socket), counted as sent (surrounding whitespace too).
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from server.chat.schemas import MAX_BODY_LENGTH
from server.tenancy.apikeys import create_api_key
from server.tenancy.queries import actor_for
from server.tenancy.tables import ProjectMember
from tests.factories import make_conversation, make_member, make_project, make_user, make_visitor
from tests.realtime.conftest import GatewayProcess, connected
from tests.realtime.helpers import agent_auth, visitor_auth

pytestmark = pytest.mark.slow

LONGEST = "x" * MAX_BODY_LENGTH
TOO_LONG = [
    "x" * (MAX_BODY_LENGTH + 1),
    " " + "x" * MAX_BODY_LENGTH,  # whitespace counts: the limit is the schema's maxLength
]


def test_the_limit_is_five_thousand() -> None:
    assert MAX_BODY_LENGTH == 5000  # docs/api.md and docs/protocol.md say so in words


async def test_openapi_says_the_one_limit(client: httpx.AsyncClient) -> None:
    document = (await client.get("/schema/openapi.json")).json()
    schemas = document["components"]["schemas"]
    bodies = {
        name: schema["properties"]["body"] for name, schema in schemas.items() if "MessageCreate" in name
    }
    assert len(bodies) == 2, sorted(bodies)  # the agents' and the widget's
    for name, body in bodies.items():
        assert body.get("maxLength") == MAX_BODY_LENGTH, (name, body)


async def test_rest_accepts_5000_and_refuses_5001(client: httpx.AsyncClient, settings: Any) -> None:
    project = await make_project()
    user = await make_user()
    await make_member(project, user, ProjectMember.ProjectRole.AGENT)
    visitor = await make_visitor(project)
    conversation = await make_conversation(project, visitor)
    key = (
        await create_api_key(
            await actor_for(user), name="t", project_id=None, read_only=False, expires_at=None
        )
    ).secret
    routes = [
        (f"/api/v1/projects/{project.id}/conversations/{conversation.id}/messages", f"Bearer {key}"),
        ("/api/widget/v1/messages", f"Bearer {visitor_auth(settings, project.id, visitor.uid)['token']}"),
    ]
    for path, authorization in routes:
        headers = {"authorization": authorization}
        accepted = await client.post(path, json={"body": LONGEST}, headers=headers)
        assert accepted.status_code == 202, (path, accepted.text)
        for body in TOO_LONG:
            refused = await client.post(path, json={"body": body}, headers=headers)
            assert refused.status_code == 422, (path, refused.text)
            answer = refused.json()
            assert answer["code"] == "body_too_long", answer
            assert answer["fields"] == {"body": f"longer than {MAX_BODY_LENGTH} characters"}


async def test_socket_accepts_5000_and_refuses_5001(gateway: GatewayProcess, settings: Any) -> None:
    project = await make_project()
    user = await make_user()
    await make_member(project, user, ProjectMember.ProjectRole.AGENT)
    visitor = await make_visitor(project)
    conversation = await make_conversation(project, visitor)
    sockets: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
        ("/visitor", visitor_auth(settings, project.id, visitor.uid), {}),
        ("/agent", agent_auth(settings, user.id), {"conversation_id": conversation.id}),
    ]
    for namespace, auth, extra in sockets:
        async with connected(gateway, namespace, auth) as (sio, _):
            ack = await sio.call(
                "message:send",
                {**extra, "body": LONGEST, "client_msg_id": str(uuid.uuid4())},
                namespace=namespace,
                timeout=10,
            )
            assert ack["accepted"] is True, (namespace, ack)
            for body in TOO_LONG:
                refused = await sio.call(
                    "message:send", {**extra, "body": body}, namespace=namespace, timeout=10
                )
                error = refused["error"]
                assert error["code"] == "body_too_long", (namespace, refused)
                assert error["fields"] == {"body": f"longer than {MAX_BODY_LENGTH} characters"}
