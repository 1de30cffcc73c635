"""The control socket: newline-delimited JSON requests and responses on `<run_dir>/control.sock` (mode 0600).

Each request is one JSON object on one line; each gets exactly one JSON object on one line, in order. A
connection may carry several requests.

    {"cmd": "status"}
        -> {"ok": true,
            "programs": [{"name": "api", "instance": 1, "state": "running", "pid": 4242,
                          "started_at": 1767225600.5, "restarts": 0, "crash_looping": false,
                          "exit_status": null, "reason": "", "ready": true, "status": "ready",
                          "stderr_tail": [], "container": null}, ...],
            "supervisor": {"pid": 4200, "started_at": 1767225600.1, "version": "0.1.0"}}
        `state` is one of stopped, starting, running, backoff, stopping, exited, fatal. `started_at` is Unix
        seconds (null when no process runs). `exit_status` is the last exit: a code >= 0, or minus the signal
        number that killed it. `reason` says why the instance is where it is ("killed by SIGKILL",
        "command not found: ...", "waiting for db"). `crash_looping` is true while it keeps failing soon
        after every start (it is still retried, every 30 s at most). `ready` is true for a running process
        that has not said it cannot work; `status` is what the process last said with STATUS= on the notify
        socket ("not ready: database unavailable: ..."; see notify.py), "" if nothing. `stderr_tail` holds
        the last lines (5 at most) the last process wrote to stderr before it exited, while the instance is
        backing off, exited or crash-looping; [] otherwise. `container` is the name of the instance's
        container on the Docker engine for a `kind = "container"` program (its `pid` is the helper's that
        runs it), null for a process.
    {"cmd": "status", "usage": true}
        -> the same, each program row also carrying "cpu_seconds": 12.34 (user + system CPU of its process
        group, including children its members reaped; from 0 with each new process) and "rss_bytes":
        52428800 (resident memory summed over the group), both null when no process runs. Without
        "usage" (or with false) the answer is exactly the one above: /proc is not read.
    {"cmd": "start", "names": ["api"]}      -> {"ok": true, "programs": ["api"]}   (answered at once)
        Also starts what the programs depend on. "all" names every program.
    {"cmd": "restart", "names": ["api"]}    -> {"ok": true, "programs": ["api"]}   (answered at once)
    {"cmd": "stop", "names": ["all"]}       -> {"ok": true, "programs": [...]}
        Answered once the programs' processes are gone (dependents stop before their dependencies;
        SIGKILL after each program's stop_timeout).
    {"cmd": "shutdown"}                     -> {"ok": true}
        Stops every program, answers, then the supervisor exits.
    {"cmd": "metrics"}                      -> {"ok": true, "text": "# HELP appliance_program_state ..."}
        The Prometheus text exposition (0.0.4) of every instance and of the supervisor (see metrics.py).
    {"cmd": "logs", "name": "api", "lines": 100, "since": 1767225600.0}
        -> {"ok": true, "lines": ["2026-01-01T00:00:00.123Z stdout ...", ...]}
        The last `lines` lines (default 100, or 10000 with `since`; 10000 at most), at or after `since`
        (Unix seconds, optional), oldest first, reaching into rotated and gzip files as needed. `name` is a
        program (its instances merged by time), an instance label (`api-2`), or "supervisor".
    {"cmd": "logs", "name": "api", "lines": 10, "follow": true}
        -> {"ok": true, "lines": [...]}, then {"line": "..."} for each new line until the client closes.
        The connection carries nothing else afterwards; following survives rotation. A client that reads
        too slowly gets {"ok": false, "error": "dropped: ..."} and the connection is closed.
    {"cmd": "reload", "names": ["api"]}
        -> {"ok": true, "programs": ["api"], "waited_for": [], "joined": false}
        Rolling replacement, one instance at a time: a new process is started and must become ready
        before an old one is stopped (stop_signal, stop_timeout). Answered when the rollout is over; a new
        process that does not become ready ends it with {"ok": false, "error": "reload of api stopped: ..."}
        and the old processes keep running. Reloads never run side by side on one program: asked while a
        reload (or a services-file change) still has a program to roll, it waits for that one, then rolls
        every process again (`waited_for` names those programs); asked while an identical reload waits its
        turn, it joins that one (`joined`: one rollout answers both). A container program's instance is
        stopped first, then its new one started and waited for (a container cannot run twice under its
        name and published ports); one that does not become ready ends the reload the same way, and is
        retried with backoff.
    {"cmd": "reload-config"}
        -> {"ok": true, "changed": ["api"], "added": [], "removed": [], "unchanged": ["worker"]}
        Re-reads the services file (as SIGHUP does). A file with an error (or a `listen` port in use) is
        refused whole with {"ok": false, "error": ...} and nothing running changes. Otherwise changed
        programs are rolled as by "reload", added ones start, removed ones stop, unchanged ones are not
        touched. Answered when the rollouts are over (a failed one: ok false, the lists included).
    {"cmd": "events", "since": 1767225600.0, "follow": false}
        -> {"ok": true, "events": [{"time": 1767225600.5, "kind": "state", "program": "api",
                                   "instance": 1, "message": "starting -> running", ...}, ...]}
        Recent structured events (kinds: state, crash-loop, health, memory, fatal, reload,
        reload-config, ready, standby), at or after `since` (optional). A `state` event into backoff or
        exited and a `crash-loop` event carry `stderr_tail`; a `ready` event says that a process can work
        again or cannot (`ready`, and its `status` words); `standby` says that the supervisor answers a
        `when_down = "http-503"` program's connections itself (no instance is up), or no longer does.
        With "follow": true the connection gets the recent events, then one JSON line per new event until
        the client closes; a client that reads too slowly is dropped.
    {"cmd": "spec", "name": "api"}
        -> {"ok": true,
            "spec": {"name": "api", "kind": "process", "command": ["/usr/bin/python3", "-m", "app"],
                     "container": null, "cwd": null, "user": null, "instances": 2,
                     "environment": {"APP_MODE": "prod", "DATABASE_URL": "postgresql://app:***@db/app",
                                     "SECRET_KEY": "***"},
                     "depends_on": ["db"], "restart": "always", "success_exit_codes": [0],
                     "backoff": {"base": 0.5, "cap": 30.0, "stable_after": 10.0, "crash_loop_after": 5},
                     "stop_signal": "SIGTERM", "stop_timeout": 10.0,
                     "ready": {"kind": "tcp", "host": "127.0.0.1", "port": 8080, "timeout": 30.0,
                               "interval": 0.1},
                     "health": {"kind": "http", "url": "http://127.0.0.1:8080/health/live",
                                "interval": 10.0, "failures": 3},
                     "memory_limit": 536870912, "listen": "127.0.0.1:8080", "when_down": "http-503",
                     "logs": {"max_bytes": 10485760, "max_age": 86400.0, "quota_bytes": 524288000,
                              "compress": true}},
            "exits": [{"time": 1767225601.2, "instance": 1, "pid": 4242, "exit_status": -9,
                       "reason": "killed by SIGKILL", "ran_seconds": 0.7, "expected": false,
                       "stop_reason": null}, ...]}
        The program's spec as parsed from the services file now in force (see specview.py: values of
        secret-looking variables and URL passwords masked); `ready`, `health`, `memory_limit`, `listen`,
        `cwd` and `user` are null when unset; a check holds `url` (http), `host` and `port` (tcp),
        `command` (command) or nothing else (notify). `container` is null for a process; for a
        `kind = "container"` program: {"image": "prom/prometheus:v2.53.0", "entrypoint": null,
        "ports": ["127.0.0.1:9090:9090/tcp"], "volumes": ["prometheus-data:/prometheus"], "network": null,
        "engine": "/var/run/docker.sock"}, and `command` is its command ([]: the image's own).
        `backoff` and `logs` are the policies every program
        shares. `exits`: its last 50 exits (kept in memory only), newest last; `time` is when the process
        was reaped (Unix seconds), `ran_seconds` how long it had run; `exit_status` is a code or minus the
        signal; `expected` is true when the supervisor had asked the process to stop, and `stop_reason`
        says why ("stop asked", "restart asked", "health check failed 3 times", ...; null when unasked).
        An unknown name: {"ok": false, "error": "unknown program 'apx' (programs: api, worker)"}.

Errors: {"ok": false, "error": "unknown command 'frobnicate' (commands: ...)"}; an unknown program name,
a malformed line or a missing field get the same shape, naming the problem.
"""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from appliance.supervisor.metrics import render as render_metrics
from appliance.supervisor.supervisor import UnknownProgram
from appliance.supervisor.usage import with_usage

