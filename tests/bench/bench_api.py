"""Benchmark of the API's hot path and the CLI's start-up, each against a baseline measured in the same run.

Run: .venv/bin/python tests/bench/bench_api.py [--duration 10] [--connections 64] [--threads 2] [--rounds 3]
                                               [--processes 1,2] [--stderr file|devnull] [--no-up]
                                               [--fd-control]

1. `/health/live` req/s through the appliance's whole stack (`appliance api`, after `appliance init` and
   `appliance migrate` on built-in defaults, multiprocess metrics as in production) as a ratio to a bare
   FastAPI app on the same uvicorn options (httptools/uvloop as installed, no access log, no server header,
   no proxy headers), under wrk. Goal: >= 0.85. Two appliance variants: access log on (the default: one JSON
   line per request on stderr, sent to a file by default) and off (APPLIANCE_LOGGING__ACCESS_LOG=false).
   N processes: the bare app under `uvicorn --workers N`; the appliance as N `appliance api --fd F` processes
   sharing one listening socket bound here (how the supervisor runs N API instances). --fd-control adds
   the bare app on such a shared inherited socket too, as uvicorn's fd= and as a socket object.
   Servers are measured alternately (bare, appliance, appliance without access log, bare, ...) for --rounds
   rounds after a warm-up, so that drift on a noisy machine hits every variant alike; the table shows medians.
2. `appliance --help` wall time (median of 20), against `python -c pass` and `python -c "import typer"`.
   Goal: < 0.3 s.
3. `appliance up` to ready on embedded defaults, then `appliance down` (see bench_up). Goal: < 3 s.

Exit status 0 unless a server fails to start or answers wrongly (then a clear error and status 2).
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path


class BenchError(RuntimeError):
    """A server did not start or answered wrongly: the figures would be meaningless."""


# -- sockets ------------------------------------------------------------------------------------------------


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def listening_socket(host: str = "127.0.0.1", backlog: int = 2048) -> socket.socket:
    """A bound, listening, inheritable TCP socket on a free port (for ``--fd`` servers)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, 0))
    sock.listen(backlog)
    sock.set_inheritable(True)
    return sock


# -- processes ----------------------------------------------------------------------------------------------


