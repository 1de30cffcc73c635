"""A migrated database for a test in a fraction of the time the migrations take.

Running every migration costs 0.1-0.2 s on SQLite and 0.25-0.5 s on PostgreSQL, and most tests start from
a migrated database: `make_settings` asks `prepare` first. A new SQLite file becomes a copy of one migrated
once per run; an empty PostgreSQL database (as `pg_database` makes them) is made again from a template
database migrated once per cluster. `migrate.upgrade` still runs after a PostgreSQL copy (nothing left to
apply; it grants the app role of ``database.url``), so what a test gets is what the migrations make.
"""

from __future__ import annotations

import sqlite3
import tempfile
import threading
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.pool import NullPool

from appliance.config import Settings
from appliance.db import migrate

_lock = threading.Lock()
_sqlite_templates: list[Path] = []  # the run's one migrated SQLite file, once made
#: Whether a database is a new one of `pg_database`: nothing in its public schema, and we connect to it as a
#: superuser (who may drop it and create it again).
_EMPTY = """
SELECT NOT EXISTS (
    SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public'
) AND (SELECT rolsuper FROM pg_roles WHERE rolname = current_user)
"""


def prepare(settings: Settings) -> bool:
    """Put a migrated copy in place of the settings' database when it is new; True when it was."""
    url = make_url(settings.migrations_url)  # the owner's: the database_url's too, or the app role's
    if url.get_backend_name() == "sqlite":
        return _sqlite_copy(url)
    if url.get_backend_name() == "postgresql":
        return _postgresql_copy(url)
    return False


def _sqlite_copy(url: URL) -> bool:
    if not url.database or url.database == ":memory:" or Path(url.database).exists():
        return False
    target = Path(url.database)
    if not target.parent.is_dir():
        return False
    with sqlite3.connect(_sqlite_migrated()) as source, sqlite3.connect(target) as copy:
        source.backup(copy)
    return True


def _sqlite_migrated() -> Path:
    with _lock:
        if not _sqlite_templates:
            directory = Path(tempfile.mkdtemp(prefix="fa-migrated-"))
            database = directory / "migrated.db"
            migrate.upgrade(Settings(data_dir=directory / "data", database={"url": f"sqlite:///{database}"}))
            _sqlite_templates.append(database)
        return _sqlite_templates[0]


def _postgresql_copy(url: URL) -> bool:
    """Drop the empty database and create it again from the cluster's migrated template: only a database
    of `pg_database` (test_*, owned by the superuser that connects, nothing in it yet)."""
    name = url.database
    if not name or not name.startswith("test_"):
        return False
    probe = create_engine(url, poolclass=NullPool)
    try:
        with probe.connect() as conn:
            empty = conn.execute(text(_EMPTY)).scalar()
    finally:
        probe.dispose()
    if not empty:
        return False
    template = f"forge_migrated_{migrate.head_revision()}"
    admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT", poolclass=NullPool)
    try:
        with _lock, admin.connect() as conn:
            exists = conn.execute(
                text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": template}
            ).first()
            if exists is None:
                conn.execute(text(f"CREATE DATABASE \"{template}\" TEMPLATE template0 ENCODING 'UTF8'"))
                directory = Path(tempfile.mkdtemp(prefix="fa-migrated-"))
                own = url.set(database=template).render_as_string(hide_password=False)
                migrate.upgrade(Settings(data_dir=directory / "data", database={"url": own}))
            conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
            conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
    finally:
        admin.dispose()
    return True
