"""Benchmark: a burst of writes at 10x the write capacity, in one tenant and spread over 100 tenants.

Run: .venv/bin/python tests/bench/bench_burst.py [--tenants 100] [--instances 2] [--factor 10]
                                                 [--capacity-seconds 10] [--burst-seconds 15] [--rounds 3]

1. Production mode on this machine: a throwaway PostgreSQL (tests/servers.py) with a database and an app
   role without BYPASSRLS, a throwaway Redis for the queue; `appliance init`, `appliance migrate` as the
   owner; seeded as the superuser with --tenants tenants, an organization each, and one owner who belongs
   to all of them. `appliance up` runs the supervisor with --instances API processes and the worker, on
   the shipped settings except: rate limits raised out of the way (this measures capacity, not the
   limiter) and a cheap argon2 (only the sign-ins hash, and they are not measured).
2. The owner signs in to every tenant (one token each).
3. Write capacity, closed loop: 32 clients creating projects (`POST /api/v1/projects`) for
   --capacity-seconds, all in one tenant, then spread over every tenant. Capacity = created per second;
   the single-tenant capacity as a ratio of the multi-tenant one says what one tenant's audit chain and
   locks cost.
4. The baseline latency of one write at a time (p50 of 20).
5. Each round, for one tenant and then for all: an open-loop burst (tests/bench/burst_load.py) at
   --factor x the larger capacity for --burst-seconds; every request's answer and latency. Reported:
   requests sent, answered 201 / 503 (shed, with Retry-After) / other / no answer within 30 s (goal 0),
   the p50 and p99 latency of every answer, the goodput (201 per second) during the burst, and the
   recovery time: from the end of the burst until five writes in a row are back within 2x the baseline
   latency (goal <= 5 s).

Exit status 0 unless something fails to start or a check fails (then a clear error and status 2).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from tests.bench.bench_api import APPLIANCE, BenchError, clean_env, free_port, run_checked  # noqa: E402
from tests.bench.burst_load import Load, Outcome, post  # noqa: E402
from tests.servers import PostgresServer, RedisServer  # noqa: E402

DATABASE = "forge"
APP_ROLE = "forge_app"
APP_PASSWORD = "bench-app-password"
OWNER_EMAIL = "owner@burst.example"
OWNER_PASSWORD = "burst-owner-password-1"
LIGHT_HASH = {
    "APPLIANCE_SECURITY__PASSWORD_HASH_MEMORY_KIB": "1024",
    "APPLIANCE_SECURITY__PASSWORD_HASH_PASSES": "1",
}
ANSWER_BOUND = 30.0

SEED = """
INSERT INTO tenants (id, slug, name, plan, status, created_at, updated_at)
SELECT gen_random_uuid(), 'tenant-' || lpad(i::text, 4, '0'), 'Tenant ' || i, 'enterprise', 'active',
       now(), now()