Reply = Callable[[dict[str, Any]], None]
COMMANDS = (
    "status",
    "start",
    "stop",
    "restart",
    "shutdown",
    "logs",
    "metrics",
    "reload",
    "reload-config",
    "events",
    "spec",
)
Detach = Callable[[], socket.socket]  # hands the connection's socket over (a `logs` follower keeps it)
MAX_REQUEST = 1 << 20


class ControlTarget(Protocol):
    """What the control socket drives; each method answers through `reply`, now or later."""

    def status(self) -> dict[str, Any]:
        """The status answer, without `ok` (and without usage: `with_usage` adds it here)."""

    def spec(self, name: str) -> dict[str, Any]:
        """The `spec` answer (`spec` and `exits`) without `ok`; `UnknownProgram` for a bad name."""

    def start(self, names: list[str], reply: Reply) -> None:
        """Start programs (`UnknownProgram` for a bad name)."""

    def stop(self, names: list[str], reply: Reply) -> None:
        """Stop programs (`UnknownProgram` for a bad name)."""

    def restart(self, names: list[str], reply: Reply) -> None:
        """Restart programs (`UnknownProgram` for a bad name)."""

    def shutdown(self, reply: Reply) -> None:
        """Stop everything, then exit."""

    def reload(self, names: list[str], reply: Reply) -> None:
        """Roll programs one instance at a time (`UnknownProgram` for a bad name)."""

    def reload_config(self, reply: Reply) -> None:
        """Re-read the services file and adopt it, or refuse it."""

    def events_request(self, since: float | None, follow: bool, reply: Reply, detach: Detach | None) -> None:
        """Recent events; with `follow`, keep the connection (through `detach`) and stream new ones."""


