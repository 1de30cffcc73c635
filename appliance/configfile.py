"""Find, read and check the settings file, and turn every mistake into one clear error.

The search order is: the ``--config`` option, the ``APPLIANCE_CONFIG`` variable, then ``./appliance.toml``,
``~/.config/forge-appliance/appliance.toml`` and ``/etc/forge-appliance/appliance.toml``. A file named
explicitly must exist; the default locations are optional.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, SecretStr, ValidationError

from appliance.config import Settings
from appliance.errors import ConfigError

CONFIG_ENV = "APPLIANCE_CONFIG"
#: Variables with the prefix that are not settings keys.
NON_SETTING_VARS = frozenset({CONFIG_ENV, "APPLIANCE_PYTHON", "APPLIANCE_TRACEBACK"})


def default_locations() -> list[Path]:
    """The files looked for, in order, when none is named."""
    paths = [Path("appliance.toml")]
    if os.geteuid() != 0:
        base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
        paths.append(Path(base) / "forge-appliance" / "appliance.toml")
    paths.append(Path("/etc/forge-appliance/appliance.toml"))
    return paths


def locate(explicit: Path | None, environ: Mapping[str, str] = os.environ) -> Path | None:
    """The settings file to read, or None for the built-in defaults."""
    named = explicit or (Path(environ[CONFIG_ENV]) if environ.get(CONFIG_ENV) else None)
    if named is not None:
        if not named.is_file():
            raise ConfigError(f"config file {named} does not exist", details={"file": str(named)})
        return named
    return next((p for p in default_locations() if p.is_file()), None)


def read_file(path: Path) -> dict[str, Any]:
    """Parse one TOML file, naming the file and the line on a syntax error."""
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}", details={"file": str(path)}) from exc
    except OSError as exc:
        raise ConfigError(f"{path}: cannot be read: {exc.strerror}", details={"file": str(path)}) from exc


def load_settings(explicit: Path | None = None) -> Settings:
    """Build the one Settings object from the file and the environment."""
    path = locate(explicit)
    data = read_file(path) if path else {}
    _check_environment(os.environ)
    try:
        settings = Settings(**data)
    except ValidationError as exc:
        raise _explain(exc, path, data) from None
    return settings


def _check_environment(environ: Mapping[str, str]) -> None:
    """Refuse an ``APPLIANCE_...`` variable that names no setting (a typo would otherwise be ignored)."""
    for name in environ:
        if not name.startswith("APPLIANCE_") or name in NON_SETTING_VARS:
            continue
        parts = name.removeprefix("APPLIANCE_").lower().split("__")
        model: type[BaseModel] | None = Settings
        for part in parts:
            field = model.model_fields.get(part) if model is not None else None
            if field is None:
                raise ConfigError(
                    f"environment variable {name} names no setting ({'.'.join(parts)!r} is not a key)",
                    details={"variable": name},
                )
            annotation = field.annotation
            model = annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None


def _explain(exc: ValidationError, path: Path | None, data: Mapping[str, Any]) -> ConfigError:
    """One error naming where the value came from, the key, and what was expected."""
    lines = []
    for err in exc.errors():
        loc = [str(p) for p in err["loc"]]
        key = ".".join(loc)
        env_name = "APPLIANCE_" + "__".join(loc).upper()
        if _in_file(data, loc) or env_name not in os.environ:
            where = f"{path}: key '{key}'" if path else f"key '{key}'"
        else:
            where = f"environment variable {env_name}"
        if err["type"] == "extra_forbidden":
            allowed = _allowed_keys(loc[:-1])
            lines.append(f"{where}: unknown key (allowed here: {', '.join(allowed)})")
        else:
            given = err.get("input")
            shown = "" if isinstance(given, dict) else f" (got {given!r})"
            lines.append(f"{where}: {err['msg']}{shown}")
    return ConfigError("; ".join(lines), details={"file": str(path) if path else None})


def _in_file(data: Mapping[str, Any], loc: list[str]) -> bool:
    node: Any = data
    for part in loc:
        if not isinstance(node, Mapping) or part not in node:
            return False
        node = node[part]
    return True


def _allowed_keys(section: list[str]) -> list[str]:
    model: type[BaseModel] = Settings
    for part in section:
        annotation = model.model_fields[part].annotation
        assert isinstance(annotation, type)
        assert issubclass(annotation, BaseModel)
        model = annotation
    return sorted(model.model_fields)


def redact_url(url: str) -> str:
    """A URL with its password replaced, for display."""
    scheme, sep, rest = url.partition("://")
    if not sep or "@" not in rest:
        return url
    creds, _, host = rest.rpartition("@")
    user = creds.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}" if ":" in creds else url


def redacted(settings: Settings) -> dict[str, Any]:
    """The effective settings as plain data, with every secret hidden."""
    raw = settings.model_dump(mode="python")

    def scrub(node: Any) -> Any:
        if isinstance(node, dict):
            return {k: scrub(v) for k, v in node.items()}
        if isinstance(node, SecretStr):
            return "***" if node.get_secret_value() else ""
        if isinstance(node, Path):
            return str(node)
        if isinstance(node, tuple):
            return list(node)
        if isinstance(node, str) and "://" in node:
            return redact_url(node)
        return node

    result: dict[str, Any] = scrub(raw)
    return result
