"""Benchmark of the appliance supervisor: RSS with N idle children, restart latency after SIGKILL, and the
price of a metrics scrape.

Run: .venv/bin/python tests/bench/bench_supervisor.py [-n 10] [--kills 20] [--scrapes 200]

Baselines measured in the same run, so that ratios hold on a noisy machine:
* RSS: a bare interpreter (`python -c "sleep"`), i.e. the floor of any Python supervisor;
* restart latency: spawning the same child directly and waiting for it to answer, i.e. the child's own
  start-up, which every restart includes;
* a `GET /metrics` on the [metrics] endpoint (one pass over /proc, N process groups): a `status` round
  trip on the control socket, the cheapest request the same loop answers.

The side-by-side comparison with PM2, supervisord, circus and s6 is the shared harness, run with
tests/bench/supervisor_adapter.py (see tests/bench/RESULTS.md, "Supervisor").
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
STABLE = 10.5  # seconds: past the supervisor's stable period, after which the first restart is immediate
CHILD = """
import os, socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen(16)
while True:
    c, _ = s.accept()
    c.sendall(str(os.getpid()).encode())
    c.close()
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def answer(port: int) -> int | None:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as conn:
            data = conn.recv(64)
    except OSError:
        return None
    return int(data) if data.isdigit() else None


def wait_answer(port: int, not_pid: int | None = None, timeout: float = 30.0) -> tuple[int, float]:
    start = time.perf_counter()
    while time.perf_counter() - start < timeout:
        pid = answer(port)
        if pid is not None and pid != not_pid:
            return pid, time.perf_counter() - start
        time.sleep(0.001)
    raise TimeoutError(f"nothing new answered on port {port}")


def http_get(port: int, path: str = "/metrics") -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
        conn.sendall(f"GET {path} HTTP/1.1\r\nHost: bench\r\n\r\n".encode())
        data = b""
        while chunk := conn.recv(65536):
            data += chunk
    return data


def control_status(sock_path: Path) -> bytes:
    with socket.socket(socket.AF_UNIX) as conn:
        conn.settimeout(5)
        conn.connect(str(sock_path))
        conn.sendall(json.dumps({"cmd": "status"}).encode() + b"\n")
        data = b""
        while not data.endswith(b"\n"):
            data += conn.recv(65536)
    return data


def timed(call: Callable[[], bytes], reps: int) -> list[float]:
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return times


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def baseline_rss() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    time.sleep(1.0)
    try:
        return rss_kib(proc.pid)
    finally:
        proc.kill()
        proc.wait()


def baseline_startup(child: Path, reps: int) -> list[float]:
    times = []
    for _ in range(reps):
        port = free_port()
        start = time.perf_counter()
        proc = subprocess.Popen([sys.executable, str(child), str(port)])
        try:
            wait_answer(port)
            times.append(time.perf_counter() - start)
        finally:
            proc.kill()
            proc.wait()
    return times


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("-n", type=int, default=10, help="children (default 10)")
    parser.add_argument(
        "--kills", type=int, default=20, help="SIGKILLs, round-robin over children (default 20)"
    )
    parser.add_argument("--scrapes", type=int, default=200, help="metrics scrapes (default 200)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-supervisor-") as tmp:
        work = Path(tmp)
        child = work / "child.py"
        child.write_text(CHILD)
        ports = [free_port() for _ in range(args.n)]
        metrics_port = free_port()
        sections = [f'[metrics]\nlisten = "127.0.0.1:{metrics_port}"\n'] + [
            f'[programs.c{i}]\ncommand = ["{sys.executable}", "{child}", "{port}"]\n'
            for i, port in enumerate(ports)
        ]
        (work / "services.toml").write_text("\n".join(sections))
        argv = [sys.executable, "-m", "appliance", "supervise", "--services", str(work / "services.toml")]
        argv += ["--run-dir", str(work / "run"), "--log-dir", str(work / "log"), "--quiet"]
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        sup = subprocess.Popen(argv, env=env)
        try:
            for port in ports:
                wait_answer(port)
            time.sleep(2.0)
            rss = rss_kib(sup.pid)
            assert b"appliance_program_resident_memory_bytes" in http_get(metrics_port)
            scrape = timed(lambda: http_get(metrics_port), args.scrapes)
            status = timed(lambda: control_status(work / "run" / "control.sock"), args.scrapes)
            metrics_bytes = len(http_get(metrics_port))
            latencies = []
            restarted_at: dict[int, float] = {}
            for k in range(args.kills):
                port = ports[k % len(ports)]
                pid, _ = wait_answer(port)
                time.sleep(0.3 + random.uniform(0, 0.7))
                # A child up for less than the stable period (10 s) is restarted after a backoff delay, by
                # design; measure the immediate restart of a child that was up and well.
                time.sleep(max(0.0, restarted_at.get(port, 0.0) + STABLE - time.monotonic()))
                os.kill(pid, signal.SIGKILL)
                _, took = wait_answer(port, not_pid=pid)
                restarted_at[port] = time.monotonic()
                latencies.append(took)
        finally:
            sup.send_signal(signal.SIGTERM)
            sup.wait(timeout=60)
        bare_rss = baseline_rss()
        bare = baseline_startup(child, 10)
    ms = [t * 1000 for t in latencies]
    bare_ms = statistics.median(bare) * 1000
    print(f"{'metric':<44}{'value':>12}{'baseline':>12}{'ratio':>8}")
    print(f"{f'supervisor RSS, {args.n} idle children (MiB)':<44}{rss / 1024:>12.1f}{bare_rss / 1024:>12.1f}"
          f"{rss / bare_rss:>8.2f}")  # fmt: skip
    for name, value in (("median", statistics.median(ms)), ("max", max(ms))):
        label = f"restart after SIGKILL, {name} (ms)"
        print(f"{label:<44}{value:>12.1f}{bare_ms:>12.1f}{value / bare_ms:>8.2f}")
    for name, pick in (("median", statistics.median), ("p99", lambda t: sorted(t)[int(len(t) * 0.99) - 1])):
        value, base = pick(scrape) * 1000, pick(status) * 1000
        label = f"GET /metrics, {name} (ms)"
        print(f"{label:<44}{value:>12.2f}{base:>12.2f}{value / base:>8.2f}")
    print(
        f"({len(ms)} kills, {args.scrapes} scrapes of {metrics_bytes} bytes; baselines: bare interpreter RSS,"
    )
    print(" direct child start-up median, control-socket `status` round trip)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
