"""Benchmark: how many concurrent writers the embedded database (SQLite) holds without a single 503.

Run: .venv/bin/python tests/bench/bench_sqlite_writers.py [--writers 1,2,4,8,16,32,64] [--seconds 8]
                                                         [--processes 1,2]

1. A fresh data directory on built-in defaults (`appliance init`, `appliance migrate`: SQLite); a tenant
   and its owner (`appliance tenant create --owner`), who sets a password, an organization and a heartbeat
   app.
2. For each --processes count: that many `appliance api --fd` processes on one listening socket (how the
   supervisor runs API instances). For each --writers count, that many clients for --seconds, each in a
   closed loop of three writes: the heartbeat by GET (a safe method that writes: the case that answered 503
   "database is locked"), the heartbeat by POST, and a project creation (an audited write).
3. Reported per step: writes answered per second, and the answers that were not a success, by code
   (SERVICE_UNAVAILABLE: the database refused; OVERLOADED: the API shed load on purpose, with Retry-After).
   The baseline, measured in the same run, is one writer: the ratio says what concurrency adds.

Exit status 0 unless something fails to start (then a clear error and status 2).
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from tests.bench.bench_api import (  # noqa: E402
    APPLIANCE,
    BenchError,
    ProcessGroup,
    listening_socket,
    prepare_appliance,
    run_checked,
    wait_http,
)

OWNER = "owner@writers.example"
PASSWORD = "Plum-cactus-harbour-91"


@dataclass
class Step:
    processes: int
    writers: int
    seconds: float
    statuses: Counter[str] = field(default_factory=Counter)

    @property
    def answered(self) -> int:
        return sum(n for code, n in self.statuses.items() if code in ("201", "204"))

    @property
    def refused(self) -> int:
        return sum(n for code, n in self.statuses.items() if code not in ("201", "204"))


def sign_in(client: httpx.Client, one_time: str) -> dict[str, str]:
    login = client.post("/api/v1/auth/login", json={"email": OWNER, "password": one_time, "tenant": "acme"})
    if login.status_code != 200:
        raise BenchError(f"sign-in answered {login.status_code}: {login.text[:300]}")
    headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
    changed = client.post(
        "/api/v1/auth/password",
        json={"current_password": one_time, "new_password": PASSWORD},
        headers=headers,
    )
    if changed.status_code >= 300:
        raise BenchError(f"the password change answered {changed.status_code}: {changed.text[:300]}")
    login = client.post("/api/v1/auth/login", json={"email": OWNER, "password": PASSWORD, "tenant": "acme"})
    if login.status_code != 200:
        raise BenchError(f"sign-in answered {login.status_code}: {login.text[:300]}")
    return {"Authorization": f"Bearer {login.json()['access_token']}"}


def prepare(client: httpx.Client, headers: dict[str, str]) -> tuple[str, str]:
    org = client.post("/api/v1/organizations", json={"name": "Ops", "slug": "ops"}, headers=headers)
    if org.status_code != 201:
        raise BenchError(f"creating the organization answered {org.status_code}: {org.text[:300]}")
    app = client.post(
        "/api/v1/apps",
        json={"name": "Cron", "kind": "heartbeat", "url": None, "interval": 60, "grace": 30},
        headers=headers,
    )
    if app.status_code != 201:
        raise BenchError(f"creating the heartbeat app answered {app.status_code}: {app.text[:300]}")
    return org.json()["id"], httpx.URL(app.json()["heartbeat_url"]).path


def run_step(base: str, headers: dict[str, str], org: str, beat: str, step: Step) -> None:
    stop = time.monotonic() + step.seconds
    lock = threading.Lock()
    barrier = threading.Barrier(step.writers)

    def writer(n: int) -> None:
        seen: Counter[str] = Counter()
        with httpx.Client(base_url=base, timeout=60) as client:
            barrier.wait()
            i = 0
            while time.monotonic() < stop:
                i += 1
                name = f"w{step.processes}-{step.writers}-{n}-{i}-{uuid.uuid4().hex[:6]}"
                for answer in (
                    client.get(beat),
                    client.post(beat),
                    client.post(
                        "/api/v1/projects", json={"organization_id": org, "name": name}, headers=headers
                    ),
                ):
                    if answer.status_code in (201, 204):
                        seen[str(answer.status_code)] += 1
                    else:
                        try:
                            code = answer.json()["error"]["code"]
                        except (ValueError, KeyError, TypeError):
                            code = "?"
                        seen[f"{answer.status_code} {code}"] += 1
        with lock:
            step.statuses.update(seen)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(step.writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def start_api(work: Path, env: dict[str, str], processes: int) -> tuple[ProcessGroup, int]:
    group = ProcessGroup()
    sock = listening_socket()
    port = int(sock.getsockname()[1])
    run_env = dict(
        env, APPLIANCE_API__PORT=str(port), PROMETHEUS_MULTIPROC_DIR=str(work / f"metrics-{processes}")
    )
    (work / f"metrics-{processes}").mkdir(exist_ok=True)
    log = work / f"api-{processes}.log"
    try:
        for _ in range(processes):
            group.spawn([APPLIANCE, "api", "--fd", str(sock.fileno())], env=run_env, stderr=log,
                        pass_fds=[sock.fileno()], cwd=work)  # fmt: skip
    finally:
        sock.close()
    wait_http(port, "/health/live", group, "the appliance", log)
    return group, port


def table(steps: list[Step]) -> str:
    lines = [
        "| API processes | writers | writes/s | vs 1 writer | answered | not answered 201/204 (by code) |",
        "|---:|---:|---:|---:|---:|---|",
    ]
    base: dict[int, float] = {}
    for step in steps:
        rate = step.answered / step.seconds
        base.setdefault(step.processes, rate)
        refused = ", ".join(
            f"{code}: {n}" for code, n in sorted(step.statuses.items()) if code not in ("201", "204")
        )
        lines.append(
            f"| {step.processes} | {step.writers} | {rate:,.0f} | {rate / base[step.processes]:.2f} "
            f"| {step.answered:,} | {refused or '0'} |"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--writers", default="1,2,4,8,16,32,64")
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--processes", default="1,2")
    args = parser.parse_args()
    writers = [int(n) for n in args.writers.split(",")]
    counts = [int(n) for n in args.processes.split(",")]
    steps: list[Step] = []
    try:
        with tempfile.TemporaryDirectory(prefix="fa-sqlite-") as tmp:
            work = Path(tmp)
            env = prepare_appliance(work)
            env["APPLIANCE_RATE_LIMITS__ENABLED"] = "false"
            out = run_checked(
                [APPLIANCE, "tenant", "create", "acme", "--name", "Acme", "--owner", OWNER],
                env,
                "tenant create",
            )
            found = re.search(r"one-time password: (\S+)", out)
            if found is None:
                raise BenchError(f"no one-time password in the output of tenant create: {out!r}")
            headers: dict[str, str] | None = None
            org = beat = ""
            for processes in counts:
                group, port = start_api(work, env, processes)
                base = f"http://127.0.0.1:{port}"
                try:
                    with httpx.Client(base_url=base, timeout=30) as client:
                        if headers is None:
                            headers = sign_in(client, found.group(1))
                            org, beat = prepare(client, headers)
                    for n in writers:
                        step = Step(processes, n, args.seconds)
                        run_step(base, headers, org, beat, step)
                        steps.append(step)
                        print(table([step]).splitlines()[-1], flush=True)
                finally:
                    group.stop()
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print()
    print(table(steps))
    return 0


if __name__ == "__main__":
    sys.exit(main())
