"""What the support bundle gathers besides the doctor's report: versions (the appliance, Python, the OS,
the database and Redis servers, the installed packages), the tail of each log, the supervisor's recent
events and the platform's recent audit records. Each raises when it cannot collect; the bundle says so."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import sys
from pathlib import Path
from typing import Any

from appliance import __version__
from appliance.client.supervisor import SupervisorClient
from appliance.config import Settings
from appliance.doctor.service_checks import redis_uses, redis_where

#: Lines kept from the end of each log file.
LOG_LINES = 2000
#: Platform audit records kept, newest first.
AUDIT_RECORDS = 200
_BLOCK = 64 * 1024


def versions(settings: Settings, timeout: float) -> dict[str, Any]:
    """The appliance's, Python's and the OS's versions, the servers' where they answer, and every package."""
    found: dict[str, Any] = {
        "appliance": __version__,
        "python": sys.version,
        "python_executable": sys.executable,
        "os": platform.platform(),
        "os_release": _os_release(),
        "database": _database_version(settings),
        "redis": {redis_where(url): _redis_version(url, timeout) for url in redis_uses(settings)},
    }
    packages = {dist.metadata["Name"]: dist.version for dist in importlib.metadata.distributions()}
    found["packages"] = [f"{name}=={packages[name]}" for name in sorted(packages, key=str.lower)]
    return found


def _os_release() -> str:
    try:
        fields = dict(
            line.split("=", 1) for line in Path("/etc/os-release").read_text().splitlines() if "=" in line
        )
    except OSError:
        return "unknown (no /etc/os-release)"
    return fields.get("PRETTY_NAME", "unknown").strip('"')


def _database_version(settings: Settings) -> str:
    from sqlalchemy import text
    from sqlalchemy.engine import make_url

    from appliance.db.engine import build_engine
    from appliance.db.session import driver_reason

    if settings.is_sqlite and not Path(make_url(settings.database_url).database or "").is_file():
        return "SQLite (no database file yet)"
    engine = build_engine(settings)
    try:
        with engine.connect() as conn:
            if conn.dialect.name == "postgresql":
                return str(conn.execute(text("SELECT version()")).scalar())
            return f"SQLite {conn.execute(text('SELECT sqlite_version()')).scalar()}"
    except Exception as exc:  # the version is a nicety: the doctor's report says why the database is down
        return f"unreachable: {driver_reason(exc)}"
    finally:
        engine.dispose()


def _redis_version(url: str, timeout: float) -> str:
    import redis

    client = redis.Redis.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout)
    try:
        return str(client.info("server").get("redis_version", "unknown"))
    except redis.RedisError as exc:
        return f"unreachable: {exc}"
    finally:
        client.close()


def log_files(log_dir: Path) -> tuple[list[Path], list[Path]]:
    """The log files whose tails are taken (every plain file of the log directory), and those left out
    (rotated files compressed with gzip: older than what the tails hold)."""
    entries = sorted(path for path in log_dir.iterdir() if path.is_file())
    return [p for p in entries if not p.name.endswith(".gz")], [p for p in entries if p.name.endswith(".gz")]


def tail(path: Path, lines: int = LOG_LINES) -> bytes:
    """The last ``lines`` lines of a file, read from its end (a log may be large)."""
    with path.open("rb") as fh:
        end = fh.seek(0, os.SEEK_END)
        position, data = end, b""
        while position > 0 and data.count(b"\n") <= lines:
            step = min(_BLOCK, position)
            position -= step
            fh.seek(position)
            data = fh.read(step) + data
    kept = data.splitlines(keepends=True)[-lines:]
    return b"".join(kept)


def events(settings: Settings, timeout: float) -> list[dict[str, Any]]:
    """The supervisor's recent events (state changes, crash loops, health-check failures, reloads)."""
    return SupervisorClient(settings.run_dir / "control.sock", timeout=timeout).events()


def audit_records(settings: Settings) -> list[dict[str, Any]]:
    """The newest records of the platform's audit trail (sign-ins, operator actions), newest first."""
    from appliance.db.session import Database
    from appliance.services.audit import log as audit

    database = Database(settings)
    try:
        with database.session_scope(write=False) as session:
            return [
                audit.as_dict(record) for record in audit.query(session, tenant_id=None, limit=AUDIT_RECORDS)
            ]
    finally:
        database.dispose()
