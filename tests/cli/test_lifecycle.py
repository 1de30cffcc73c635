"""`appliance up`, `status` and `down` as a user runs them: real supervisor, real processes, real HTTP."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from appliance.config import PLACEHOLDER_SECRET
from tests.servers import PostgresServer, start_or_skip
from tests.support import appliance_env, wait_for


def appliance(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "appliance", *args], env=env, capture_output=True, text=True, timeout=180
    )


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0] != "Z"
    except OSError:
        return False


HEAVY = ("sqlalchemy", "alembic", "fastapi", "huey", "uvicorn")


def heavy_modules_loaded(env: dict[str, str], *args: str) -> list[str]:
    """The heavy libraries `appliance <args>` has imported once it is done."""
    code = (
        "import sys\nfrom appliance.cli.main import app\n"
        f"try:\n    app({list(args)!r})\nexcept SystemExit:\n    pass\n"
        f"print('HEAVY', sorted(m for m in {HEAVY!r} if m in sys.modules))"
    )
    run = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    (line,) = [line for line in run.stdout.splitlines() if line.startswith("HEAVY ")]
    loaded: list[str] = json.loads(line.removeprefix("HEAVY ").replace("'", '"'))
    return loaded


@pytest.fixture
def env() -> Iterator[dict[str, str]]:
    environment, data = appliance_env("up")
    yield environment
    appliance("down", env=environment)
    shutil.rmtree(data, ignore_errors=True)


def test_up_status_down(env: dict[str, str]) -> None:
    assert appliance("up", env=env).stderr.startswith("appliance: error: the signing key file")
    appliance("init", env=env)
    refused = appliance("up", env=env)
    assert refused.returncode == 1
    assert "migration(s) pending: run `appliance migrate` first" in refused.stderr
    appliance("migrate", env=env)

    assert appliance("status", env=env).returncode == 3
    up = appliance("up", env=env)
    assert up.returncode == 0, up.stderr
    url = f"http://127.0.0.1:{env['APPLIANCE_API__PORT']}"
    assert f"the appliance is ready at {url}" in up.stdout
    assert httpx.get(f"{url}/health/ready").status_code == 200

    # status and down need the control socket and one HTTP request: no database library, no web framework.
    assert heavy_modules_loaded(env, "status") == []
    status = json.loads(appliance("status", "--json", env=env).stdout)
    states = {p["name"]: p["state"] for p in status["programs"]}
    assert states == {"api": "running", "worker": "running"}
    assert status["ready"] == "ready"
    pids = [p["pid"] for p in status["programs"]] + [status["supervisor"]["pid"]]
    assert all(pid_alive(pid) for pid in pids)

    reread = appliance("supervise", "--reload-config", env=env)  # the run dir comes from the settings
    assert reread.returncode == 0, reread.stderr
    assert json.loads(reread.stdout)["unchanged"] == ["api", "worker"]

    again = appliance("up", env=env)  # idempotent: a second `up` finds it running
    assert again.returncode == 0
    assert "already running" in again.stdout

    down = appliance("down", env=env)
    assert down.stdout.strip() == "the appliance stopped"
    wait_for(lambda: not any(pid_alive(pid) for pid in pids), timeout=30, what="every process to exit")
    assert appliance("down", env=env).stdout.strip() == "the appliance is not running"


def test_status_and_down_of_a_stopped_appliance_load_nothing_heavy(env: dict[str, str]) -> None:
    appliance("init", env=env)
    assert heavy_modules_loaded(env, "status") == []
    assert heavy_modules_loaded(env, "down") == []


def test_up_starts_the_supervisor_before_it_loads_the_database_libraries(env: dict[str, str]) -> None:
    """`up` spends nothing on SQLAlchemy and Alembic before the supervisor starts: the schema check runs
    while the programs start (it still refuses pending migrations: test_up_status_down)."""
    appliance("init", env=env)
    code = (
        "import subprocess, sys\n"
        "class Spawn(subprocess.Popen):\n"
        "    def __init__(self, *args, **kwargs):\n"
        f"        print('AT SPAWN', sorted(m for m in {HEAVY!r} if m in sys.modules), flush=True)\n"
        "        raise SystemExit(9)  # start nothing\n"
        "subprocess.Popen = Spawn\n"
        "from appliance.cli.main import app\n"
        "app(['up'])\n"
    )
    run = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert run.returncode == 9, run.stderr
    assert "AT SPAWN []" in run.stdout, run.stdout


def test_up_refuses_a_port_in_use(env: dict[str, str]) -> None:
    appliance("init", env=env)
    appliance("migrate", env=env)
    with socket.socket() as holder:
        holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        holder.bind(("127.0.0.1", int(env["APPLIANCE_API__PORT"])))
        holder.listen()
        run = appliance("up", env=env)
    assert run.returncode == 1
    assert f"cannot listen on 127.0.0.1:{env['APPLIANCE_API__PORT']}" in run.stderr
    assert "Traceback" not in run.stderr
    assert appliance("status", env=env).returncode == 3  # nothing was left running


def test_up_reports_a_program_that_cannot_start(env: dict[str, str], tmp_path: Path) -> None:
    appliance("init", env=env)
    appliance("migrate", env=env)
    services = tmp_path / "services.toml"
    services.write_text('[programs.api]\ncommand = ["/nonexistent/appliance-api"]\n')
    config = tmp_path / "appliance.toml"
    config.write_text(f'[supervisor]\nservices_file = "{services}"\nready_timeout = 60\n')
    run = appliance("--config", str(config), "up", env=env)
    assert run.returncode == 1
    assert "program api cannot run" in run.stderr
    assert "/nonexistent/appliance-api" in run.stderr
    assert appliance("status", env=env).returncode == 3  # what was started was stopped again


def test_up_gives_up_on_a_crash_looping_program_and_says_why(env: dict[str, str], tmp_path: Path) -> None:
    appliance("init", env=env)
    appliance("migrate", env=env)
    services = tmp_path / "services.toml"
    crash = "import sys; sys.exit('api: cannot start: the answer is 41')"
    services.write_text(
        f'[programs.api]\ncommand = [{json.dumps(sys.executable)}, "-c", {json.dumps(crash)}]\n'
    )
    config = tmp_path / "appliance.toml"
    config.write_text(f'[supervisor]\nservices_file = "{services}"\nready_timeout = 600\n')
    run = appliance("--config", str(config), "up", env=env)
    assert run.returncode == 1
    assert (
        "program api is crash-looping (exited with code 1): api: cannot start: the answer is 41" in run.stderr
    )
    assert appliance("status", env=env).returncode == 3  # what was started was stopped again


# -- failure is loud where the admin looks ------------------------------------------------------------------


@pytest.fixture(scope="module")
def scram_postgres() -> Iterator[PostgresServer]:
    """A PostgreSQL that checks passwords (the session's trusts every local connection)."""
    server = start_or_skip(PostgresServer(auth="scram-sha-256"))
    try:
        yield server
    finally:
        server.close()


def supervise(env: dict[str, str], journal: Path) -> subprocess.Popen[bytes]:
    """`appliance supervise` as the systemd unit runs it, its stderr (the journal) to `journal`."""
    with journal.open("wb") as err:
        return subprocess.Popen(
            [sys.executable, "-m", "appliance", "supervise"], env=env, stdout=subprocess.DEVNULL, stderr=err
        )


def shown(env: dict[str, str]) -> dict[str, str]:
    """Each program's state as the status table shows it."""
    run = appliance("status", "--json", env=env)
    if run.returncode != 0:
        return {}
    return {p["name"]: p["shown_state"] for p in json.loads(run.stdout)["programs"]}


def stop_supervisor(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=120)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def test_a_database_refusing_the_password_shows_not_ready_then_ready(
    scram_postgres: PostgresServer, tmp_path: Path
) -> None:
    pg = scram_postgres
    pg.create_database("loud")
    pg.create_role("loud_app", "right-password")
    env, data = appliance_env("pw")
    env["APPLIANCE_DATABASE__URL"] = pg.url("loud", user="loud_app", password="right-password")
    env["APPLIANCE_DATABASE__MIGRATIONS_URL"] = pg.url("loud")
    for step in ("init", "migrate"):
        assert appliance(step, env=env).returncode == 0
    env["APPLIANCE_DATABASE__URL"] = pg.url("loud", user="loud_app", password="wrong-password")
    journal = tmp_path / "journal"
    proc = supervise(env, journal)
    try:
        wait_for(
            lambda: shown(env) == {"api": "not ready", "worker": "not ready"}, timeout=60, what="not ready"
        )
        table = appliance("status", env=env).stdout
        assert re.search(r"^worker +not ready +\d+ ", table, re.MULTILINE), table
        refused = 'password authentication failed for user "loud_app"'
        for name in ("api", "worker"):
            assert f"{name}: not ready: database unavailable: " in table
            wait_for(lambda n=name: f"{n}: not ready: database unavailable: " in journal.read_text())
        assert refused in table
        assert refused in journal.read_text()
        events = [json.loads(line) for line in appliance("events", "--json", env=env).stdout.splitlines()]
        assert {e["program"] for e in events if e["kind"] == "ready" and e["ready"] is False} == {
            "api",
            "worker",
        }

        pg.execute("ALTER ROLE loud_app PASSWORD 'wrong-password'")  # what the settings say is right now
        wait_for(
            lambda: shown(env) == {"api": "running", "worker": "running"}, timeout=60, what="ready again"
        )
        assert "worker: ready" in journal.read_text()
        assert "not ready" not in appliance("status", env=env).stdout.split("\n\n")[0]
    finally:
        stop_supervisor(proc)
        shutil.rmtree(data, ignore_errors=True)


def test_a_placeholder_signing_key_is_crash_looping_with_its_reason_and_the_port_answers_503(
    tmp_path: Path,
) -> None:
    env, data = appliance_env("key")
    for step in ("init", "migrate"):
        assert appliance(step, env=env).returncode == 0
    key = data / "secrets" / "signing.key"
    key.write_text(PLACEHOLDER_SECRET)
    journal = tmp_path / "journal"
    proc = supervise(env, journal)
    try:
        wait_for(lambda: shown(env).get("api") == "crash-looping", timeout=90, what="the api crash-looping")
        table = appliance("status", env=env).stdout
        assert re.search(r"^api +crash-looping +- ", table, re.MULTILINE), table
        assert "api: crash-looping: exited with code 1" in table
        said = f"appliance: error: the signing key from {key} is the placeholder"
        assert f"    {said}" in table
        assert f"api: crash-looping (5 fast failures; exited with code 1): {said}" in journal.read_text()
        events = [json.loads(line) for line in appliance("events", "--json", env=env).stdout.splitlines()]
        loop = next(e for e in events if e["kind"] == "crash-loop" and e["program"] == "api")
        assert any(said in line for line in loop["stderr_tail"])
        answer = httpx.get(f"http://127.0.0.1:{env['APPLIANCE_API__PORT']}/health/live", timeout=10)
        assert answer.status_code == 503  # no API process: the supervisor answers, the client does not hang
        assert answer.json()["error"]["code"] == "SERVICE_UNAVAILABLE"
    finally:
        stop_supervisor(proc)
        shutil.rmtree(data, ignore_errors=True)
