"""Benchmark of the authenticated list route on PostgreSQL, against `/health/live` of the same servers.

Run: .venv/bin/python tests/bench/bench_projects.py [--duration 10] [--connections 64] [--threads 2]
                                                    [--rounds 3] [--processes 2] [--limiter both|local|redis]
                                                    [--route projects|me] [--keep]

1. A throwaway PostgreSQL cluster (tests/servers.py, fsync off, scram-sha-256 on TCP, pg_stat_statements
   when the server has it): a database, an app role without BYPASSRLS; `appliance init`, then
   `appliance migrate` with database.url = the app role and database.migrations_url = the superuser (so
   migrate grants the app role its privileges, as in production).
2. Seeded as the superuser with INSERT ... SELECT generate_series: --tenants tenants (plan enterprise, one
   organization each) with --projects-per-tenant projects each (created_at spread over a year); the tenant
   the benchmark signs in to gets --owner-projects in all (default 200, so that a third page exists: with
   100 the second page is the last). ANALYZE.
3. One user, owner of that tenant; an access token from the real `POST /api/v1/auth/login`.
4. N `appliance api --fd F` processes sharing one listening socket (as the supervisor runs them), access log
   on (the default; stderr to a file), multiprocess metrics, the app role's URL, the default pool size, rate
   limits raised so that they never refuse. --limiter both (default) runs a second set of processes whose
   limiter is a throwaway redis-server (rate_limits.url), so that its round trip is measured too.
5. After a warm-up, alternating rounds (for each server set: /health/live, the first page, the third page):
   `GET /api/v1/projects?limit=50` and the page two next_cursors further in, with `Authorization: Bearer`.
   Reports req/s, p50, p99, the ratio to /health/live of the same processes in the same round (goal:
   >= 0.15), and the CPU time per request of the API processes and of PostgreSQL (from /proc), which says
   where the time goes and holds up better than req/s on a machine shared with other work.
6. Per request on the hot path, from one more wrk run per server set on the first page: transactions
   (pg_stat_database xact_commit + xact_rollback), statements by the app role (pg_stat_statements), and
   seq_scan + idx_scan deltas per table (pg_stat_user_tables) -- users, refresh_tokens and api_keys should
   not be read per request, tenants at most every 5 s per tenant per process. Statistics reach those views
   when a backend flushes them (up to 10 s after it goes idle), so the counters are read after a pause.

--route me benches `GET /api/v1/auth/me` instead (the same authentication path, more queries): for trying
the script before the list route exists. Exit status 0 unless something fails to start or answers wrongly
(then a clear error and status 2).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from tests.bench.bench_api import (  # noqa: E402 -- run as a script: make `tests` importable first
    APPLIANCE,
    PATH,
    BenchError,
    ProcessGroup,
    WrkResult,
    clean_env,
    listening_socket,
    median,
    parse_wrk,
    run_checked,
    tail,
    wait_http,
)
from tests.servers import PostgresServer, RedisServer, ServerUnavailable  # noqa: E402

GOAL_RATIO = 0.15
DATABASE = "forge"
APP_ROLE = "forge_app"
APP_PASSWORD = "bench-app-password"
OWNER_EMAIL = "owner@bench.example"
OWNER_PASSWORD = "bench-owner-password-1"
OWNER_SLUG = "tenant-0001"
PAGE = 50
PROJECTS = f"/api/v1/projects?limit={PAGE}"
ME = "/api/v1/auth/me"
#: Tables whose per-request reads the hot path must not (or only rarely) do.
WATCHED_TABLES = ("users", "refresh_tokens", "api_keys", "tenants", "memberships", "roles", "projects")
#: PostgreSQL 15 flushes a backend's statistics at most every second, and an idle backend's after 10 s.
STATS_FLUSH_S = 11.5


# -- PostgreSQL ---------------------------------------------------------------------------------------------


def start_postgres() -> tuple[PostgresServer, bool]:
    """The cluster, and whether pg_stat_statements is loaded."""
    probe = PostgresServer()
    lib = probe.bindir.parent / "lib" / "pg_stat_statements.so"
    statements = lib.exists()
    settings = {"shared_preload_libraries": "pg_stat_statements"} if statements else {}
    pg = PostgresServer(auth="scram-sha-256", settings=settings)
    try:
        pg.start()
    except ServerUnavailable as exc:
        pg.close()
        raise BenchError(f"PostgreSQL did not start: {exc}") from exc
    return pg, statements


def prepare_database(pg: PostgresServer, work: Path, statements: bool) -> dict[str, str]:
    """Database, app role, `appliance init` + `appliance migrate`; returns the API's base environment."""
    pg.create_database(DATABASE)
    pg.create_role(APP_ROLE, APP_PASSWORD)  # LOGIN NOSUPERUSER NOBYPASSRLS
    if statements:
        pg.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements", database=DATABASE)
    app_url = pg.url(DATABASE, user=APP_ROLE, password=APP_PASSWORD)
    env: dict[str, str] = clean_env(APPLIANCE_DATA_DIR=str(work / "data"), APPLIANCE_DATABASE__URL=app_url)
    run_checked([APPLIANCE, "init"], env, "appliance init")
    run_checked(
        [APPLIANCE, "migrate"],
        dict(env, APPLIANCE_DATABASE__MIGRATIONS_URL=pg.url(DATABASE)),
        "appliance migrate",
    )
    bypass = pg.execute("SELECT rolbypassrls, rolsuper FROM pg_roles WHERE rolname = %s", (APP_ROLE,))
    if bypass != [(False, False)]:
        raise BenchError(f"the app role {APP_ROLE} must have neither BYPASSRLS nor SUPERUSER: {bypass}")
    return env


