"""Benchmark: the requests that fail while the appliance is upgraded, `appliance upgrade` against the stop,
migrate and start that install.sh did before, on SQLite and PostgreSQL.

Run: .venv/bin/python tests/bench/bench_upgrade.py [--rounds 3] [--backends sqlite,postgresql]
                                                   [--instances 2] [--clients 4]

Each round, for each backend and each way:
1. The previous release (the git tag in tests/upgrade/PREVIOUS_RELEASE) installed in a venv of its own,
   initialised, migrated and started the real way (`appliance up`, `--instances` API processes behind the
   supervisor's shared socket, the worker), with a tenant, a project and two users in it (a throwaway
   PostgreSQL server, or SQLite).
2. Load on /health/ready (it reads the database and the queue): `--clients` keep-alive clients, and one
   more that opens a new connection for each request (a client that finds no listener fails at once).
3. While it runs, the way under test:
   - upgrade: `appliance upgrade CHECKOUT` (this tree): the stage (a real `pip install` of the appliance
     into a new venv; its dependencies come from this venv through PYTHONPATH, as in tests/upgrade), the
     preflight, a backup, the migrations, the switch and the rolling restart, the health check;
   - stop/start: what install.sh did before: `appliance down`, the venv pointed at the new source (pip's
     install in place, without its time), `appliance migrate`, `appliance up`.
4. Reported: the seconds the way took (from the command's start to its end), the requests served and
   failed during it, the throughput during it as a ratio to a baseline of the same load measured just
   before in the same round (the machine's load changes between rounds; the ratio holds), and the outage:
   the seconds from the first failed request to the last (a refused connection or the supervisor's 503
   fails at once, so the failed count says more about the clients' speed than the outage does).

The goal: 0 failed requests during `appliance upgrade`. Exit status 0 when every upgrade round met it.
"""

from __future__ import annotations

import argparse
import itertools
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import httpx  # noqa: E402 -- run as a script

from appliance import __version__  # noqa: E402
from tests.servers import PostgresServer  # noqa: E402
from tests.support import copy_checkout  # noqa: E402
from tests.upgrade.release import install, previous_release, seed, up  # noqa: E402

BASELINE_S = 5.0
WIDTHS = (5, 8, 7, 7, 6, 8)


class Load:
    """Keep-alive clients and one new-connection client on one URL, counting what was served and failed."""

    def __init__(self, url: str, clients: int) -> None:
        self.url = url
        self.served = 0
        self.failed = 0
        self.errors: list[str] = []
        self.first_failure: float | None = None
        self.last_failure = 0.0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, args=(True,)) for _ in range(clients)]
        self._threads.append(threading.Thread(target=self._run, args=(False,)))

    def _run(self, keep_alive: bool) -> None:
        limits = httpx.Limits(max_keepalive_connections=1 if keep_alive else 0)
        with httpx.Client(timeout=10, limits=limits) as http:
            while not self._stop.is_set():
                try:
                    ok = http.get(self.url).status_code == 200
                    why = "" if ok else "not 200"
                except httpx.HTTPError as exc:
                    ok, why = False, type(exc).__name__
                with self._lock:
                    self.served += ok
                    self.failed += not ok
                    if why:
                        self.last_failure = time.monotonic()
                        self.first_failure = self.first_failure or self.last_failure
                        if why not in self.errors:
                            self.errors.append(why)

    def outage(self) -> float:
        """Seconds from the first failure to the last (0 without any)."""
        with self._lock:
            return self.last_failure - self.first_failure if self.first_failure else 0.0

    def counts(self) -> tuple[int, int]:
        with self._lock:
            return self.served, self.failed

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)


@dataclass
class Row:
    backend: str
    way: str
    round: int
    seconds: float
    served: int
    failed: int
    ratio: float
    outage: float
    errors: list[str]
    steps: dict[str, float]  # seconds from the command's start to each step's first line


STEP = re.compile(r"^\[\d/\d\] (\w+)$|^(upgraded) ")


