"""The README's "Production by hand" works as written: its SQL block, run by psql as the admin pastes it,
makes the roles it promises, and the settings file its shell block writes lets `appliance init`, `config
check`, `migrate` and `admin create` run against them, passwords checked. The README cannot drift from what
works."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from tests.servers import PostgresServer, start_or_skip
from tests.support import clean_environ

pytestmark = pytest.mark.postgres

README = Path(__file__).resolve().parents[1] / "README.md"
SECTION = "### Production by hand"
PSQL_AS_POSTGRES = "runuser -u postgres -- psql"
SETTINGS_FILE = "/etc/forge-appliance/appliance.toml"
DATA_DIR = "/var/lib/forge-appliance"
POSTGRES_ADDRESS = "127.0.0.1:5432"
# What the walkthrough's first block generates with `openssl rand -hex 24`.
PASSWORDS = {"OWNER_PW": "0f" * 24, "APP_PW": "a1" * 24, "REDIS_PW": "9c" * 24}


def shell_blocks() -> list[str]:
    text = README.read_text()
    assert SECTION in text, f"README.md has no {SECTION!r} section"
    start = text.index(SECTION)
    section = text[start : text.find("\n## ", start)]
    return re.findall(r"^```sh\n(.*?)^```$", section, re.MULTILINE | re.DOTALL)


def block_with(needle: str) -> str:
    (block,) = [b for b in shell_blocks() if needle in b]
    return block


def heredoc_body(block: str, opener: str, terminator: str) -> str:
    """The lines between the line holding ``opener`` and the ``terminator`` line."""
    lines = block.splitlines()
    (first,) = [i for i, line in enumerate(lines) if opener in line]
    last = lines.index(terminator, first)
    return "\n".join(lines[first + 1 : last]) + "\n"


def bash(script: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "-e", "-c", script],
        env=clean_environ() | PASSWORDS | env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def appliance(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "appliance", "--config", str(config), *args],
        env=clean_environ(),
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def scram_postgres() -> Iterator[PostgresServer]:
    """A PostgreSQL that checks passwords over TCP, as Debian's does (the session's trusts everyone)."""
    server = start_or_skip(PostgresServer(auth="scram-sha-256"))
    try:
        yield server
    finally:
        server.close()


def test_the_walkthrough_makes_the_roles_and_the_appliance_migrates_with_them(
    scram_postgres: PostgresServer, tmp_path: Path
) -> None:
    server = scram_postgres
    # Step 2 as pasted, psql reaching this server as its superuser over the local socket (as postgres does).
    sql_block = block_with("<<'SQL'")
    assert PSQL_AS_POSTGRES in sql_block
    psql = f'"{server.bindir / "psql"}" -h "{server.socket_dir}" -p {server.port} -U postgres -d postgres'
    run = bash(sql_block.replace(PSQL_AS_POSTGRES, psql))
    assert run.returncode == 0, run.stderr
    assert "NOTICE" not in run.stderr, run.stderr  # e.g. "empty string is not a valid password"

    with server.connect() as conn:
        owner, app = ("forge_owner", "forge_app")
        roles = {
            name: (login, superuser, bypassrls, password)
            for name, login, superuser, bypassrls, password in conn.execute(
                "SELECT rolname, rolcanlogin, rolsuper, rolbypassrls, "
                "starts_with(rolpassword, 'SCRAM-SHA-256$') FROM pg_authid WHERE rolname = ANY(%s)",
                ([owner, app],),
            )
        }
        assert roles == {owner: (True, False, False, True), app: (True, False, False, True)}
        (database_owner,) = conn.execute(
            "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = 'forge_appliance'"
        ).fetchone() or (None,)
        assert database_owner == owner

    # Step 4: the settings file as the admin's shell writes it, pointed at this server and a temp dir.
    body = heredoc_body(block_with(f"cat > {SETTINGS_FILE} <<EOF"), f"cat > {SETTINGS_FILE} <<EOF", "EOF")
    run = bash(f"cat <<EOF\n{body}EOF\n")
    assert run.returncode == 0, run.stderr
    settings = run.stdout
    assert settings.count(POSTGRES_ADDRESS) == 2, settings
    assert DATA_DIR in settings, settings
    settings = settings.replace(POSTGRES_ADDRESS, f"{server.host}:{server.port}")
    settings = settings.replace(DATA_DIR, str(tmp_path / "data"))
    config = tmp_path / "appliance.toml"
    config.write_text(settings)

    # Steps 5 and 6: every `appliance` command of the walkthrough, in its order (init before config check,
    # which reads the key init creates), but status: the service is not started here.
    commands = [
        shlex.split(line, comments=True)[1:]
        for block in shell_blocks()
        for line in block.splitlines()
        if line.startswith("appliance ")
    ]
    expected = {
        "init": "(created)",
        "config": "ok: mode production",
        "migrate": "applied ",
        "admin": "one-time password: ",
    }
    assert {args[0] for args in commands} >= {*expected, "status"}, commands
    for args in commands:
        if args != ["status"]:
            run = appliance(config, *args)
            assert run.returncode == 0, (args, run)
            assert expected.get(args[0], "") in run.stdout, (args, run)

    # The app role logs in with the password the README's SQL gave it and was granted what it needs, no more.
    app_dsn = server.dsn("forge_appliance", user="forge_app", password=PASSWORDS["APP_PW"])
    with psycopg.connect(app_dsn, autocommit=True) as conn:
        assert conn.execute("SELECT email FROM users").fetchall() == [("admin@example.com",)]
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("CREATE TABLE intruder (id int)")