SEED_TENANTS = """
INSERT INTO tenants (id, slug, name, plan, status, created_at, updated_at)
SELECT gen_random_uuid(), 'tenant-' || lpad(i::text, 4, '0'), 'Tenant ' || i, 'enterprise', 'active',
       now() - interval '2 years' + i * interval '1 hour', now() - interval '2 years' + i * interval '1 hour'
FROM generate_series(1, %(tenants)s::int) AS i
"""
SEED_ORGANIZATIONS = """
INSERT INTO organizations (id, tenant_id, parent_id, name, slug, created_at, updated_at)
SELECT gen_random_uuid(), t.id, NULL, 'Headquarters', 'hq', t.created_at, t.created_at FROM tenants t
"""
# Per tenant, projects numbered n in [first, last]; created_at spread over the past year, a few minutes of
# jitter so that the keyset is not in insertion order.
SEED_PROJECTS = """
INSERT INTO projects (id, tenant_id, organization_id, name, description, created_by, created_at, updated_at)
SELECT gen_random_uuid(), o.tenant_id, o.id, 'project-' || lpad(n::text, 5, '0'),
       'Seeded project ' || n || ' of ' || t.slug || ': a description of typical length for a list page.',
       NULL, p.at, p.at
FROM organizations o
JOIN tenants t ON t.id = o.tenant_id
CROSS JOIN generate_series(%(first)s::int, %(last)s::int) AS n
CROSS JOIN LATERAL (
    SELECT now() - interval '365 days' * (1 - n::float8 / (%(last)s::int + 1))
           + random() * interval '10 minutes'
) AS p(at)
WHERE %(slug)s::text IS NULL OR t.slug = %(slug)s::text
"""
SEED_OWNER = """
WITH u AS (
    INSERT INTO users (id, email, display_name, password_hash, is_operator, is_active, must_change_password,
                       created_at, updated_at)
    VALUES (gen_random_uuid(), %(email)s, 'Bench Owner', %(hash)s, false, true, false, now(), now())
    RETURNING id
)
INSERT INTO memberships (id, tenant_id, user_id, role, created_at)
SELECT gen_random_uuid(), t.id, u.id, 'owner', now() FROM u, tenants t WHERE t.slug = %(slug)s
"""