FROM generate_series(1, %(tenants)s::int) AS i;
INSERT INTO organizations (id, tenant_id, parent_id, name, slug, created_at, updated_at)
SELECT gen_random_uuid(), t.id, NULL, 'Headquarters', 'hq', now(), now() FROM tenants t;
WITH u AS (
    INSERT INTO users (id, email, display_name, password_hash, is_operator, is_active, must_change_password,
                       created_at, updated_at)
    VALUES (gen_random_uuid(), %(email)s, 'Burst Owner', %(hash)s, false, true, false, now(), now())
    RETURNING id
)
INSERT INTO memberships (id, tenant_id, user_id, role, created_at)
SELECT gen_random_uuid(), t.id, u.id, 'owner', now() FROM u, tenants t;
"""


@dataclass(frozen=True)
class Writer:
    """What a request needs to create a project in one tenant."""

    slug: str
    token: str
    organization: str


@dataclass(frozen=True)
class Burst:
    scenario: str
    rate: float
    duration: float
    """Seconds of sending."""
    sent: int
    skipped: int
    outcomes: list[Outcome]
    recovery: float | None
    seconds: float
    cores: dict[str, float]
    """CPU used during the burst, in cores, by: the API processes, PostgreSQL, the worker, this load."""

    def count(self, *statuses: int) -> int:
        return sum(o.status in statuses for o in self.outcomes)

    @property
    def late(self) -> int:
        return sum(o.status == -1 or o.latency > ANSWER_BOUND for o in self.outcomes)

    def latency(self, q: float) -> float:
        values = sorted(o.latency for o in self.outcomes if o.status > 0)
        return values[min(len(values) - 1, int(q * len(values)))] if values else float("nan")


def prepare(work: Path, pg: PostgresServer, redis: RedisServer, args: argparse.Namespace) -> dict[str, str]:
    from appliance.services.identity import passwords

    pg.create_database(DATABASE)
    pg.create_role(APP_ROLE, APP_PASSWORD)
    port = free_port()
    env = clean_env(
        APPLIANCE_DATA_DIR=str(work / "data"),
        APPLIANCE_DATABASE__URL=pg.url(DATABASE, user=APP_ROLE, password=APP_PASSWORD),
        APPLIANCE_DATABASE__MIGRATIONS_URL=pg.url(DATABASE),
        APPLIANCE_QUEUE__URL=redis.url,
        APPLIANCE_API__PORT=str(port),
        APPLIANCE_API__INSTANCES=str(args.instances),
        APPLIANCE_RATE_LIMITS__ENABLED="false",
        **LIGHT_HASH,
    )
    run_checked([APPLIANCE, "init"], env, "appliance init")
    run_checked([APPLIANCE, "migrate"], env, "appliance migrate")
    passwords.configure(1024, 1)
    values = {"tenants": args.tenants, "email": OWNER_EMAIL, "hash": passwords.hash_password(OWNER_PASSWORD)}
    with pg.connect(DATABASE, autocommit=False) as conn, conn.cursor() as cursor:
        for statement in SEED.split(";"):
            if statement.strip():
                cursor.execute(statement.encode(), values)
        conn.commit()
    run_checked([APPLIANCE, "up"], env, "appliance up", timeout=180)
    return env


def _call(
    port: int, method: str, path: str, body: object = None, token: str | None = None
) -> tuple[int, object]:
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    try:
        conn.request(
            method, path, body=json.dumps(body).encode() if body is not None else None, headers=headers
        )
        response = conn.getresponse()
        data = response.read()
        return response.status, json.loads(data) if data else None
    finally:
        conn.close()


def sign_in(port: int, tenants: int) -> list[Writer]:
    writers = []
    for i in range(1, tenants + 1):
        slug = f"tenant-{i:04d}"
        status, data = _call(port, "POST", "/api/v1/auth/login",
                             {"email": OWNER_EMAIL, "password": OWNER_PASSWORD, "tenant": slug})  # fmt: skip
        if status != 200 or not isinstance(data, dict):
            raise BenchError(f"sign-in to {slug} answered {status}: {data}")
        token = data["access_token"]
        status, orgs = _call(port, "GET", "/api/v1/organizations", token=token)
        if status != 200 or not isinstance(orgs, dict):
            raise BenchError(f"GET /api/v1/organizations answered {status}: {orgs}")
        writers.append(Writer(slug, token, orgs["items"][0]["id"]))
    return writers


def requester(port: int, writers: list[Writer], tag: str):  # type: ignore[no-untyped-def]
    def request(n: int) -> bytes:
        writer = writers[n % len(writers)]
        body = json.dumps({"organization_id": writer.organization, "name": f"{tag}-{n}"}).encode()
        return post("/api/v1/projects", "127.0.0.1", port, {"Authorization": f"Bearer {writer.token}"}, body)

    return request


def capacity(port: int, writers: list[Writer], seconds: float) -> float:
    load = Load("127.0.0.1", port, requester(port, writers, f"cap-{uuid.uuid4().hex[:6]}"))
    asyncio.run(load.closed(32, seconds))
    created = sum(o.status == 201 for o in load.outcomes)
    others = {o.status for o in load.outcomes} - {201}
    if others:
        print(f"  (capacity run also saw statuses {sorted(others)})", flush=True)
    return created / seconds


def one_write_latency(port: int, writer: Writer, tag: str) -> float:
    started = time.perf_counter()
    status, _ = _call(port, "POST", "/api/v1/projects",
                         {"organization_id": writer.organization, "name": f"{tag}-{uuid.uuid4().hex[:8]}"},
                         token=writer.token)  # fmt: skip
    if status != 201:
        return float("inf")
    return time.perf_counter() - started


def burst(
    port: int, writers: list[Writer], scenario: str, rate: float, seconds: float, normal: float
) -> Burst:
    load = Load("127.0.0.1", port, requester(port, writers, f"burst-{uuid.uuid4().hex[:6]}"), timeout=90)
    recovered: list[float | None] = [None]

    async def probe(started: float) -> None:
        await asyncio.sleep(max(0.0, started + seconds - time.perf_counter()))
        end = time.perf_counter()
        streak: list[float] = []
        while time.perf_counter() - end < 60:
            at = time.perf_counter()
            latency = await asyncio.to_thread(one_write_latency, port, writers[0], "probe")
            if latency <= 2 * normal:
                streak.append(at - end)
                if len(streak) == 5:
                    recovered[0] = streak[0]
                    return
            else:
                streak.clear()
            await asyncio.sleep(0.1)

    cores: dict[str, float] = {}

    async def both() -> None:
        started = time.perf_counter()
        before = cpu_by_group()

        async def measured() -> None:
            await load.run(rate, seconds)
            cores.update(cores_between(before, cpu_by_group(), time.perf_counter() - started))

        await asyncio.gather(measured(), probe(started))

    began = time.perf_counter()
    asyncio.run(both())
    return Burst(scenario, rate, seconds, len(load.outcomes), load.skipped, load.outcomes, recovered[0],
                 time.perf_counter() - began, cores)  # fmt: skip


def cpu_by_group() -> dict[str, tuple[str, float]]:
    """CPU seconds so far per process of the API, PostgreSQL, the worker and this one (the load), by pid,
    and the whole machine's busy seconds under "machine"."""
    import psutil

    found: dict[str, tuple[str, float]] = {}
    me = os.getpid()
    for proc in psutil.process_iter(["pid", "name", "cmdline", "cpu_times"]):
        times, cmdline = proc.info["cpu_times"], " ".join(proc.info["cmdline"] or ())
        if times is None:
            continue
        if proc.info["pid"] == me:
            group = "load"
        elif proc.info["name"] == "postgres":
            group = "postgres"
        elif "appliance" in cmdline and cmdline.endswith(" api"):
            group = "api"
        elif "appliance" in cmdline and " worker" in cmdline:
            group = "worker"
        else:
            continue
        found[str(proc.info["pid"])] = (group, times.user + times.system)
    machine = psutil.cpu_times()
    found["machine"] = (
        "machine",
        machine.user + machine.system + machine.nice + machine.softirq + machine.irq,
    )
    return found


