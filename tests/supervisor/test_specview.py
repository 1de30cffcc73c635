"""`{"cmd": "spec"}`: the parsed spec of a services file you wrote, secrets masked, over the real socket."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from appliance.client.supervisor import SupervisorError
from appliance.supervisor.backoff import BackoffPolicy
from appliance.supervisor.logpolicy import LogPolicy
from appliance.supervisor.specs import load_services
from appliance.supervisor.specview import looks_secret, mask_url_passwords, spec_view
from tests.supervisor.realproc import Sandbox, free_port, wait_for


@pytest.mark.parametrize(
    ("name", "secret"),
    [
        ("API_TOKEN", True),
        ("db_password", True),
        ("SECRET", True),
        ("APPLIANCE_SECURITY__SECRET_KEY", True),
        ("SIGNING_KEY", True),
        ("PGPASSWD", True),
        ("AWS_CREDENTIALS", True),
        ("APPLIANCE_MODE", False),
        ("DATABASE_URL", False),
        ("PORT", False),
    ],
)
def test_secret_looking_names(name: str, secret: bool) -> None:
    assert looks_secret(name) is secret


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("postgresql+asyncpg://app:hunter2@db:5432/app", "postgresql+asyncpg://app:***@db:5432/app"),
        ("redis://:s3cret@127.0.0.1:6379/0", "redis://:***@127.0.0.1:6379/0"),
        ("--url=https://u:p@x/y and https://v:q@z", "--url=https://u:***@x/y and https://v:***@z"),
        ("http://127.0.0.1:8080/health", "http://127.0.0.1:8080/health"),  # a port is no password
        ("http://user@host/", "http://user@host/"),
        ("plain text: a:b@c", "plain text: a:b@c"),
    ],
)
def test_url_passwords_are_masked(text: str, masked: str) -> None:
    assert mask_url_passwords(text) == masked


def test_every_field_of_a_written_services_file(tmp_path: Path) -> None:
    (tmp_path / "extra.env").write_text("SIGNING_KEY=abc\nFROM_FILE=1\n")
    path = tmp_path / "services.toml"
    path.write_text(
        f"""
[logs]
max_bytes = "1M"
max_age = "2h"
quota_bytes = "8M"
compress = false

[programs.db]
command = "/bin/db --data /srv"

[programs.web]
command = ["/usr/bin/web", "--db", "postgresql://app:hunter2@db/app"]
cwd = "/srv/web"
env_files = ["{tmp_path}/extra.env"]
instances = 2
depends_on = ["db"]
restart = "on-failure"
success_exit_codes = [3, 0]
stop_signal = "INT"
stop_timeout = 2.5
memory_limit = "512M"
listen = "[::1]:8080"
when_down = "http-503"

[programs.web.environment]
APP_MODE = "prod"
API_TOKEN = "t0k"
DB_PASSWORD = "pw"
DATABASE_URL = "postgresql://app:hunter2@db/app"
PORT = 8080

[programs.web.ready]
tcp = "127.0.0.1:8080"
timeout = 5
interval = 0.5