def seed(pg: PostgresServer, tenants: int, per_tenant: int, owner_projects: int) -> tuple[int, float]:
    """Tenants, organizations, projects and the owner, as the superuser; returns (projects, seconds)."""
    from appliance.services.identity.passwords import hash_password

    began = time.perf_counter()
    with pg.connect(DATABASE, autocommit=False) as conn, conn.cursor() as cur:
        cur.execute(SEED_TENANTS, {"tenants": tenants})
        cur.execute(SEED_ORGANIZATIONS)
        cur.execute(SEED_PROJECTS, {"first": 1, "last": per_tenant, "slug": None})
        if owner_projects > per_tenant:
            cur.execute(SEED_PROJECTS, {"first": per_tenant + 1, "last": owner_projects, "slug": OWNER_SLUG})
        cur.execute(SEED_OWNER, {"email": OWNER_EMAIL, "hash": hash_password(OWNER_PASSWORD),
                                 "slug": OWNER_SLUG})  # fmt: skip
        cur.execute("SELECT count(*) FROM projects")
        row = cur.fetchone()
        conn.commit()
    pg.execute("ANALYZE", database=DATABASE)
    assert row is not None
    return int(row[0]), time.perf_counter() - began


# -- counters -----------------------------------------------------------------------------------------------


@dataclass
class Counters:
    transactions: int
    scans: dict[str, tuple[int, int]]  # table -> (seq_scan, idx_scan)
    statements: dict[str, int]  # normalized query text -> calls, by the app role only


def read_counters(pg: PostgresServer, statements: bool) -> Counters:
    with pg.connect(DATABASE) as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = %s", (DATABASE,)
        )
        row = cur.fetchone()
        assert row is not None
        cur.execute("SELECT relname, coalesce(seq_scan, 0), coalesce(idx_scan, 0) FROM pg_stat_user_tables")
        scans = {str(name): (int(seq), int(idx)) for name, seq, idx in cur.fetchall()}
        calls: dict[str, int] = {}
        if statements:
            cur.execute(
                "SELECT s.query, s.calls FROM pg_stat_statements s JOIN pg_roles r ON r.oid = s.userid "
                "JOIN pg_database d ON d.oid = s.dbid WHERE r.rolname = %s AND d.datname = %s",
                (APP_ROLE, DATABASE),
            )
            for query, n in cur.fetchall():
                text = " ".join(str(query).split())
                calls[text] = calls.get(text, 0) + int(n)
    return Counters(int(row[0]), scans, calls)


@dataclass
class QueryCount:
    server: str
    requests: int  # served in the window: access log lines (wrk does not count the ones in flight at its end)
    wrk_requests: int
    transactions: int
    scans: dict[str, tuple[int, int]]  # table -> (seq_scan, idx_scan) in the window
    statements: dict[str, int]

    def per_request(self, n: int) -> float:
        return n / self.requests if self.requests else float("nan")


def count_queries(
    pg: PostgresServer, statements: bool, server: Servers, url: str, headers: Sequence[str],
    args: argparse.Namespace,
) -> QueryCount:  # fmt: skip
    """One wrk run on ``url`` between two readings of the statistics, each after the backends flushed.

    The superuser's own readings add one transaction each to pg_stat_database (subtracted below). The
    requests served are counted in the access log, which every process appends to."""
    time.sleep(STATS_FLUSH_S)
    before = read_counters(pg, statements)
    offset = server.log.stat().st_size
    result = wrk_run(url, args.duration, args.connections, args.threads, headers)
    time.sleep(STATS_FLUSH_S)
    after = read_counters(pg, statements)
    with server.log.open("rb") as log:
        log.seek(offset)
        served = sum(1 for line in log if b'"logger":"appliance.access"' in line)
    stmts = {q: after.statements.get(q, 0) - before.statements.get(q, 0) for q in after.statements}
    return QueryCount(
        server=server.name,
        requests=served,
        wrk_requests=result.requests,
        transactions=after.transactions - before.transactions - 1,
        scans={t: _delta(before.scans.get(t, (0, 0)), after.scans.get(t, (0, 0))) for t in WATCHED_TABLES},
        statements={q: n for q, n in stmts.items() if n > 0},
    )


def _delta(before: tuple[int, int], after: tuple[int, int]) -> tuple[int, int]:
    return after[0] - before[0], after[1] - before[1]


# -- HTTP ---------------------------------------------------------------------------------------------------


