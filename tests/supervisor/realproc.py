"""Helpers to run the real supervisor with small Python children, and to always clean up after them."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from appliance.client.supervisor import ProgramStatus, SupervisorClient, SupervisorUnavailable

REPO = Path(__file__).resolve().parents[2]

CHILD = textwrap.dedent(
    '''
    """A test child: `listen PORT` answers with its pid; `crash` exits 1 saying why on stderr; `ignore`
    ignores TERM; `unready` says X_READY=0 on the notify socket until `<markers>/<name>.recover` exists."""
    import os, signal, socket, sys, time
    mode, name, markers = sys.argv[1], sys.argv[2], sys.argv[3]

    def mark(what):
        with open(os.path.join(markers, f"{name}.{os.getpid()}.{what}"), "w") as f:
            f.write(what)

    def port_open(port):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return True
        except OSError:
            return False

    def stop(signum, frame):
        mark(signal.Signals(signum).name)
        peer = int(os.environ.get("PEER_PORT", "0"))
        if peer:
            mark("peer-up" if port_open(peer) else "peer-down")
        sys.exit(0)

    def say(message):
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
            s.sendto(message.encode(), os.environ["NOTIFY_SOCKET"])

    mark("started")
    if mode == "crash":
        print(f"{name}: starting", flush=True)
        print(f"{name}: fatal: the signing key is the placeholder", file=sys.stderr, flush=True)
        sys.exit(1)
    if mode == "unready":
        say("STATUS=not ready: database unavailable: password authentication failed\\nX_READY=0")
        while not os.path.exists(os.path.join(markers, f"{name}.recover")):
            time.sleep(0.05)
        say("STATUS=ready\\nX_READY=1")
        mode = "sleep"
    signal.signal(signal.SIGTERM, signal.SIG_IGN if mode == "ignore" else stop)
    signal.signal(signal.SIGINT, stop)
    dep = int(os.environ.get("DEP_PORT", "0"))
    if dep:
        mark("dep-up" if port_open(dep) else "dep-down")
    time.sleep(float(os.environ.get("DELAY", "0")))
    print(f"{name} starting", flush=True)
    print(f"{name} warning", file=sys.stderr, flush=True)
    if mode == "sleep":
        while True:
            time.sleep(60)
    port = int(sys.argv[4])
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", port))
    s.listen(16)
    while True:
        c, _ = s.accept()
        c.sendall(b"HTTP/1.0 200 OK\\r\\nContent-Type: text/plain\\r\\n\\r\\n" + str(os.getpid()).encode())
        c.close()
    '''
)


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(condition: Callable[[], Any], timeout: float = 20.0, what: str = "condition") -> Any:
    """Poll `condition` until it returns something truthy; fail the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(SupervisorUnavailable, OSError):
            value = condition()
            if value:
                return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.02)


def answer_pid(port: int) -> int | None:
    """The pid the child listening on `port` answers with, None if nothing listens."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as conn:
            data = b""
            while chunk := conn.recv(1024):
                data += chunk
    except OSError:
        return None
    body = data.rsplit(b"\n", 1)[-1]
    return int(body) if body.isdigit() else None


def alive(pid: int) -> bool:
    """`pid` exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except OSError:
        return False


def processes_under(tmp: Path) -> list[int]:
    """Pids whose command line mentions `tmp` (everything a test started carries it)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) != os.getpid():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    cmdline = f.read()
            except OSError:
                continue
            if str(tmp).encode() in cmdline and alive(int(entry)):
                found.append(int(entry))
    return found


class Sandbox:
    """A tmp dir holding the child script, services file, run and log dirs, and every process started."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.child = tmp / "child.py"
        self.child.write_text(CHILD)
        self.markers = tmp / "markers"
        self.markers.mkdir()
        self.run_dir, self.log_dir = tmp / "run", tmp / "log"
        self.services = tmp / "services.toml"
        self.procs: list[subprocess.Popen[bytes]] = []

    def program(
        self, name: str, mode: str = "listen", port: int = 0, extra: str = "", ready: str = ""
    ) -> str:
        """A [programs.<name>] section running the child script."""
        argv = [sys.executable, str(self.child), mode, name, str(self.markers)] + (
            [str(port)] if port else []
        )
        section = f"[programs.{name}]\ncommand = {argv!r}\n{extra}\n".replace("'", '"')
        if ready:
            section += f"[programs.{name}.ready]\n{ready}\n"
        return section

    def write(self, *sections: str) -> None:
        """Write the services file."""
        self.services.write_text("\n".join(sections))

    def start(self, *extra_args: str) -> subprocess.Popen[bytes]:
        """Run the real supervisor as a subprocess."""
        argv = [sys.executable, "-m", "appliance.supervisor", "--services", str(self.services)]
        argv += ["--run-dir", str(self.run_dir), "--log-dir", str(self.log_dir), *extra_args]
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        proc = subprocess.Popen(argv, cwd=self.tmp, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.procs.append(proc)
        return proc

    def start_logging_to(self, journal: Path) -> subprocess.Popen[bytes]:
        """Run the real supervisor with its stderr (what systemd puts in the journal) going to `journal`."""
        argv = [sys.executable, "-m", "appliance.supervisor", "--services", str(self.services)]
        argv += ["--run-dir", str(self.run_dir), "--log-dir", str(self.log_dir)]
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        with journal.open("wb") as err:
            proc = subprocess.Popen(argv, cwd=self.tmp, env=env, stdout=subprocess.DEVNULL, stderr=err)
        self.procs.append(proc)
        return proc

    @property
    def client(self) -> SupervisorClient:
        """A client of the sandbox's control socket."""
        return SupervisorClient(self.run_dir / "control.sock", timeout=30)

    def statuses(self, name: str) -> list[ProgramStatus]:
        """The status rows of program `name`."""
        return [p for p in self.client.status()["programs"] if p["name"] == name]

    def one(self, name: str) -> ProgramStatus:
        """The status row of single-instance program `name`."""
        (row,) = self.statuses(name)
        return row

    def running_pid(self, name: str) -> int | None:
        """The pid of `name` once it is running (and ready)."""
        row = self.one(name)
        return row["pid"] if row["state"] == "running" else None

    def markers_of(self, name: str, what: str) -> list[Path]:
        """Marker files written by children of program `name`."""
        return sorted(self.markers.glob(f"{name}.*.{what}"))

    def cleanup(self) -> None:
        """Stop every supervisor started here, then kill anything left that mentions the tmp dir."""
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            for pipe in (proc.stdout, proc.stderr):
                if pipe is not None:
                    pipe.close()
        for pid in processes_under(self.tmp):
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
