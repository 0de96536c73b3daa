"""An outage is logged when it starts, then at most once per 10 s with a count, then when it ends."""

from __future__ import annotations

import logging

import pytest

from server.outage import Outage


def test_an_outage_logs_three_kinds_of_line_not_one_per_failure(caplog: pytest.LogCaptureFixture) -> None:
    now = [100.0]
    outage = Outage(logging.getLogger("test.outage"), "Redis", every=10, clock=lambda: now[0])
    with caplog.at_level(logging.DEBUG, logger="test.outage"):
        for _ in range(41):  # 20 s of failures every 0.5 s
            outage.failed(ConnectionError("Connection refused"))
            now[0] += 0.5
        outage.recovered()
        outage.recovered()  # nothing more to say
    lines = [(r.levelname, r.getMessage()) for r in caplog.records]
    assert lines[0] == ("ERROR", "Redis is unavailable: ConnectionError: Connection refused")
    repeats = [message for level, message in lines[1:-1]]
    assert len(repeats) == 2 and all(level == "WARNING" for level, _ in lines[1:-1])
    assert "(20 failures in the last 10 s)" in repeats[0] and "still unavailable after 10 s" in repeats[0]
    assert lines[-1][0] == "WARNING" and "available again after 20.5 s (41 failed attempts)" in lines[-1][1]
    assert len(lines) == 4
