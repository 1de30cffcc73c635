"""Read a services TOML file into frozen program specs, with one clear `SpecError` per mistake."""

from __future__ import annotations

import os
import re
import signal
import sys
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from appliance.supervisor.containerspec import CONTAINER_KEYS, ContainerSpec, parse_container
from appliance.supervisor.logpolicy import load_log_policy
from appliance.supervisor.metrics import parse_metrics
from appliance.supervisor.specvalues import STOP_SIGNALS, Context, SpecError, type_name

__all__ = [
    "STOP_SIGNALS",
    "ContainerSpec",
    "HealthSpec",
    "ProgramSpec",
    "ReadySpec",
    "ServicesSpec",
    "SpecError",
]

PROGRAM_KEYS = (
    "command",
    "cwd",
    "user",
    "environment",
    "env_files",
    "instances",
    "listen",
    "restart",
    "success_exit_codes",
    "stop_signal",
    "stop_timeout",
    "memory_limit",
    "depends_on",
    "ready",
    "health",
    "kind",
    "when_down",
    *CONTAINER_KEYS,
)
WHEN_DOWN = ("hold", "http-503")
READY_KEYS = ("http", "tcp", "command", "notify", "timeout", "interval")
HEALTH_KEYS = ("http", "tcp", "command", "interval", "failures")
RESTART_POLICIES = ("always", "on-failure", "never")
KINDS = ("process", "container")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")


@dataclass(frozen=True)
class ReadySpec:
    """One check of a process (readiness or health): an HTTP GET, a TCP connect or a command."""

    kind: str  # "http" | "tcp" | "command" | "notify"
    url: str = ""  # kind == "http"
    host: str = ""  # kind == "tcp"
    port: int = 0  # kind == "tcp"
    argv: tuple[str, ...] = ()  # kind == "command"
    timeout: float = 30.0  # readiness: seconds from spawn before the start counts as failed
    interval: float = 0.1  # seconds between two attempts


@dataclass(frozen=True)
class HealthSpec:
    """A periodic check of a ready process; `failures` failed checks in a row restart it."""

    check: ReadySpec
    interval: float = 10.0
    failures: int = 3


@dataclass(frozen=True)
class ProgramSpec:
    """One supervised program: what to run, how many, and how to restart and stop it."""

    name: str
    command: tuple[str, ...]
    cwd: str | None = None
    environment: Mapping[str, str] = field(default_factory=dict)
    instances: int = 1
    restart: str = "always"
    success_exit_codes: frozenset[int] = frozenset({0})
    stop_signal: signal.Signals = signal.SIGTERM
    stop_timeout: float = 10.0
    depends_on: tuple[str, ...] = ()
    ready: ReadySpec | None = None
    kind: str = "process"  # "process", or "container": run through the Docker engine by a helper process
    container: ContainerSpec | None = None  # the image and its wiring, for kind == "container"
    listen: tuple[str, int] | None = None  # a TCP listener bound once and shared by every instance as fd 3
    user: str | None = None  # run as this user (the supervisor must be root)
    memory_limit: int | None = None  # bytes of RSS of the process group; above it, the instance restarts
    health: HealthSpec | None = None
    # What a client connecting to `listen` gets while no instance is up (stopped, backing off, crash-looping):
    # "hold" leaves it waiting in the backlog; "http-503" answers at once (standby.py).
    when_down: str = "hold"

    def label(self, index: int) -> str:
        """The name of one instance in logs and file names: `api`, or `api-2` when there are several."""
        return self.name if self.instances == 1 else f"{self.name}-{index}"


@dataclass(frozen=True)
class ServicesSpec:
    """Every program of a services file, dependencies before their dependents."""

    path: str
    programs: tuple[ProgramSpec, ...]

    def get(self, name: str) -> ProgramSpec | None:
        """The spec of the program called `name`, if there is one."""
        return next((p for p in self.programs if p.name == name), None)


def default_environ() -> dict[str, str]:
    """The variables `${...}` reads: the supervisor's environment plus a default APPLIANCE_PYTHON."""
    environ = dict(os.environ)
    environ.setdefault("APPLIANCE_PYTHON", sys.executable)
    return environ


