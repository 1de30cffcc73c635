"""The appliances a console can connect to: the local one, or named targets from a targets file.

A targets file (TOML, default `~/.config/forge-appliance/targets.toml`) names each appliance:

    [targets.production]
    api_url = "https://forge.example.com"          # required: where the web API answers
    control_socket = "/var/lib/forge/run/control.sock"  # optional: only when on the same machine
    accent = "red"                                 # optional: the header's colour
    read_only = true                               # optional: open it read-only

A mistake in the file (an unknown key, a URL that is not http(s), a missing api_url) is a `TargetError` that
names the file, the target and the key.
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

LOCAL = "local"
ACCENTS = ("green", "blue", "cyan", "magenta", "yellow", "orange", "red", "purple")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
_KEYS = {"api_url", "control_socket", "accent", "read_only"}


class TargetError(ValueError):
    """A targets file or a target name that cannot be used; the message says where and why."""


@dataclass(frozen=True)
class Target:
    """One appliance: its API, its supervisor's control socket (None when it is on another machine)."""

    name: str
    api_url: str
    control_socket: Path | None = None
    accent: str = "green"
    read_only: bool = False


def config_dir() -> Path:
    """Where the console keeps its files: $XDG_CONFIG_HOME/forge-appliance (~/.config by default)."""
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "forge-appliance"


def default_targets_file() -> Path:
    return config_dir() / "targets.toml"


def check_url(url: str, where: str) -> str:
    """The URL without a trailing slash, or TargetError naming `where`."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise TargetError(f"{where}: {url!r} is not an http(s) URL (e.g. https://forge.example.com)")
    return url.rstrip("/")


def _target(name: str, data: object, where: str) -> Target:
    if not isinstance(data, dict):
        raise TargetError(f"{where}: [targets.{name}] must be a table of keys")
    unknown = sorted(set(data) - _KEYS)
    if unknown:
        keys = ", ".join(sorted(_KEYS))
        raise TargetError(f"{where}: [targets.{name}] has unknown key {unknown[0]!r} (keys: {keys})")
    if "api_url" not in data:
        raise TargetError(f"{where}: [targets.{name}] needs api_url")
    url = data["api_url"]
    if not isinstance(url, str):
        raise TargetError(f"{where}: [targets.{name}] api_url must be a string")
    socket_path = data.get("control_socket")
    if socket_path is not None and not isinstance(socket_path, str):
        raise TargetError(f"{where}: [targets.{name}] control_socket must be a path")
    accent = data.get("accent", "green")
    if accent not in ACCENTS:
        raise TargetError(f"{where}: [targets.{name}] accent {accent!r} is not one of {', '.join(ACCENTS)}")
    read_only = data.get("read_only", False)
    if not isinstance(read_only, bool):
        raise TargetError(f"{where}: [targets.{name}] read_only must be true or false")
    return Target(
        name=name,
        api_url=check_url(url, f"{where}: [targets.{name}] api_url"),
        control_socket=Path(socket_path).expanduser() if socket_path else None,
        accent=accent,
        read_only=read_only,
    )


def load_targets(path: Path) -> dict[str, Target]:
    """Every target of the file, by name; a missing file has none."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise TargetError(f"{path}: cannot read the targets file: {exc.strerror}") from exc
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise TargetError(f"{path}: not valid TOML: {exc}") from exc
    unknown = sorted(set(data) - {"targets"})
    if unknown:
        raise TargetError(f"{path}: unknown key {unknown[0]!r} (the file holds [targets.<name>] tables)")
    targets = data.get("targets", {})
    if not isinstance(targets, dict):
        raise TargetError(f"{path}: 'targets' must be a table of [targets.<name>] tables")
    found: dict[str, Target] = {}
    for name, entry in targets.items():
        if not _NAME.match(name) or name == LOCAL:
            raise TargetError(
                f"{path}: target name {name!r} must be letters, digits, '-', '_' or '.', and not {LOCAL!r}"
            )
        found[name] = _target(name, entry, str(path))
    return found


def choose(name: str, local: Target, path: Path) -> Target:
    """The target called `name` ("local" is this machine's appliance); TargetError lists the known ones."""
    if name == LOCAL:
        return local
    targets = load_targets(path)
    if name not in targets:
        known = ", ".join([LOCAL, *sorted(targets)])
        raise TargetError(f"no target named {name!r} in {path} (known: {known})")
    return targets[name]