@dataclass
class Reply:
    status: int
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def call(
    port: int, method: str, path: str, *, token: str | None = None, body: Any = None, timeout: float = 10.0
) -> Reply:
    headers = {"Accept": "application/json"}
    payload = None
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    if body is not None:
        payload = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=payload, headers=headers)
        resp = conn.getresponse()
        return Reply(resp.status, resp.read())
    finally:
        conn.close()


def login(port: int) -> str:
    reply = call(port, "POST", "/api/v1/auth/login",
                 body={"email": OWNER_EMAIL, "password": OWNER_PASSWORD, "tenant": OWNER_SLUG})  # fmt: skip
    if reply.status != 200:
        raise BenchError(f"POST /api/v1/auth/login answered {reply.status}: {reply.body[:400]!r}")
    token = reply.json().get("access_token")
    if not isinstance(token, str) or not token:
        raise BenchError(f"POST /api/v1/auth/login gave no access_token: {reply.body[:400]!r}")
    return token


def check_page(port: int, token: str, path: str, what: str) -> str:
    """GET ``path`` must answer 200 with a full page; returns its next_cursor."""
    reply = call(port, "GET", path, token=token)
    if reply.status in (404, 405) and path.startswith("/api/v1/projects"):
        raise BenchError(
            f"GET {path} answered {reply.status}: the list route is not there yet "
            f"(--route me benches /api/v1/auth/me, the same authentication path)"
        )
    if reply.status != 200:
        raise BenchError(f"{what}: GET {path} answered {reply.status}: {reply.body[:400]!r}")
    data = reply.json()
    items = data.get("items") if isinstance(data, dict) else None
    if not isinstance(items, list) or len(items) != PAGE:
        count = len(items) if isinstance(items, list) else "no"
        raise BenchError(f"{what}: GET {path} returned {count} items, expected {PAGE}: {reply.body[:300]!r}")
    cursor = data.get("next_cursor")
    if not isinstance(cursor, str) or not cursor:
        raise BenchError(f"{what}: GET {path} returned a full page without a next_cursor")
    return cursor


def bench_paths(port: int, token: str, route: str) -> list[tuple[str, str]]:
    """(label, path) of the routes to measure, each checked once."""
    if route == "me":
        reply = call(port, "GET", ME, token=token)
        if reply.status != 200 or "permissions" not in reply.json():
            raise BenchError(f"GET {ME} answered {reply.status}: {reply.body[:400]!r}")
        return [(f"GET {ME}", ME)]
    path = PROJECTS
    for page in (1, 2):  # follow next_cursor twice
        cursor = check_page(port, token, path, f"page {page}")
        path = f"{PROJECTS}&cursor={urllib.parse.quote(cursor, safe='')}"
    check_page(port, token, path, "page 3")
    return [(f"GET {PROJECTS}", PROJECTS), ("same, page 3 (cursor)", path)]


def wrk_run(url: str, duration: float, connections: int, threads: int, headers: Sequence[str]) -> WrkResult:
    """bench_api.wrk with request headers (-H)."""
    argv = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration:g}s", "--latency"]
    for header in headers:
        argv += ["-H", header]
    done = subprocess.run([*argv, url], capture_output=True, text=True, timeout=duration + 60, check=False)
    if done.returncode != 0:
        raise BenchError(f"wrk failed ({done.returncode}): {done.stderr or done.stdout}")
    return parse_wrk(done.stdout)


# -- CPU accounting -----------------------------------------------------------------------------------------

