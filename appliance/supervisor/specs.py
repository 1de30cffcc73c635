"""Read a services TOML file into frozen program specs, with one clear `SpecError` per mistake."""

from __future__ import annotations

import os
import re
import shlex
import signal
import sys
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

from appliance.supervisor.interpolate import BadSubstitution, UndefinedVariable, expand

PROGRAM_KEYS = (
    "command",
    "cwd",
    "environment",
    "env_files",
    "instances",
    "restart",
    "success_exit_codes",
    "stop_signal",
    "stop_timeout",
    "depends_on",
    "ready",
)
READY_KEYS = ("http", "tcp", "command", "timeout", "interval")
RESTART_POLICIES = ("always", "on-failure", "never")
STOP_SIGNALS = ("TERM", "INT", "QUIT", "HUP", "KILL", "USR1", "USR2")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")


class SpecError(ValueError):
    """The services file cannot be used; the message names the file, the program and the problem."""


@dataclass(frozen=True)
class ReadySpec:
    """How to tell that a freshly spawned process is ready to serve."""

    kind: str  # "http" | "tcp" | "command"
    url: str = ""  # kind == "http"
    host: str = ""  # kind == "tcp"
    port: int = 0  # kind == "tcp"
    argv: tuple[str, ...] = ()  # kind == "command"
    timeout: float = 30.0  # seconds from spawn before the start counts as failed
    interval: float = 0.1  # seconds between two probe attempts


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


