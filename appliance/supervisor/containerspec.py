"""The keys of a `kind = "container"` program, checked one by one, and what its helper is handed to run it.

A container program is run by a helper process of its own (container.py, `python -m
appliance.supervisor.container NAME`), which the supervisor spawns, signals and reaps like any process:
restarts, backoff, log capture, probes and stops need nothing new. The helper creates the container through
the Docker Engine API on a Unix socket, streams its output, and exits with its exit code. This module holds
the part the supervisor needs: the spec, its checks, the container's name and the Engine API body the
helper posts (handed over in the helper's environment, never on its command line, where anyone could read
its environment variables).
"""

from __future__ import annotations

import dataclasses
import hashlib
import ipaddress
import json
import math
import os
import re
import signal
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from appliance import hostport
from appliance.supervisor.specvalues import Context, type_name

CONTAINER_KEYS = ("image", "entrypoint", "ports", "volumes", "network", "engine")
#: Process keys that mean nothing to a container, with what to do instead.
NOT_FOR_CONTAINERS = {
    "cwd": "the image sets the working directory",
    "user": "the image sets the user it runs as",
    "listen": "publish the container's port with 'ports' instead",
    "when_down": "it goes with 'listen', which a container does not take",
}
DEFAULT_ENGINE = "/var/run/docker.sock"
HELPER_ENV = "FORGE_CONTAINER"  # the JSON of a `Launch`, read (and dropped) by the helper
LABEL = "forge-appliance"  # label prefix: <LABEL>.supervisor (its run dir), .program, .instance
STOP_MARGIN = 1.0  # seconds of the program's stop_timeout kept for the helper after the engine's own stop
_IMAGE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/:@+-]*$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_BIND_OPTIONS = frozenset(
    {"ro", "rw", "z", "Z", "nocopy", "shared", "slave", "private", "rshared", "rslave", "rprivate"}
)


@dataclass(frozen=True)
class Port:
    """One published port: the host's `host_ip:host_port` forwards to the container's `port/protocol`."""

    host_ip: str  # "" for every interface (Docker's default)
    host_port: int
    port: int
    protocol: str = "tcp"

    def __str__(self) -> str:
        host = f"{hostport.join(self.host_ip, self.host_port)}" if self.host_ip else str(self.host_port)
        return f"{host}:{self.port}/{self.protocol}"


@dataclass(frozen=True)
class ContainerSpec:
    """What a container program runs: the image and how the engine wires it to this host."""

    image: str
    engine: str  # the path of the Docker engine's Unix socket
    entrypoint: tuple[str, ...] | None = None  # None: the image's ENTRYPOINT
    ports: tuple[Port, ...] = ()
    volumes: tuple[str, ...] = ()  # SOURCE:TARGET[:OPTIONS], SOURCE a host path or a volume's name
    network: str | None = None  # None: the engine's default network


def parse_container(ctx: Context, body: dict[str, Any], instances: int) -> ContainerSpec:
    """The container keys of program `body` (its `kind` is "container"); one `SpecError` per mistake."""
    for key, instead in NOT_FOR_CONTAINERS.items():
        if key in body:
            ctx.fail(f"{key!r} does not apply to a container program ({instead})")
    if "image" not in body:
        ctx.fail("missing 'image' (the image the container runs, e.g. image = \"prom/prometheus:v2.53.0\")")
    image = ctx.text("image", body["image"])
    if not _IMAGE.match(image):
        ctx.fail(f"'image' must be an image reference such as \"prom/prometheus:v2.53.0\", not {image!r}")
    if str(body.get("stop_signal", "TERM")).upper().removeprefix("SIG") == "KILL":
        ctx.fail(
            "'stop_signal' KILL cannot stop a container program: it would kill the helper that stops the "
            "container (use TERM; the engine kills the container after stop_timeout anyway)"
        )
    network = None if "network" not in body else ctx.text("network", body["network"])
    if network is not None and not _NAME.match(network):
        ctx.fail(f"'network' must be the name of a network on the engine, not {network!r}")
    ports = _ports(ctx, body.get("ports", []))
    if ports and network == "host":
        ctx.fail("'ports' cannot be published on network \"host\" (the container uses the host's ports)")
    if ports and instances > 1:
        ctx.fail(
            f"'ports' publish fixed host ports, which only one instance can hold (instances = {instances})"
        )
    return ContainerSpec(
        image=image,
        engine=_engine(ctx, body.get("engine")),
        entrypoint=None if "entrypoint" not in body else ctx.argv("entrypoint", body["entrypoint"]),
        ports=ports,
        volumes=_volumes(ctx, body.get("volumes", [])),
        network=network,
    )


