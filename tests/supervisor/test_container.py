"""`kind = "container"` programs under the real supervisor, on the run's real Docker engine.

The containers run the Debian base image (minbase: sh, coreutils, perl; no python): a tiny perl HTTP server
stands for a companion service such as Prometheus. The engine sets up no NAT, so the programs share a
user-defined network of their own, from which the host reaches the published ports.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from appliance.supervisor.containerspec import container_name
from tests.compose.engine import BASE_IMAGE, Engine
from tests.supervisor.realproc import Sandbox, free_port, wait_for

pytestmark = pytest.mark.e2e

# A companion service: answers every HTTP request with $GREETING, says when it starts and stops.
SERVER = r"""
$| = 1;
$SIG{TERM} = sub { print "web: stopping on SIGTERM\n"; exit 0 };
my $s = IO::Socket::INET->new(LocalPort => 8080, Listen => 5, ReuseAddr => 1) or die "listen: $!";
print "web: listening\n";
print STDERR "web: a warning\n";
while (my $c = $s->accept) { print $c "HTTP/1.0 200 OK\r\n\r\n$ENV{GREETING}"; close $c }
"""
SLEEPER = "trap 'echo sleeper: stopping; exit 0' TERM; echo sleeper: up; while :; do sleep 0.2; done"


@pytest.fixture(scope="module")
def network(docker_engine: Engine) -> Iterator[str]:
    """A user-defined network: the host reaches the ports its containers publish."""
    name = f"fa-sup-{secrets.token_hex(3)}"
    docker_engine.docker("network", "create", name)
    try:
        yield name
    finally:
        docker_engine.docker("network", "rm", name, check=False)


@pytest.fixture
def box(sandbox: Sandbox, docker_engine: Engine) -> Iterator[Sandbox]:
    """The sandbox; afterwards its supervisors are stopped and no container of theirs is left."""
    try:
        yield sandbox
    finally:
        sandbox.cleanup()
        label = f"label=forge-appliance.supervisor={sandbox.run_dir.resolve()}"
        left = docker_engine.docker("ps", "-aq", "--filter", label).stdout.split()
        if left:
            docker_engine.docker("rm", "-f", *left)


def program(
    name: str, engine: Engine | str, command: list[str], extra: str = "", image: str = BASE_IMAGE
) -> str:
    """A [programs.<name>] section of kind "container" (on the base image by default)."""
    socket = engine if isinstance(engine, str) else engine.env["DOCKER_HOST"]
    return (
        f'[programs.{name}]\nkind = "container"\nimage = "{image}"\nengine = "{socket}"\n'
        f"command = {json.dumps(command)}\n{extra}\n"
    )


def container_of(box: Sandbox, name: str) -> str:
    row = box.one(name)
    assert row["container"] is not None
    return row["container"]


def inspect(engine: Engine, container: str) -> dict[str, object] | None:
    """`docker inspect` of a container, None if the engine has none by that name or id."""
    done = engine.docker("inspect", container, check=False)
    return json.loads(done.stdout)[0] if done.returncode == 0 else None


def running(engine: Engine, container: str) -> str | None:
    """The id of the container if it runs."""
    found = inspect(engine, container)
    return str(found["Id"]) if found and found["State"]["Running"] else None  # type: ignore[index]


def get(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as response:
        return str(response.read().decode())


def log_of(box: Sandbox, name: str) -> str:
    path = box.log_dir / f"{name}.log"
    return path.read_text() if path.exists() else ""


def test_a_container_program_runs_logs_restarts_reloads_and_stops(
    box: Sandbox, docker_engine: Engine, network: str
) -> None:
    port = free_port()
    web = program(
        "web",
        docker_engine,
        ["perl", "-MIO::Socket::INET", "-e", SERVER],
        f'network = "{network}"\nports = ["127.0.0.1:{port}:8080"]\nstop_timeout = 5\n'
        'environment = { GREETING = "hello from the container" }\n'
        f'[programs.web.ready]\nhttp = "http://127.0.0.1:{port}/"\ntimeout = 60\n'
        f'[programs.web.health]\ntcp = "127.0.0.1:{port}"\ninterval = 1\n',
    )
    crash = program(
        "crash", docker_engine, ["sh", "-c", "echo crash: up; echo 'crash: fatal: no config' >&2; exit 3"]
    )
    box.write(web, crash)
    box.start()

    # Ready through its published port (the readiness probe), with the environment it was given.
    wait_for(lambda: box.one("web")["state"] == "running", timeout=60, what="web running")
    assert get(port) == "hello from the container"
    name = container_of(box, "web")
    first = inspect(docker_engine, name)
    assert first is not None
    labels = first["Config"]["Labels"]  # type: ignore[index]
    assert labels["forge-appliance.program"] == "web"
    assert labels["forge-appliance.supervisor"] == str(box.run_dir.resolve())
    wait_for(lambda: "stderr web: a warning" in log_of(box, "web"), what="web's stderr in its log")
    assert "stdout web: listening" in log_of(box, "web")
    spec = box.client.spec("web")["spec"]
    assert spec["kind"] == "container"
    assert spec["container"]["image"] == BASE_IMAGE
    assert spec["container"]["ports"] == [f"127.0.0.1:{port}:8080/tcp"]
    assert spec["container"]["network"] == network

    # A container that exits non-zero is restarted with backoff, its last words shown.
    def crashed_again() -> bool:
        row = box.one("crash")
        return row["restarts"] >= 2 and row["exit_status"] == 3 and bool(row.get("stderr_tail"))

    wait_for(crashed_again, timeout=60, what="crash restarted twice")
    row = box.one("crash")
    assert row["stderr_tail"][-1] == "crash: fatal: no config"
    assert row["reason"] == "exited with code 3"
    assert log_of(box, "crash").count("stdout crash: up") >= 2

    # A reload replaces the container: the old one stops first (one name, one port), the new one is ready.
    box.client.reload(["web"])
    second = inspect(docker_engine, name)
    assert second is not None
    assert second["Id"] != first["Id"]
    assert box.one("web")["state"] == "running"
    assert get(port) == "hello from the container"

    # `stop` stops the container gracefully (its stop signal reached it) and removes it from the engine.
    box.client.stop(["web", "crash"])
    assert inspect(docker_engine, name) is None
    assert inspect(docker_engine, container_of(box, "crash")) is None
    assert log_of(box, "web").count("stdout web: stopping on SIGTERM") == 2  # the reload's and this one
    assert [box.one(n)["state"] for n in ("web", "crash")] == ["stopped", "stopped"]


def test_a_killed_supervisors_container_is_stopped_or_replaced(box: Sandbox, docker_engine: Engine) -> None:
    box.write(program("sleeper", docker_engine, ["sh", "-c", SLEEPER], "stop_timeout = 5\n"))
    supervisor = box.start()
    wait_for(lambda: box.one("sleeper")["state"] == "running", timeout=60, what="sleeper running")
    name = container_of(box, "sleeper")
    wait_for(lambda: "sleeper: up" in log_of(box, "sleeper"), what="the container's first words")
    assert inspect(docker_engine, name) is not None

    # SIGKILL of the supervisor alone: its helper is told (parent-death signal) and stops the container.
    supervisor.kill()
    supervisor.wait()
    wait_for(lambda: inspect(docker_engine, name) is None, what="the container stopped and removed")

    # SIGKILL of the supervisor and the helper (systemd killing the whole unit): the container is left
    # running; the next start replaces it.
    supervisor = box.start()
    wait_for(lambda: box.one("sleeper")["state"] == "running", timeout=60, what="sleeper running again")
    helper = box.one("sleeper")["pid"]
    assert helper is not None
    left = wait_for(lambda: running(docker_engine, name), what="the new container running")
    supervisor.kill()
    os.kill(helper, signal.SIGKILL)
    supervisor.wait()
    assert running(docker_engine, name) == left
    box.start()
    wait_for(
        lambda: box.one("sleeper")["state"] == "running", timeout=60, what="sleeper running a third time"
    )

    wait_for(lambda: running(docker_engine, name) not in (None, left), what="a new container in its place")
    assert inspect(docker_engine, left) is None
    said = f"stderr removed container {name}, left running by an earlier supervisor"
    wait_for(lambda: said in log_of(box, "sleeper"), what="the helper saying so in the program's log")


def test_a_missing_image_a_dead_engine_or_a_failed_health_check_is_the_reason_shown(
    box: Sandbox, docker_engine: Engine, tmp_path: Path
) -> None:
    socket = docker_engine.env["DOCKER_HOST"].removeprefix("unix://")
    dead = tmp_path / "docker.sock"
    box.write(
        program("noimage", docker_engine, ["true"], image="forge-absent:1"),
        program("noengine", str(dead), ["true"]),
        program("nocommand", docker_engine, ["no-such-command"]),
        # Up, but its health check (a port nothing publishes) fails: restarted like a sick process.
        program(
            "sick",
            docker_engine,
            ["sh", "-c", SLEEPER],
            f'[programs.sick.health]\ntcp = "127.0.0.1:{free_port()}"\ninterval = 1\nfailures = 2\n',
        ),
    )
    box.start()

    def said(name: str) -> str:
        tail = box.one(name).get("stderr_tail") or []
        return tail[-1] if tail else ""

    expected = {
        "noimage": f"image forge-absent:1 is not on the Docker engine at {socket}: build or load it",
        "noengine": f"cannot reach the Docker engine at {dead}: no such file or directory",
        "nocommand": f"cannot start container {container_name(box.run_dir, 'nocommand', 1)}: "
        'exec: "no-such-command": executable file not found in $PATH: unknown',
    }
    for name, line in expected.items():
        wait_for(lambda name=name: said(name), what=f"{name}'s reason")  # type: ignore[misc]
        assert said(name) == line
        assert box.one(name)["exit_status"] == 125
    supervisor_log = (box.log_dir / "supervisor.log").read_text()
    assert f"noimage: exited with code 125: {expected['noimage']}; restarting in" in supervisor_log
    wait_for(lambda: box.one("sick")["restarts"] >= 1, timeout=60, what="sick restarted")
    assert "sick: health check failed 2 times" in (box.log_dir / "supervisor.log").read_text()
    wait_for(lambda: "stdout sleeper: stopping" in log_of(box, "sick"), what="sick stopped with its signal")
