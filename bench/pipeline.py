"""Message pipeline benchmark: accept -> SAQ -> worker transaction + outbox -> Redis pub/sub.

Runs on its own embedded PostgreSQL and Valkey (temporary), with everything co-located. For each
pipeline and each offered rate it sends visitor messages through ``MessageSender`` (the API
node's send path, without HTTP), runs the worker as a separate process, listens on the project's
channel like a realtime node, and reports:

- persisted msgs/s  : messages published / (last publish - first send)
- p50 / p99 ms      : from the sender's ack to the ``message.created`` envelope arriving
- CPU ms/msg        : CPU of driver + worker + PostgreSQL + Valkey during the run, per message
- max queue depth   : the SAQ queue's queued jobs, sampled every 50 ms

Pipelines, measured side by side in the same run:

- ``naive``  : one SAQ job per message (naming its mailbox), relay polling every 10 ms, no
  after-commit publish
- ``batched``: what production runs: adaptive batches (whatever was sent while the previous append
  was in flight), one drain job when none is due, whose rounds take everything that arrived during
  the previous round, multi-row transaction, events published from memory right after commit

Each figure is measured 3 times; the table shows the median and the worst of the 3.

    .venv/bin/python bench/pipeline.py            # or: make bench
    .venv/bin/python bench/pipeline.py --rates 200,1000 --seconds 3
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PIPELINES = ("naive", "batched")
VARIANTS = ("naive", "batched", "batched-poll", "batched-nofast", "batched-nolisten")
REPEATS = 3


def pipeline_options(name: str):  # type: ignore[no-untyped-def]
    from tasks.worker import PipelineOptions

    if name in ("naive", "batched-poll"):
        return PipelineOptions(fast_path=False, relay_listen=False, relay_sweep_interval=0.01)
    if name == "batched-nofast":
        return PipelineOptions(fast_path=False)
    if name == "batched-nolisten":
        return PipelineOptions(relay_listen=False)
    return PipelineOptions()


def run_worker(name: str) -> None:
    """Worker mode: a SAQ worker with the pipeline's options (what ``saq tasks.worker.settings`` runs)."""
    from saq.worker import Worker

    from server.settings import get_settings
    from tasks.worker import build_settings

    worker = Worker(**build_settings(get_settings(), pipeline_options(name)))
    asyncio.run(worker.start())


@dataclass
class Figures:
    throughput: float
    p50: float
    p99: float
    cpu_ms: float
    depth: int
    lost: int


@dataclass
class Machine:
    """CPU time of the processes taking part (the driver itself, the worker, the servers)."""

    pids: list[int] = field(default_factory=list)

    def cpu(self) -> float:
        import psutil

        total = time.process_time()
        for pid in self.pids:
            try:
                process = psutil.Process(pid)
                processes = [process, *process.children(recursive=True)]
            except psutil.NoSuchProcess:
                continue
            for each in processes:
                try:
                    times = each.cpu_times()
                except psutil.NoSuchProcess:
                    continue
                total += times.user + times.system
        return total


