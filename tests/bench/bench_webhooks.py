"""Benchmark of webhook deliveries: deliveries per second through a real worker against the same receiver hit
directly by httpx at the same concurrency in the same round, and the event-to-delivery delay.

Run: .venv/bin/python tests/bench/bench_webhooks.py [--messages 2000] [--concurrency 50] [--rounds 3]
                                                    [--threads 2] [--rate 100] [--seconds 20]

1. A throwaway PostgreSQL cluster (the worker as an app role without BYPASSRLS) and a throwaway Redis (the
   queue), both from tests/servers.py; migrated with the real migrations. One receiver (tests/receivers.py:
   a threaded HTTP server on loopback answering 204) in this process, one tenant, one endpoint taking every
   event.
2. Throughput, --rounds rounds of three runs each, all counted at the receiver from its first request to
   its last (start-up excluded), each client in a process of its own:
   - direct: --messages signed POSTs from one httpx.AsyncClient, --concurrency at once (this script with
     --direct, in a child process); the goal's baseline;
   - direct in lanes: the same from --concurrency/4 clients taken in turn, as the worker sends
     (appliance.services.outbound.clients): what the worker costs over a client tuned as it is;
   - worker: --messages events published (100 per transaction: a message, a delivery and a durable job
     each, pushed to Redis after the commit) while no worker runs; then one `appliance worker` process
     (webhooks.concurrency = --concurrency) drains them.
   Each row also gives the CPU a request cost (user and system, over the same window): the direct clients'
   own, the worker process's and the PostgreSQL cluster's (psutil).
3. Delay: with the worker running and idle, events published one per transaction at --rate a second for
   --seconds; the delay of each is its receipt time minus its event's timestamp (the body's ``timestamp``,
   taken when it is published, before its commit). The publisher runs in this process, beside the
   receiver, so the delays include any wait for this process's GIL (they are not flattered).
Prints a table; exit status 0 unless something fails (then status 2).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import httpx  # noqa: E402
import psutil  # noqa: E402

from appliance.db import tenancy  # noqa: E402
from appliance.db.session import Database  # noqa: E402
from appliance.models import Tenant  # noqa: E402
from appliance.services.access.actors import Actor  # noqa: E402
from appliance.services.jobs import durable as jobs  # noqa: E402
from appliance.services.outbound import guard as outbound  # noqa: E402
from appliance.services.webhooks import endpoints as webhook_endpoints  # noqa: E402
from appliance.services.webhooks import events  # noqa: E402
from appliance.services.webhooks import signing as webhook_signing  # noqa: E402
from appliance.workers import jobs as job_runner  # noqa: E402
from appliance.workers import queue  # noqa: E402
from tests.receivers import Receiver  # noqa: E402
from tests.servers import PostgresServer, RedisServer  # noqa: E402
from tests.support import make_settings, settings_env, stop_gracefully  # noqa: E402


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def direct(url: str, total: int, concurrency: int, lanes: int) -> None:
    """The baseline's client: ``total`` signed POSTs, ``concurrency`` at once, over kept-alive connections,
    from one httpx.AsyncClient, or from ``lanes`` of them taken in turn (as the worker sends)."""
    secret = webhook_signing.new_secret()
    body = events.render("project.created", dt.datetime.now(dt.UTC), {"id": "x"})
    slots = asyncio.Semaphore(concurrency)
    clients = [httpx.AsyncClient(limits=httpx.Limits(max_connections=concurrency)) for _ in range(lanes)]

    first_answer: list[float] = []

    async def one(i: int) -> None:
        async with slots:
            headers = webhook_signing.headers([secret], f"msg_{i}", body, dt.datetime.now(dt.UTC))
            response = await clients[i % lanes].post(url, content=body, headers=headers)
            response.raise_for_status()
            if not first_answer:
                first_answer.append(time.process_time())

    try:
        await asyncio.gather(*(one(i) for i in range(total)))
        print(f"cpu {(time.process_time() - first_answer[0]) / (total - 1) * 1000:.3f}")  # ms a request
    finally:
        for client in clients:
            await client.aclose()


def cpu_seconds(pid: int) -> float:
    """User and system CPU of a process and its children so far, in seconds."""
    root = psutil.Process(pid)
    total = 0.0
    for process in [root, *root.children(recursive=True)]:
        with contextlib.suppress(psutil.NoSuchProcess):  # a backend that just ended
            times = process.cpu_times()
            total += times.user + times.system
    return total


def receipt_rate(
    receiver: Receiver,
    since: int,
    total: int,
    alive: Callable[[], bool],
    what: str,
    watched: dict[str, int] | None = None,
) -> tuple[float, dict[str, float]]:
    """Requests per second at the receiver, from the first to the last of the ``total`` after ``since``;
    and the CPU each ``watched`` process (and its children) used meanwhile, in ms a request."""
    deadline = time.monotonic() + 600
    started: dict[str, float] = {}
    while receiver.count() < since + total:
        if time.monotonic() > deadline or not alive():
            raise RuntimeError(f"{what}: only {receiver.count() - since} of {total} arrived")
        if watched and not started and receiver.count() > since:
            started = {name: cpu_seconds(pid) for name, pid in watched.items()}
        time.sleep(0.05)
    cpu = {name: (cpu_seconds(pid) - started[name]) / total * 1000 for name, pid in (watched or {}).items()}
    times = sorted(r.at for r in receiver.received[since : since + total])
    return (total - 1) / max(times[-1] - times[0], 1e-6), cpu


class Bench:
    def __init__(self, args: argparse.Namespace, work: Path, pg: PostgresServer, redis: RedisServer):
        self.args = args
        database = pg.app_database("forge")
        overrides: dict[str, Any] = {
            "outbound": {"allow_networks": ["127.0.0.0/8"]},
            "webhooks": {"concurrency": args.concurrency},
            "logging": {"level": "WARNING"},
        }
        self.settings = make_settings(work, None, redis.url, database=database, **overrides)
        queue.configure(self.settings)
        jobs.install_pusher(job_runner.push)
        self.db = Database(self.settings)
        self.env = settings_env(self.settings) | {
            "APPLIANCE_DATABASE__MIGRATIONS_URL": database["migrations_url"],
            "APPLIANCE_LOGGING__LEVEL": "WARNING",
        }
        self.log = work / "worker.log"
        self.tenant_id = uuid.uuid4()
        assert pg.pid is not None
        self.pg_pid = pg.pid

    def endpoint(self, url: str) -> None:
        with self.db.session_scope() as session:
            tenancy.set_platform(session)
            tenant = Tenant(id=self.tenant_id, slug="bench", name="Bench")
            session.add(tenant)
            session.flush()
            tenancy.set_tenant(session, tenant.id)
            policy = outbound.AddressPolicy.of(self.settings.outbound.allow_networks)
            actor = Actor(user_id=None, tenant_id=tenant.id)
            # (project.created only: its own creation is an event too, which would be one delivery more)
            webhook_endpoints.create(session, actor, url=url, policy=policy, event_types=["project.created"])

    def publish(self, count: int, per_transaction: int) -> None:
        for start in range(0, count, per_transaction):
            with self.db.session_scope() as session:
                tenancy.set_tenant(session, self.tenant_id)
                for n in range(start, min(start + per_transaction, count)):
                    events.publish(
                        session, tenant_id=self.tenant_id, event_type="project.created", data={"n": n}
                    )

    def worker(self) -> subprocess.Popen[bytes]:
        with self.log.open("ab") as out:
            return subprocess.Popen(
                [sys.executable, "-m", "appliance", "worker", "--workers", str(self.args.threads)],
                env=self.env, stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip

    def direct_round(self, receiver: Receiver, lanes: int = 1) -> tuple[float, float]:
        """The direct client's rate, and its CPU in ms a request (from its first answer to its last)."""
        args = self.args
        since = receiver.count()
        client = subprocess.Popen(
            [sys.executable, __file__, "--direct", receiver.url, "--messages", str(args.messages),
             "--concurrency", str(args.concurrency), "--lanes", str(lanes)],
            stdout=subprocess.PIPE,
        )  # fmt: skip
        try:
            alive = lambda: client.poll() in (None, 0)  # noqa: E731
            rate, _ = receipt_rate(receiver, since, args.messages, alive, "direct")
        finally:
            out, _ = client.communicate(timeout=60)
        return rate, float(out.decode().split()[-1])

    def worker_round(self, receiver: Receiver) -> tuple[float, dict[str, float]]:
        """The worker's rate, and the CPU in ms a delivery of the worker and of PostgreSQL."""
        since = receiver.count()
        self.publish(self.args.messages, 100)
        worker = self.worker()
        try:
            alive = lambda: worker.poll() is None  # noqa: E731
            watched = {"worker": worker.pid, "postgres": self.pg_pid}
            what = f"worker (log: {self.log})"
            return receipt_rate(receiver, since, self.args.messages, alive, what, watched)
        finally:
            stop_gracefully(worker)

    def delays(self, receiver: Receiver) -> list[float]:
        args = self.args
        total = int(args.rate * args.seconds)
        worker = self.worker()
        try:
            time.sleep(3)  # the consumer is up
            since = receiver.count()
            started = time.monotonic()
            for n in range(total):
                pause = started + n / args.rate - time.monotonic()
                if pause > 0:
                    time.sleep(pause)
                self.publish(1, 1)
            alive = lambda: worker.poll() is None  # noqa: E731
            receipt_rate(receiver, since, total, alive, f"delays (log: {self.log})")
        finally:
            stop_gracefully(worker)
        delays = []
        for got in receiver.received[since : since + total]:
            stamp = json.loads(got.body)["timestamp"]
            delays.append((got.at - dt.datetime.fromisoformat(stamp).timestamp()) * 1000)
        return delays


