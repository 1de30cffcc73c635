"""`appliance support-bundle` as an admin runs it: a real process against PostgreSQL and Redis reached
with passwords, logs that carry every secret on purpose, and not one secret byte in the bundle."""

from __future__ import annotations

import json
import stat
import subprocess
import sys
import tarfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from appliance.db.session import Database
from appliance.services.backups import keys as backup_keys
from appliance.services.tenancy import operators
from tests.conftest import PgDatabase
from tests.servers import RedisServer
from tests.support import clean_environ, make_settings

PG_PASSWORD = "pg-App-S3cret-7f3a"
REDIS_PASSWORD = "redis-S3cret-91b2"


@pytest.fixture
def redis_user(redis_server: RedisServer) -> Iterator[str]:
    """A Redis user with a password on the session's server (an ACL user: it checks the password)."""
    name = f"doctor_{uuid.uuid4().hex[:8]}"
    with redis.Redis(host=redis_server.host, port=redis_server.port) as admin:
        admin.acl_setuser(
            name,
            enabled=True,
            passwords=[f"+{REDIS_PASSWORD}"],
            keys=["*"],
            channels=["*"],
            categories=["+@all"],
        )
        try:
            yield f"redis://{name}:{REDIS_PASSWORD}@{redis_server.host}:{redis_server.port}/0"
        finally:
            admin.acl_deluser(name)


def test_the_bundle_holds_what_support_needs_and_no_secret(
    tmp_path: Path, pg_database: PgDatabase, redis_user: str
) -> None:
    role = pg_database.create_role(password=PG_PASSWORD)
    app_url = pg_database.url_as(role, PG_PASSWORD)
    settings = make_settings(
        tmp_path, None, redis_user, database={"url": app_url, "migrations_url": pg_database.url}
    )
    backup_keys.create(settings.backup_key_file)
    signing_key = settings.secret_key_file.read_text().strip()
    identity = next(
        line
        for line in settings.backup_key_file.read_text().splitlines()
        if line.startswith("AGE-SECRET-KEY-")
    )
    secrets = [PG_PASSWORD, REDIS_PASSWORD, signing_key, identity]
    owner = Database(settings, pg_database.url)
    try:
        with owner.session_scope() as session:
            operators.create(session, "support@example.com")  # a record on the platform's audit trail
    finally:
        owner.dispose()
    settings.log_dir.mkdir(parents=True)
    careless = [
        f"connecting to {app_url}",
        f"queue at {redis_user}",
        f"signing with {signing_key}",
        f"backup identity {identity}",
        f"dsn host=db password={PG_PASSWORD} user={role}",
        "an ordinary line",
    ]
    (settings.log_dir / "api.log").write_text(
        "".join(f"old line {n}\n" for n in range(3000)) + "\n".join(careless) + "\n"
    )
    config = tmp_path / "appliance.toml"
    config.write_text(
        f'data_dir = "{settings.data_dir}"\n'
        f'[database]\nurl = "{app_url}"\nmigrations_url = "{pg_database.url}"\n'
        f'[queue]\nurl = "{redis_user}"\n'
    )
    out = tmp_path / "out"
    out.mkdir()

    done = subprocess.run(
        [sys.executable, "-m", "appliance", "--config", str(config), "support-bundle", "--output", str(out)],
        env=clean_environ(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    (bundle,) = out.iterdir()
    assert done.stdout.startswith(f"support bundle written to {bundle} (")
    assert stat.S_IMODE(bundle.stat().st_mode) == 0o600

    members = {}
    with tarfile.open(bundle) as archive:
        for member in archive.getmembers():
            assert member.isfile(), member.name
            content = archive.extractfile(member)
            assert content is not None
            members[member.name.split("/", 1)[1]] = content.read()
    leaked = {name: s for name, data in members.items() for s in secrets if s.encode() in data}
    assert leaked == {}
    assert {
        "config.json",
        "versions.json",
        "status.json",
        "doctor.json",
        "audit.json",
        "manifest.json",
    } <= set(members)
    assert "logs/api.log" in members

    log = members["logs/api.log"].decode().splitlines()
    assert len(log) == 2000
    assert log[-6:] == [
        f"connecting to postgresql+psycopg://{role}:[redacted]@127.0.0.1:{pg_database.server.port}/{pg_database.name}",
        f"queue at {redis_user.replace(REDIS_PASSWORD, '[redacted]')}",
        "signing with [redacted]",
        "backup identity [redacted]",
        f"dsn host=db password=[redacted] user={role}",
        "an ordinary line",
    ]
    versions = json.loads(members["versions.json"])
    assert versions["database"].startswith("PostgreSQL ")
    assert next(iter(versions["redis"].values()))[0].isdigit()
    assert any(p.startswith("forge-appliance==") for p in versions["packages"])
    settings_shown = json.loads(members["config.json"])["settings"]
    assert settings_shown["database"]["url"].startswith(f"postgresql+psycopg://{role}:[redacted]@")
    doctor = {f["check"]: f for f in json.loads(members["doctor.json"])}
    assert doctor["database"]["status"] == "ok"
    assert doctor["supervisor"]["status"] == "fail"
    assert json.loads(members["status.json"])["running"] is False
    audit = json.loads(members["audit.json"])
    assert "support@example.com" in json.dumps(audit)
    manifest = json.loads(members["manifest.json"])
    assert any(line.startswith("events.json: SupervisorUnavailable") for line in manifest["not_collected"])
