"""WORKER_CONCURRENCY: the SAQ worker's concurrency is a setting, and its Redis pool follows it."""

from __future__ import annotations

import os

import pytest

from server.settings import SettingsError, load_settings
from tasks.worker import build_settings


def test_the_worker_runs_as_many_jobs_as_the_setting_says() -> None:
    settings = load_settings({**os.environ, "WORKER_CONCURRENCY": "32"})
    built = build_settings(settings)
    assert built["concurrency"] == 32
    assert built["queue"].redis.connection_pool.max_connections >= 32  # type: ignore[attr-defined]
    assert build_settings(load_settings({**os.environ, "WORKER_CONCURRENCY": ""}))["concurrency"] == 10


@pytest.mark.parametrize("value", ["0", "many", "1001"])
def test_a_bad_concurrency_is_refused_naming_the_setting(value: str) -> None:
    with pytest.raises(SettingsError, match="WORKER_CONCURRENCY"):
        load_settings({**os.environ, "WORKER_CONCURRENCY": value})