def error(message: str) -> dict[str, Any]:
    """An error response."""
    return {"ok": False, "error": message}


def handle(request: object, target: ControlTarget, reply: Reply, detach: Detach | None = None) -> None:
    """Check one decoded request and pass it to `target`."""
    if not isinstance(request, dict) or not isinstance(request.get("cmd"), str):
        reply(error('a request is a JSON object with a "cmd" string, e.g. {"cmd": "status"}'))
        return
    cmd = request["cmd"]
    if cmd == "status":
        _status(request, target, reply)
    elif cmd == "spec":
        _spec(request, target, reply)
    elif cmd == "metrics":
        reply({"ok": True, "text": render_metrics(target.status())})
    elif cmd == "shutdown":
        target.shutdown(reply)
    elif cmd == "reload-config":
        target.reload_config(reply)
    elif cmd == "events":
        _events(request, target, reply, detach)
    elif cmd in ("start", "stop", "restart", "reload"):
        names = request.get("names")
        if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
            reply(error(f'"{cmd}" needs "names": a non-empty list of program names (or ["all"])'))
            return
        try:
            getattr(target, cmd)(names, reply)
        except UnknownProgram as exc:
            reply(error(str(exc)))
    elif cmd == "logs" and hasattr(target, "logs"):
        # Optional on targets (the test fakes have none): `logs(request, reply, detach)`, see logfiles.py.
        target.logs(request, reply, detach)
    else:
        reply(error(f"unknown command {cmd!r} (commands: {', '.join(COMMANDS)})"))


