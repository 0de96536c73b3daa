"""The web access log: method, path template, status, duration, request id; off with a setting."""

from __future__ import annotations

import logging
import os
import re

import pytest

from server.settings import load_settings
from server.web import create_app
from tests.conftest import serve_in_process
from tests.factories import make_project


async def test_one_line_per_request_with_the_route_template_and_a_request_id(
    caplog: pytest.LogCaptureFixture,
) -> None:
    project = await make_project()
    app = create_app(load_settings({**os.environ, "WEB_ACCESS_LOG": "true"}))
    logging.getLogger().addHandler(caplog.handler)  # create_app's logging set-up replaced it
    async with serve_in_process(app) as http:
        with caplog.at_level(logging.INFO, logger="parley.access"):
            health = await http.get("/healthz")
            given = await http.get(f"/api/v1/projects/{project.id}", headers={"x-request-id": "proxy-42"})
    lines = [r.getMessage() for r in caplog.records if r.name == "parley.access"]
    assert len(lines) == 2, lines
    assert re.fullmatch(r"GET /healthz 200 \d+\.\dms id=[0-9a-f]{16}", lines[0]), lines[0]
    assert health.headers["x-request-id"] == lines[0].rsplit("id=", 1)[1]
    # the template, never the id in the path; the caller's request id is kept
    assert re.fullmatch(r"GET /api/v1/projects/\{project_id\} 401 \d+\.\dms id=proxy-42", lines[1]), lines[1]
    assert given.headers["x-request-id"] == "proxy-42"


async def test_the_setting_turns_it_off(caplog: pytest.LogCaptureFixture) -> None:
    app = create_app(load_settings({**os.environ, "WEB_ACCESS_LOG": "false"}))
    logging.getLogger().addHandler(caplog.handler)
    async with serve_in_process(app) as http:
        with caplog.at_level(logging.INFO, logger="parley.access"):
            assert (await http.get("/healthz")).status_code == 200
    assert [r for r in caplog.records if r.name == "parley.access"] == []
