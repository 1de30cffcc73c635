"""The keys of a `kind = "container"` program: good ones become a ContainerSpec and the helper's job (the
Engine API body), each mistake one clear SpecError naming the value."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest

from appliance.supervisor.containerspec import (
    DEFAULT_ENGINE,
    HELPER_ENV,
    ContainerSpec,
    Launch,
    Port,
    container_name,
    launch,
)
from appliance.supervisor.specs import ProgramSpec, SpecError, load_services

REPO = Path(__file__).resolve().parents[2]
HEAD = '[programs.prom]\nkind = "container"\nimage = "prom/prometheus:v2.53.0"\n'


def load(tmp_path: Path, text: str, environ: dict[str, str] | None = None) -> ProgramSpec:
    path = tmp_path / "services.toml"
    path.write_text(text)
    (spec,) = load_services(path, {} if environ is None else environ).programs
    return spec


def error_of(tmp_path: Path, text: str, environ: dict[str, str] | None = None) -> str:
    with pytest.raises(SpecError) as info:
        load(tmp_path, text, environ)
    return str(info.value)


def test_a_container_program_is_read_with_its_image_and_wiring(tmp_path: Path) -> None:
    (tmp_path / "conf").mkdir()
    spec = load(
        tmp_path,
        HEAD
        + f"""command = ["--config.file=/etc/prometheus/prometheus.yml"]