class ProcessGroup:
    """Subprocesses, each the leader of its own process group; ``stop()`` ends every group."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen[bytes]] = []

    def spawn(
        self,
        argv: Sequence[str],
        env: dict[str, str] | None = None,
        stderr: Path | None = None,
        pass_fds: Sequence[int] = (),
        cwd: Path | None = None,
    ) -> subprocess.Popen[bytes]:
        err = open(stderr, "ab") if stderr is not None else subprocess.DEVNULL  # noqa: SIM115
        try:
            proc = subprocess.Popen(
                list(argv),
                env=env,
                cwd=cwd,
                stdin=subprocess.DEVNULL,
                stdout=err,
                stderr=err,
                pass_fds=tuple(pass_fds),
                start_new_session=True,
            )
        finally:
            if stderr is not None:
                err.close()  # type: ignore[union-attr]
        self.procs.append(proc)
        return proc

    def check_alive(self, what: str, log: Path | None = None) -> None:
        for proc in self.procs:
            if proc.poll() is not None:
                raise BenchError(
                    f"{what}: process {proc.pid} exited with status {proc.returncode}{tail(log)}"
                )

    def stop(self, timeout: float = 15.0) -> None:
        for proc in self.procs:
            _signal_group(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for proc in self.procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(max(0.1, deadline - time.monotonic()))
            _signal_group(proc.pid, signal.SIGKILL)  # the group may hold children (uvicorn --workers)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(5)
        self.procs.clear()


def _signal_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def tail(path: Path | None, lines: int = 15) -> str:
    if path is None or not path.exists():
        return ""
    text = path.read_text(errors="replace").splitlines()[-lines:]
    return f"\n--- last lines of {path} ---\n" + "\n".join(text)


def run_checked(argv: Sequence[str], env: dict[str, str], what: str, timeout: float = 120.0) -> str:
    done = subprocess.run(list(argv), env=env, capture_output=True, text=True, timeout=timeout, check=False)
    if done.returncode != 0:
        raise BenchError(f"{what} failed with status {done.returncode}:\n{done.stdout}{done.stderr}")
    return done.stdout


# -- HTTP ---------------------------------------------------------------------------------------------------


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes


def get(port: int, path: str, timeout: float = 2.0) -> Answer:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        body = resp.read()
        return Answer(resp.status, {k.lower(): v for k, v in resp.getheaders()}, body)
    finally:
        conn.close()


def wait_http(
    port: int, path: str, group: ProcessGroup, what: str, log: Path | None, timeout: float = 30.0
) -> Answer:
    """Poll until ``path`` answers (any status); fail at once if a process of ``group`` died."""
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        group.check_alive(what, log)
        try:
            return get(port, path)
        except OSError as exc:
            last = str(exc)
        time.sleep(0.05)
    raise BenchError(f"{what}: no answer on port {port} within {timeout:g} s ({last}){tail(log)}")


# -- wrk ----------------------------------------------------------------------------------------------------


@dataclass
class WrkResult:
    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    errors: int  # socket errors + non-2xx/3xx answers
    raw: str


_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def _latency_ms(text: str, pct: str) -> float:
    m = re.search(rf"^\s*{pct}%\s+([\d.]+)(us|ms|s|m)\s*$", text, re.MULTILINE)
    if not m:
        raise BenchError(f"cannot find the {pct}% latency in wrk's output:\n{text}")
    return float(m.group(1)) * _UNITS_MS[m.group(2)]


def parse_wrk(text: str) -> WrkResult:
    rps = re.search(r"^Requests/sec:\s+([\d.]+)", text, re.MULTILINE)
    total = re.search(r"^\s*(\d+) requests in", text, re.MULTILINE)
    if not rps or not total:
        raise BenchError(f"cannot parse wrk's output:\n{text}")
    errors = 0
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
    if non2xx:
        errors += int(non2xx.group(1))
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    if sock:
        errors += sum(int(g) for g in sock.groups())
    return WrkResult(
        float(rps.group(1)),
        _latency_ms(text, "50"),
        _latency_ms(text, "99"),
        int(total.group(1)),
        errors,
        text,
    )


def wrk(url: str, duration: float, connections: int, threads: int) -> WrkResult:
    argv = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration:g}s", "--latency", url]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=duration + 60, check=False)
    if done.returncode != 0:
        raise BenchError(f"wrk failed ({done.returncode}): {done.stderr or done.stdout}")
    return parse_wrk(done.stdout)


# -- timing -------------------------------------------------------------------------------------------------


def wall_times(argv: Sequence[str], runs: int, env: dict[str, str] | None = None) -> list[float]:
    """Wall time of ``runs`` sequential runs of ``argv`` (output discarded); fails if one exits non-zero."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        done = subprocess.run(
            list(argv), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=60, check=False
        )
        times.append(time.perf_counter() - start)
        if done.returncode != 0:
            raise BenchError(
                f"{' '.join(argv)} exited with {done.returncode}: {done.stderr.decode(errors='replace')}"
            )
    return times


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


REPO = Path(__file__).resolve().parents[2]
PYTHON = sys.executable
APPLIANCE = str(Path(PYTHON).parent / "appliance")  # the console script a real install puts on PATH
PATH = "/health/live"
GOAL_RATIO = 0.85
GOAL_HELP_S = 0.3
GOAL_UP_S = 3.0

BARE_APP = """
from fastapi import FastAPI

app = FastAPI()


@app.get("/health/live")
async def live():
    return {"status": "ok"}
"""

# The server options of appliance/cli/processes/serve.py's uvicorn.Config, as uvicorn CLI flags (loop and http
# stay "auto": uvloop and httptools when installed, as for the appliance). log_config=None there only means
# uvicorn leaves logging alone; with its access log off nothing is logged per request either way.
BARE_UVICORN_FLAGS = [
    "--no-access-log",
    "--no-proxy-headers",
    "--no-server-header",
    "--timeout-graceful-shutdown", "30",
    "--lifespan", "on",
    "--log-level", "warning",
]  # fmt: skip


@dataclass
class Server:
    name: str
    port: int
    group: ProcessGroup
    log: Path | None
    results: list[WrkResult] = field(default_factory=list)


