"""Benchmark: `appliance reload api` under a wrk load, against the same load with no reload, in one run.

Run: .venv/bin/python tests/bench/bench_reload.py [--instances 2] [--duration 12] [--rounds 3]

The appliance is started the real way (`appliance init`, `migrate`, `up`) on embedded defaults with
`api.instances` API processes behind the supervisor's shared socket. Each round runs wrk twice on
`/health/live`: once undisturbed (the baseline), once with `appliance reload api` issued a few seconds in.
The goal is zero failed requests (wrk's socket errors and non-2xx responses) across every reload; the
table also shows the throughput kept during a reload as a ratio to the baseline.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
APPLIANCE = [sys.executable, "-m", "appliance"]


@dataclass
class Load:
    requests_per_s: float
    socket_errors: int
    non_2xx: int


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wrk(url: str, duration: int, connections: int) -> Load:
    out = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{duration}s", url],
        capture_output=True,
        text=True,
        check=True,
        timeout=duration + 60,
    ).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return Load(
        requests_per_s=rate,
        socket_errors=sum(int(n) for n in errors.groups()) if errors else 0,
        non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
    )


def run(env: dict[str, str], *args: str) -> str:
    done = subprocess.run([*APPLIANCE, *args], env=env, capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        raise SystemExit(f"appliance {' '.join(args)} failed: {done.stderr.strip()}")
    return done.stdout


def reload_later(env: dict[str, str], delay: float, took: list[float]) -> None:
    time.sleep(delay)
    started = time.monotonic()
    run(env, "reload", "api")
    took.append(time.monotonic() - started)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--instances", type=int, default=2)
    parser.add_argument("--duration", type=int, default=12)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (./install.sh --test installs it)")

    data = Path(tempfile.mkdtemp(prefix="fa-reload-", dir="/tmp"))
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("APPLIANCE_", "PROMETHEUS_"))}
    env |= {
        "APPLIANCE_DATA_DIR": str(data),
        "APPLIANCE_API__PORT": str(port),
        "APPLIANCE_API__INSTANCES": str(args.instances),
    }
    url = f"http://127.0.0.1:{port}/health/live"
    rows: list[tuple[int, Load, Load, float]] = []
    try:
        run(env, "init")
        run(env, "migrate")
        run(env, "up")
        wrk(url, 3, args.connections)  # warm-up
        for round_no in range(1, args.rounds + 1):
            baseline = wrk(url, args.duration, args.connections)
            reload_took: list[float] = []
            reloader = threading.Thread(target=reload_later, args=(env, args.duration / 4, reload_took))
            reloader.start()
            during = wrk(url, args.duration, args.connections)
            reloader.join()
            rows.append((round_no, baseline, during, reload_took[0] if reload_took else float("nan")))
            print(
                f"round {round_no}: baseline {baseline.requests_per_s:,.0f} req/s, during reload "
                f"{during.requests_per_s:,.0f} req/s, failed {during.socket_errors + during.non_2xx}",
                flush=True,
            )
    finally:
        subprocess.run([*APPLIANCE, "down"], env=env, capture_output=True, timeout=300, check=False)
        shutil.rmtree(data, ignore_errors=True)

    print(
        f"\n`appliance reload api` under wrk -t2 -c{args.connections} -d{args.duration}s on `/health/live`, "
        f"{args.instances} API processes, {args.rounds} rounds\n"
    )
    print("| round | baseline req/s | during reload req/s | ratio | reload took s | failed (reload) |")
    print("|---:|---:|---:|---:|---:|---:|")
    for round_no, baseline, during, took in rows:
        failed = during.socket_errors + during.non_2xx
        ratio = during.requests_per_s / baseline.requests_per_s
        print(
            f"| {round_no} | {baseline.requests_per_s:,.0f} | {during.requests_per_s:,.0f} | {ratio:.2f} "
            f"| {took:.2f} | {failed} |"
        )
    total_failed = sum(d.socket_errors + d.non_2xx for _, _, d, _ in rows)
    baseline_failed = sum(b.socket_errors + b.non_2xx for _, b, _, _ in rows)
    ratios = [d.requests_per_s / b.requests_per_s for _, b, d, _ in rows]
    print(
        f"\nfailed requests during reloads: {total_failed} (goal 0); in baselines: {baseline_failed}; "
        f"median throughput kept during a reload: {statistics.median(ratios):.2f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