def _status(request: dict[str, Any], target: ControlTarget, reply: Reply) -> None:
    usage = request.get("usage", False)
    if not isinstance(usage, bool):
        reply(error(f'"usage" must be true or false, not {usage!r}'))
        return
    status = target.status()
    reply({"ok": True, **(with_usage(status) if usage else status)})  # /proc is read only when asked


def _events(request: dict[str, Any], target: ControlTarget, reply: Reply, detach: Detach | None) -> None:
    since, follow = request.get("since"), request.get("follow", False)
    if (since is not None and not isinstance(since, int | float)) or not isinstance(follow, bool):
        reply(error('"events" takes "since": Unix seconds (optional) and "follow": true or false'))
        return
    target.events_request(None if since is None else float(since), follow, reply, detach)


def _spec(request: dict[str, Any], target: ControlTarget, reply: Reply) -> None:
    name = request.get("name")
    if not isinstance(name, str) or not name:
        reply(error('"spec" needs "name": a program name'))
        return
    try:
        reply({"ok": True, **target.spec(name)})
    except UnknownProgram as exc:
        reply(error(str(exc)))


class _Connection:
    def __init__(self, server: ControlServer, sock: socket.socket) -> None:
        self.server, self.sock, self.buffer, self.closed = server, sock, b"", False
        sock.setblocking(False)
        server.selector.register(sock, selectors.EVENT_READ, self.on_event)

    def on_event(self, _mask: int) -> None:
        try:
            data = self.sock.recv(65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data or len(self.buffer) > MAX_REQUEST:
            self.close()
            return
        self.buffer += data
        while b"\n" in self.buffer and not self.closed:
            line, self.buffer = self.buffer.split(b"\n", 1)
            if line.strip():
                try:
                    request = json.loads(line)
                except ValueError as exc:
                    self.reply(error(f"the request is not valid JSON: {exc}"))
                    continue
                handle(request, self.server.target, self.reply, self.detach)

    def reply(self, response: dict[str, Any]) -> None:
        if self.closed:
            return
        try:
            self.sock.settimeout(2.0)  # answers are small; a client that never reads is dropped
            self.sock.sendall(json.dumps(response).encode() + b"\n")
            self.sock.setblocking(False)
        except OSError:
            self.close()

    def detach(self) -> socket.socket:
        """Give the socket away (to a log follower): this connection stops reading and answering."""
        self.closed = True
        self.server.selector.unregister(self.sock)
        self.server.connections.discard(self)
        return self.sock

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.server.selector.unregister(self.sock)
            self.sock.close()
            self.server.connections.discard(self)


class ControlServer:
    """Listens on the Unix socket and feeds requests to `target`."""

    def __init__(self, path: Path, selector: selectors.BaseSelector, target: ControlTarget) -> None:
        self.path, self.selector, self.target = path, selector, target
        self.connections: set[_Connection] = set()
        with contextlib.suppress(FileNotFoundError):
            path.unlink()  # left by a dead supervisor; the run dir lock says none is alive
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old = os.umask(0o177)
        try:
            self.sock.bind(str(path))
        finally:
            os.umask(old)
        os.chmod(path, 0o600)
        self.sock.listen(16)
        self.sock.setblocking(False)
        selector.register(self.sock, selectors.EVENT_READ, self.on_accept)

    def on_accept(self, _mask: int) -> None:
        try:
            conn, _ = self.sock.accept()
        except OSError:
            return
        self.connections.add(_Connection(self, conn))

    def close(self) -> None:
        """Stop listening and drop every connection."""
        for conn in list(self.connections):
            conn.close()
        self.selector.unregister(self.sock)
        self.sock.close()
        with contextlib.suppress(OSError):
            self.path.unlink()
