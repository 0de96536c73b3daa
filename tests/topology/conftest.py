"""Real Valkey topologies for the tests that need one of their own: a cluster, a Sentinel pair.

Session-scoped: starting a cluster takes a few seconds. Tests that kill servers start their own
(``tests/redis_servers.py``) rather than break these.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.redis_servers import SentinelPair, ValkeyCluster, sentinel_pair, valkey_cluster


@pytest.fixture(scope="session")
def cluster() -> Iterator[ValkeyCluster]:
    with valkey_cluster(primaries=3) as started:
        yield started


@pytest.fixture(scope="session")
def sentinel() -> Iterator[SentinelPair]:
    with sentinel_pair() as started:
        yield started
