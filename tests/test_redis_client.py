"""The Redis client packs commands with hiredis whatever the URL scheme (a measured hot spot)."""

from __future__ import annotations

from typing import Any

import pytest

from server.redis_client import FastConnection, FastSSLConnection, FastUnixConnection, make_redis
from server.settings import RedisSettings


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("redis://127.0.0.1:6379/0", FastConnection),
        ("rediss://127.0.0.1:6379/0", FastSSLConnection),
        ("unix:///tmp/valkey.sock", FastUnixConnection),
    ],
)
async def test_every_scheme_gets_the_hiredis_packer(url: str, expected: type) -> None:
    redis = make_redis(RedisSettings(url=url, max_connections=2))
    try:
        assert redis.connection_pool.connection_class is expected
    finally:
        await redis.aclose()


async def test_the_configured_client_round_trips_many_keys(settings: Any) -> None:
    redis = make_redis(settings.redis)
    try:
        scheme = settings.redis.url.partition(":")[0]
        expected = {"redis": FastConnection, "rediss": FastSSLConnection, "unix": FastUnixConnection}[scheme]
        assert redis.connection_pool.connection_class is expected  # whichever server the run uses
        keys = [f"parley:test:packing:{index}" for index in range(50)]
        await redis.mset({key: f"välue {index}" for index, key in enumerate(keys)})
        values = await redis.mget([*keys, "parley:test:packing:missing"])
        assert values[:2] == ["välue 0".encode(), "välue 1".encode()] and values[-1] is None
        assert len(values) == 51
    finally:
        await redis.aclose()