def _upgrade(env: dict[str, str], checkout: Path, cwd: Path, began: float) -> dict[str, float]:
    """Run `appliance upgrade CHECKOUT`, noting when each step begins; RuntimeError when it fails."""
    command = [sys.executable, "-m", "appliance", "upgrade", str(checkout)]
    process = subprocess.Popen(
        command, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    assert process.stdout is not None
    steps: dict[str, float] = {}
    lines = []
    for line in process.stdout:
        lines.append(line)
        found = STEP.match(line.rstrip())
        if found:
            steps[found.group(1) or found.group(2)] = time.monotonic() - began
    if process.wait() != 0:
        raise RuntimeError("the upgrade failed: " + "".join(lines[-40:]))
    return steps


def one_round(way: str, backend: str, number: int, args: argparse.Namespace, scratch: Path) -> Row:
    safe = way.replace("/", "-")
    work = Path(tempfile.mkdtemp(prefix=f"{safe}-{backend}-", dir=scratch))
    database_url = None
    if backend == "postgresql":
        name = f"bench_{safe.replace('-', '_')}_{number}"
        database_url = args.postgres.create_database(name)
    installed = install(work / "srv", args.old_source, database_url, f"bu{number}")
    installed.env["APPLIANCE_API__INSTANCES"] = str(args.instances)
    try:
        up(installed)
        seed(installed)
        with Load(f"{installed.url}/health/ready", args.clients) as load:
            time.sleep(1.0)
            first, _ = load.counts()
            time.sleep(BASELINE_S)
            base_rate = (load.counts()[0] - first) / BASELINE_S
            served0, failed0 = load.counts()
            began = time.monotonic()
            if way == "upgrade":
                steps = _upgrade(installed.env, args.checkout, work, began)
            else:
                installed.appliance("down")
                pth = next((installed.venv / "lib").glob("python*/site-packages/forge_appliance_source.pth"))
                pth.write_text(f"{args.checkout}\n")  # what pip's install in place leaves, without its time
                installed.appliance("migrate")
                installed.appliance("up")
                steps = {}
            seconds = time.monotonic() - began
            served1, failed1 = load.counts()
        served, failed = served1 - served0, failed1 - failed0
        ratio = (served / seconds) / base_rate if base_rate else 0.0
        return Row(backend, way, number, seconds, served, failed, ratio, load.outage(), load.errors, steps)
    finally:
        installed.stop()
        if database_url:
            args.postgres.drop_database(name)
        shutil.rmtree(work, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--instances", type=int, default=2)
    parser.add_argument("--clients", type=int, default=4)
    args = parser.parse_args()
    backends = args.backends.split(",")
    scratch = Path(tempfile.mkdtemp(prefix="fa-bench-upgrade-"))
    args.old_source = previous_release(scratch / "previous")[1]
    args.checkout = copy_checkout(scratch / "checkout", tests=False)
    args.postgres = PostgresServer().start() if "postgresql" in backends else None
    rows: list[Row] = []
    try:
        for number in range(1, args.rounds + 1):
            for backend in backends:
                for way in ("upgrade", "stop/start"):
                    row = one_round(way, backend, number, args, scratch)
                    rows.append(row)
                    print(
                        f"round {number} {backend} {way}: {row.seconds:.1f} s, served {row.served}, "
                        f"failed {row.failed} over {row.outage:.1f} s {row.errors}",
                        flush=True,
                    )
    finally:
        if args.postgres is not None:
            args.postgres.close()
        shutil.rmtree(scratch, ignore_errors=True)
    print()
    print(f"0.1.0 -> {__version__}, {args.instances} API processes, {args.clients} keep-alive clients")
    print("and one new-connection client on /health/ready; throughput during the way / the baseline's")
    names = ("backend", "way", "round", "seconds", "served", "failed", "ratio", "outage s")
    print(
        f"{names[0]:<11} {names[1]:<11} "
        + " ".join(f"{n:>{w}}" for n, w in zip(names[2:], WIDTHS, strict=True))
    )
    for row in rows:
        print(
            f"{row.backend:<11} {row.way:<11} {row.round:>5} {row.seconds:>8.1f} {row.served:>7} "
            f"{row.failed:>7} {row.ratio:>6.2f} {row.outage:>8.1f}"
        )
    upgrades = [row for row in rows if row.way == "upgrade"]
    print("\nappliance upgrade, the seconds of each step (install: the command's start to the preflight)")
    order = ("preflight", "backup", "migrate", "switch", "restart", "health", "upgraded")
    print(f"{'backend':<11} {'round':>5} " + " ".join(f"{n:>9}" for n in ("install", *order[:-1])))
    for row in upgrades:
        marks = [0.0, *(row.steps.get(name, float("nan")) for name in order)]
        spans = [b - a for a, b in itertools.pairwise(marks)]
        print(f"{row.backend:<11} {row.round:>5} " + " ".join(f"{span:>9.1f}" for span in spans))
    met = all(row.failed == 0 for row in upgrades)
    print(f"\ngoal (0 failed during appliance upgrade): {'met' if met else 'NOT met'}")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
