"""Prometheus metrics of the supervised programs and of the supervisor, served on a loopback port.

The services file may hold a `[metrics]` table; without one there is no endpoint:

    [metrics]
    listen = "127.0.0.1:9101"   # loopback only: the endpoint has no authentication

`render()` writes the text exposition format 0.0.4 by hand (no client library: the supervisor is standard
library only). `MetricsServer` answers `GET /metrics` inside the supervisor's own selector loop, one
non-blocking connection at a time, so that metrics never need a thread. The control socket's
`{"cmd": "metrics"}` returns the same text, for the API's `/metrics`.

Per program instance (labels `program` and `index`, the instance's 1-based number; not `instance`, which
Prometheus reserves for the scrape target and would rename ours to `exported_instance`):

    appliance_program_state{state=...}           1 for the current state, 0 for every other State
    appliance_program_restarts_total             respawns after an exit (counter)
    appliance_program_uptime_seconds             since the current process was spawned; 0 when none runs
    appliance_program_cpu_seconds_total          user + system CPU of the process group, including the
                                                 children it reaped; restarts from 0 with a new process
    appliance_program_resident_memory_bytes      RSS summed over the process group (shared pages count
                                                 once per process, as in `ps`)
    appliance_program_crash_looping              1 while it keeps failing soon after every start

For the supervisor: `appliance_supervisor_resident_memory_bytes`, `appliance_supervisor_cpu_seconds_total`,
`appliance_supervisor_uptime_seconds` and `appliance_supervisor_info{version}` (always 1).
"""

from __future__ import annotations

import contextlib
import ipaddress
import math
import selectors
import socket
import time
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from appliance import hostport
from appliance.supervisor.specvalues import SpecError
from appliance.supervisor.states import State
from appliance.supervisor.usage import ProcReader, Usage

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
METRICS_KEYS = ("listen",)
MAX_REQUEST_HEAD = 8192  # bytes: a scraper's request line and headers are far smaller
MAX_CONNECTIONS = 8  # a client that connects and never sends cannot hold more than this many sockets


@dataclass(frozen=True)
class MetricsSpec:
    """Where the metrics endpoint listens."""

    host: str
    port: int


def parse_metrics(data: Mapping[str, Any], where: str) -> MetricsSpec | None:
    """The `[metrics]` table of decoded services-file `data` (None when absent); `SpecError` names the key."""
    if "metrics" not in data:
        return None
    table = data["metrics"]
    if not isinstance(table, dict):
        raise SpecError(f"{where}: 'metrics' must be a table ([metrics] with listen = \"127.0.0.1:9101\")")
    for key in table:
        if key not in METRICS_KEYS:
            raise SpecError(f"{where}: unknown key 'metrics.{key}' (allowed: {', '.join(METRICS_KEYS)})")
    if "listen" not in table:
        raise SpecError(f"{where}: 'metrics.listen' is required, e.g. listen = \"127.0.0.1:9101\"")
    listen = table["listen"]
    if not isinstance(listen, str):
        raise SpecError(f"{where}: 'metrics.listen' must be a \"host:port\" string, not {listen!r}")
    try:
        host, port = hostport.parse(listen)
    except ValueError as exc:
        raise SpecError(f"{where}: 'metrics.listen' must be \"host:port\": {exc}") from None
    if host != "localhost":
        try:
            loopback = ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = False
        if not loopback:
            raise SpecError(
                f"{where}: 'metrics.listen' must be a loopback address (127.0.0.1, [::1] or localhost): "
                f"the endpoint has no authentication; not {listen!r}"
            )
    return MetricsSpec(host, port)