def run(args: argparse.Namespace) -> None:
    work = Path(tempfile.mkdtemp(prefix="bench-webhooks-"))
    pg, redis = PostgresServer().start(), RedisServer().start()
    try:
        bench = Bench(args, work, pg, redis)
        with Receiver() as receiver:
            bench.endpoint(receiver.url)
            rows = []
            lanes = max(1, args.concurrency // 4)  # as the worker's (appliance.workers.webhook_tasks)
            for round_ in range(args.rounds):
                base, base_cpu = bench.direct_round(receiver)
                tuned, tuned_cpu = bench.direct_round(receiver, lanes)
                through, cpu = bench.worker_round(receiver)
                rows.append((round_ + 1, base, through, tuned, base_cpu, tuned_cpu, cpu))
            delays = bench.delays(receiver)
        bench.db.dispose()
    finally:
        redis.close()
        pg.close()
    print(f"\n{args.messages} deliveries a round, concurrency {args.concurrency}, threads {args.threads}")
    print(f"{'round':>5}  {'httpx directly/s':>16}  {'through the worker/s':>20}  {'ratio':>6}    "
          f"{'httpx in lanes/s':>16}  {'ratio':>6}")  # fmt: skip
    for n, base, through, tuned, *_ in rows:
        print(f"{n:>5}  {base:>16.0f}  {through:>20.0f}  {through / base:>6.2f}    "
              f"{tuned:>16.0f}  {through / tuned:>6.2f}")  # fmt: skip
    print(f"\nCPU in ms a request: {'httpx directly':>14}  {'httpx in lanes':>14}  "
          f"{'worker':>6}  {'postgres':>8}")  # fmt: skip
    for n, _, _, _, base_cpu, tuned_cpu, cpu in rows:
        print(f"{'round ' + str(n):>19}  {base_cpu:>14.2f}  {tuned_cpu:>14.2f}  {cpu['worker']:>6.2f}  "
              f"{cpu['postgres']:>8.2f}")  # fmt: skip
    print(
        f"\nevent-to-delivery delay, {len(delays)} events at {args.rate:g}/s, one per transaction: "
        f"p50 {statistics.median(delays):.1f} ms, p99 {pct(delays, 0.99):.1f} ms, max {max(delays):.1f} ms"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rate", type=float, default=100.0, help="events a second in the delay run")
    parser.add_argument("--seconds", type=float, default=20.0, help="length of the delay run")
    parser.add_argument("--direct", metavar="URL", help=argparse.SUPPRESS)  # the baseline's child process
    parser.add_argument("--lanes", type=int, default=1, help=argparse.SUPPRESS)  # (its clients)
    args = parser.parse_args()
    if args.direct:
        asyncio.run(direct(args.direct, args.messages, args.concurrency, args.lanes))
        return 0
    try:
        run(args)
    except Exception as exc:
        print(f"bench_webhooks: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
