"""The variables a converge hands to the playbooks: reconfigure's own defaults, under the package source
install.sh recorded (``source.yml`` beside the settings file), under the admin's variables file
(``/etc/forge-appliance/reconfigure.yml``), under ``-e KEY=VALUE``.

The variables file is the one place an admin writes their choices (the roles' variables: ports, hosts,
certificates, ``appliance_config_overrides``...); the appliance role renders ``appliance.toml`` from them.
The recorded source is what lets a plain ``appliance reconfigure`` converge again the host that
``install.sh --production`` converged from its checkout; it never overrides a source the admin names.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from appliance.errors import InvalidInput, NotFound, OperationFailed

#: The admin's variables file, read when it exists and no other is named.
DEFAULT_VARS = Path("/etc/forge-appliance/reconfigure.yml")
#: Where this host keeps the passwords and the signing key the roles generate (root only), when the
#: playbooks run on this host alone: the generated inventory lives in a temporary directory, and the roles'
#: default (next to the inventory) would be lost after every run.
DEFAULT_CREDENTIALS = Path("/etc/forge-appliance/credentials")
CREDENTIALS_VAR = "common_credentials_dir"
#: Written by ``install.sh --production`` beside the settings file: where this host's package comes from.
SOURCE_FILE = "source.yml"
#: The variables that name the package to install (the appliance role takes exactly one of them).
PACKAGE_VARS = ("appliance_source_dir", "appliance_wheel")
#: The variable that tells the appliance role where to write the settings file.
CONFIG_VAR = "appliance_config_file"
#: The address users reach the appliance at, for one host running nginx too: the example single-host
#: inventory's choice, with the HTTPS port when it is not 443 (templated by Ansible).
LOCAL_PUBLIC_URL = (
    "https://{{ nginx_server_name }}"
    "{{ '' if nginx_https_port | int == 443 else ':' ~ (nginx_https_port | string) }}"
)


def parse_extra_vars(pairs: list[str]) -> dict[str, str]:
    """``KEY=VALUE`` strings as a dict; a string without ``=`` or with an empty key is refused by name."""
    found: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise InvalidInput(f"-e {pair!r}: expected KEY=VALUE", details={"value": pair})
        found[key.strip()] = value
    return found


def load_vars_file(path: Path) -> dict[str, Any]:
    """The variables of a YAML file whose top level is a mapping; anything else is refused, naming it."""
    try:
        import yaml  # ansible-core's dependency: present with the production extra
    except ImportError as exc:  # pragma: no cover - the production extra brings it
        raise OperationFailed("PyYAML is not installed: pip install 'forge-appliance[production]'") from exc
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise NotFound(f"the variables file {path} does not exist", details={"path": str(path)}) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInput(
            f"the variables file {path} cannot be read: {exc}", details={"path": str(path)}
        ) from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" (line {where.line + 1})" if where is not None else ""
        raise InvalidInput(
            f"the variables file {path} is not valid YAML{line}: {getattr(exc, 'problem', None) or exc}",
            details={"path": str(path)},
        ) from None
    if data is None:
        return {}  # an empty file (or only comments): no choices yet
    if not isinstance(data, dict) or not all(isinstance(key, str) for key in data):
        raise InvalidInput(
            f"the variables file {path} must be a YAML mapping of variable names to values "
            f"(found {type(data).__name__ if not isinstance(data, dict) else 'a key that is not a name'})",
            details={"path": str(path)},
        )
    return data


def refuse_config_var(source: str, variables: Mapping[str, Any]) -> None:
    """The settings file's path comes from --config or APPLIANCE_CONFIG only, so that every `appliance`
    command run afterwards (and install.sh) reads the file the converge wrote."""
    if CONFIG_VAR in variables:
        raise InvalidInput(
            f"{CONFIG_VAR} in {source}: name the settings file with --config or APPLIANCE_CONFIG instead "
            f"(got {variables[CONFIG_VAR]!r})",
            details={"variable": CONFIG_VAR},
        )


def recorded_source(config_file: Path, *chosen: Mapping[str, Any]) -> tuple[Path, dict[str, str]] | None:
    """The package source install.sh recorded beside ``config_file``, with the file it came from; None when
    there is no such file or when one of ``chosen`` (the variables file, ``-e``) names a source itself. A
    record that names something else, or a directory that is gone, is refused by name."""
    if any(variables.get(name) for variables in chosen for name in PACKAGE_VARS):
        return None
    path = config_file.parent / SOURCE_FILE
    if not path.is_file():
        return None
    recorded = load_vars_file(path)
    others = sorted(set(recorded) - set(PACKAGE_VARS))
    if others or len(recorded) != 1 or not all(isinstance(v, str) and v for v in recorded.values()):
        found = ", ".join(others or sorted(recorded)) or "nothing"
        raise InvalidInput(
            f"{path} must name one package source, appliance_source_dir or appliance_wheel "
            f"(found {found}): run install.sh --production again",
            details={"path": str(path)},
        )
    source = recorded.get("appliance_source_dir")
    if source is not None and not Path(source).is_dir():
        raise NotFound(
            f"the package source {source} recorded in {path} does not exist: run install.sh --production "
            "from the checkout again, or name appliance_source_dir or appliance_wheel in the variables file",
            details={"path": source},
        )
    return path, recorded


def converge_variables(
    config_file: Path,
    vars_file: Mapping[str, Any],
    extra: Mapping[str, str],
    *,
    local: bool,
    source: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Reconfigure's defaults < the recorded package ``source`` < the variables file < ``-e``. This host
    alone (``local``) keeps its credentials in ``/etc/forge-appliance/credentials`` and is reached at its
    nginx's HTTPS address."""
    defaults: dict[str, Any] = {}
    if local:
        defaults = {CREDENTIALS_VAR: str(DEFAULT_CREDENTIALS), "appliance_public_url": LOCAL_PUBLIC_URL}
    return {**defaults, **(source or {}), **vars_file, **extra, CONFIG_VAR: str(config_file)}