def _engine(ctx: Context, value: object) -> str:
    """The engine's socket path: the key, else the supervisor's DOCKER_HOST, else Docker's own default."""
    if value is None:
        docker_host = ctx.environ.get("DOCKER_HOST", "")
        if not docker_host:
            return DEFAULT_ENGINE
        key, text = "engine (from DOCKER_HOST)", docker_host
    else:
        key, text = "engine", ctx.text("engine", value)
    path = text.removeprefix("unix://")
    if not path.startswith("/"):
        ctx.fail(
            f"{key!r} must be the engine's Unix socket (unix:///var/run/docker.sock or an absolute "
            f"path), not {text!r}"
        )
    return path


def _ports(ctx: Context, value: object) -> tuple[Port, ...]:
    if not isinstance(value, list):
        ctx.fail(f"'ports' must be a list of \"[HOST_IP:]HOST_PORT:CONTAINER_PORT\", not {type_name(value)}")
    ports: list[Port] = []
    for i, item in enumerate(value):
        port = _port(ctx, f"ports[{i}]", ctx.text(f"ports[{i}]", item))
        taken = next(
            (
                p
                for p in ports
                if (p.host_ip, p.host_port, p.protocol) == (port.host_ip, port.host_port, port.protocol)
            ),
            None,
        )
        if taken is not None:
            ctx.fail(f"'ports[{i}]' {item!r}: host port {port.host_port}/{port.protocol} is published twice")
        ports.append(port)
    return tuple(ports)


def _port(ctx: Context, key: str, text: str) -> Port:
    wanted = f'{key!r} must be "[HOST_IP:]HOST_PORT:CONTAINER_PORT[/tcp|/udp]" such as "127.0.0.1:9090:9090"'
    mapping, _, protocol = text.partition("/")
    host, sep, inner = mapping.rpartition(":")
    if not sep or protocol not in ("", "tcp", "udp"):
        ctx.fail(f"{wanted}, not {text!r}")
    host_ip, host_port = "", host
    if ":" in host:
        try:
            host_ip, number = hostport.parse(host)
            ipaddress.ip_address(host_ip)
        except ValueError:
            ctx.fail(f"{wanted} (HOST_IP an IP address), not {text!r}")
        host_port = str(number)
    numbers = []
    for part in (host_port, inner):
        if not part.isascii() or not part.isdigit() or not 1 <= int(part) <= 65535:
            ctx.fail(f"{wanted} (ports from 1 to 65535), not {text!r}")
        numbers.append(int(part))
    return Port(host_ip, numbers[0], numbers[1], protocol or "tcp")


def _volumes(ctx: Context, value: object) -> tuple[str, ...]:
    if not isinstance(value, list):
        ctx.fail(f"'volumes' must be a list of \"SOURCE:TARGET[:ro]\", not {type_name(value)}")
    volumes = []
    for i, item in enumerate(value):
        key = f"volumes[{i}]"
        text = ctx.text(key, item)
        source, _, rest = text.partition(":")
        target, _, option_text = rest.partition(":")
        options = option_text.split(",") if option_text else []
        if not source or not target.startswith("/") or ":" in option_text:
            ctx.fail(
                f'{key!r} must be "SOURCE:TARGET[:OPTIONS]" (TARGET an absolute path in the container), '
                f"not {text!r}"
            )
        if source.startswith("/"):
            if not os.path.exists(source):
                ctx.fail(
                    f"{key!r}: {source} does not exist on this host (the engine would make it an empty "
                    "directory)"
                )
        elif not _NAME.match(source):
            ctx.fail(f"{key!r}: the source must be an absolute host path or a volume's name, not {source!r}")
        bad = [o for o in options if o not in _BIND_OPTIONS]
        if bad:
            ctx.fail(f"{key!r}: unknown option {bad[0]!r} (allowed: {', '.join(sorted(_BIND_OPTIONS))})")
        volumes.append(text)
    return tuple(volumes)