[programs.web.health]
http = "http://127.0.0.1:8080/health"
interval = 30
failures = 2
"""
    )
    services = load_services(path, {})
    web = services.get("web")
    assert web is not None
    view = spec_view(web, BackoffPolicy(base=1.0, cap=60.0), LogPolicy(1 << 20, 7200.0, 8 << 20, False))
    assert view == {
        "name": "web",
        "kind": "process",
        "command": ["/usr/bin/web", "--db", "postgresql://app:***@db/app"],
        "container": None,
        "cwd": "/srv/web",
        "user": None,
        "instances": 2,
        "environment": {
            "API_TOKEN": "***",
            "APP_MODE": "prod",
            "DATABASE_URL": "postgresql://app:***@db/app",
            "DB_PASSWORD": "***",
            "FROM_FILE": "1",
            "PORT": "8080",
            "SIGNING_KEY": "***",
        },
        "depends_on": ["db"],
        "restart": "on-failure",
        "success_exit_codes": [0, 3],
        "backoff": {"base": 1.0, "cap": 60.0, "stable_after": 10.0, "crash_loop_after": 5},
        "stop_signal": "SIGINT",
        "stop_timeout": 2.5,
        "ready": {"kind": "tcp", "host": "127.0.0.1", "port": 8080, "timeout": 5.0, "interval": 0.5},
        "health": {"kind": "http", "url": "http://127.0.0.1:8080/health", "interval": 30.0, "failures": 2},
        "memory_limit": 512 << 20,
        "listen": "[::1]:8080",
        "when_down": "http-503",
        "logs": {"max_bytes": 1 << 20, "max_age": 7200.0, "quota_bytes": 8 << 20, "compress": False},
    }
    text = json.dumps(view)
    assert not any(secret in text for secret in ("hunter2", "t0k", '"pw"', "abc"))
    db = services.get("db")
    assert db is not None
    plain = spec_view(db, BackoffPolicy(), LogPolicy())
    assert (plain["ready"], plain["health"], plain["listen"], plain["memory_limit"]) == (None,) * 4
    assert plain["when_down"] == "hold"
    assert plain["command"] == ["/bin/db", "--data", "/srv"]
    assert plain["stop_signal"] == "SIGTERM"


def test_a_container_program_shows_its_image_and_wiring(tmp_path: Path) -> None:
    path = tmp_path / "services.toml"
    path.write_text(
        '[programs.prom]\nkind = "container"\nimage = "prom/prometheus:v2.53.0"\n'
        'ports = ["127.0.0.1:9090:9090"]\n'
        'volumes = ["prom-data:/prometheus"]\nenvironment = { ADMIN_PASSWORD = "hunter2" }\n'
    )
    (prom,) = load_services(path, {}).programs
    view = spec_view(prom, BackoffPolicy(), LogPolicy())
    assert (view["kind"], view["command"], view["environment"]) == (
        "container",
        [],
        {"ADMIN_PASSWORD": "***"},
    )
    assert view["container"] == {
        "image": "prom/prometheus:v2.53.0",
        "entrypoint": None,
        "ports": ["127.0.0.1:9090:9090/tcp"],
        "volumes": ["prom-data:/prometheus"],
        "network": None,
        "engine": "/var/run/docker.sock",
    }


def test_the_running_supervisor_answers_with_its_spec_and_names_unknown_programs(sandbox: Sandbox) -> None:
    port = free_port()
    notify = [sys.executable, "-c", "pass"]
    sandbox.write(
        sandbox.program("db", mode="sleep"),
        sandbox.program(
            "web",
            mode="sleep",
            extra=(
                'environment = { SECRET_KEY = "do-not-show", MODE = "test" }\n'
                f'depends_on = ["db"]\nstop_signal = "INT"\nlisten = "127.0.0.1:{port}"\n'
            ),
            ready=f"command = {notify!r}\ntimeout = 7\n".replace("'", '"'),
        ),
        '[logs]\nmax_bytes = "64K"\n',
    )
    sandbox.start()
    wait_for(lambda: sandbox.running_pid("web"), what="web running")
    info = sandbox.client.spec("web")
    spec = info["spec"]
    assert spec["command"] == [sys.executable, str(sandbox.child), "sleep", "web", str(sandbox.markers)]
    assert spec["environment"] == {"MODE": "test", "SECRET_KEY": "***"}
    assert (spec["depends_on"], spec["stop_signal"], spec["listen"]) == (
        ["db"],
        "SIGINT",
        f"127.0.0.1:{port}",
    )
    assert spec["ready"] == {"kind": "command", "command": notify, "timeout": 7.0, "interval": 0.1}
    assert spec["logs"]["max_bytes"] == 64 << 10
    assert spec["backoff"]["cap"] == 30.0
    assert info["exits"] == []
    assert "do-not-show" not in json.dumps(info)
    with pytest.raises(SupervisorError) as caught:
        sandbox.client.spec("wbe")
    assert str(caught.value) == "unknown program 'wbe' (programs: db, web)"
