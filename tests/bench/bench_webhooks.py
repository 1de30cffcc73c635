"""Benchmark of webhook deliveries: deliveries per second through a real worker, and the event-to-delivery
delay, against the same receiver hit directly by httpx at the same concurrency in the same run.

Run: .venv/bin/python tests/bench/bench_webhooks.py [--messages 2000] [--concurrency 50] [--batch 100]
                                                    [--threads 2]

1. A throwaway PostgreSQL cluster (the worker as an app role without BYPASSRLS) and a throwaway Redis (the
   queue), both from tests/servers.py; migrated with the real migrations.
2. One receiver (tests/receivers.py: a threaded HTTP server on loopback answering 204), one tenant, one
   endpoint taking every event.
3. Baseline: --messages signed POSTs to the receiver from one httpx.AsyncClient, --concurrency at once.
4. The appliance: one `appliance worker` process (webhooks.concurrency = --concurrency); --messages events
   published in transactions of --batch (each a message, a delivery and a durable job, pushed to Redis
   after the commit). Deliveries per second from the first commit to the last receipt; the delay of each
   message is its receipt time minus its event timestamp (the body's ``timestamp``, the publish time).
Prints a table; exit status 0 unless something fails (then status 2).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import httpx  # noqa: E402

from appliance.db import tenancy  # noqa: E402
from appliance.db.session import Database  # noqa: E402
from appliance.models import Tenant  # noqa: E402
from appliance.services import events, jobs, outbound, webhook_endpoints, webhook_signing  # noqa: E402
from appliance.services.actors import Actor  # noqa: E402
from appliance.workers import jobs as job_runner  # noqa: E402
from appliance.workers import queue  # noqa: E402
from tests.receivers import Received, Receiver  # noqa: E402
from tests.servers import PostgresServer, RedisServer  # noqa: E402
from tests.support import make_settings, settings_env  # noqa: E402


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def baseline(url: str, total: int, concurrency: int) -> float:
    secret = webhook_signing.new_secret()
    body = events.render("project.created", dt.datetime.now(dt.UTC), {"id": "x"})
    slots = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(limits=httpx.Limits(max_connections=concurrency)) as client:

        async def one(i: int) -> None:
            async with slots:
                headers = webhook_signing.headers([secret], f"msg_{i}", body, dt.datetime.now(dt.UTC))
                response = await client.post(url, content=body, headers=headers)
                response.raise_for_status()

        started = time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(total)))
        return total / (time.perf_counter() - started)


def run(args: argparse.Namespace) -> None:
    work = Path(tempfile.mkdtemp(prefix="bench-webhooks-"))
    pg, redis = PostgresServer().start(), RedisServer().start()
    worker: subprocess.Popen[bytes] | None = None
    try:
        database = pg.app_database("forge")
        owner_url = database["migrations_url"]
        overrides: dict[str, Any] = {
            "outbound": {"allow_networks": ["127.0.0.0/8"]},
            "webhooks": {"concurrency": args.concurrency},
        }
        settings = make_settings(work, None, redis.url, database=database, **overrides)
        queue.configure(settings)
        jobs.install_pusher(job_runner.push)
        db = Database(settings)
        with Receiver() as receiver:
            direct = asyncio.run(baseline(receiver.url, args.messages, args.concurrency))
            receiver.received.clear()
            with db.session_scope() as session:
                tenancy.set_platform(session)
                tenant = Tenant(slug="bench", name="Bench")
                session.add(tenant)
                session.flush()
                tenancy.set_tenant(session, tenant.id)
                policy = outbound.AddressPolicy.of(settings.outbound.allow_networks)
                webhook_endpoints.create(
                    session, Actor(user_id=None, tenant_id=tenant.id), url=receiver.url, policy=policy
                )
            env = settings_env(settings) | {
                "APPLIANCE_DATABASE__MIGRATIONS_URL": owner_url,
                "APPLIANCE_OUTBOUND__ALLOW_NETWORKS": '["127.0.0.0/8"]',
                "APPLIANCE_WEBHOOKS__CONCURRENCY": str(args.concurrency),
            }
            log = work / "worker.log"
            with log.open("wb") as out:
                worker = subprocess.Popen(
                    [sys.executable, "-m", "appliance", "worker", "--workers", str(args.threads)],
                    env=env, stdout=out, stderr=subprocess.STDOUT,
                )  # fmt: skip
            time.sleep(2)  # the consumer is up
            started = time.time()
            for start in range(0, args.messages, args.batch):
                with db.session_scope() as session:
                    tenancy.set_tenant(session, tenant.id)
                    for i in range(start, min(start + args.batch, args.messages)):
                        events.publish(
                            session, tenant_id=tenant.id, event_type="project.created", data={"n": i}
                        )
            published = time.time() - started
            deadline = time.time() + 600
            while receiver.count() < args.messages:
                if time.time() > deadline or worker.poll() is not None:
                    raise RuntimeError(f"not every delivery arrived ({receiver.count()}); see {log}")
                time.sleep(0.05)
            received: list[Received] = list(receiver.received)
        elapsed = max(r.at for r in received) - started
        delays = []
        for r in received:
            stamp = json.loads(r.body)["timestamp"]
            delays.append((r.at - dt.datetime.fromisoformat(stamp).timestamp()) * 1000)
        through = args.messages / elapsed
        print(f"{args.messages} messages, concurrency {args.concurrency}, worker threads {args.threads}")
        print(f"{'':38} {'deliveries/s':>12}")
        print(f"{'httpx directly (baseline)':38} {direct:12.0f}")
        print(f"{'appliance worker (PostgreSQL, Redis)':38} {through:12.0f}   ratio {through / direct:.2f}")
        print(f"publishing took {published:.2f} s ({args.messages / published:.0f} events/s)")
        print(
            f"event-to-delivery delay: p50 {statistics.median(delays):.0f} ms, "
            f"p99 {pct(delays, 0.99):.0f} ms, max {max(delays):.0f} ms"
        )
        db.dispose()
    finally:
        if worker is not None and worker.poll() is None:
            worker.send_signal(signal.SIGINT)
            try:
                worker.wait(timeout=30)
            except subprocess.TimeoutExpired:
                worker.kill()
        redis.close()
        pg.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    try:
        run(args)
    except Exception as exc:
        print(f"bench_webhooks: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