# The helper's job ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Launch:
    """Everything the helper needs to run one instance's container, handed over as JSON."""

    name: str  # the container's name on the engine: the same for every run of this instance
    engine: str
    image: str
    create: dict[str, Any]  # the body of POST /containers/create
    stop_after: int  # seconds the engine waits after the stop signal before it kills the container
    supervisor: int  # the supervisor's pid: the helper stops its container when it is gone

    def to_env(self) -> dict[str, str]:
        """The helper's environment entry carrying this launch."""
        return {HELPER_ENV: json.dumps(dataclasses.asdict(self))}

    @classmethod
    def from_json(cls, text: str) -> Launch:
        data = json.loads(text)
        return cls(**data)


def container_name(run_dir: Path, program: str, index: int) -> str:
    """`forge-<8 hex of the supervisor's run dir>-<program>-<index>`: two supervisors on one engine (two
    appliances, two test runs) never take each other's containers."""
    digest = hashlib.sha256(str(run_dir.resolve()).encode()).hexdigest()[:8]
    return f"forge-{digest}-{program}-{index}"


def launch(
    name: str,
    index: int,
    container: ContainerSpec,
    *,
    command: tuple[str, ...],
    environment: dict[str, str],
    stop_signal: signal.Signals,
    stop_timeout: float,
    memory_limit: int | None,
    run_dir: Path,
) -> Launch:
    """The helper's job for instance `index` of program `name`."""
    host_config: dict[str, Any] = {
        "Binds": list(container.volumes),
        "PortBindings": {
            f"{p.port}/{p.protocol}": [{"HostIp": p.host_ip, "HostPort": str(p.host_port)}]
            for p in container.ports
        },
    }
    if container.network is not None:
        host_config["NetworkMode"] = container.network
    if memory_limit is not None:
        host_config["Memory"] = memory_limit  # the engine kills it above this (exit 137: restarted)
    stop_after = max(0, math.floor(stop_timeout - STOP_MARGIN))
    create: dict[str, Any] = {
        "Image": container.image,
        "Env": [f"{key}={value}" for key, value in environment.items()],
        "Labels": {
            f"{LABEL}.supervisor": str(run_dir.resolve()),
            f"{LABEL}.program": name,
            f"{LABEL}.instance": str(index),
        },
        "ExposedPorts": {f"{p.port}/{p.protocol}": {} for p in container.ports},
        "StopSignal": stop_signal.name,
        "StopTimeout": stop_after,
        "HostConfig": host_config,
        "AttachStdin": False,
        "OpenStdin": False,
        "Tty": False,
    }
    if command:
        create["Cmd"] = list(command)
    if container.entrypoint is not None:
        create["Entrypoint"] = list(container.entrypoint)
    return Launch(
        name=container_name(run_dir, name, index),
        engine=container.engine,
        image=container.image,
        create=create,
        stop_after=stop_after,
        supervisor=os.getpid(),
    )


def helper_command(name: str) -> tuple[str, ...]:
    """The helper's argv: the supervisor's own interpreter; the container's name shows in `ps`."""
    return (sys.executable, "-m", "appliance.supervisor.container", name)


def view(container: ContainerSpec) -> dict[str, Any]:
    """The container keys as the control socket's `spec` answer shows them."""
    return {
        "image": container.image,
        "entrypoint": None if container.entrypoint is None else list(container.entrypoint),
        "ports": [str(p) for p in container.ports],
        "volumes": list(container.volumes),
        "network": container.network,
        "engine": container.engine,
    }