async def one_run(
    sender, redis, queue, project_id: int, rate: int, seconds: float, machine: Machine
) -> Figures:  # type: ignore[no-untyped-def]
    from server.chat.schemas import MessageKind, SendMessage
    from server.errors import DomainError
    from server.outbox.envelope import decode, project_channel

    accepted: dict[str, float] = {}
    published: dict[str, float] = {}
    pubsub = redis.pubsub()
    await pubsub.subscribe(project_channel(project_id))
    stop = asyncio.Event()

    async def listen() -> None:
        while not stop.is_set():
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.05)
            if message is not None:
                envelope = decode(message["data"])
                if envelope.type == "message.created":
                    published.setdefault(envelope.data["client_msg_id"], time.perf_counter())

    depth = 0

    async def sample_depth() -> None:
        nonlocal depth
        while not stop.is_set():
            depth = max(depth, await queue.count("queued"))
            await asyncio.sleep(0.05)

    async def send(index: int) -> None:
        client_msg_id = uuid.uuid4()
        command = SendMessage(
            kind=MessageKind.VISITOR,
            project_id=project_id,
            visitor_uid=f"v_bench_{index % 200}",
            body=f"benchmark message {index}",
            client_msg_id=client_msg_id,
        )
        try:
            await sender.send(command)
        except DomainError:
            return
        accepted[str(client_msg_id)] = time.perf_counter()

    listener = asyncio.create_task(listen())
    sampler = asyncio.create_task(sample_depth())
    await asyncio.sleep(0.2)
    cpu_before = machine.cpu()
    total = int(rate * seconds)
    tasks: set[asyncio.Task[None]] = set()
    start = time.perf_counter()
    for index in range(total):
        due = start + index / rate
        delay = due - time.perf_counter()
        if delay > 0.001:
            await asyncio.sleep(delay)
        task = asyncio.create_task(send(index))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    if tasks:
        await asyncio.gather(*tasks)
    deadline = time.perf_counter() + 30
    while time.perf_counter() < deadline and not set(accepted) <= set(published):  # noqa: ASYNC110
        await asyncio.sleep(0.02)
    cpu_after = machine.cpu()
    stop.set()
    await listener
    await sampler
    await pubsub.aclose()
    done = [published[key] - accepted[key] for key in accepted if key in published]
    done.sort()
    last = max(published.values()) if published else start
    n = len(done)
    return Figures(
        throughput=n / (last - start) if n else 0.0,
        p50=done[n // 2] * 1000 if n else float("nan"),
        p99=done[min(n - 1, int(n * 0.99))] * 1000 if n else float("nan"),
        cpu_ms=(cpu_after - cpu_before) * 1000 / max(n, 1),
        depth=depth,
        lost=len(accepted) - n,
    )


async def drive(args: argparse.Namespace, env: dict[str, str], machine: Machine, project_id: int) -> None:
    from server.chat.mailbox import Limit, RateLimits
    from server.chat.sending import MessageSender
    from server.queue import make_queue
    from server.redis_client import make_redis
    from server.settings import load_settings

    settings = load_settings(env)
    rates = [int(rate) for rate in args.rates.split(",")]
    unlimited = RateLimits(per_visitor=Limit(0, 1), per_agent=Limit(0, 1), per_project=Limit(0, 1))
    results: dict[tuple[str, int], list[Figures]] = {}
    pipelines = args.pipelines.split(",")
    for name in pipelines:
        log_level = os.environ.get("BENCH_WORKER_LOG", "WARNING")  # INFO shows every job's timing
        with open(Path(tempfile.gettempdir()) / f"parley-bench-{name}.log", "w") as log:  # noqa: ASYNC230
            worker = subprocess.Popen(  # noqa: ASYNC220
                [sys.executable, __file__, "--worker", name],
                env={**env, "LOG_LEVEL": log_level},
                cwd=ROOT,
                stdout=subprocess.DEVNULL,
                stderr=log,
            )
        machine.pids.append(worker.pid)
        await asyncio.sleep(2.0)
        redis = make_redis(settings.redis)
        await redis.flushdb()  # no jobs or mailboxes left over from the previous pipeline
        queue = make_queue(settings.queue_redis)
        sender = MessageSender(
            queue,
            redis,
            limits=unlimited,
            max_batch=1 if name == "naive" else 200,
            coalesce_jobs=name != "naive",
        )
        try:
            await one_run(sender, redis, queue, project_id, 100, 1.0, machine)  # warm-up
            for rate in rates:
                for _ in range(REPEATS):
                    figures = await one_run(sender, redis, queue, project_id, rate, args.seconds, machine)
                    results.setdefault((name, rate), []).append(figures)
                    print(
                        f"  {name:8} {rate:5}/s -> {figures.throughput:7.0f}/s p50 {figures.p50:7.1f} ms "
                        f"p99 {figures.p99:7.1f} ms cpu {figures.cpu_ms:5.2f} ms/msg depth {figures.depth}"
                        + (f" LOST {figures.lost}" if figures.lost else ""),
                        flush=True,
                    )
        finally:
            await sender.aclose()
            await redis.aclose()
            await queue.disconnect()
            worker.terminate()
            worker.wait(timeout=30)
            machine.pids.remove(worker.pid)
    report(results, rates, pipelines)


def report(results: dict[tuple[str, int], list[Figures]], rates: list[int], pipelines: list[str]) -> None:
    print()
    print("median (worst) of 3, per offered rate; everything on this machine")
    print(
        f"{'pipeline':9}{'offered':>8} {'persisted/s':>16} {'p50 ms':>16} {'p99 ms':>16}"
        f" {'CPU ms/msg':>14} {'queue depth':>12}"
    )
    for rate in rates:
        for name in pipelines:
            runs = results[(name, rate)]

            def pair(values: list[float], worst: float, fmt: str) -> str:
                return f"{format(statistics.median(values), fmt)} ({format(worst, fmt)})"

            throughput = [r.throughput for r in runs]
            p50 = [r.p50 for r in runs]
            p99 = [r.p99 for r in runs]
            cpu = [r.cpu_ms for r in runs]
            depth = [float(r.depth) for r in runs]
            print(
                f"{name:9}{rate:>8} {pair(throughput, min(throughput), '.0f'):>16}"
                f" {pair(p50, max(p50), '.1f'):>16} {pair(p99, max(p99), '.1f'):>16}"
                f" {pair(cpu, max(cpu), '.2f'):>14} {pair(depth, max(depth), '.0f'):>12}"
            )
    print()
    print("baseline: 'naive' (one job per message, polling relay) measured side by side above.")
    if "naive" not in pipelines or "batched" not in pipelines:
        return
    for rate in rates:
        naive = statistics.median(r.cpu_ms for r in results[("naive", rate)])
        batched = statistics.median(r.cpu_ms for r in results[("batched", rate)])
        print(f"  at {rate}/s: CPU per message batched/naive = {batched / naive:.2f}")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--worker", choices=VARIANTS)
    parser.add_argument("--pipelines", default=",".join(PIPELINES))
    parser.add_argument("--rates", default="200,500,1000,1500")
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args()
    if args.worker:
        run_worker(args.worker)
        return 0

    from server.embedded import EmbeddedServers

    servers = EmbeddedServers(Path(tempfile.mkdtemp(prefix="parley-bench-")), database="parley")
    urls = servers.start()
    env = {
        **os.environ,
        **urls,
        "SECRET_KEY": "b" * 48,
        "LOG_LEVEL": "WARNING",
        "DATABASE_POOL_SIZE": "12",
        "PYTHONPATH": str(ROOT),
    }
    try:
        subprocess.run([sys.executable, "-m", "server", "migrate"], env=env, cwd=ROOT, check=True)
        import asyncpg

        async def setup() -> int:
            connection = await asyncpg.connect(urls["DATABASE_URL"])
            try:
                project_id: int = await connection.fetchval(
                    "INSERT INTO project (name, public_key, identity_secret) "
                    "VALUES ('bench', $1, 's') RETURNING id",
                    f"pk_{uuid.uuid4().hex}",
                )
                return project_id
            finally:
                await connection.close()

        project_id = asyncio.run(setup())
        machine = Machine(pids=[servers._postgres.get_pid(), servers._valkey._process.pid])
        os.environ.update(env)
        asyncio.run(drive(args, env, machine, project_id))
    finally:
        servers.remove()
    return 0


if __name__ == "__main__":
    sys.exit(main())