def load_metrics(path: str | Path) -> MetricsSpec | None:
    """The `[metrics]` table of the services file at `path`; `SpecError` if it cannot be read or is wrong."""
    try:
        with open(path, "rb") as handle:
            data = tomllib.load(handle)
    except OSError as exc:
        raise SpecError(f"{path}: cannot read the services file: {exc.strerror or exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(f"{path}: invalid TOML: {exc}") from exc
    return parse_metrics(data, str(path))


def _value(number: float) -> str:
    if math.isnan(number):
        return "NaN"
    if math.isinf(number):
        return "+Inf" if number > 0 else "-Inf"
    if float(number).is_integer() and abs(number) < 1e15:
        return str(int(number))
    return repr(float(number))


def _label(value: object) -> str:
    return str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


class _Family:
    def __init__(self, name: str, kind: str, help_text: str) -> None:
        self.lines = [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]
        self.name = name

    def add(self, value: float, **labels: object) -> None:
        inner = ",".join(f'{k}="{_label(v)}"' for k, v in labels.items())
        self.lines.append(
            f"{self.name}{{{inner}}} {_value(value)}" if inner else f"{self.name} {_value(value)}"
        )


def render(status: Mapping[str, Any], proc: ProcReader | None = None, wall_now: float | None = None) -> str:
    """The exposition text for a control-socket `status` answer (`programs` and `supervisor`)."""
    proc = proc or ProcReader()
    now = time.time() if wall_now is None else wall_now
    programs: list[Mapping[str, Any]] = list(status["programs"])
    me: Mapping[str, Any] = status["supervisor"]
    usage = proc.groups(p["pid"] for p in programs if p.get("pid"))

    state = _Family(
        "appliance_program_state", "gauge", "1 for the state the program instance is in, 0 for others."
    )
    restarts = _Family("appliance_program_restarts_total", "counter", "Respawns after the process exited.")
    uptime = _Family(
        "appliance_program_uptime_seconds",
        "gauge",
        "Seconds since the current process was spawned (0: none).",
    )
    cpu = _Family(
        "appliance_program_cpu_seconds_total",
        "counter",
        "User and system CPU seconds of the process group (reset when the process is replaced).",
    )
    rss = _Family(
        "appliance_program_resident_memory_bytes", "gauge", "Resident memory summed over the process group."
    )
    looping = _Family(
        "appliance_program_crash_looping",
        "gauge",
        "1 while the instance keeps failing soon after each start.",
    )
    for row in programs:
        # Not `instance`: Prometheus sets that label to the scrape target and would rename ours.
        who = {"program": row["name"], "index": row["instance"]}
        for candidate in State:
            state.add(1 if row["state"] == candidate.value else 0, **who, state=candidate.value)
        restarts.add(row["restarts"], **who)
        started = row.get("started_at")
        uptime.add(max(0.0, now - started) if row.get("pid") and started is not None else 0, **who)
        group = usage.get(row["pid"], Usage()) if row.get("pid") else Usage()
        cpu.add(group.cpu_seconds, **who)
        rss.add(group.rss_bytes, **who)
        looping.add(1 if row["crash_looping"] else 0, **who)

    self_usage = proc.process(int(me["pid"]))
    sup_rss = _Family(
        "appliance_supervisor_resident_memory_bytes", "gauge", "Resident memory of the supervisor."
    )
    sup_rss.add(self_usage.rss_bytes)
    sup_cpu = _Family(
        "appliance_supervisor_cpu_seconds_total", "counter", "User and system CPU seconds of the supervisor."
    )
    sup_cpu.add(self_usage.cpu_seconds)
    sup_uptime = _Family(
        "appliance_supervisor_uptime_seconds", "gauge", "Seconds since the supervisor started."
    )
    sup_uptime.add(max(0.0, now - float(me["started_at"])))
    info = _Family("appliance_supervisor_info", "gauge", "The supervisor's version, as a label; always 1.")
    info.add(1, version=me["version"])

    families = (state, restarts, uptime, cpu, rss, looping, sup_rss, sup_cpu, sup_uptime, info)
    return "\n".join(line for family in families for line in family.lines) + "\n"


def _response(status: str, body: bytes, content_type: str, head_only: bool = False) -> bytes:
    head = (
        f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {len(body)}\r\n"
        "Connection: close\r\n\r\n"
    )
    return head.encode() + (b"" if head_only else body)


def answer(request_head: bytes, text: Callable[[], str]) -> bytes:
    """The whole HTTP response to a request head: `GET /metrics` (or HEAD) serves `text()`."""
    line = request_head.split(b"\n", 1)[0].decode("latin-1").strip()
    parts = line.split()
    if len(parts) != 3 or not parts[2].startswith("HTTP/"):
        return _response("400 Bad Request", b"bad request\n", "text/plain")
    method, target = parts[0], parts[1].split("?", 1)[0]
    if target != "/metrics":
        return _response("404 Not Found", b"not found: try /metrics\n", "text/plain")
    if method not in ("GET", "HEAD"):
        return _response("405 Method Not Allowed", b"only GET /metrics\n", "text/plain")
    return _response("200 OK", text().encode(), CONTENT_TYPE, head_only=method == "HEAD")


class _Client:
    """One scrape: read the request head, write the response, close."""

    def __init__(self, server: MetricsServer, sock: socket.socket) -> None:
        self.server, self.sock = server, sock
        self.head, self.out, self.closed = b"", b"", False
        sock.setblocking(False)
        server.selector.register(sock, selectors.EVENT_READ, self.on_event)

    def on_event(self, mask: int) -> None:
        if self.out:
            self._write()
            return
        try:
            data = self.sock.recv(4096)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self.close()
            return
        self.head += data
        # Read the whole head before answering: closing with unread input would reset the connection.
        if b"\r\n\r\n" in self.head or b"\n\n" in self.head or len(self.head) > MAX_REQUEST_HEAD:
            self.out = answer(self.head, self.server.text)
            self.server.selector.modify(self.sock, selectors.EVENT_WRITE, self.on_event)
            self._write()

    def _write(self) -> None:
        try:
            sent = self.sock.send(self.out)
        except BlockingIOError:
            return
        except OSError:
            self.close()
            return
        self.out = self.out[sent:]
        if not self.out:
            with contextlib.suppress(OSError):
                self.sock.shutdown(socket.SHUT_WR)
            self.close()

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.server.selector.unregister(self.sock)
            self.sock.close()
            self.server.clients.remove(self)


class MetricsServer:
    """The HTTP endpoint, driven by the supervisor's selector: accept, read, answer, close."""

    def __init__(self, spec: MetricsSpec, selector: selectors.BaseSelector, text: Callable[[], str]) -> None:
        self.selector, self.text = selector, text
        self.clients: list[_Client] = []
        family = socket.AF_INET6 if ":" in spec.host else socket.AF_INET
        self.sock = socket.create_server((spec.host, spec.port), family=family, backlog=16)
        self.sock.setblocking(False)
        self.port = int(self.sock.getsockname()[1])
        selector.register(self.sock, selectors.EVENT_READ, self._on_accept)

    def _on_accept(self, _mask: int) -> None:
        try:
            conn, _ = self.sock.accept()
        except OSError:
            return
        if len(self.clients) >= MAX_CONNECTIONS:
            self.clients[0].close()  # the oldest is the likeliest to be stuck
        self.clients.append(_Client(self, conn))

    def close(self) -> None:
        """Stop listening and drop every connection."""
        for client in list(self.clients):
            client.close()
        self.selector.unregister(self.sock)
        self.sock.close()


def serve(
    services_path: str,
    selector: selectors.BaseSelector,
    status: Callable[[], Mapping[str, Any]],
    log: Callable[[str], None],
) -> MetricsServer | None:
    """Start the endpoint of the services file's `[metrics]` table, if it has one.

    A busy port or an unreadable table is logged, not fatal: the programs matter more than their metrics.
    """
    try:
        spec = load_metrics(services_path)
    except SpecError as exc:
        log(f"metrics: {exc}; no metrics endpoint")
        return None
    if spec is None:
        return None
    try:
        server = MetricsServer(spec, selector, lambda: render(status()))
    except OSError as exc:
        log(
            f"metrics: cannot listen on {hostport.join(spec.host, spec.port)} ({exc.strerror or exc}); "
            "no metrics endpoint"
        )
        return None
    log(f"metrics: serving http://{hostport.join(spec.host, server.port)}/metrics")
    return server
