"""Realtime gateway benchmark: sockets held, RSS per socket, fan-out deliveries/s with p50/p99.

Side by side in one run, on the same workload, with python-socketio on uvicorn and the Node
Socket.IO server (npm ``socket.io``): N sockets join ``/agent``; messages published on a Redis
channel are broadcast by the server to all N. For Parley that is the real path (worker's relay ->
``project_channel`` -> SUBSCRIBER -> socketify topic); the baselines subscribe to the same kind of
channel and ``emit`` to a room. The load client is Node with the ``ws`` package, parsing nothing
but a timestamp on every 8th delivery. Each figure runs 3 times: median and worst are printed.

``python -m bench gateway`` (or ``make bench``). Needs Node.js and npm (baselines and load client
are installed with npm into the git-ignored ``bench/gateway_clients/node_modules``). Environment:
``BENCH_SOCKETS`` (default ``10000,50000``), ``BENCH_FANOUT`` (default ``1000,5000``).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import resource
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as a script: import server and the test factories
from tests.processes import free_port  # noqa: E402

CLIENTS = ROOT / "bench" / "gateway_clients"
PYTHON = sys.executable
RUNS = 3
CHANNEL_BASELINE = "bench:fanout"
PACED_DELIVERIES = 20_000
"""Deliveries per second of the steady load the latency figures are taken at (every server)."""
SOURCE_BLOCKS = itertools.count(1 + os.getpid() % 250)
"""Each load client connects from its own 127.0.<block>.x addresses: the ports a previous run
left in TIME_WAIT cannot be bound again for a minute, and 20,000 of them starve the next run."""


def raise_nofile(wanted: int = 250_000) -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    for limit in (wanted, hard):
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (limit, max(limit, hard)))
            return limit
        except (ValueError, OSError):
            continue
    return soft


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def spawn(
    command: list[str], env: dict[str, str], log: Path, ready: str, cwd: Path = ROOT
) -> subprocess.Popen[bytes]:
    handle = log.open("wb")
    process = subprocess.Popen(command, env=env, cwd=cwd, stdout=handle, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 30
    while ready not in log.read_text(errors="replace"):
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError(f"{command[:3]} did not start:\n{log.read_text()[-2000:]}")
        time.sleep(0.05)
    return process


def stop(process: subprocess.Popen[Any]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


class LoadClient:
    """``load.mjs``: N websockets on a namespace; reports deliveries and latency on request."""

    def __init__(self, url: str, namespace: str, auth_file: Path, count: int) -> None:
        self.process = subprocess.Popen(
            [
                "node",
                str(CLIENTS / "load.mjs"),
                url,
                namespace,
                str(auth_file),
                str(count),
                str(next(SOURCE_BLOCKS) % 250 + 1),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=CLIENTS,
        )
        self.ready = self._line()

    def _line(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError("load client died")
        return dict(json.loads(line))

    def ask(self, command: str) -> dict[str, Any]:
        assert self.process.stdin is not None
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()
        return self._line()

    def close(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            self.process.kill()


class Bench:
    def __init__(self, work: Path) -> None:
        self.work = work
        self.env: dict[str, str] = {}
        self.project_id = 0
        self.agent_auth = ""
        self.embedded: Any = None

    def start(self) -> None:
        from server.embedded import EmbeddedServers

        self.embedded = EmbeddedServers(self.work / "servers", database="parley_bench")
        urls = self.embedded.start()
        if os.environ.get("BENCH_REDIS_URL"):
            # A Redis of the caller's (bench/e2e_replica.py: a primary with a replica; bench/cluster.py:
            # a cluster), not the embedded one. SAQ cannot run on a cluster: its queue stays embedded.
            if os.environ["BENCH_REDIS_URL"].startswith("redis+cluster://"):
                urls["QUEUE_REDIS_URL"] = urls["REDIS_URL"]
            if os.environ.get("BENCH_QUEUE_URL"):  # bench/cluster.py: the queue's own server
                urls["QUEUE_REDIS_URL"] = os.environ["BENCH_QUEUE_URL"]
            urls["REDIS_URL"] = os.environ["BENCH_REDIS_URL"]
        self.env = {
            **os.environ,
            **urls,
            "SECRET_KEY": secrets.token_urlsafe(48),
            "LOG_LEVEL": "WARNING",
            "PYTHONUNBUFFERED": "1",
        }
        subprocess.run(
            [PYTHON, "-m", "server", "migrate"], env=self.env, cwd=ROOT, check=True, stdout=subprocess.DEVNULL
        )
        os.environ.update(
            {
                k: self.env[k]
                for k in ("DATABASE_URL", "REDIS_URL", "QUEUE_REDIS_URL", "SECRET_KEY")
                if k in self.env
            }
        )
        asyncio.run(self._seed())

    async def _seed(self) -> None:
        from server.accounts.tokens import agent_token
        from server.database import connection_pool
        from tests.factories import make_member, make_project, make_user

        async with connection_pool():
            from server.tenancy.tables import ProjectMember

            project = await make_project(name="bench")
            user = await make_user()
            await make_member(project, user, ProjectMember.ProjectRole.AGENT)
        self.project_id = project.id
        token = agent_token(user.id, self.env["SECRET_KEY"])[0]
        self.agent_auth = json.dumps({"token": token})

    def stop(self) -> None:
        if self.embedded is not None:
            self.embedded.remove()

    def gateway(self, port: int, log: str) -> subprocess.Popen[bytes]:
        env = {**self.env, "REALTIME_PORT": str(port)}
        return spawn([PYTHON, "-m", "server", "realtime"], env, self.work / log, "listening on")

    # -- figures ---------------------------------------------------------------------------

    def sockets_held(self, count: int) -> dict[str, float]:
        from server.accounts.tokens import visitor_token

        auth_file = self.work / f"visitors-{count}.jsonl"
        if not auth_file.exists():
            secret = self.env["SECRET_KEY"]
            lines = (
                json.dumps({"token": visitor_token(self.project_id, f"v{i}", secret)[0]})
                for i in range(count)
            )
            auth_file.write_text("\n".join(lines) + "\n")
        port = free_port()
        gateway = self.gateway(port, f"held-{count}.log")
        try:
            time.sleep(0.5)
            before = rss_kib(gateway.pid)
            started = time.perf_counter()
            client = LoadClient(
                f"ws://127.0.0.1:{port}/socket.io/?EIO=4&transport=websocket", "/visitor", auth_file, count
            )
            took = time.perf_counter() - started
            time.sleep(2)
            after = rss_kib(gateway.pid)
            held = int(client.ready["ready"])
            client.close()
            return {
                "held": held,
                "bytes_per_socket": (after - before) * 1024 / max(1, held),
                "connect_s": took,
            }
        finally:
            stop(gateway)

    def fanout(self, server: str, sockets: int, messages: int) -> dict[str, float]:
        port = free_port()
        redis_url = self.env["REDIS_URL"]
        if server == "parley":
            from server.outbox.envelope import project_channel

            process = self.gateway(port, f"fanout-{server}-{sockets}.log")
            channel = project_channel(self.project_id)
        elif server == "python-socketio":
            process = spawn(
                [PYTHON, str(CLIENTS / "psio_server.py"), str(port), redis_url, CHANNEL_BASELINE],
                self.env,
                self.work / f"fanout-{server}.log",
                "listening",
            )
            channel = CHANNEL_BASELINE
        else:
            process = spawn(
                ["node", str(CLIENTS / "node_server.mjs"), str(port), redis_url, CHANNEL_BASELINE],
                self.env,
                self.work / f"fanout-{server}.log",
                "listening",
                cwd=CLIENTS,
            )
            channel = CHANNEL_BASELINE
        auth_file = self.work / "agent.jsonl"
        auth_file.write_text(self.agent_auth + "\n")
        url = f"ws://127.0.0.1:{port}/socket.io/?EIO=4&transport=websocket"
        client = LoadClient(url, "/agent", auth_file, sockets)
        try:
            held = int(client.ready["ready"])
            if held < sockets:
                raise RuntimeError(f"{server}: only {held}/{sockets} sockets joined")
            time.sleep(1)
            client.ask("reset")
            expected = held * messages
            started = time.perf_counter()
            asyncio.run(publish(redis_url, channel, self.project_id, messages))
            last, last_change, stats = -1, time.perf_counter(), client.ask("stats")
            while stats["deliveries"] < expected and time.perf_counter() - last_change < 5:
                time.sleep(0.02)
                stats = client.ask("stats")
                if stats["deliveries"] != last:
                    last, last_change = stats["deliveries"], time.perf_counter()
            elapsed = (
                last_change - started if stats["deliveries"] < expected else time.perf_counter() - started
            )
            burst = {
                "deliveries_per_s": stats["deliveries"] / elapsed,
                "lost": expected - stats["deliveries"],
            }
            # Latency at a steady, sustainable load: PACED_DELIVERIES per second for 3 s.
            time.sleep(0.5)
            client.ask("reset-sample-all")
            rate = max(1, PACED_DELIVERIES // held)
            asyncio.run(publish(redis_url, channel, self.project_id, rate * 3, per_second=rate))
            time.sleep(1.0)
            paced = client.ask("stats")
            return {**burst, "p50_ms": paced["p50"] or 0.0, "p99_ms": paced["p99"] or 0.0}
        finally:
            client.close()
            stop(process)


async def publish(redis_url: str, channel: str, project_id: int, messages: int, per_second: int = 0) -> None:
    """The outbox relay's side: message.created envelopes on the channel.

    As fast as Redis takes them (pipelines of 50), or ``per_second`` one by one, evenly spaced.
    """
    from server.redis_client import is_cluster, make_redis
    from server.settings import RedisSettings

    redis = make_redis(RedisSettings(url=redis_url, max_connections=8))  # a cluster URL too
    sharded = is_cluster(redis)  # on a cluster the outbox relay publishes with SPUBLISH
    body = "x" * 120
    batch = 1 if per_second else 50
    began = time.perf_counter()
    try:
        for start in range(0, messages, batch):
            if per_second:
                await asyncio.sleep(max(0.0, began + start / per_second - time.perf_counter()))
            async with redis.pipeline(transaction=False) as pipe:
                for seq in range(start, min(messages, start + batch)):
                    now = time.time()
                    envelope = {
                        "type": "message.created",
                        "project_id": project_id,
                        "at": now,
                        "id": seq,
                        "conversation_id": 1,
                        "seq": seq,
                        "data": {
                            "sent_at": now,
                            "conversation_id": 1,
                            "seq": seq,
                            "visitor_uid": "v_bench",
                            "private": False,
                            "body": body,
                        },
                    }
                    encoded = json.dumps(envelope, separators=(",", ":"))
                    if sharded:
                        pipe.spublish(channel, encoded)
                    else:
                        pipe.publish(channel, encoded)
                await pipe.execute()
    finally:
        await redis.aclose()


def summarize(name: str, runs: list[dict[str, float]], key: str, higher_is_better: bool, fmt: str) -> float:
    values = [run[key] for run in runs]
    median = statistics.median(values)
    worst = min(values) if higher_is_better else max(values)
    print(f"  {name:<44} median {fmt.format(median):>12}   worst {fmt.format(worst):>12}", flush=True)
    return median


def repeat(figure: Callable[[], dict[str, float]]) -> list[dict[str, float]]:
    return [figure() for _ in range(RUNS)]


def node_packages(folder: Path, needed_for: str) -> bool:
    """Install a Node client's packages into its git-ignored ``node_modules``; False without Node."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        print(f"{needed_for} needs Node.js and npm; skipped")
        return False
    if not (folder / "node_modules" / "ws").is_dir():
        subprocess.run(
            ["npm", "install", "--prefix", str(folder), "--no-audit", "--no-fund", "--loglevel=error"],
            check=True,
        )
    return True