def load_services(
    path: str | Path, environ: Mapping[str, str] | None = None, root: bool | None = None
) -> ServicesSpec:
    """Parse and check the services file at `path`; raise `SpecError` on the first problem found.

    `root` says whether the supervisor runs as root (`user` needs it); by default, the effective uid's.
    """
    where = str(path)
    try:
        with open(path, "rb") as handle:
            data = tomllib.load(handle)
    except OSError as exc:
        raise SpecError(f"{where}: cannot read the services file: {exc.strerror or exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(f"{where}: invalid TOML: {exc}") from exc
    return parse_services(data, where, default_environ() if environ is None else environ, root)


def parse_services(
    data: Mapping[str, Any], where: str, environ: Mapping[str, str], root: bool | None = None
) -> ServicesSpec:
    """Check already-decoded TOML `data`; `where` names its source in error messages."""
    for key in data:
        if key not in ("programs", "metrics", "logs"):
            raise SpecError(f"{where}: unknown top-level key {key!r} (allowed: programs, metrics, logs)")
    parse_metrics(data, where)  # checked now, so that --check and start-up refuse a bad [metrics] table
    load_log_policy(data.get("logs", {}), where)  # checked now too; the runtime's LogManager reads it
    table = data.get("programs", {})
    if not isinstance(table, dict):
        raise SpecError(f"{where}: 'programs' must be a table of [programs.<name>] sections")
    as_root = os.geteuid() == 0 if root is None else root
    programs: dict[str, ProgramSpec] = {}
    for name, body in table.items():
        ctx = Context(where, name, environ, as_root)
        if not _NAME.match(name):
            ctx.fail("the name may hold only letters, digits, '-' and '_'")
        if not isinstance(body, dict):
            ctx.fail("must be a table ([programs.<name>])")
        programs[name] = _parse_program(ctx, body)
    for spec in programs.values():
        for dep in spec.depends_on:
            if dep not in programs:
                known = ", ".join(sorted(programs))
                raise SpecError(
                    f"{where}: program {spec.name!r}: unknown dependency {dep!r} (programs: {known})"
                )
    listeners: dict[tuple[str, int], str] = {}
    for spec in programs.values():
        if spec.listen is not None:
            other = listeners.setdefault(spec.listen, spec.name)
            if other != spec.name:
                raise SpecError(
                    f"{where}: program {spec.name!r}: 'listen' {spec.listen[0]}:{spec.listen[1]} "
                    f"is already program {other!r}'s"
                )
    return ServicesSpec(where, tuple(programs[n] for n in _dependency_order(where, programs)))


def _parse_program(ctx: Context, body: dict[str, Any]) -> ProgramSpec:
    ctx.check_keys(body, PROGRAM_KEYS, "")
    kind, container = _parse_kind(ctx, body)
    environment: dict[str, str] = {}
    files = body.get("env_files", [])
    if not isinstance(files, list):
        ctx.fail(f"'env_files' must be a list of paths, not {type_name(files)}")
    for i, item in enumerate(files):
        environment.update(ctx.env_file(ctx.text(f"env_files[{i}]", item)))
    env = body.get("environment", {})
    if not isinstance(env, dict):
        ctx.fail(f"'environment' must be a table of NAME = \"value\", not {type_name(env)}")
    for key, value in env.items():
        if isinstance(value, bool):
            value = "true" if value else "false"  # noqa: PLW2901
        elif isinstance(value, int | float):
            value = str(value)  # noqa: PLW2901
        environment[key] = ctx.text(f"environment.{key}", value)
    restart = body.get("restart", "always")
    if restart not in RESTART_POLICIES:
        ctx.fail(f"'restart' must be one of {', '.join(RESTART_POLICIES)}, not {restart!r}")
    codes = body.get("success_exit_codes", [0])
    if not isinstance(codes, list) or not all(
        isinstance(c, int) and not isinstance(c, bool) and 0 <= c <= 255 for c in codes
    ):
        ctx.fail(f"'success_exit_codes' must be a list of exit codes 0-255, not {codes!r}")
    deps = body.get("depends_on", [])
    if not isinstance(deps, list) or not all(isinstance(d, str) for d in deps):
        ctx.fail(f"'depends_on' must be a list of program names, not {deps!r}")
    cwd, user, limit = body.get("cwd"), body.get("user"), body.get("memory_limit")
    return ProgramSpec(
        name=ctx.program,
        # A container's command replaces its image's CMD; none keeps the image's own.
        command=() if "command" not in body else ctx.argv("command", body["command"]),
        cwd=None if cwd is None else ctx.text("cwd", cwd),
        environment=environment,
        instances=ctx.count("instances", body.get("instances", 1)),
        restart=restart,
        success_exit_codes=frozenset(codes),
        stop_signal=ctx.stop_signal(body.get("stop_signal", "TERM")),
        stop_timeout=ctx.number("stop_timeout", body.get("stop_timeout", 10.0)),
        depends_on=tuple(dict.fromkeys(deps)),
        ready=None if "ready" not in body else _parse_ready(ctx, body["ready"], container is not None),
        kind=kind,
        container=container,
        listen=None if "listen" not in body else ctx.address("listen", body["listen"]),
        user=None if user is None else ctx.user("user", user),
        memory_limit=None if limit is None else ctx.size("memory_limit", limit),
        health=None if "health" not in body else _parse_health(ctx, body["health"]),
        when_down=_parse_when_down(ctx, body),
    )


def _parse_kind(ctx: Context, body: dict[str, Any]) -> tuple[str, ContainerSpec | None]:
    """The program's kind, and its container's keys when it is one."""
    kind = body.get("kind", "process")
    if kind not in KINDS:
        ctx.fail(f"'kind' must be one of {', '.join(KINDS)}, not {kind!r}")
    if kind == "container":
        return kind, parse_container(ctx, body, ctx.count("instances", body.get("instances", 1)))
    extra = next((key for key in CONTAINER_KEYS if key in body), None)
    if extra is not None:
        ctx.fail(f'{extra!r} is for container programs only (kind = "container")')
    if "command" not in body:
        ctx.fail('missing \'command\' (the program\'s argv, e.g. command = ["/usr/bin/prog", "--flag"])')
    return kind, None


def _parse_when_down(ctx: Context, body: dict[str, Any]) -> str:
    when_down = body.get("when_down", "hold")
    if when_down not in WHEN_DOWN:
        ctx.fail(f"'when_down' must be one of {', '.join(WHEN_DOWN)}, not {when_down!r}")
    if when_down != "hold" and "listen" not in body:
        ctx.fail(f"'when_down = \"{when_down}\"' needs 'listen' (the socket the supervisor answers on)")
    return str(when_down)


def _parse_ready(ctx: Context, body: object, container: bool) -> ReadySpec:
    table = _table(ctx, "ready", body, READY_KEYS)
    timeout = ctx.number("ready.timeout", table.get("timeout", 30.0))
    interval = ctx.number("ready.interval", table.get("interval", 0.1))
    if "notify" in table:
        # The process says READY=1 itself on the notify socket (sd_notify): the only readiness that tells
        # apart instances sharing one listening socket, where any of them may answer an http or tcp probe.
        if table["notify"] is not True or len(set(table) & {"http", "tcp", "command"}):
            ctx.fail("'ready.notify' must be true and stand alone (not with http, tcp or command)")
        if container:
            ctx.fail(
                "'ready.notify' does not apply to a container program (probe it with http, tcp or command)"
            )
        return ReadySpec("notify", timeout=timeout, interval=interval)
    return _parse_check(ctx, "ready", table, timeout, interval)


def _parse_health(ctx: Context, body: object) -> HealthSpec:
    table = _table(ctx, "health", body, HEALTH_KEYS)
    interval = ctx.number("health.interval", table.get("interval", 10.0))
    failures = ctx.count("health.failures", table.get("failures", 3))
    return HealthSpec(_parse_check(ctx, "health", table, 30.0, interval), interval, failures)


def _table(ctx: Context, section: str, body: object, keys: tuple[str, ...]) -> dict[str, Any]:
    if not isinstance(body, dict):
        ctx.fail(f"{section!r} must be a table ([programs.{ctx.program}.{section}]), not {type_name(body)}")
    ctx.check_keys(body, keys, f"{section}.")
    return body


def _parse_check(
    ctx: Context, section: str, body: dict[str, Any], timeout: float, interval: float
) -> ReadySpec:
    kinds = [k for k in ("http", "tcp", "command") if k in body]
    if len(kinds) != 1:
        ctx.fail(f"{section!r} needs exactly one of http, tcp or command")
    kind = kinds[0]
    if kind == "command":
        argv = ctx.argv(f"{section}.command", body["command"])
        return ReadySpec("command", argv=argv, timeout=timeout, interval=interval)
    if kind == "http":
        url = ctx.text(f"{section}.http", body["http"])
        if not url.startswith("http://"):
            ctx.fail(f"'{section}.http' must be an http:// URL, not {url!r}")
        return ReadySpec("http", url=url, timeout=timeout, interval=interval)
    host, port = ctx.address(f"{section}.tcp", body["tcp"])
    return ReadySpec("tcp", host=host, port=port, timeout=timeout, interval=interval)


def _dependency_order(where: str, programs: Mapping[str, ProgramSpec]) -> list[str]:
    """Programs sorted so that each comes after its dependencies; a cycle is named in the error."""
    order: list[str] = []
    done: set[str] = set()
    path: list[str] = []

    def visit(name: str) -> None:
        if name in done:
            return
        if name in path:
            cycle = [*path[path.index(name) :], name]
            raise SpecError(f"{where}: program {name!r}: dependency cycle: {' -> '.join(cycle)}")
        path.append(name)
        for dep in programs[name].depends_on:
            visit(dep)
        path.pop()
        done.add(name)
        order.append(name)

    for name in programs:
        visit(name)
    return order