def load_services(path: str | Path, environ: Mapping[str, str] | None = None) -> ServicesSpec:
    """Parse and check the services file at `path`; raise `SpecError` on the first problem found."""
    where = str(path)
    try:
        with open(path, "rb") as handle:
            data = tomllib.load(handle)
    except OSError as exc:
        raise SpecError(f"{where}: cannot read the services file: {exc.strerror or exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(f"{where}: invalid TOML: {exc}") from exc
    return parse_services(data, where, default_environ() if environ is None else environ)


def parse_services(data: Mapping[str, Any], where: str, environ: Mapping[str, str]) -> ServicesSpec:
    """Check already-decoded TOML `data`; `where` names its source in error messages."""
    for key in data:
        if key != "programs":
            raise SpecError(f"{where}: unknown top-level key {key!r} (allowed: programs)")
    table = data.get("programs", {})
    if not isinstance(table, dict):
        raise SpecError(f"{where}: 'programs' must be a table of [programs.<name>] sections")
    programs: dict[str, ProgramSpec] = {}
    for name, body in table.items():
        ctx = _Context(where, name, environ)
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
    return ServicesSpec(where, tuple(programs[n] for n in _dependency_order(where, programs)))


class _Context:
    """Where a value comes from, to word errors and expand variables."""

    def __init__(self, where: str, program: str, environ: Mapping[str, str]) -> None:
        self.where, self.program, self.environ = where, program, environ

    def fail(self, problem: str) -> NoReturn:
        raise SpecError(f"{self.where}: program {self.program!r}: {problem}")

    def text(self, key: str, value: object) -> str:
        if not isinstance(value, str):
            self.fail(f"{key!r} must be a string, not {_type_name(value)}")
        try:
            return expand(str(value), self.environ)
        except (UndefinedVariable, BadSubstitution) as exc:
            self.fail(f"{key!r}: {exc}")

    def argv(self, key: str, value: object) -> tuple[str, ...]:
        if isinstance(value, str):
            try:
                words = shlex.split(value)
            except ValueError as exc:
                self.fail(f"{key!r}: cannot split the command string: {exc}")
            argv = tuple(self.text(key, word) for word in words)
        elif isinstance(value, list):
            argv = tuple(self.text(f"{key}[{i}]", item) for i, item in enumerate(value))
        else:
            self.fail(f"{key!r} must be a list of strings or a string, not {_type_name(value)}")
        if not argv or not argv[0]:
            self.fail(f"{key!r} is empty")
        return argv

    def number(self, key: str, value: object) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            self.fail(f"{key!r} must be a positive number of seconds, not {value!r}")
        return float(value)


def _parse_program(ctx: _Context, body: dict[str, Any]) -> ProgramSpec:
    _check_keys(ctx, body, PROGRAM_KEYS, "")
    if "command" not in body:
        ctx.fail('missing \'command\' (the program\'s argv, e.g. command = ["/usr/bin/prog", "--flag"])')
    environment: dict[str, str] = {}
    files = body.get("env_files", [])
    if not isinstance(files, list):
        ctx.fail(f"'env_files' must be a list of paths, not {_type_name(files)}")
    for i, item in enumerate(files):
        environment.update(_read_env_file(ctx, ctx.text(f"env_files[{i}]", item)))
    env = body.get("environment", {})
    if not isinstance(env, dict):
        ctx.fail(f"'environment' must be a table of NAME = \"value\", not {_type_name(env)}")
    for key, value in env.items():
        if isinstance(value, bool):
            value = "true" if value else "false"  # noqa: PLW2901
        elif isinstance(value, int | float):
            value = str(value)  # noqa: PLW2901
        environment[key] = ctx.text(f"environment.{key}", value)
    instances = body.get("instances", 1)
    if isinstance(instances, bool) or not isinstance(instances, int) or instances < 1:
        ctx.fail(f"'instances' must be a whole number >= 1, not {instances!r}")
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
    cwd = body.get("cwd")
    return ProgramSpec(
        name=ctx.program,
        command=ctx.argv("command", body["command"]),
        cwd=None if cwd is None else ctx.text("cwd", cwd),
        environment=environment,
        instances=instances,
        restart=restart,
        success_exit_codes=frozenset(codes),
        stop_signal=_parse_signal(ctx, body.get("stop_signal", "TERM")),
        stop_timeout=ctx.number("stop_timeout", body.get("stop_timeout", 10.0)),
        depends_on=tuple(dict.fromkeys(deps)),
        ready=None if "ready" not in body else _parse_ready(ctx, body["ready"]),
    )


def _parse_ready(ctx: _Context, body: object) -> ReadySpec:
    if not isinstance(body, dict):
        ctx.fail(f"'ready' must be a table ([programs.{ctx.program}.ready]), not {_type_name(body)}")
    _check_keys(ctx, body, READY_KEYS, "ready.")
    kinds = [k for k in ("http", "tcp", "command") if k in body]
    if len(kinds) != 1:
        ctx.fail("'ready' needs exactly one of http, tcp or command")
    timeout = ctx.number("ready.timeout", body.get("timeout", 30.0))
    interval = ctx.number("ready.interval", body.get("interval", 0.1))
    kind = kinds[0]
    if kind == "command":
        return ReadySpec(
            "command", argv=ctx.argv("ready.command", body["command"]), timeout=timeout, interval=interval
        )
    address = ctx.text(f"ready.{kind}", body[kind])
    if kind == "http":
        if not address.startswith("http://"):
            ctx.fail(f"'ready.http' must be an http:// URL, not {address!r}")
        return ReadySpec("http", url=address, timeout=timeout, interval=interval)
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        ctx.fail(f"'ready.tcp' must be HOST:PORT, not {address!r}")
    return ReadySpec("tcp", host=host.strip("[]"), port=int(port), timeout=timeout, interval=interval)


def _parse_signal(ctx: _Context, value: object) -> signal.Signals:
    name = value.upper().removeprefix("SIG") if isinstance(value, str) else None
    if name not in STOP_SIGNALS:
        ctx.fail(f"'stop_signal' must be one of {', '.join(STOP_SIGNALS)}, not {value!r}")
    return signal.Signals[f"SIG{name}"]


def _read_env_file(ctx: _Context, path: str) -> dict[str, str]:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        ctx.fail(f"cannot read env file {path!r}: {exc.strerror or exc}")
    values: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.removeprefix("export ").partition("=")
        if not sep or not key.strip():
            ctx.fail(f"env file {path!r}, line {number}: expected KEY=VALUE")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        values[key.strip()] = value
    return values


def _check_keys(ctx: _Context, body: Mapping[str, Any], allowed: tuple[str, ...], prefix: str) -> None:
    for key in body:
        if key not in allowed:
            ctx.fail(f"unknown key '{prefix}{key}' (allowed: {', '.join(allowed)})")


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


def _type_name(value: object) -> str:
    return {dict: "a table", list: "a list", str: "a string", bool: "a boolean"}.get(
        type(value), type(value).__name__
    )
