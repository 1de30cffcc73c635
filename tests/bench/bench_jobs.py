"""Benchmark: durable jobs against plain Huey tasks, in the same run, and the kill test.

1. Throughput. A throwaway PostgreSQL (the worker connects as an app role without BYPASSRLS) and a throwaway
   Redis. N tasks are queued while no consumer runs; then the consumer starts and drains them. Rate is
   measured from the first completion to the last (start-up excluded), for
   - plain Huey: a consumer with one no-op task (tests/bench/plain_huey_consumer.py), 2 worker threads;
   - durable: `appliance worker --workers 2` running `system.noop` jobs (a job row each: claim, run,
     succeed, two short transactions).
   Goal: durable / plain >= 0.6.
2. Kill test. 1,000 durable jobs (5 ms each); the worker is SIGKILLed at about 1/3 and 2/3 and started
   again each time. Goal: all 1,000 succeed; the jobs the dead workers held ran again.

Run: .venv/bin/python tests/bench/bench_jobs.py [--tasks 5000]
"""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from sqlalchemy import String, cast, delete, func, select

from appliance.db.session import Database
from appliance.models import Job
from appliance.services.jobs import durable as jobs
from appliance.workers import jobs as job_runner
from appliance.workers import queue
from appliance.workers.tasks import NOOP

sys.path.insert(0, str(Path(__file__).resolve().parent))
import plain_huey_consumer  # type: ignore[import-not-found]

from tests.servers import PostgresServer, RedisServer
from tests.support import make_settings, settings_env

HERE = Path(__file__).resolve().parent


def drain_rate(
    count: Any, total: int, process: subprocess.Popen[bytes], timeout: float = 600
) -> tuple[float, float]:
    """(tasks per second from the first completion to the last, seconds) by polling ``count()``; fails
    at once if ``process`` (the consumer) exits, or if nothing completes within a minute."""
    deadline = time.monotonic() + timeout
    first = None
    started = time.monotonic()
    while True:
        done = count()
        now = time.monotonic()
        if process.poll() is not None:
            raise RuntimeError(f"the consumer exited ({process.returncode}) after {done} of {total}")
        if not done and now - started > 60:
            raise RuntimeError("nothing completed within 60 s: the consumer does not run the tasks")
        if done and first is None:
            first, first_done = now, done
        if done >= total:
            assert first is not None
            elapsed = max(now - first, 1e-6)
            return (total - first_done) / elapsed, elapsed
        if now > deadline:
            raise RuntimeError(f"only {done} of {total} finished")
        time.sleep(0.05)  # the count is a query: asked more often, it would slow what it measures


def plain(redis_url: str, total: int, workers: int, log: Path) -> float:
    name = f"plain{int(time.time())}"
    instance = plain_huey_consumer.configure(redis_url, name)
    for _ in range(total):
        instance.noop()
    conn = instance.storage.conn
    with log.open("ab") as out:
        consumer = subprocess.Popen(
            [sys.executable, str(HERE / "plain_huey_consumer.py"), redis_url, name, str(workers)],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        rate, _ = drain_rate(lambda: int(conn.get(f"{name}:done") or 0), total, consumer)
    finally:
        consumer.send_signal(signal.SIGINT)
        consumer.wait(timeout=60)
    return rate


def succeeded(database: Database) -> int:
    with database.engine.connect() as conn:
        return int(conn.execute(select(func.count()).where(Job.state == "succeeded")).scalar_one())


def enqueue(database: Database, total: int, wait_ms: int) -> None:
    for start in range(0, total, 500):
        with database.session_scope() as session:
            for n in range(start, min(start + 500, total)):
                jobs.enqueue(session, NOOP, {"wait_ms": wait_ms, "echo": n}, tenant_id=None)


def start_worker(env: dict[str, str], workers: int, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "appliance", "worker", "--workers", str(workers)],
            env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip


def clear(database: Database) -> None:
    with database.engine.begin() as conn:
        conn.execute(delete(Job))


def run(args: argparse.Namespace) -> None:
    work = Path(tempfile.mkdtemp(prefix="bench-jobs-"))
    pg, redis = PostgresServer().start(), RedisServer().start()
    try:
        database_settings = pg.app_database("forge")

        def worker_env(**jobs_settings: float) -> dict[str, str]:
            settings = make_settings(
                work, None, redis.url, database=database_settings, jobs=jobs_settings,
                logging={"level": "WARNING"},
            )  # fmt: skip
            env = settings_env(settings) | {"APPLIANCE_LOGGING__LEVEL": "WARNING"}
            env["APPLIANCE_DATABASE__MIGRATIONS_URL"] = database_settings["migrations_url"]
            return env

        settings = make_settings(work, None, redis.url, database=database_settings)
        queue.configure(settings)
        jobs.install_pusher(job_runner.push)
        env = worker_env()  # throughput: the shipped lease and reaper settings
        # The kill test: short leases and a busy reaper, so that a killed worker's jobs come back quickly.
        kill_env = worker_env(lease_seconds=2, reap_interval=0.5, requeue_after=5)
        database = Database(settings)
        log = work / "worker.log"

        rows = []
        for round_ in range(args.rounds):
            base = plain(redis.url, args.tasks, 2, work / "plain.log")
            clear(database)
            enqueue(database, args.tasks, 0)
            worker = start_worker(env, 2, log)
            try:
                durable, _ = drain_rate(lambda: succeeded(database), args.tasks, worker)
            finally:
                worker.send_signal(signal.SIGINT)
                worker.wait(timeout=60)
            rows.append((round_ + 1, base, durable, durable / base))
        print(f"\nThroughput: {args.tasks} no-op tasks, 2 worker threads, Redis queue, PostgreSQL")
        print(f"{'round':>5}  {'plain Huey/s':>12}  {'durable/s':>10}  {'ratio':>6}")
        for row in rows:
            print(f"{row[0]:>5}  {row[1]:>12.0f}  {row[2]:>10.0f}  {row[3]:>6.2f}")

        clear(database)
        enqueue(database, 1000, 5)
        started = time.monotonic()
        worker = start_worker(kill_env, 2, log)
        kills = 0
        for mark in (330, 660):
            while succeeded(database) < mark:
                time.sleep(0.005)
            worker.send_signal(signal.SIGKILL)
            worker.wait(timeout=30)
            kills += 1
            worker = start_worker(kill_env, 2, log)
        try:
            while succeeded(database) < 1000:
                if time.monotonic() - started > 600:
                    raise RuntimeError(f"kill test: only {succeeded(database)} of 1000 succeeded")
                time.sleep(0.05)
        finally:
            worker.send_signal(signal.SIGINT)
            worker.wait(timeout=60)
        with database.engine.connect() as conn:
            ran_again = conn.execute(select(func.count()).where(Job.attempts > 1)).scalar_one()
            echoes = conn.execute(select(func.count(func.distinct(cast(Job.result, String))))).scalar_one()
        took = time.monotonic() - started
        print(f"\nKill test: 1000 jobs, {kills} SIGKILLs: {succeeded(database)} succeeded "
              f"({echoes} distinct results), {ran_again} ran again, {took:.1f} s in all")  # fmt: skip
        database.dispose()
    finally:
        pg.stop()
        redis.stop()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tasks", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=3)
    run(parser.parse_args())


if __name__ == "__main__":
    main()