def clean_env(**extra: str) -> dict[str, str]:
    """This environment without any APPLIANCE_* or PROMETHEUS_* setting of the caller's, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("APPLIANCE_", "PROMETHEUS_"))}
    env.update(extra)
    return env


# -- servers ------------------------------------------------------------------------------------------------


def start_bare(work: Path, processes: int) -> Server:
    (work / "bare_app.py").write_text(BARE_APP)
    port = free_port()
    group = ProcessGroup()
    log = work / f"bare-{processes}.log"
    argv = [
        PYTHON,
        "-m",
        "uvicorn",
        "bare_app:app",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        *BARE_UVICORN_FLAGS,
    ]
    if processes > 1:
        argv += ["--workers", str(processes)]
    group.spawn(argv, env=clean_env(), stderr=log, cwd=work)
    server = Server("bare FastAPI", port, group, log)
    answer = wait_http(port, PATH, group, "bare FastAPI app", log)
    if answer.status != 200:
        raise BenchError(f"bare FastAPI app answered {answer.status} on {PATH}: {answer.body[:200]!r}")
    _wait_all_processes(server, processes)
    return server


# The bare app on N processes sharing one inherited socket, like the appliance (--fd-control). "uvicorn --fd"
# is what `appliance api --fd` does today; "socket(fileno=fd)" hands uvicorn a socket object of the fd's real
# family (Server.run(sockets=...)), the change proposed for appliance/cli/processes/serve.py.
BARE_FD_RUNNER = """
import socket, sys
import uvicorn
fd, mode = int(sys.argv[1]), sys.argv[2]
config = uvicorn.Config("bare_app:app", fd=None if mode == "fixed" else fd, log_config=None, access_log=False,
                        proxy_headers=False, server_header=False, timeout_graceful_shutdown=30, lifespan="on")
uvicorn.Server(config).run(sockets=[socket.socket(fileno=fd)] if mode == "fixed" else None)
"""


def start_bare_fd(work: Path, processes: int, mode: str) -> Server:
    (work / "bare_app.py").write_text(BARE_APP)
    (work / "bare_fd_runner.py").write_text(BARE_FD_RUNNER)
    sock = listening_socket()
    port = int(sock.getsockname()[1])
    group = ProcessGroup()
    log = work / f"bare-fd-{mode}-{processes}.log"
    try:
        for _ in range(processes):
            group.spawn([PYTHON, "bare_fd_runner.py", str(sock.fileno()), mode], env=clean_env(), stderr=log,
                        pass_fds=[sock.fileno()], cwd=work)  # fmt: skip
    finally:
        sock.close()
    name = "bare, uvicorn fd=" if mode == "asis" else "bare, socket(fileno=fd)"
    server = Server(name, port, group, log)
    answer = wait_http(port, PATH, group, name, log)
    if answer.status != 200:
        raise BenchError(f"{name} answered {answer.status} on {PATH}")
    _wait_all_processes(server, processes)
    return server


def prepare_appliance(work: Path) -> dict[str, str]:
    """A fresh data directory set up the way a real install does it: `appliance init`, `appliance migrate`."""
    data = work / "data"
    env = clean_env(APPLIANCE_DATA_DIR=str(data))
    run_checked([APPLIANCE, "init"], env, "appliance init")
    run_checked([APPLIANCE, "migrate"], env, "appliance migrate")
    return env


def start_appliance(
    work: Path, base_env: dict[str, str], processes: int, access_log: bool, stderr: str
) -> Server:
    tag = f"appliance-{processes}p-{'log' if access_log else 'nolog'}"
    metrics_dir = work / f"metrics-{tag}"
    metrics_dir.mkdir()
    env = dict(base_env, PROMETHEUS_MULTIPROC_DIR=str(metrics_dir))
    if not access_log:
        env["APPLIANCE_LOGGING__ACCESS_LOG"] = "false"
    log = work / f"{tag}.log" if stderr == "file" else None
    group = ProcessGroup()
    if processes == 1:
        port = free_port()
        env["APPLIANCE_API__PORT"] = str(port)
        group.spawn([APPLIANCE, "api"], env=env, stderr=log, cwd=work)
    else:
        sock = listening_socket()
        port = int(sock.getsockname()[1])
        env["APPLIANCE_API__PORT"] = str(port)
        try:
            for _ in range(processes):
                group.spawn([APPLIANCE, "api", "--fd", str(sock.fileno())], env=env, stderr=log,
                            pass_fds=[sock.fileno()], cwd=work)  # fmt: skip
        finally:
            sock.close()  # the children hold it now
    name = "appliance" + ("" if access_log else ", access log off")
    server = Server(name, port, group, log)
    answer = wait_http(port, PATH, group, name, log)
    if answer.status != 200:
        raise BenchError(f"{name} answered {answer.status} on {PATH}: {answer.body[:300]!r}{tail(log)}")
    if "x-request-id" not in answer.headers:
        raise BenchError(f"{name}: {PATH} answered without x-request-id (not the full middleware stack?)")
    _wait_all_processes(server, processes)
    return server


def _wait_all_processes(server: Server, processes: int) -> None:
    """Every one of N processes sharing a socket must be up before measuring, else one is measured alone.
    A few hundred sequential requests spread over the processes' accept loops; this warms them too."""
    for _ in range(200):
        get(server.port, PATH)
    time.sleep(0.5 if processes > 1 else 0.1)
    server.group.check_alive(server.name, server.log)


