"""The gateway's own tunables, read from the environment once (defaults suit production).

| variable | default | meaning |
|---|---|---|
| ``REALTIME_PING_INTERVAL_MS`` | 25000 | how often the server pings every socket |
| ``REALTIME_PING_TIMEOUT_MS`` | 20000 | how long a client may take to answer before it is dropped |
| ``REALTIME_CONNECT_TIMEOUT_MS`` | 45000 | a websocket that joined no namespace by then is closed (1008) |
| ``REALTIME_MAX_PAYLOAD`` | 65536 | largest frame accepted (bytes); bigger ones close the socket (1009) |
| ``REALTIME_PRESENCE_GRACE_MS`` | 5000 | a subject with no socket left goes offline only after this |
| ``REALTIME_HEARTBEAT_MS`` | 10000 | how often a node refreshes its sockets' presence entries |
| ``REALTIME_NODE_ID`` | random | names this process in Redis (visitor uid -> sockets with node) |
| ``REALTIME_AGENT_IDLE_MS`` | 300000 | an agent with no input in any tab for this long turns away |
| ``REALTIME_SUBSCRIPTION_CHECK_MS`` | 30000 | how often Redis's view of the subscriptions is checked |
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass

from server.settings import int_setting


@dataclass(frozen=True, slots=True)
class RealtimeConfig:
    ping_interval_ms: int = 25_000
    ping_timeout_ms: int = 20_000
    connect_timeout_ms: int = 45_000
    max_payload: int = 65_536
    presence_grace_ms: int = 5_000
    heartbeat_ms: int = 10_000
    node_id: str = ""
    agent_idle_ms: int = 300_000
    subscription_check_ms: int = 30_000

    @property
    def idle_timeout_seconds(self) -> int:
        """uWS closes a socket silent for this long: one ping cycle plus its timeout (uWS minimum 8).

        A backstop only: the gateway itself closes a socket that leaves a ping unanswered for
        ``ping_timeout_ms`` (:meth:`Gateway.ping_all`), however short.
        """
        return max(8, -(-(self.ping_interval_ms + self.ping_timeout_ms) // 1000))

    @property
    def presence_ttl_ms(self) -> int:
        """A socket entry not refreshed for three heartbeats belongs to a dead node."""
        return 3 * self.heartbeat_ms


def load_realtime_config(env: Mapping[str, str] = os.environ) -> RealtimeConfig:
    return RealtimeConfig(
        ping_interval_ms=int_setting(env, "REALTIME_PING_INTERVAL_MS", 25_000, low=200, high=600_000),
        ping_timeout_ms=int_setting(env, "REALTIME_PING_TIMEOUT_MS", 20_000, low=200, high=600_000),
        connect_timeout_ms=int_setting(env, "REALTIME_CONNECT_TIMEOUT_MS", 45_000, low=100, high=600_000),
        max_payload=int_setting(env, "REALTIME_MAX_PAYLOAD", 65_536, low=1024, high=16 * 1024 * 1024),
        presence_grace_ms=int_setting(env, "REALTIME_PRESENCE_GRACE_MS", 5_000, low=0, high=600_000),
        heartbeat_ms=int_setting(env, "REALTIME_HEARTBEAT_MS", 10_000, low=200, high=600_000),
        node_id=env.get("REALTIME_NODE_ID", "").strip() or "n" + secrets.token_hex(6),
        agent_idle_ms=int_setting(env, "REALTIME_AGENT_IDLE_MS", 300_000, low=1000, high=86_400_000),
        subscription_check_ms=int_setting(
            env, "REALTIME_SUBSCRIPTION_CHECK_MS", 30_000, low=100, high=3_600_000
        ),
    )
