"""The services view's detail pane as text: a container program's image and wiring beside its spec."""

from __future__ import annotations

import tomllib
from typing import Any

from appliance.supervisor.backoff import BackoffPolicy
from appliance.supervisor.logpolicy import LogPolicy
from appliance.supervisor.specs import parse_services
from appliance.supervisor.specview import spec_view
from console.widgets.program_detail import detail_text

SERVICES = """
[programs.prometheus]
kind = "container"
image = "forge-prometheus:2"
ports = ["127.0.0.1:9090:9090"]
volumes = ["prometheus-data:/prometheus"]
engine = "/run/forge-docker.sock"

[programs.api]
command = ["/usr/bin/python3", "-m", "appliance", "api"]
"""


def answer(name: str) -> dict[str, Any]:
    """The control socket's `spec` answer for ``name``, as the supervisor builds it."""
    programs = parse_services(tomllib.loads(SERVICES), "services.toml", {}).programs
    specs = {spec.name: spec for spec in programs}
    return {"spec": spec_view(specs[name], BackoffPolicy(), LogPolicy()), "exits": []}


def test_a_container_program_shows_its_image_ports_volumes_and_engine() -> None:
    lines = str(detail_text("prometheus", answer("prometheus"))).splitlines()
    assert lines[0] == "prometheus · container"
    assert "image      forge-prometheus:2" in lines
    assert "entrypoint the image's" in lines
    assert "ports      127.0.0.1:9090:9090/tcp" in lines
    assert "volumes    prometheus-data:/prometheus" in lines
    assert "network    the engine's default" in lines
    assert "engine     /run/forge-docker.sock" in lines
    assert "command    the image's" in lines


def test_a_process_shows_no_container_rows() -> None:
    text = str(detail_text("api", answer("api")))
    assert "command    /usr/bin/python3 -m appliance api" in text
    assert "image" not in text