# -- API throughput -----------------------------------------------------------------------------------------


def bench_throughput(
    args: argparse.Namespace, work: Path, base_env: dict[str, str], processes: int
) -> list[Server]:
    groups: list[ProcessGroup] = []
    try:
        servers = [start_bare(work, processes)]
        groups.append(servers[-1].group)
        for access_log in (True, False):
            servers.append(start_appliance(work, base_env, processes, access_log, args.stderr))
            groups.append(servers[-1].group)
        if args.fd_control and processes > 1:
            for mode in ("asis", "fixed"):
                servers.append(start_bare_fd(work, processes, mode))
                groups.append(servers[-1].group)
        for server in servers:  # warm-up, not counted
            wrk(f"http://127.0.0.1:{server.port}{PATH}", args.warmup, args.connections, args.threads)
        for rnd in range(args.rounds):
            for server in servers:
                server.group.check_alive(server.name, server.log)
                result = wrk(
                    f"http://127.0.0.1:{server.port}{PATH}", args.duration, args.connections, args.threads
                )
                server.results.append(result)
                label = f"[{processes}p round {rnd + 1}/{args.rounds}] {server.name:<28}"
                errors = f"  ERRORS {result.errors}" if result.errors else ""
                print(f"  {label} {result.rps:>10,.0f} req/s  p50 {result.p50_ms:6.2f} ms"
                      f"  p99 {result.p99_ms:6.2f} ms{errors}", flush=True)  # fmt: skip
        return servers
    finally:
        for group in groups:
            group.stop()


def throughput_table(by_procs: dict[int, list[Server]], args: argparse.Namespace) -> str:
    lines = [
        f"`GET {PATH}`, wrk -t{args.threads} -c{args.connections} -d{args.duration:g}s, {args.rounds} "
        f"alternating rounds, medians; {os.cpu_count()} CPUs; appliance stderr to {args.stderr}",
        "",
        "| processes | server | req/s | p50 ms | p99 ms | ratio to bare | per-round ratios | goal >= 0.85 "
        "| errors |",
        "|---:|---|---:|---:|---:|---:|---|---|---:|",
    ]
    for procs, servers in by_procs.items():
        bare = servers[0]
        bare_rps = median([r.rps for r in bare.results])
        for server in servers:
            rps = median([r.rps for r in server.results])
            p50 = median([r.p50_ms for r in server.results])
            p99 = median([r.p99_ms for r in server.results])
            errors = sum(r.errors for r in server.results)
            if server is bare:
                ratio, per_round, verdict = "1.00", "", ""
            else:
                rounds = [a.rps / b.rps for a, b in zip(server.results, bare.results, strict=True)]
                ratio = f"{rps / bare_rps:.2f}"
                per_round = " ".join(f"{r:.2f}" for r in rounds)
                verdict = ""
                if server.name.startswith("appliance"):
                    verdict = "ok" if rps / bare_rps >= GOAL_RATIO else "**below**"
            lines.append(f"| {procs} | {server.name} | {rps:,.0f} | {p50:.2f} | {p99:.2f} | {ratio} "
                         f"| {per_round} | {verdict} | {errors} |")  # fmt: skip
    return "\n".join(lines)