def cores_between(
    before: dict[str, tuple[str, float]], after: dict[str, tuple[str, float]], wall: float
) -> dict[str, float]:
    """Cores used per group between two readings (processes present in both)."""
    cores = {"api": 0.0, "postgres": 0.0, "worker": 0.0, "load": 0.0, "machine": 0.0}
    for pid, (group, used) in after.items():
        if pid in before:
            cores[group] += (used - before[pid][1]) / wall
    return cores


def row(b: Burst, round_no: int) -> str:
    created, shed, cores = b.count(201), b.count(503), b.cores
    other = len(b.outcomes) - created - shed - b.count(-1, 0)
    recovery = f"{b.recovery:.2f}" if b.recovery is not None else "not within 60"
    return (
        f"| {round_no} | {b.scenario} | {b.rate:,.0f} | {b.sent:,} | {created:,} | {shed:,} | {other} "
        f"| {b.count(0)} + {b.skipped} | {b.late} "
        f"| {b.latency(0.5) * 1000:,.0f} | {b.latency(0.99) * 1000:,.0f} "
        f"| {created / b.duration:,.0f} | {recovery} | {cores['api']:.2f} / {cores['postgres']:.2f} "
        f"/ {cores['load']:.2f} / {cores['machine']:.2f} |"
    )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tenants", type=int, default=100)
    parser.add_argument("--instances", type=int, default=2)
    parser.add_argument("--factor", type=float, default=10.0)
    parser.add_argument("--capacity-seconds", type=float, default=10.0)
    parser.add_argument("--burst-seconds", type=float, default=15.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--keep", action="store_true", help="leave the work directory for a look afterwards")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="fa-burst-", dir="/tmp"))
    pg = PostgresServer()
    redis = RedisServer()
    env: dict[str, str] = {}
    try:
        pg.start()
        redis.start()
        env = prepare(work, pg, redis, args)
        port = int(env["APPLIANCE_API__PORT"])
        writers = sign_in(port, args.tenants)
        capacity(port, writers, 3)  # warm-up: every process, connection and cache
        single = capacity(port, writers[:1], args.capacity_seconds)
        multi = capacity(port, writers, args.capacity_seconds)
        normal = statistics.median(one_write_latency(port, writers[0], "base") for _ in range(20))
        print(
            f"write capacity: one tenant {single:,.0f}/s, {args.tenants} tenants {multi:,.0f}/s "
            f"(ratio {single / multi:.2f}); one write alone p50 {normal * 1000:.1f} ms",
            flush=True,
        )
        rate = args.factor * max(single, multi)
        rows = []
        for round_no in range(1, args.rounds + 1):
            for scenario, group in (("1 tenant", writers[:1]), (f"{args.tenants} tenants", writers)):
                result = burst(port, group, scenario, rate, args.burst_seconds, normal)
                rows.append(row(result, round_no))
                print(rows[-1], flush=True)
                errors = Counter(o.error for o in result.outcomes if o.error)
                if errors:
                    print(f"  failed requests: {dict(errors)}", flush=True)
                time.sleep(5)
        print(
            f"\n{args.instances} API processes, burst {args.factor:g}x the larger capacity for "
            f"{args.burst_seconds:g} s, open loop; latencies of every answer\n"
        )
        print(
            "| round | burst in | offered/s | sent | 201 | 503 | other | failed + not sent | over 30 s "
            "| p50 ms | p99 ms | 201/s | recovery s | cores: api / postgres / load / machine |"
        )
        print("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        print("\n".join(rows))
    except BenchError as exc:
        print(f"bench_burst: {exc}", file=sys.stderr)
        return 2
    finally:
        if env:
            subprocess.run([APPLIANCE, "down"], env=env, capture_output=True, timeout=300, check=False)
        redis.close()
        pg.close()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"work directory kept: {work}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    os.environ.pop("APPLIANCE_CONFIG", None)
    sys.exit(main())
