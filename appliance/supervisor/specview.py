"""A program's spec as the control socket shows it: a JSON-able dict, with secret-looking values masked.

The spec is the one the supervisor parsed from its services file (variables expanded, env files merged
into `environment`), plus the two policies that apply to every program: restart backoff and log rotation.
A container program's `container` holds its image, entrypoint, published ports, volumes, network and
engine socket (None for a process).
The value of an environment variable whose name holds SECRET, PASSWORD, PASSWD, TOKEN, KEY or CREDENTIAL
becomes "***"; so does the password of a URL (`postgresql://app:***@db/app`) in any other value, argument
or probe URL, since a database URL carries one whatever its variable is called.
"""

from __future__ import annotations

import re
from typing import Any

from appliance import hostport
from appliance.supervisor import containerspec
from appliance.supervisor.backoff import BackoffPolicy
from appliance.supervisor.logpolicy import LogPolicy
from appliance.supervisor.specs import HealthSpec, ProgramSpec, ReadySpec

MASK = "***"
SECRET_WORDS = ("SECRET", "PASSWORD", "PASSWD", "TOKEN", "KEY", "CREDENTIAL")
_URL_PASSWORD = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.-]*://[^/?#@:\s]*:)[^/?#@\s]+@")


def looks_secret(name: str) -> bool:
    """True for a variable name such as API_TOKEN, DB_PASSWORD, SECRET_KEY (case does not matter)."""
    upper = name.upper()
    return any(word in upper for word in SECRET_WORDS)


def mask_url_passwords(text: str) -> str:
    """`text` with the password of every `scheme://user:password@` replaced by ***."""
    return _URL_PASSWORD.sub(lambda m: f"{m['head']}{MASK}@", text)


def _check(check: ReadySpec) -> dict[str, Any]:
    """The kind-specific fields of a readiness or health check."""
    if check.kind == "http":
        return {"kind": "http", "url": mask_url_passwords(check.url)}
    if check.kind == "tcp":
        return {"kind": "tcp", "host": check.host, "port": check.port}
    if check.kind == "command":
        return {"kind": "command", "command": [mask_url_passwords(a) for a in check.argv]}
    return {"kind": check.kind}  # notify: the process says READY=1 itself


def _ready(ready: ReadySpec | None) -> dict[str, Any] | None:
    if ready is None:
        return None
    return {**_check(ready), "timeout": ready.timeout, "interval": ready.interval}


def _health(health: HealthSpec | None) -> dict[str, Any] | None:
    if health is None:
        return None
    return {**_check(health.check), "interval": health.interval, "failures": health.failures}


def _listen(listen: tuple[str, int] | None) -> str | None:
    if listen is None:
        return None
    return hostport.join(*listen)


def spec_view(spec: ProgramSpec, backoff: BackoffPolicy, logs: LogPolicy) -> dict[str, Any]:
    """Every field of `spec`, plus the `backoff` and `logs` policies, as JSON-able values."""
    environment = {
        name: MASK if looks_secret(name) else mask_url_passwords(value)
        for name, value in sorted(spec.environment.items())
    }
    return {
        "name": spec.name,
        "kind": spec.kind,
        "command": [mask_url_passwords(arg) for arg in spec.command],  # a container's: [] keeps the image's
        "container": None if spec.container is None else containerspec.view(spec.container),
        "cwd": spec.cwd,
        "user": spec.user,
        "instances": spec.instances,
        "environment": environment,
        "depends_on": list(spec.depends_on),
        "restart": spec.restart,
        "success_exit_codes": sorted(spec.success_exit_codes),
        "backoff": {
            "base": backoff.base,
            "cap": backoff.cap,
            "stable_after": backoff.stable_after,
            "crash_loop_after": backoff.crash_loop_after,
        },
        "stop_signal": spec.stop_signal.name,
        "stop_timeout": spec.stop_timeout,
        "ready": _ready(spec.ready),
        "health": _health(spec.health),
        "memory_limit": spec.memory_limit,
        "listen": _listen(spec.listen),
        "when_down": spec.when_down,
        "logs": {
            "max_bytes": logs.max_bytes,
            "max_age": logs.max_age,
            "quota_bytes": logs.quota_bytes,
            "compress": logs.compress,
        },
    }
