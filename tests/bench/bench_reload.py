"""Benchmark: `appliance reload api` under reads and writes, twice back to back, on PostgreSQL and Redis.

Run: .venv/bin/python tests/bench/bench_reload.py [--instances 2] [--rounds 3] [--duration 45]
                                                  [--connections 8] [--writes-per-s 20] [--path PATH]

1. A throwaway PostgreSQL (scram-sha-256, an app role without BYPASSRLS; tests/servers.py) and Redis; the
   appliance initialised and migrated as in production (mode production, database.url = the app role,
   database.migrations_url = the owner, queue.url = Redis), one tenant with an organization and an owner
   (tests/bench/bench_projects.py seeds them), and an access token from the real `POST /auth/login`.
2. The appliance started the real way (`appliance up`, `api.instances` API processes behind the
   supervisor's shared socket, the worker too), with the shipped services file.
3. Each round: a baseline of `--baseline` seconds (wrk and writes, no reload), then the same load for
   `--duration` seconds during which `appliance reload api` is asked, and again 1 s later while the first
   runs (the second must wait for the first, then replace every process again). The load is wrk on
   `--connections` keep-alive connections on `--path` (an authenticated page of projects by default) and,
   besides, `--writes-per-s` `POST /api/v1/projects` by the owner, each on a new connection, each with a
   name of its own.
4. Reported per round: wrk's failed requests (socket errors and non-2xx), the failed POSTs and how many of
   them created their project anyway (read in the database afterwards: the goal is 0 failed, and a failed
   POST must never have created anything), the POSTs answered 201 whose project is missing (must be 0),
   how long each reload took and what the second one said, and how many processes the supervisor had to
   SIGKILL (its log). The throughput during the reloads is a ratio to the baseline of the same round.

Exit status 0 when every goal is met, 1 when one is not, 2 when something did not start.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from tests.bench.bench_api import APPLIANCE, BenchError, free_port  # noqa: E402 -- run as a script
from tests.bench.bench_projects import (  # noqa: E402
    APP_ROLE,
    DATABASE,
    OWNER_SLUG,
    call,
    login,
    prepare_database,
    seed,
)
from tests.servers import PostgresServer, RedisServer, ServerUnavailable  # noqa: E402

PROJECTS = "/api/v1/projects"


@dataclass
class Wrk:
    requests_per_s: float
    requests: int
    socket_errors: int
    non_2xx: int

    @property
    def failed(self) -> int:
        return self.socket_errors + self.non_2xx


def wrk(url: str, duration: float, connections: int, token: str) -> Wrk:
    out = subprocess.run(
        [
            "wrk",
            "-t2",
            f"-c{connections}",
            f"-d{int(duration)}s",
            "-H",
            f"Authorization: Bearer {token}",
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=duration + 120,
    ).stdout
    rate = re.search(r"Requests/sec:\s+([\d.]+)", out)
    total = re.search(r"(\d+) requests in", out)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if rate is None or total is None:
        raise BenchError(f"unexpected wrk output:\n{out}")
    return Wrk(
        requests_per_s=float(rate.group(1)),
        requests=int(total.group(1)),
        socket_errors=sum(int(n) for n in errors.groups()) if errors else 0,
        non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
    )


@dataclass
class Writes:
    """POSTs at a steady rate, each on its own connection, in a pool so that a slow answer delays none."""

    port: int
    token: str
    organization: str
    per_s: float
    prefix: str
    created: list[str] = field(default_factory=list)  # answered 201
    failed: dict[str, str] = field(default_factory=dict)  # name -> what happened

    def run(self, seconds: float) -> None:
        lock = threading.Lock()

        def post(name: str) -> None:
            body = {"name": name, "organization_id": self.organization}
            try:
                reply = call(self.port, "POST", PROJECTS, token=self.token, body=body, timeout=60)
            except OSError as exc:
                outcome = f"{type(exc).__name__}: {exc}"
            else:
                outcome = "" if reply.status == 201 else f"HTTP {reply.status} {reply.body[:120]!r}"
            with lock:
                if outcome:
                    self.failed[name] = outcome
                else:
                    self.created.append(name)

        began = time.monotonic()
        with concurrent.futures.ThreadPoolExecutor(max_workers=32) as pool:
            for i in range(int(seconds * self.per_s)):
                time.sleep(max(0.0, began + i / self.per_s - time.monotonic()))
                pool.submit(post, f"{self.prefix}-{i:05d}")


@dataclass
class Reloads:
    """`appliance reload api` after `delay` seconds, and again 1 s later while the first one runs."""

    env: dict[str, str]
    delay: float
    took: list[float] = field(default_factory=list)
    said: list[str] = field(default_factory=list)

    def run(self) -> None:
        time.sleep(self.delay)
        argv = [APPLIANCE, "reload", "api"]
        began = time.monotonic()
        first = subprocess.Popen(
            argv, env=self.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        ended: list[float] = []

        def wait_first() -> None:
            first.wait()
            ended.append(time.monotonic())

        waiter = threading.Thread(target=wait_first)
        waiter.start()
        time.sleep(1.0)  # the first one is under way: its first new process is starting
        second = subprocess.run(argv, env=self.env, capture_output=True, text=True, timeout=900, check=False)
        second_took = time.monotonic() - began - 1.0
        waiter.join()
        assert first.stdout is not None
        self.took = [ended[0] - began, second_took]
        self.said = [first.stdout.read().strip(), (second.stdout + second.stderr).strip()]
        first.stdout.close()


@dataclass
class Round:
    number: int
    baseline: Wrk
    during: Wrk
    base_writes: Writes  # POSTs during the baseline
    writes: Writes  # POSTs during the reloads
    reloads: Reloads
    created_anyway: list[str]
    lost: list[str]
    kills: int

    @property
    def posts_failed(self) -> dict[str, str]:
        return {**self.base_writes.failed, **self.writes.failed}


def names_in_database(pg: PostgresServer, names: list[str]) -> set[str]:
    if not names:
        return set()
    rows = pg.execute("SELECT name FROM projects WHERE name = ANY(%s)", (names,), database=DATABASE)
    return {str(row[0]) for row in rows}


def run_round(
    number: int, args: argparse.Namespace, env: dict[str, str], pg: PostgresServer, token: str, org: str
) -> Round:
    port = int(env["APPLIANCE_API__PORT"])
    url = f"http://127.0.0.1:{port}{args.path}"
    supervisor_log = Path(env["APPLIANCE_DATA_DIR"]) / "logs" / "supervisor.log"

    base_writes = Writes(port, token, org, args.writes_per_s, f"bench-r{number}-base")  # no reload
    writer = threading.Thread(target=base_writes.run, args=(args.baseline,))
    writer.start()
    baseline = wrk(url, args.baseline, args.connections, token)
    writer.join()

    offset = supervisor_log.stat().st_size
    writes = Writes(port, token, org, args.writes_per_s, f"bench-r{number}")
    writer = threading.Thread(target=writes.run, args=(args.duration,))
    reloads = Reloads(env, args.duration / 5)
    reloader = threading.Thread(target=reloads.run)
    writer.start()
    reloader.start()
    during = wrk(url, args.duration, args.connections, token)
    writer.join()
    reloader.join()
    with supervisor_log.open("rb") as log:
        log.seek(offset)
        kills = sum(1 for line in log if b"SIGKILL" in line)
    failed = [*base_writes.failed, *writes.failed]
    created_anyway = sorted(names_in_database(pg, failed))
    answered = base_writes.created + writes.created
    lost = sorted(set(answered) - names_in_database(pg, answered))
    return Round(number, baseline, during, base_writes, writes, reloads, created_anyway, lost, kills)


def start_servers(work: Path) -> tuple[PostgresServer, RedisServer]:
    pg = PostgresServer(auth="scram-sha-256")
    redis = RedisServer()
    try:
        pg.start()
        redis.start()
    except ServerUnavailable as exc:
        pg.close()
        redis.close()
        raise BenchError(f"a server did not start: {exc}") from exc
    return pg, redis


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--instances", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=45.0, help="seconds of load around the reloads")
    parser.add_argument("--baseline", type=float, default=15.0, help="seconds of load without a reload")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--writes-per-s", type=float, default=20.0)
    parser.add_argument("--path", default=f"{PROJECTS}?limit=50", help="what wrk reads (authenticated)")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (./install.sh --test installs it)")

    work = Path(tempfile.mkdtemp(prefix="fa-reload-", dir="/tmp"))  # short: the control socket's path
    pg, redis = start_servers(work)
    env: dict[str, str] = {}
    rounds: list[Round] = []
    try:
        env = prepare_database(pg, work, statements=False)
        seed(pg, tenants=1, per_tenant=60, owner_projects=60)
        env |= {
            "APPLIANCE_MODE": "production",
            "APPLIANCE_QUEUE__URL": redis.url,
            "APPLIANCE_API__PORT": str(free_port()),
            "APPLIANCE_API__INSTANCES": str(args.instances),
            "APPLIANCE_RATE_LIMITS__ENTERPRISE": "100000000",
            "APPLIANCE_RATE_LIMITS__PER_IP": "100000000",
            "APPLIANCE_SECURITY__ACCESS_TOKEN_TTL": "7200",
        }
        started = subprocess.run([APPLIANCE, "up"], env=env, capture_output=True, text=True, timeout=300)
        if started.returncode != 0:
            raise BenchError(f"appliance up failed:\n{started.stdout}{started.stderr}")
        port = int(env["APPLIANCE_API__PORT"])
        token = login(port)
        (org,) = pg.execute(
            "SELECT o.id FROM organizations o JOIN tenants t ON t.id = o.tenant_id WHERE t.slug = %s",
            (OWNER_SLUG,),
            database=DATABASE,
        )
        organization = str(org[0])
        if call(port, "GET", args.path, token=token).status != 200:
            raise BenchError(f"GET {args.path} does not answer 200 to the owner")
        wrk(f"http://127.0.0.1:{port}{args.path}", 5, args.connections, token)  # warm-up
        for number in range(1, args.rounds + 1):
            result = run_round(number, args, env, pg, token, organization)
            rounds.append(result)
            print(summary(result), flush=True)
    except BenchError as exc:
        print(f"bench_reload: {exc}", file=sys.stderr)
        return 2
    finally:
        if env:
            subprocess.run([APPLIANCE, "down"], env=env, capture_output=True, timeout=300, check=False)
        redis.close()
        pg.close()
        shutil.rmtree(work, ignore_errors=True)
    print(report(rounds, args))
    met = all(
        r.during.failed == 0 and r.baseline.failed == 0 and not r.posts_failed and not r.created_anyway
        and not r.lost and r.kills == 0 and "waited for it" in r.reloads.said[1]
        for r in rounds
    )  # fmt: skip
    return 0 if met else 1


def summary(r: Round) -> str:
    return (
        f"round {r.number}: wrk {r.during.requests_per_s:,.0f} req/s during the reloads "
        f"({r.during.requests_per_s / r.baseline.requests_per_s:.2f} of baseline), wrk failed "
        f"{r.during.failed} (baseline {r.baseline.failed}), POSTs {len(r.writes.created)} created / "
        f"{len(r.writes.failed)} failed during the reloads ({len(r.base_writes.created)} / "
        f"{len(r.base_writes.failed)} in the baseline; {len(r.created_anyway)} failed ones created anyway), "
        f"lost {len(r.lost)}, SIGKILLs {r.kills}, reloads took "
        f"{', '.join(f'{t:.1f}' for t in r.reloads.took)} s"
        + "".join(f"\n  failed POST {name}: {why}" for name, why in list(r.posts_failed.items())[:5])
        + "".join(f"\n  reload {i + 1} said: {said}" for i, said in enumerate(r.reloads.said))
    )


def report(rounds: list[Round], args: argparse.Namespace) -> str:
    lines = [
        "",
        f"`appliance reload api` twice back to back (the second asked 1 s after the first) under wrk -t2 "
        f"-c{args.connections} on `{args.path}` (owner's token) plus {args.writes_per_s:g} POST "
        f"{PROJECTS}/s, {args.instances} API processes, production mode (PostgreSQL, app role "
        f"{APP_ROLE}; Redis), {len(rounds)} rounds of {args.baseline:g} s baseline + {args.duration:g} s",
        "",
        "| round | baseline req/s | during reloads req/s | ratio | wrk failed (reloads / baseline) "
        "| POSTs 201 (reloads / baseline) | POSTs failed (reloads / baseline) | failed but created "
        "| 201 but missing | SIGKILLs | reloads took s |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rounds:
        ratio = r.during.requests_per_s / r.baseline.requests_per_s
        lines.append(
            f"| {r.number} | {r.baseline.requests_per_s:,.0f} | {r.during.requests_per_s:,.0f} | {ratio:.2f} "
            f"| {r.during.failed} / {r.baseline.failed} "
            f"| {len(r.writes.created)} / {len(r.base_writes.created)} "
            f"| {len(r.writes.failed)} / {len(r.base_writes.failed)} "
            f"| {len(r.created_anyway)} | {len(r.lost)} | {r.kills} "
            f"| {' + '.join(f'{t:.1f}' for t in r.reloads.took)} |"
        )
    if rounds:
        ratios = [r.during.requests_per_s / r.baseline.requests_per_s for r in rounds]
        failed = sum(r.during.failed + r.baseline.failed + len(r.posts_failed) for r in rounds)
        lines += [
            "",
            f"failed requests in all: {failed} (goal 0); failed POSTs that created their project: "
            f"{sum(len(r.created_anyway) for r in rounds)} (goal 0); POSTs answered 201 but missing: "
            f"{sum(len(r.lost) for r in rounds)}; SIGKILLs: {sum(r.kills for r in rounds)}; median "
            f"throughput kept during the reloads: {statistics.median(ratios):.2f}",
            f"the second reload said: {rounds[-1].reloads.said[1]!r}",
        ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