# -- CLI start-up -------------------------------------------------------------------------------------------


def bench_help(runs: int, env: dict[str, str]) -> str:
    commands = {
        "`appliance --help`": [APPLIANCE, "--help"],
        "`python -c pass`": [PYTHON, "-c", "pass"],
        '`python -c "import typer"`': [PYTHON, "-c", "import typer"],
    }
    times: dict[str, list[float]] = {name: [] for name in commands}
    for argv in commands.values():  # one untimed run each: page cache, .pyc files
        wall_times(argv, 1, env)
    for _ in range(runs):  # interleaved, so that drift hits each command alike
        for name, argv in commands.items():
            times[name] += wall_times(argv, 1, env)
    base = median(times["`python -c pass`"])
    lines = [
        f"Wall time of a subprocess, median of {runs} interleaved runs",
        "",
        "| command | median ms | min ms | ratio to `python -c pass` | goal |",
        "|---|---:|---:|---:|---|",
    ]
    for name, values in times.items():
        goal = ""
        if name == "`appliance --help`":
            goal = f"< {GOAL_HELP_S * 1000:.0f} ms: " + (
                "ok" if median(values) < GOAL_HELP_S else "**missed**"
            )
        lines.append(f"| {name} | {median(values) * 1000:.0f} | {min(values) * 1000:.0f} "
                     f"| {median(values) / base:.2f} | {goal} |")  # fmt: skip
    return "\n".join(lines)


# -- `appliance up` -----------------------------------------------------------------------------------------


def bench_up(work: Path, runs: int) -> str:
    """`appliance up` to ready on embedded defaults (goal < 3 s), then `appliance down`, each timed.

    Each run gets a fresh data directory set up by `appliance init` + `appliance migrate` (not timed) and a
    free API port. Baseline in the same run: one `appliance api` from spawn to its first 200 on /health/live,
    i.e. the API's own start-up, which any `up` includes. Whatever `up` leaves running is found by its data
    directory in /proc/*/environ and its process group killed (down is what should stop it; this is a net).
    """
    up_times: list[float] = []
    down_times: list[float] = []
    api_times: list[float] = []
    failures: list[str] = []
    for i in range(runs):
        run_dir = work / f"up-{i}"
        run_dir.mkdir()
        env = prepare_appliance(run_dir)
        env["APPLIANCE_API__PORT"] = str(free_port())
        try:
            start = time.perf_counter()
            done = _run(["up"], env, timeout=90)
            took = time.perf_counter() - start
            if done[0] != 0:
                failures.append(f"run {i + 1}: `appliance up` exited {done[0]}: {done[1].strip()[-600:]}")
                continue
            answer = get(int(env["APPLIANCE_API__PORT"]), PATH)
            if answer.status != 200:
                failures.append(f"run {i + 1}: after `up`, {PATH} answered {answer.status}")
                continue
            up_times.append(took)
            start = time.perf_counter()
            done = _run(["down"], env, timeout=150)
            if done[0] != 0:
                failures.append(f"run {i + 1}: `appliance down` exited {done[0]}: {done[1].strip()[-600:]}")
            else:
                down_times.append(time.perf_counter() - start)
        finally:
            leftovers = _kill_by_data_dir(env["APPLIANCE_DATA_DIR"])
            if leftovers:
                failures.append(f"run {i + 1}: {leftovers} process(es) still running after `down` (killed)")
        # baseline: the API alone, spawn to first 200
        group = ProcessGroup()
        env_api = dict(env, APPLIANCE_API__PORT=str(free_port()))
        try:
            start = time.perf_counter()
            group.spawn([APPLIANCE, "api"], env=env_api, cwd=run_dir)
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                try:
                    if get(int(env_api["APPLIANCE_API__PORT"]), PATH, timeout=1).status == 200:
                        api_times.append(time.perf_counter() - start)
                        break
                except OSError:
                    time.sleep(0.01)
        finally:
            group.stop()
    lines = [
        f"`appliance up` (fresh data dir, embedded defaults) to ready, then `appliance down`; {runs} runs",
        "",
        "| step | median s | max s | goal |",
        "|---|---:|---:|---|",
    ]
    if up_times:
        verdict = "ok" if median(up_times) < GOAL_UP_S else "**missed**"
        lines.append(
            f"| `appliance up` | {median(up_times):.2f} | {max(up_times):.2f} "
            f"| < {GOAL_UP_S:g} s: {verdict} |"
        )
    if down_times:
        lines.append(f"| `appliance down` | {median(down_times):.2f} | {max(down_times):.2f} | |")
    if api_times:
        lines.append(
            f"| baseline: `appliance api` spawn to first 200 | {median(api_times):.2f} "
            f"| {max(api_times):.2f} | |"
        )
    if failures:
        lines += ["", "Failures:", *(f"* {f}" for f in failures)]
    return "\n".join(lines)