_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pids: Sequence[int]) -> float:
    """User + system CPU time of ``pids`` so far (a process that is gone counts 0)."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / _CLOCK_TICKS


def postgres_pids(pg: PostgresServer) -> list[int]:
    """The postmaster (first line of postmaster.pid) and its children: backends, walwriter, ..."""
    postmaster = int((pg.data_dir / "postmaster.pid").read_text().split()[0])
    pids = [postmaster]
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == postmaster:
            pids.append(int(entry.name))
    return pids


def measure(pg: PostgresServer, server: Servers, target: Target, args: argparse.Namespace) -> WrkResult:
    """One wrk run on ``target``, with the CPU time the API processes and PostgreSQL spent meanwhile."""
    api = [proc.pid for proc in server.group.procs]
    db = postgres_pids(pg)  # backends are opened before (warm-up): the pool never grows past its size
    api_before, db_before = cpu_seconds(api), cpu_seconds(db)
    result = wrk_run(f"http://127.0.0.1:{server.port}{target.path}", args.duration, args.connections,
                     args.threads, target.headers)  # fmt: skip
    api_after, db_after = cpu_seconds(api), cpu_seconds(postgres_pids(pg))
    target.results.append(result)
    target.api_cpu_ms.append(1000 * (api_after - api_before) / max(result.requests, 1))
    target.pg_cpu_ms.append(1000 * (db_after - db_before) / max(result.requests, 1))
    return result


# -- servers ------------------------------------------------------------------------------------------------


@dataclass
class Target:
    label: str
    path: str
    headers: list[str]
    results: list[WrkResult] = field(default_factory=list)
    api_cpu_ms: list[float] = field(default_factory=list)  # per request, all API processes of the set
    pg_cpu_ms: list[float] = field(default_factory=list)  # per request, every PostgreSQL process


@dataclass
class Servers:
    name: str
    port: int
    group: ProcessGroup
    log: Path
    targets: list[Target] = field(default_factory=list)


def start_api(
    work: Path, base_env: dict[str, str], processes: int, name: str, redis_url: str | None
) -> Servers:
    tag = "redis" if redis_url else "local"
    metrics_dir = work / f"metrics-{tag}"
    metrics_dir.mkdir()
    env = dict(
        base_env,
        PROMETHEUS_MULTIPROC_DIR=str(metrics_dir),
        APPLIANCE_LOGGING__ACCESS_LOG="true",
        APPLIANCE_RATE_LIMITS__ENTERPRISE="100000000",
        APPLIANCE_RATE_LIMITS__PER_IP="100000000",
        # The token must outlive the run (the default 15 minutes may not); verification costs the same.
        APPLIANCE_SECURITY__ACCESS_TOKEN_TTL="7200",
    )
    if redis_url:
        env["APPLIANCE_RATE_LIMITS__URL"] = redis_url
    log = work / f"api-{tag}.log"
    sock = listening_socket()
    port = int(sock.getsockname()[1])
    env["APPLIANCE_API__PORT"] = str(port)
    group = ProcessGroup()
    try:
        for _ in range(processes):
            group.spawn([APPLIANCE, "api", "--fd", str(sock.fileno())], env=env, stderr=log,
                        pass_fds=[sock.fileno()], cwd=work)  # fmt: skip
    finally:
        sock.close()  # the children hold it now
    answer = wait_http(port, PATH, group, name, log)
    if answer.status != 200:
        raise BenchError(f"{name} answered {answer.status} on {PATH}: {answer.body[:300]!r}{tail(log)}")
    return Servers(name, port, group, log)


def warm(server: Servers, token: str, paths: Sequence[tuple[str, str]], processes: int) -> None:
    """Sequential requests spread over every process's accept loop (each must be up before measuring)."""
    for _ in range(100 * processes):
        call(server.port, "GET", PATH)
        for _label, path in paths:
            reply = call(server.port, "GET", path, token=token)
            if reply.status != 200:
                raise BenchError(f"{server.name}: GET {path} answered {reply.status} while warming up")
    time.sleep(0.5)
    server.group.check_alive(server.name, server.log)


# -- report -------------------------------------------------------------------------------------------------