entrypoint = "/bin/prometheus"
environment = {{ TZ = "UTC" }}
ports = ["127.0.0.1:9090:9090", "9091:91/udp", "[::1]:9092:9092/tcp"]
volumes = ["{tmp_path}/conf:/etc/prometheus:ro", "prom-data:/prometheus"]
network = "${{NET}}"
engine = "unix:///run/user/1000/docker.sock"
stop_timeout = 30
memory_limit = "512M"
[programs.prom.ready]
http = "http://127.0.0.1:9090/-/ready"
""",
        {"NET": "monitoring"},
    )
    assert (spec.kind, spec.command) == ("container", ("--config.file=/etc/prometheus/prometheus.yml",))
    assert spec.container == ContainerSpec(
        image="prom/prometheus:v2.53.0",
        engine="/run/user/1000/docker.sock",
        entrypoint=("/bin/prometheus",),
        ports=(Port("127.0.0.1", 9090, 9090), Port("", 9091, 91, "udp"), Port("::1", 9092, 9092)),
        volumes=(f"{tmp_path}/conf:/etc/prometheus:ro", "prom-data:/prometheus"),
        network="monitoring",
    )
    assert [str(p) for p in spec.container.ports] == [
        "127.0.0.1:9090:9090/tcp",
        "9091:91/udp",
        "[::1]:9092:9092/tcp",
    ]
    assert dict(spec.environment) == {"TZ": "UTC"}


def test_the_engine_is_the_supervisors_docker_host_else_dockers_default(tmp_path: Path) -> None:
    plain = load(tmp_path, HEAD)
    assert plain.container is not None
    assert (plain.container.engine, plain.command, plain.container.ports) == (DEFAULT_ENGINE, (), ())
    spec = load(tmp_path, HEAD, {"DOCKER_HOST": "unix:///tmp/engine.sock"})
    assert spec.container is not None
    assert spec.container.engine == "/tmp/engine.sock"
    message = error_of(tmp_path, HEAD, {"DOCKER_HOST": "tcp://10.0.0.5:2375"})
    assert "'engine (from DOCKER_HOST)' must be the engine's Unix socket" in message
    assert "'tcp://10.0.0.5:2375'" in message


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ('kind = "container"\n', "program 'prom': missing 'image'"),
        ('kind = "container"\nimage = "prom prometheus"\n', "'image' must be an image reference such as"),
        ('kind = "vm"\ncommand = ["x"]\n', "'kind' must be one of process, container, not 'vm'"),
        (
            'command = ["x"]\nimage = "prom:1"\n',
            "'image' is for container programs only (kind = \"container\")",
        ),
        ('command = ["x"]\nports = []\n', "'ports' is for container programs only"),
        ('kind = "container"\nimage = "p:1"\ncwd = "/srv"\n', "'cwd' does not apply to a container program"),
        ('kind = "container"\nimage = "p:1"\nuser = "nobody"\n', "'user' does not apply to a container"),
        (
            'kind = "container"\nimage = "p:1"\nlisten = "127.0.0.1:9090"\n',
            "'listen' does not apply to a container program (publish the container's port with 'ports'",
        ),
        (
            'kind = "container"\nimage = "p:1"\nstop_signal = "KILL"\n',
            "'stop_signal' KILL cannot stop a container",
        ),
        ('kind = "container"\nimage = "p:1"\nports = "9090:9090"\n', "'ports' must be a list"),
        (
            'kind = "container"\nimage = "p:1"\nports = ["9090"]\n',
            "'ports[0]' must be \"[HOST_IP:]HOST_PORT:CONTAINER_PORT",
        ),
        (
            'kind = "container"\nimage = "p:1"\nports = ["9090:99999"]\n',
            "(ports from 1 to 65535), not '9090:99999'",
        ),
        ('kind = "container"\nimage = "p:1"\nports = ["9090:9090/sctp"]\n', "not '9090:9090/sctp'"),
        (
            'kind = "container"\nimage = "p:1"\nports = ["localhost:9090:9090"]\n',
            "(HOST_IP an IP address), not 'localhost:9090:9090'",
        ),
        (
            'kind = "container"\nimage = "p:1"\nports = ["9090:9090", "9090:80"]\n',
            "'ports[1]' '9090:80': host port 9090/tcp is published twice",
        ),
        (
            'kind = "container"\nimage = "p:1"\nports = ["9090:9090"]\ninstances = 2\n',
            "'ports' publish fixed host ports, which only one instance can hold (instances = 2)",
        ),
        (
            'kind = "container"\nimage = "p:1"\nports = ["9090:9090"]\nnetwork = "host"\n',
            "'ports' cannot be published on network \"host\"",
        ),
        ('kind = "container"\nimage = "p:1"\nnetwork = "a b"\n', "'network' must be the name of a network"),
        (
            'kind = "container"\nimage = "p:1"\nvolumes = ["data"]\n',
            "'volumes[0]' must be \"SOURCE:TARGET[:OPTIONS]\"",
        ),
        ('kind = "container"\nimage = "p:1"\nvolumes = ["data:rel"]\n', "not 'data:rel'"),
        (
            'kind = "container"\nimage = "p:1"\nvolumes = ["/nonexistent/conf:/etc/conf"]\n',
            "'volumes[0]': /nonexistent/conf does not exist on this host",
        ),
        (
            'kind = "container"\nimage = "p:1"\nvolumes = ["./conf:/etc/conf"]\n',
            "an absolute host path or a volume's name, not './conf'",
        ),
        (
            'kind = "container"\nimage = "p:1"\nvolumes = ["data:/data:rx"]\n',
            "'volumes[0]': unknown option 'rx'",
        ),
        (
            'kind = "container"\nimage = "p:1"\nengine = "tcp://h:2375"\n',
            "'engine' must be the engine's Unix socket",
        ),
        (
            'kind = "container"\nimage = "p:1"\n[programs.prom.ready]\nnotify = true\n',
            "'ready.notify' does not apply",
        ),
    ],
)
def test_each_mistake_is_named(tmp_path: Path, body: str, expected: str) -> None:
    message = error_of(tmp_path, f"[programs.prom]\n{body}")
    assert message.startswith(f"{tmp_path / 'services.toml'}: program 'prom': ")
    assert expected in message


def test_the_helpers_job_is_the_engine_api_body_and_a_stable_name(tmp_path: Path) -> None:
    container = ContainerSpec(
        "prom:1", "/d.sock", ports=(Port("127.0.0.1", 9090, 9090),), volumes=("d:/data",), network="mon"
    )
    job = launch(
        "prom",
        2,
        container,
        command=("--flag",),
        environment={"A": "1"},
        stop_signal=signal.SIGINT,
        stop_timeout=10.0,
        memory_limit=256 << 20,
        run_dir=tmp_path,
    )
    assert job.name == container_name(tmp_path, "prom", 2)
    assert job.name.startswith("forge-")
    assert job.name.endswith("-prom-2")
    assert container_name(tmp_path / "other", "prom", 2) != job.name  # another supervisor's
    assert job.stop_after == 9  # the engine kills it 1 s before the supervisor would kill the helper
    assert job.create["Cmd"] == ["--flag"]
    assert "Entrypoint" not in job.create  # the image's own
    assert job.create["Env"] == ["A=1"]
    assert job.create["StopSignal"] == "SIGINT"
    assert job.create["Labels"] == {
        "forge-appliance.supervisor": str(tmp_path.resolve()),
        "forge-appliance.program": "prom",
        "forge-appliance.instance": "2",
    }
    assert job.create["HostConfig"] == {
        "Binds": ["d:/data"],
        "PortBindings": {"9090/tcp": [{"HostIp": "127.0.0.1", "HostPort": "9090"}]},
        "NetworkMode": "mon",
        "Memory": 256 << 20,
    }
    env = job.to_env()
    assert list(env) == [HELPER_ENV]
    assert Launch.from_json(env[HELPER_ENV]) == job
    assert json.loads(env[HELPER_ENV])["image"] == "prom:1"


def test_the_prometheus_example_of_the_services_file_is_a_valid_container_program(tmp_path: Path) -> None:
    text = (REPO / "config" / "services.toml").read_text()
    example = text[text.index("# [programs.prometheus]") :]
    uncommented = "\n".join(line.removeprefix("# ") for line in example.splitlines() if line != "#")
    conf = tmp_path / "prometheus"
    conf.mkdir()
    spec = load(tmp_path, uncommented.replace("/etc/forge-appliance/prometheus", str(conf)))
    assert spec.container is not None
    assert (spec.kind, spec.container.network, spec.container.engine) == ("container", "host", DEFAULT_ENGINE)
    assert spec.command[0] == "--config.file=/etc/prometheus/prometheus.yml"
    assert spec.ready is not None
    assert spec.ready.url == "http://127.0.0.1:9090/-/ready"
