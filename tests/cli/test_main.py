"""The `appliance` command as a user runs it: a real process, one clear line on every error."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import clean_environ

# The revisions shipped in the package, in order (each file is named after its revision).
MIGRATIONS = sorted(
    path.name.split("_")[0]
    for path in (Path(__file__).parents[2] / "appliance/db/migrations/versions").glob("[0-9]*_*.py")
)


def appliance(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "appliance", *args],
        env=env or clean_environ(),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return clean_environ() | {"APPLIANCE_DATA_DIR": str(tmp_path / "data")}


def assert_one_line_error(run: subprocess.CompletedProcess[str], *fragments: str) -> None:
    assert run.returncode == 1, run
    assert "Traceback" not in run.stderr
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1, run.stderr
    assert lines[0].startswith("appliance: error: ")
    for fragment in fragments:
        assert fragment in lines[0]


def test_help_loads_nothing_heavy() -> None:
    code = (
        "import sys\nfrom appliance.cli.main import app\n"
        "try:\n    app(['--help'])\nexcept SystemExit:\n    pass\n"
        "names = ('sqlalchemy', 'fastapi', 'huey', 'pydantic', 'uvicorn', 'alembic')\n"
        "heavy = [m for m in names if m in sys.modules]\n"
        "print('HEAVY', heavy)"
    )
    run = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=clean_environ(), check=True
    )
    assert "HEAVY []" in run.stdout
    for verb in ("init", "migrate", "api", "worker", "admin", "config", "version", "up", "down", "status"):
        assert f"  {verb} " in run.stdout


def test_version() -> None:
    run = appliance("version")
    assert run.returncode == 0
    assert run.stdout.startswith("forge-appliance ")


def test_init_migrate_admin_flow(env: dict[str, str], tmp_path: Path) -> None:
    assert appliance("migrate", "--check", env=env).returncode == 1
    first = appliance("init", env=env)
    assert first.returncode == 0, first.stderr
    assert "created" in first.stdout
    assert "kept" in appliance("init", env=env).stdout

    assert (
        f"applied {len(MIGRATIONS)} migration(s): {', '.join(MIGRATIONS)}"
        in appliance("migrate", env=env).stdout
    )
    assert "already up to date" in appliance("migrate", env=env).stdout
    assert appliance("migrate", "--check", env=env).returncode == 0

    created = appliance("admin", "create", "--email", "Ops@Example.com", env=env)
    assert created.returncode == 0, created.stderr
    assert "operator ops@example.com created" in created.stdout
    password = created.stdout.split("one-time password: ")[1].split()[0]
    assert len(password) >= 16

    assert_one_line_error(
        appliance("admin", "create", "--email", "ops@example.com", env=env), "already exists"
    )
    assert_one_line_error(appliance("admin", "create", "--email", "not-an-email", env=env), "'not-an-email'")
    again = appliance("admin", "create", "--email", "other@example.com", "--if-none", env=env)
    assert "none created" in again.stdout

    watcher = appliance("admin", "create", "--email", "watch@example.com", "--read-only", env=env)
    assert watcher.returncode == 0, watcher.stderr
    assert "read-only operator watch@example.com created" in watcher.stdout
    assert _operators(tmp_path / "data") == {"ops@example.com": False, "watch@example.com": True}


def _operators(data_dir: Path) -> dict[str, bool]:
    """The operator accounts in the embedded database, each with whether it is read-only."""
    from sqlalchemy import select

    from appliance.config import Settings
    from appliance.db.session import Database
    from appliance.models import User

    database = Database(Settings(data_dir=data_dir))
    try:
        with database.session_scope() as session:
            query = select(User.email, User.operator_read_only).where(User.is_operator)
            return dict(session.execute(query).all())
    finally:
        database.dispose()


def test_config_show_and_check(env: dict[str, str], tmp_path: Path) -> None:
    config = tmp_path / "appliance.toml"
    config.write_text(
        '[database]\nurl = "postgresql+psycopg://app:hunter2@db.internal/app"\n[api]\nport = 9123\n'
    )
    shown = appliance("--config", str(config), "config", "show", "--json", env=env)
    assert shown.returncode == 0, shown.stderr
    data = json.loads(shown.stdout)
    assert data["api"]["port"] == 9123
    assert "hunter2" not in shown.stdout
    assert data["database"]["url"] == "postgresql+psycopg://app:***@db.internal/app"

    assert_one_line_error(appliance("config", "check", env=env), "run `appliance init` first")
    appliance("init", env=env)
    check = appliance("--config", str(config), "config", "check", env=env)
    assert check.returncode == 0
    assert str(config) in check.stdout


def test_config_check_names_the_sources_in_force(env: dict[str, str], tmp_path: Path) -> None:
    appliance("init", env=env)
    env |= {
        "APPLIANCE_OUTBOUND__ALLOW_NETWORKS": "127.0.0.0/8",
        "APPLIANCE_API__TRUSTED_PROXIES": "10.0.0.1, 10.0.0.2",
        "APPLIANCE_SECURITY__SECRET_KEY": "s" * 40,
    }
    check = appliance("config", "check", env=env, cwd=tmp_path)
    assert check.returncode == 0, check.stderr
    assert check.stdout.splitlines() == [
        "ok: mode embedded",
        "  file: none (built-in defaults)",
        "  environment: APPLIANCE_API__TRUSTED_PROXIES=10.0.0.1, 10.0.0.2",
        f"  environment: APPLIANCE_DATA_DIR={tmp_path / 'data'}",
        "  environment: APPLIANCE_OUTBOUND__ALLOW_NETWORKS=127.0.0.0/8",
        "  environment: APPLIANCE_SECURITY__SECRET_KEY=***",
    ]
    shown = json.loads(appliance("config", "show", "--json", env=env, cwd=tmp_path).stdout)
    assert shown["outbound"]["allow_networks"] == ["127.0.0.0/8"]
    assert shown["api"]["trusted_proxies"] == ["10.0.0.1", "10.0.0.2"]
    # A list that is neither JSON nor comma-separated values of its kind: one line naming it and its value.
    bad = appliance(
        "config", "check", env=env | {"APPLIANCE_OUTBOUND__ALLOW_NETWORKS": "[127.0.0.0/8"}, cwd=tmp_path
    )
    assert_one_line_error(bad, "environment variable APPLIANCE_OUTBOUND__ALLOW_NETWORKS", "'[127.0.0.0/8'")


@pytest.mark.parametrize(
    ("body", "fragments"),
    [
        ("[api\n", ("not valid TOML", "line 1")),
        ("[api]\nport = 'x'\n", ("key 'api.port'", "valid integer")),
        ("[apii]\n", ("key 'apii'", "unknown key")),
    ],
)
def test_bad_config_file_is_one_line(
    env: dict[str, str], tmp_path: Path, body: str, fragments: tuple[str, ...]
) -> None:
    config = tmp_path / "bad.toml"
    config.write_text(body)
    assert_one_line_error(
        appliance("--config", str(config), "config", "check", env=env), str(config), *fragments
    )
    # The same file stops every command that needs settings, the same way.
    assert_one_line_error(appliance("--config", str(config), "migrate", env=env), str(config))


def test_database_unreachable_is_one_line(env: dict[str, str]) -> None:
    env = env | {"APPLIANCE_DATABASE__URL": "postgresql+psycopg://nobody@127.0.0.1:1/none"}
    assert_one_line_error(appliance("migrate", env=env), "cannot reach the database")


def test_api_refuses_a_port_in_use(env: dict[str, str]) -> None:
    import socket

    appliance("init", env=env)
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        run = appliance("api", env=env | {"APPLIANCE_API__PORT": str(port)})
    assert_one_line_error(run, f"cannot listen on 127.0.0.1:{port}")


def test_production_refuses_the_placeholder_secret(env: dict[str, str]) -> None:
    env = env | {"APPLIANCE_MODE": "production", "APPLIANCE_SECURITY__SECRET_KEY": "CHANGE-ME"}
    assert_one_line_error(appliance("api", env=env), "placeholder")