def table(servers: Sequence[Servers], args: argparse.Namespace) -> str:
    lines = [
        f"wrk -t{args.threads} -c{args.connections} -d{args.duration:g}s --latency, {args.rounds} "
        f"alternating rounds, medians (the ratio: of the per-round ratios); {args.processes} API processes "
        f"per server set; {os.cpu_count()} CPUs; CPU time from /proc over each run, per request wrk counted",
        "",
        f"| limiter | route | req/s | p50 ms | p99 ms | ratio to {PATH} | per-round ratios "
        f"| goal >= {GOAL_RATIO:g} | errors | API CPU ms / request | PostgreSQL CPU ms / request |",
        "|---|---|---:|---:|---:|---:|---|---|---:|---:|---:|",
    ]
    for server in servers:
        base = server.targets[0]
        for target in server.targets:
            rps = median([r.rps for r in target.results])
            p50 = median([r.p50_ms for r in target.results])
            p99 = median([r.p99_ms for r in target.results])
            errors = sum(r.errors for r in target.results)
            if target is base:
                ratio, per_round, verdict = "1.00", "", ""
            else:
                rounds = [a.rps / b.rps for a, b in zip(target.results, base.results, strict=True)]
                value = median(rounds)
                ratio = f"{value:.3f}"
                per_round = " ".join(f"{r:.3f}" for r in rounds)
                verdict = "ok" if value >= GOAL_RATIO else "**below**"
            api, db = median(target.api_cpu_ms), median(target.pg_cpu_ms)
            lines.append(f"| {server.name} | {target.label} | {rps:,.0f} | {p50:.2f} | {p99:.2f} | {ratio} "
                         f"| {per_round} | {verdict} | {errors} | {api:.2f} | {db:.2f} |")  # fmt: skip
    return "\n".join(lines)