def main() -> int:
    if not node_packages(CLIENTS, "bench/gateway.py (load client and the Node Socket.IO baseline)"):
        return 0
    limit = raise_nofile()
    sizes = [int(n) for n in os.environ.get("BENCH_SOCKETS", "10000,50000").split(",") if n]
    fanouts = [int(n) for n in os.environ.get("BENCH_FANOUT", "1000,5000").split(",") if n]
    print(
        f"realtime gateway benchmark, {os.cpu_count()} CPUs, open files limit {limit}, {RUNS} runs each",
        flush=True,
    )
    bench = Bench(Path(tempfile.mkdtemp(prefix="parley-bench-")))
    try:
        bench.start()
        # Fan-out first: the sockets phase leaves its 19,000 visitors to go offline after the grace
        # period, and the next gateway's presence sweep announces each one to every agent socket.
        for sockets in fanouts:
            print(
                f"fan-out to {sockets} sockets (Redis -> server -> every socket); deliveries/s from a burst,"
                f" latency at a steady {PACED_DELIVERIES:,} deliveries/s:",
                flush=True,
            )
            budgets = {"parley": 1_000_000, "node socket.io": 300_000, "python-socketio": 60_000}
            only = [name for name in os.environ.get("BENCH_FANOUT_SERVERS", "").split(",") if name]
            if only:  # bench/cluster.py: only Parley's gateway speaks sharded pub/sub
                budgets = {name: budget for name, budget in budgets.items() if name in only}
            medians: dict[str, float] = {}
            for server, deliveries in budgets.items():
                messages = max(10, deliveries // sockets)
                try:
                    runs = repeat(lambda s=server, n=sockets, m=messages: bench.fanout(s, n, m))  # type: ignore[misc]
                except RuntimeError as error:
                    print(f"  {server}: failed: {error}", flush=True)
                    continue
                medians[server] = summarize(
                    f"{server}: deliveries/s", runs, "deliveries_per_s", True, "{:,.0f}"
                )
                summarize(f"{server}: lost deliveries in the burst", runs, "lost", False, "{:.0f}")
                summarize(f"{server}: p50 ms at {PACED_DELIVERIES:,}/s", runs, "p50_ms", False, "{:.1f}")
                summarize(f"{server}: p99 ms at {PACED_DELIVERIES:,}/s", runs, "p99_ms", False, "{:.1f}")
            for baseline in ("python-socketio", "node socket.io"):
                if "parley" in medians and baseline in medians:
                    print(
                        f"  ratio parley / {baseline}: {medians['parley'] / medians[baseline]:.1f}x",
                        flush=True,
                    )
        print("sockets held by one gateway process (authenticated /visitor sockets):", flush=True)
        for count in sizes:
            if count + 1000 > limit:  # each process (gateway, load client) holds one fd per socket
                print(f"  {count}: skipped, open files limit {limit} is too low")
                continue
            runs = repeat(lambda count=count: bench.sockets_held(count))  # type: ignore[misc]
            summarize(f"{count} sockets: held", runs, "held", True, "{:.0f}")
            summarize(f"{count} sockets: RSS per socket (bytes)", runs, "bytes_per_socket", False, "{:.0f}")
            summarize(f"{count} sockets: time to connect all (s)", runs, "connect_s", False, "{:.1f}")
    finally:
        bench.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
