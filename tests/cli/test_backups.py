"""`appliance backup ...` as an admin runs it, in real processes: init shows the new backup key once; create,
list, verify and restore; a wrong key or a damaged archive is one line and exit 1; key show and rotate."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner, Result

from appliance.cli.main import app
from appliance.errors import ApplianceError
from appliance.services.backups import keys
from tests.support import make_settings, settings_env


def _run(env: dict[str, str], *args: str, stdin: str | None = None) -> Result:
    """The command in this process (a process each would cost seconds of imports)."""
    return CliRunner().invoke(app, list(args), env=env, input=stdin)


def _process(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "appliance", *args], env=env, capture_output=True, text=True, timeout=120
    )


def test_backup_commands_end_to_end(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    env = settings_env(settings)

    first = _run(env, "init")
    assert first.exit_code == 0, first.output
    assert "backup key:" in first.stdout
    assert "(created)" in first.stdout
    assert "AGE-SECRET-KEY-" not in first.stdout  # not a terminal: the key never goes into a log
    assert "appliance backup key show" in first.stdout
    again = _run(env, "init")
    assert "(kept)" in again.stdout
    assert settings.backup_key_file.stat().st_mode & 0o077 == 0
    secret = [line for line in settings.backup_key_file.read_text().splitlines() if line.startswith("AGE-")]
    assert len(secret) == 1

    assert _run(env, "tenant", "create", "acme", "--name", "Acme").exit_code == 0
    made = _run(env, "backup", "create", "--json")
    assert made.exit_code == 0, made.output
    summary = json.loads(made.stdout)
    archive = Path(summary["path"])
    assert archive.parent == settings.backup_dir
    assert summary["rows"]["tenants"] == 1

    listed = _run(env, "backup", "list")
    assert archive.name in listed.stdout
    assert "full" in listed.stdout

    verified = _run(env, "backup", "verify", str(archive))
    assert verified.exit_code == 0, verified.output
    assert "audit chains: 2 verified, all intact" in verified.stdout

    assert _run(env, "tenant", "create", "globex", "--name", "Globex").exit_code == 0
    asked = _run(env, "backup", "restore", str(archive), stdin="n\n")
    assert asked.exit_code == 1
    assert "globex" in _run(env, "tenant", "list").stdout  # nothing restored without a yes

    restored = _run(env, "backup", "restore", str(archive), "--yes")
    assert restored.exit_code == 0, restored.output
    assert f"restored {archive}" in restored.stdout
    tenants = _run(env, "tenant", "list").stdout
    assert "acme" in tenants
    assert "globex" not in tenants

    # The key as the admin stores it: every identity, current first.
    shown = _run(env, "backup", "key", "show")
    assert secret[0] in shown.stdout
    rotated = _run(env, "backup", "key", "rotate")
    assert rotated.exit_code == 0, rotated.output
    after = _run(env, "backup", "key", "show").stdout
    assert after.index("AGE-SECRET-KEY-") < after.index(secret[0])  # the new one first, the old one kept
    assert _run(env, "backup", "verify", str(archive)).exit_code == 0  # older archives still read


def test_refusals_are_one_line_and_exit_1(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    env = settings_env(settings)
    assert _run(env, "init").exit_code == 0
    archive = Path(json.loads(_run(env, "backup", "create", "--json").stdout)["path"])
    other_key = tmp_path / "other.key"
    keys.create(other_key)
    damaged = tmp_path / "damaged.age"
    data = bytearray(archive.read_bytes())
    data[len(data) // 2] ^= 0xFF
    damaged.write_bytes(bytes(data))

    # As the admin sees it: one line on stderr, exit 1, no traceback.
    wrong_key = _process(env, "backup", "verify", str(archive), "--key-file", str(other_key))
    assert wrong_key.returncode == 1, wrong_key.stdout
    errors = [line for line in wrong_key.stderr.splitlines() if line.startswith("appliance: error:")]
    assert len(errors) == 1, wrong_key.stderr
    assert "wrong key" in errors[0]
    assert "Traceback" not in wrong_key.stderr

    for args, words in (
        (("restore", str(damaged), "--yes"), "damaged or truncated"),
        (("verify", str(tmp_path / "nothing.age")), "is not a file"),
        (("restore", str(archive), "--yes", "--key-file", str(tmp_path / "none.key")), "does not exist"),
    ):
        result = _run(env, "backup", *args)
        assert isinstance(result.exception, ApplianceError), result.output
        assert words in str(result.exception)


def test_init_at_a_terminal_shows_the_new_key_once(tmp_path: Path) -> None:
    import os
    import pty

    settings = make_settings(tmp_path)
    env = settings_env(settings)

    def at_terminal() -> str:
        leader, follower = pty.openpty()
        try:
            process = subprocess.Popen(
                [sys.executable, "-m", "appliance", "init"], env=env, stdout=follower, stderr=follower
            )
            os.close(follower)
            chunks = []
            while True:
                try:
                    chunk = os.read(leader, 4096)
                except OSError:  # the terminal closed: the process ended
                    break
                if not chunk:
                    break
                chunks.append(chunk)
            assert process.wait(timeout=60) == 0
        finally:
            os.close(leader)
        return b"".join(chunks).decode()

    shown = at_terminal()
    identity = [line for line in settings.backup_key_file.read_text().splitlines() if line.startswith("AGE-")]
    assert identity[0] in shown
    assert "store this key off this machine now" in shown
    assert identity[0] not in at_terminal()  # once


def test_backup_create_with_a_tenant_exports_that_tenant(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    env = settings_env(settings)
    assert _run(env, "init").exit_code == 0
    assert _run(env, "tenant", "create", "acme", "--name", "Acme").exit_code == 0
    assert _run(env, "tenant", "create", "globex", "--name", "Globex").exit_code == 0
    made = _run(env, "backup", "create", "--tenant", "acme", "--json")
    assert made.exit_code == 0, made.output
    summary = json.loads(made.stdout)
    assert (summary["kind"], summary["tenant"]) == ("tenant", "acme")
    assert summary["rows"]["tenants"] == 1
    listed = _run(env, "backup", "list").stdout
    assert "tenant acme" in listed
    unknown = _run(env, "backup", "create", "--tenant", "nobody")
    assert isinstance(unknown.exception, ApplianceError)
    assert "nobody" in str(unknown.exception)
    verified = _run(env, "backup", "verify", summary["path"])
    assert verified.exit_code == 0, verified.output
    assert "match the manifest" in verified.stdout