def query_table(counts: Sequence[QueryCount], statements: bool, args: argparse.Namespace) -> str:
    lines = [
        "Per request of the first page, one more wrk run per server set between two readings of the "
        "PostgreSQL statistics (all app-role traffic in the window, periodic refreshes included)",
        "",
        "| limiter | requests served (wrk counted) | transactions / request | statements / request | "
        + " | ".join(f"{t} seq+idx scans" for t in WATCHED_TABLES)
        + " |",
        "|---|---:|---:|---:|" + "---:|" * len(WATCHED_TABLES),
    ]
    for c in counts:
        stmts = f"{c.per_request(sum(c.statements.values())):.3f}" if statements else "n/a"
        scans = " | ".join(f"{c.scans[t][0]}+{c.scans[t][1]}" for t in WATCHED_TABLES)
        lines.append(f"| {c.server} | {c.requests:,} ({c.wrk_requests:,}) "
                     f"| {c.per_request(c.transactions):.3f} | {stmts} | {scans} |")  # fmt: skip
    # One tenant signed in: a 5 s cache per process reads it at most once per 5 s of traffic per process.
    bound = args.processes * (int(args.duration // 5) + 1)
    lines += ["", "Expected from the caches: users 0, api_keys 0 (bearer tokens), refresh_tokens one "
              f"revocation sync per 5 s per process, tenants at most {bound} ({args.processes} processes x "
              f"{args.duration:g} s / 5 s, plus one): "
              + "; ".join(f"{c.server}: tenants {sum(c.scans['tenants'])}, refresh_tokens "
                          f"{sum(c.scans['refresh_tokens'])}, users {sum(c.scans['users'])}" for c in counts)
              + "."]  # fmt: skip
    if statements:
        for c in counts:
            lines += ["", f"Statements by the app role ({c.server}), calls in the window:", ""]
            for query, n in sorted(c.statements.items(), key=lambda kv: -kv[1])[:8]:
                short = query if len(query) <= 160 else query[:157] + "..."
                lines.append(f"* {n:,} ({c.per_request(n):.3f}/request): `{short}`")
    return "\n".join(lines)


# -- main ---------------------------------------------------------------------------------------------------


def run(args: argparse.Namespace, work: Path) -> list[str]:
    groups: list[ProcessGroup] = []
    pg, statements = start_postgres()
    redis_server: RedisServer | None = None
    try:
        base_env = prepare_database(pg, work, statements)
        total, took = seed(pg, args.tenants, args.projects_per_tenant, args.owner_projects)
        print(f"seeded {args.tenants:,} tenants, {total:,} projects in {took:.1f} s", flush=True)
        limiters = ["local", "redis"] if args.limiter == "both" else [args.limiter]
        servers: list[Servers] = []
        for limiter in limiters:
            redis_url = None
            if limiter == "redis":
                redis_server = RedisServer()
                try:
                    redis_server.start()
                except ServerUnavailable as exc:
                    raise BenchError(f"redis-server did not start: {exc}") from exc
                redis_url = redis_server.url
            name = "in-process" if limiter == "local" else "Redis"
            servers.append(start_api(work, base_env, args.processes, name, redis_url))
            groups.append(servers[-1].group)
        token = login(servers[0].port)
        paths = bench_paths(servers[0].port, token, args.route)
        auth = [f"Authorization: Bearer {token}"]
        for server in servers:
            warm(server, token, paths, args.processes)
            server.targets = [Target(f"GET {PATH}", PATH, [])]
            server.targets += [Target(label, path, auth) for label, path in paths]
            for target in server.targets:  # warm-up, not counted
                wrk_run(f"http://127.0.0.1:{server.port}{target.path}", args.warmup, args.connections,
                        args.threads, target.headers)  # fmt: skip
        for rnd in range(args.rounds):
            for server in servers:
                for target in server.targets:
                    server.group.check_alive(server.name, server.log)
                    result = measure(pg, server, target, args)
                    label = f"[round {rnd + 1}/{args.rounds}] {server.name:<10} {target.label[:40]:<40}"
                    errors = f"  ERRORS {result.errors}" if result.errors else ""
                    print(f"  {label} {result.rps:>9,.0f} req/s  p50 {result.p50_ms:6.2f} ms"
                          f"  p99 {result.p99_ms:6.2f} ms{errors}", flush=True)  # fmt: skip
        counts = []
        for server in servers:
            print(f"counting queries per request ({server.name})...", flush=True)
            target = server.targets[1]
            url = f"http://127.0.0.1:{server.port}{target.path}"
            counts.append(count_queries(pg, statements, server, url, target.headers, args))
        sizes = ", ".join(f"{s.log.name} {s.log.stat().st_size / 1e6:.1f} MB" for s in servers)
        return [
            f"Data: {args.tenants:,} tenants (enterprise), {total:,} projects; signed in as the owner of "
            f"{OWNER_SLUG} ({args.owner_projects} projects); PostgreSQL 15 (fsync off), app role without "
            f"BYPASSRLS; access log on (stderr to file)",
            table(servers, args),
            query_table(counts, statements, args),
            f"API stderr written: {sizes}",
        ]
    finally:
        for group in groups:
            group.stop()
        if redis_server is not None:
            redis_server.close()
        pg.close()


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=float, default=10, help="seconds per wrk run (default 10)")
    parser.add_argument("--connections", type=int, default=64, help="wrk -c (default 64)")
    parser.add_argument("--threads", type=int, default=2, help="wrk -t (default 2)")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds (default 3)")
    parser.add_argument("--warmup", type=float, default=3, help="seconds of wrk per route before measuring")
    parser.add_argument("--processes", type=int, default=2, help="API processes per server set (default 2)")
    parser.add_argument(
        "--limiter",
        choices=("both", "local", "redis"),
        default="both",
        help="rate limiter: in-process, a throwaway Redis, or both server sets (default both)",
    )
    parser.add_argument(
        "--route",
        choices=("projects", "me"),
        default="projects",
        help="projects: GET /api/v1/projects (first and third page); me: GET /api/v1/auth/me",
    )
    parser.add_argument("--tenants", type=int, default=1000, help="tenants to seed (default 1000)")
    parser.add_argument("--projects-per-tenant", type=int, default=100, help="projects each (default 100)")
    parser.add_argument(
        "--owner-projects",
        type=int,
        default=200,
        help="projects of the signed-in tenant, in all (default 200: page 3 exists)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (logs) and print its path")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("bench_projects: wrk is not installed (apt-get install wrk)", file=sys.stderr)
        return 2
    if args.route == "projects" and args.owner_projects < 3 * PAGE:
        print(f"bench_projects: --owner-projects must be at least {3 * PAGE} (page 3)", file=sys.stderr)
        return 2

    work = Path(tempfile.mkdtemp(prefix="bench-projects-"))
    try:
        sections = run(args, work)
    except BenchError as exc:
        print(f"bench_projects: error: {exc}", file=sys.stderr)
        return 2
    finally:
        if args.keep:
            print(f"(temp dir kept: {work})")
        else:
            shutil.rmtree(work, ignore_errors=True)
    print()
    print("\n\n".join(sections))
    return 0


if __name__ == "__main__":
    sys.exit(main())