def _run(args: list[str], env: dict[str, str], timeout: float) -> tuple[int, str]:
    try:
        done = subprocess.run(
            [APPLIANCE, *args], env=env, capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired:
        return 124, f"timed out after {timeout:g} s"
    return done.returncode, done.stdout + done.stderr


def _kill_by_data_dir(data_dir: str) -> int:
    """SIGKILL the process group of every process whose environment names ``data_dir`` (unique to a run)."""
    marker = f"APPLIANCE_DATA_DIR={data_dir}".encode()
    me = os.getpid()
    killed = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == me:
            continue
        try:
            environ = (entry / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if marker in environ:
            pid = int(entry.name)
            try:
                os.killpg(os.getpgid(pid), signal.SIGKILL)
                killed += 1
            except (ProcessLookupError, PermissionError):
                pass
    return killed


# -- main ---------------------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=float, default=10, help="seconds per wrk run (default 10)")
    parser.add_argument("--connections", type=int, default=64, help="wrk -c (default 64)")
    parser.add_argument("--threads", type=int, default=2, help="wrk -t (default 2)")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds (default 3)")
    parser.add_argument(
        "--processes", default="1,2", help="server process counts, comma-separated (default 1,2)"
    )
    parser.add_argument("--warmup", type=float, default=3, help="seconds of wrk per server before measuring")
    parser.add_argument(
        "--stderr",
        choices=("file", "devnull"),
        default="file",
        help="where the appliance's stderr (its JSON logs) goes (default: a file in the temp dir)",
    )
    parser.add_argument("--help-runs", type=int, default=20, help="runs of `appliance --help` (default 20)")
    parser.add_argument("--up-runs", type=int, default=3, help="runs of `appliance up`/`down` (default 3)")
    parser.add_argument("--no-up", action="store_true", help="skip the `appliance up` benchmark")
    parser.add_argument("--no-api", action="store_true", help="skip the throughput benchmark")
    parser.add_argument(
        "--fd-control",
        action="store_true",
        help="for N > 1 also run the bare app on a shared inherited socket: as `uvicorn fd=` "
        "(what `appliance api --fd` does) and as a socket object (Server.run(sockets=...))",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (logs) and print its path")
    args = parser.parse_args()
    if shutil.which("wrk") is None and not args.no_api:
        print("bench_api: wrk is not installed (apt-get install wrk)", file=sys.stderr)
        return 2
    processes = [int(p) for p in args.processes.split(",") if p.strip()]

    work = Path(tempfile.mkdtemp(prefix="bench-api-"))
    sections: list[str] = []
    try:
        base_env = prepare_appliance(work)
        if not args.no_api:
            by_procs: dict[int, list[Server]] = {}
            for procs in processes:
                print(f"measuring with {procs} server process(es)...", flush=True)
                by_procs[procs] = bench_throughput(args, work, base_env, procs)
            sections.append(throughput_table(by_procs, args))
            if args.stderr == "file":
                sizes = {p.name: p.stat().st_size for p in work.glob("appliance-*.log")}
                sections.append("Appliance stderr written: " + ", ".join(
                    f"{name} {size / 1e6:.1f} MB" for name, size in sorted(sizes.items())))  # fmt: skip
        sections.append(bench_help(args.help_runs, base_env))
        if not args.no_up:
            sections.append(bench_up(work, args.up_runs))
    except BenchError as exc:
        print(f"bench_api: error: {exc}", file=sys.stderr)
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
