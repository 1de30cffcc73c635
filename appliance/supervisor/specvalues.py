"""Typed readers for the values of one program in the services file; each mistake is one `SpecError`."""

from __future__ import annotations

import os
import pwd
import re
import shlex
import signal
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NoReturn

from appliance import hostport
from appliance.supervisor.interpolate import BadSubstitution, UndefinedVariable, expand

STOP_SIGNALS = ("TERM", "INT", "QUIT", "HUP", "KILL", "USR1", "USR2")
_SIZE = re.compile(r"^(?P<number>\d+(?:\.\d+)?)\s*(?P<unit>[KMGT]?)(?:i?B)?$", re.IGNORECASE)
_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


class SpecError(ValueError):
    """The services file cannot be used; the message names the file, the program and the problem."""


class Context:
    """Where a value comes from, to word errors and expand variables."""

    def __init__(self, where: str, program: str, environ: Mapping[str, str], root: bool) -> None:
        self.where, self.program, self.environ, self.root = where, program, environ, root

    def fail(self, problem: str) -> NoReturn:
        raise SpecError(f"{self.where}: program {self.program!r}: {problem}")

    def text(self, key: str, value: object) -> str:
        if not isinstance(value, str):
            self.fail(f"{key!r} must be a string, not {type_name(value)}")
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
            self.fail(f"{key!r} must be a list of strings or a string, not {type_name(value)}")
        if not argv or not argv[0]:
            self.fail(f"{key!r} is empty")
        return argv

    def number(self, key: str, value: object) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            self.fail(f"{key!r} must be a positive number of seconds, not {value!r}")
        return float(value)

    def count(self, key: str, value: object) -> int:
        if isinstance(value, str):
            # A count may come from a variable ("${APPLIANCE_API__INSTANCES:-1}"): TOML has no typed
            # substitution, so a string of digits is taken once expanded.
            text = self.text(key, value)
            value = int(text) if text.isdigit() else text
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            self.fail(f"{key!r} must be a whole number >= 1, not {value!r}")
        return value

    def address(self, key: str, value: object) -> tuple[str, int]:
        """`HOST:PORT` (an IPv6 host may be written in brackets) as (host, port)."""
        text = self.text(key, value)
        try:
            return hostport.parse(text)
        except ValueError as exc:
            self.fail(f"{key!r} must be HOST:PORT: {exc}")

    def size(self, key: str, value: object) -> int:
        """Bytes from `512M`, `1.5G`, `65536` (K, M, G, T are powers of 1024)."""
        match = _SIZE.match(value.strip()) if isinstance(value, str) else None
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
        if match is None or float(match["number"]) <= 0:
            self.fail(f'{key!r} must be a size such as "512M" or "2G", not {value!r}')
        return int(float(match["number"]) * _UNITS[match["unit"].upper()])

    def user(self, key: str, value: object) -> str:
        name = self.text(key, value)
        if not self.root:
            self.fail(
                f"{key!r} = {name!r} needs the supervisor to run as root (it runs as uid {os.geteuid()})"
            )
        try:
            pwd.getpwnam(name)
        except KeyError:
            self.fail(f"{key!r}: no such user {name!r}")
        return name

    def stop_signal(self, value: object) -> signal.Signals:
        name = value.upper().removeprefix("SIG") if isinstance(value, str) else None
        if name not in STOP_SIGNALS:
            self.fail(f"'stop_signal' must be one of {', '.join(STOP_SIGNALS)}, not {value!r}")
        return signal.Signals[f"SIG{name}"]

    def env_file(self, path: str) -> dict[str, str]:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            self.fail(f"cannot read env file {path!r}: {exc.strerror or exc}")
        values: dict[str, str] = {}
        for number, raw in enumerate(text.splitlines(), 1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            key, sep, value = line.removeprefix("export ").partition("=")
            if not sep or not key.strip():
                self.fail(f"env file {path!r}, line {number}: expected KEY=VALUE")
            value = value.strip()
            if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
                value = value[1:-1]
            values[key.strip()] = value
        return values

    def check_keys(self, body: Mapping[str, Any], allowed: tuple[str, ...], prefix: str) -> None:
        for key in body:
            if key not in allowed:
                self.fail(f"unknown key '{prefix}{key}' (allowed: {', '.join(allowed)})")


def type_name(value: object) -> str:
    """How a TOML value's type is named in errors."""
    return {dict: "a table", list: "a list", str: "a string", bool: "a boolean"}.get(
        type(value), type(value).__name__
    )
