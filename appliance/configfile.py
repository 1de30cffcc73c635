"""Find, read and check the settings file, and turn every mistake into one clear error.

The search order is: the ``--config`` option, the ``APPLIANCE_CONFIG`` variable, then ``./appliance.toml``,
``~/.config/forge-appliance/appliance.toml`` and ``/etc/forge-appliance/appliance.toml``. A file named
explicitly must exist; the default locations are optional.
"""

from __future__ import annotations

import json
import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, SecretStr, ValidationError
from pydantic_settings import SettingsError

from appliance.config import Settings, is_list_setting
from appliance.errors import ConfigError

CONFIG_ENV = "APPLIANCE_CONFIG"
#: Variables with the prefix that are not settings keys.
NON_SETTING_VARS = frozenset(
    {
        CONFIG_ENV,
        "APPLIANCE_PYTHON",
        "APPLIANCE_TRACEBACK",
        "APPLIANCE_ADMIN_EMAIL",
        "APPLIANCE_INSTALL_PYTHON",
    }
)  # the last two are install.sh's
#: Settings whose values are never shown (matched anywhere in the variable's name).
SECRET_NAME = re.compile(r"SECRET|PASSWORD|PASSWD|CREDENTIAL|PRIVATE", re.IGNORECASE)


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
        raise _explain(exc, path) from None
    except SettingsError as exc:  # a value the checks above did not foresee: still the environment's
        names = ", ".join(setting_variables(os.environ)) or "none"
        raise ConfigError(
            f"an APPLIANCE_* environment variable cannot be read ({exc}; set: {names})",
            details={"variables": names},
        ) from exc
    return settings


def setting_variables(environ: Mapping[str, str] = os.environ) -> list[str]:
    """The ``APPLIANCE_...`` variables that set settings, sorted."""
    return sorted(name for name in environ if name.startswith("APPLIANCE_") and name not in NON_SETTING_VARS)


def _check_environment(environ: Mapping[str, str]) -> None:
    """Refuse an ``APPLIANCE_...`` variable that names no setting (a typo would otherwise be ignored), and
    one whose value cannot be read as its setting's kind: a section takes a JSON object, a list a JSON
    array or comma-separated values."""
    for name in setting_variables(environ):
        parts = name.removeprefix("APPLIANCE_").lower().split("__")
        model: type[BaseModel] | None = Settings
        annotation: Any = None
        for part in parts:
            field = model.model_fields.get(part) if model is not None else None
            if field is None:
                raise ConfigError(
                    f"environment variable {name} names no setting ({'.'.join(parts)!r} is not a key)",
                    details={"variable": name},
                )
            annotation = field.annotation
            model = annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None
        _check_json(name, environ[name], section=model is not None, listed=is_list_setting(annotation))


def _check_json(name: str, value: str, *, section: bool, listed: bool) -> None:
    """A section's variable must hold a JSON object; a list's, when it opens with ``[``, a JSON array."""
    if not (section or (listed and value.lstrip().startswith("["))):
        return
    expected = "a JSON object of the section's keys" if section else "a JSON array"
    try:
        decoded = json.loads(value)
    except ValueError as exc:
        problem = f"not valid JSON ({exc})"
    else:
        if isinstance(decoded, dict if section else list):
            return
        problem = f"a JSON {type(decoded).__name__}"
    hint = (
        f" (or set one key, e.g. {name}__KEY=value)"
        if section
        else " (or comma-separated values: 10.0.0.0/8,192.168.0.0/16)"
    )
    raise ConfigError(
        f"environment variable {name}: {shown_value(name, value)!r} is {problem}; expected {expected}{hint}",
        details={"variable": name},
    )


def shown_value(name: str, value: str) -> str:
    """An environment variable's value as it may be shown: a secret's masked, a URL's password hidden,
    a section's JSON with its secrets masked."""
    if _secret_key(name):
        return "***" if value else ""
    if value.lstrip().startswith("{"):
        try:
            decoded = json.loads(value)
        except ValueError:
            return "***"  # unreadable: it may hold a secret
        return json.dumps(_scrub_json(decoded), separators=(",", ":"))
    return redact_url(value) if "://" in value else value


def _secret_key(name: str) -> bool:
    return bool(SECRET_NAME.search(name)) and not name.lower().endswith("_file")


def _scrub_json(node: Any) -> Any:
    if isinstance(node, dict):
        return {key: "***" if _secret_key(str(key)) else _scrub_json(item) for key, item in node.items()}
    if isinstance(node, list):
        return [_scrub_json(item) for item in node]
    return redact_url(node) if isinstance(node, str) and "://" in node else node


def sources(path: Path | None, environ: Mapping[str, str] = os.environ) -> list[str]:
    """What the settings come from, for people: the file (or none) and every ``APPLIANCE_...`` variable
    set, which wins over it, secrets masked."""
    lines = [f"file: {path.absolute()}" if path else "file: none (built-in defaults)"]
    names = setting_variables(environ)
    if not names:
        lines.append("environment: no APPLIANCE_* variables")
    for name in names:
        lines.append(f"environment: {name}={shown_value(name, environ[name])}")
    return lines


def _explain(exc: ValidationError, path: Path | None) -> ConfigError:
    """One error naming where the value came from, the key, and what was expected."""
    lines = []
    for err in exc.errors():
        loc = [str(p) for p in err["loc"]]
        key = ".".join(loc)
        env_name = _variable_of(loc, os.environ)
        if env_name is None:
            where = f"{path}: key '{key}'" if path else f"key '{key}'"
        else:
            where = f"environment variable {env_name}"
        if err["type"] == "extra_forbidden":
            allowed = _allowed_keys(loc[:-1])
            lines.append(f"{where}: unknown key (allowed here: {', '.join(allowed)})")
        else:
            given = err.get("input")
            shown = "" if isinstance(given, dict) or _secret_key(key) else f" (got {given!r})"
            lines.append(f"{where}: {err['msg']}{shown}")
    return ConfigError("; ".join(lines), details={"file": str(path) if path else None})


def _variable_of(loc: list[str], environ: Mapping[str, str]) -> str | None:
    """The environment variable that gave the value at ``loc``, if one did: the environment wins over the
    file, so the variable of the key itself or of one of its sections (``APPLIANCE_API='{...}'``), or of
    the list that holds an item (``loc`` ends in the item's index)."""
    for end in range(len(loc), 0, -1):
        name = "APPLIANCE_" + "__".join(loc[:end]).upper()
        if name in environ:
            return name
    return None


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
