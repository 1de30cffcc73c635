"""The whole database in and out: `pg_dump` (custom format) and `pg_restore` on PostgreSQL, the online
backup API on SQLite, with the row count of every table taken from the same snapshot as the dump.

PostgreSQL dumps run on an exported snapshot (`pg_export_snapshot()` + `pg_dump --snapshot`), so the
counts in the manifest are the dump's. A restore is one transaction (`psql --single-transaction`): the
appliance's objects are dropped, the archive's schema and rows loaded, every table's count compared with the
manifest, then the indexes, constraints and row-level security created; any failure leaves the database as
it was. SQLite dumps copy the file in one step of the online backup API, on a read snapshot (WAL: writers go
on meanwhile); a restore migrates the archive's copy
forward first, then copies it over the live database in one step.
"""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
import subprocess
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from psycopg.types.json import Json
from sqlalchemy.engine import URL, make_url

from appliance.db import rls
from appliance.errors import ConfigError, InvalidInput, OperationFailed, Unavailable

_TABLE_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")

#: Name of the database part in an archive, by engine.
PART_NAMES = {"postgresql": "database.dump", "sqlite": "database.sqlite3"}

_DROP_OWN_OBJECTS = """
DO $forge$
DECLARE item record;
BEGIN
  FOR item IN SELECT c.relname, c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'v', 'm') LOOP
    EXECUTE format(CASE item.relkind WHEN 'v' THEN 'DROP VIEW IF EXISTS public.%I CASCADE'
                                     WHEN 'm' THEN 'DROP MATERIALIZED VIEW IF EXISTS public.%I CASCADE'
                                     ELSE 'DROP TABLE IF EXISTS public.%I CASCADE' END, item.relname);
  END LOOP;
  FOR item IN SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = 'public' AND c.relkind = 'S' LOOP
    EXECUTE format('DROP SEQUENCE IF EXISTS public.%I CASCADE', item.relname);
  END LOOP;
  FOR item IN SELECT p.oid::regprocedure AS signature FROM pg_proc p
      JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = 'public' LOOP
    EXECUTE format('DROP ROUTINE IF EXISTS %s CASCADE', item.signature);
  END LOOP;
  FOR item IN SELECT t.typname FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
      WHERE n.nspname = 'public' AND t.typtype IN ('e', 'd', 'c')
        AND NOT EXISTS (SELECT FROM pg_class c WHERE c.reltype = t.oid) LOOP
    EXECUTE format('DROP TYPE IF EXISTS public.%I CASCADE', item.typname);
  END LOOP;
END
$forge$;
"""


@dataclass(frozen=True)
class Dump:
    """A database dump on disk and what it holds."""

    engine: str
    path: Path
    rows: dict[str, int]
    revision: str | None


def engine_of(url: str) -> str:
    name = make_url(url).get_backend_name()
    if name not in PART_NAMES:
        raise ConfigError(f"backups support PostgreSQL and SQLite, not {name!r}")
    return name


# --- SQLite ------------------------------------------------------------------------------------------------


def sqlite_path(url: str) -> Path:
    database = make_url(url).database
    if not database or database == ":memory:":
        raise ConfigError(f"{url!r} is not a SQLite file")
    return Path(database)


def dump_sqlite(url: str, workdir: Path) -> Dump:
    """Copy the live SQLite file with the online backup API, in one step on a read snapshot (the database is
    in WAL mode: writers are not blocked, and the copy does not restart when they write)."""
    source_path = sqlite_path(url)
    if not source_path.exists():
        raise Unavailable(f"the database file {source_path} does not exist: run `appliance migrate`")
    target = workdir / PART_NAMES["sqlite"]
    source = sqlite3.connect(f"file:{source_path}?mode=ro", uri=True, timeout=30)
    destination = sqlite3.connect(target)
    try:
        source.backup(destination)  # one step: a consistent snapshot (WAL: writers go on meanwhile)
    finally:
        source.close()
        destination.close()
    os.chmod(target, 0o600)
    rows, revision = sqlite_counts(target)
    return Dump("sqlite", target, rows, revision)


def sqlite_counts(path: Path) -> tuple[dict[str, int], str | None]:
    """Row count of every table of a SQLite file, and its schema revision."""
    connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        tables = [
            row[0]
            for row in connection.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' "
                "ORDER BY name"
            )
        ]
        rows = {}
        for table in tables:  # names from the catalog, quoted
            rows[table] = connection.execute(f"SELECT count(*) FROM {_quoted(table)}").fetchone()[0]  # noqa: S608
        revision = None
        if "alembic_version" in tables:
            found = connection.execute("SELECT version_num FROM alembic_version").fetchone()
            revision = found[0] if found else None
    finally:
        connection.close()
    return rows, revision


def replace_sqlite(url: str, prepared: Path) -> None:
    """Copy ``prepared`` (already checked and migrated) over the live database in one step: every other
    connection sees the old content or the new, never a mix."""
    live_path = sqlite_path(url)
    live_path.parent.mkdir(parents=True, exist_ok=True)
    source = sqlite3.connect(f"file:{prepared}?mode=ro", uri=True)
    live = sqlite3.connect(live_path, timeout=60)
    try:
        source.backup(live)
    finally:
        source.close()
        live.close()


# --- PostgreSQL --------------------------------------------------------------------------------------------


def _binary(name: str) -> str:
    found = shutil.which(name)
    if found:
        return found
    versions = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"), key=lambda p: int(p.parts[-3]))
    if versions:
        return str(versions[-1])
    raise OperationFailed(f"{name} is not installed: apt-get install postgresql-client")


def libpq_environment(url: str) -> dict[str, str]:
    """The PG* variables that make pg_dump, pg_restore and psql connect as ``url`` says (the password never
    on a command line)."""
    parsed: URL = make_url(url)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    query: Mapping[str, object] = parsed.query
    host = parsed.host or query.get("host")
    values = {
        "PGHOST": host,
        "PGPORT": parsed.port or query.get("port"),
        "PGUSER": parsed.username,
        "PGPASSWORD": parsed.password,
        "PGDATABASE": parsed.database,
        "PGSSLMODE": query.get("sslmode"),
        "PGCONNECT_TIMEOUT": "10",
    }
    env.update({k: str(v) for k, v in values.items() if v})
    return env


def conninfo(url: str) -> str:
    """A libpq connection string for psycopg from a SQLAlchemy URL."""
    parsed = make_url(url).set(drivername="postgresql")
    return parsed.render_as_string(hide_password=False)


@contextmanager
def _connect(url: str) -> Iterator[psycopg.Connection[tuple[object, ...]]]:
    try:
        connection = psycopg.connect(conninfo(url), connect_timeout=10)
    except psycopg.OperationalError as exc:
        reason = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        raise Unavailable(f"cannot reach the database to back it up: {reason}") from exc
    with connection:
        yield connection


def check_dump_role(url: str) -> None:
    """Refuse early, with the fix, a role that would see only some tenants' rows."""
    with _connect(url) as connection:
        row = connection.execute(
            "SELECT rolname, rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = current_user"
        ).fetchone()
    if row is not None and not row[1]:
        raise ConfigError(
            f"the role {row[0]!r} cannot read every tenant's rows (row-level security is FORCEd, it has "
            "no BYPASSRLS): set [backups] database_url to a role with BYPASSRLS and pg_read_all_data",
            details={"role": row[0]},
        )


def dump_postgresql(url: str, workdir: Path) -> Dump:
    """`pg_dump -Fc` on a snapshot exported by a transaction that also counts every table's rows."""
    check_dump_role(url)
    target = workdir / PART_NAMES["postgresql"]
    with _connect(url) as connection:
        connection.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        connection.execute("SET LOCAL row_security = off")
        snapshot = connection.execute("SELECT pg_export_snapshot()").fetchone()
        assert snapshot is not None
        tables = [
            str(row[0])
            for row in connection.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename"
            )
        ]
        rows: dict[str, int] = {}
        for table in tables:
            counted = connection.execute(
                sql.SQL("SELECT count(*) FROM public.{}").format(sql.Identifier(table))
            ).fetchone()
            rows[table] = int(str(counted[0])) if counted else 0
        revision = None
        if "alembic_version" in tables:
            found = connection.execute("SELECT version_num FROM public.alembic_version").fetchone()
            revision = str(found[0]) if found else None
        command = [
            _binary("pg_dump"),
            "--format=custom",
            "--no-owner",
            "--no-privileges",
            f"--snapshot={snapshot[0]}",
            f"--file={target}",
        ]
        _run(command, libpq_environment(url), "pg_dump")
        connection.execute("COMMIT")
    os.chmod(target, 0o600)
    return Dump("postgresql", target, rows, revision)


def restore_postgresql(
    url: str,
    dump: Path,
    rows: Mapping[str, int],
    workdir: Path,
    keep: Sequence[tuple[str, Mapping[str, Any]]] = (),
    *,
    grant_to: str | None = None,
) -> None:
    """Replace the appliance's objects in the database of ``url`` with the dump's, in one transaction that
    also compares every table's count with ``rows`` before the constraints and row-level security go on.
    The rows of ``keep`` (table, values) are added in the same transaction, after the count check, and
    ``grant_to`` (the app role) gets its privileges in it too: no reader finds a table it may not read."""
    pre = workdir / "restore-pre.sql"
    pre.write_text(_DROP_OWN_OBJECTS)
    check = workdir / "restore-check.sql"
    check.write_text(_count_checks(rows) + _inserts(url, keep))
    post = workdir / "restore-post.sql"
    post.write_text(
        "" if grant_to is None else "RESET search_path;\n" + rls.grant_app_role_sql(grant_to) + ";\n"
    )
    env = libpq_environment(url)
    pg_restore = _binary("pg_restore")
    common = [pg_restore, "--no-owner", "--no-privileges", "--file=-", str(dump)]
    errors = [workdir / "pg_restore-1.err", workdir / "pg_restore-2.err"]
    sections = (["--section=pre-data", "--section=data"], ["--section=post-data"])
    processes = []
    for section, error_file in zip(sections, errors, strict=True):
        with error_file.open("wb") as stderr:
            processes.append(
                subprocess.Popen([*common, *section], stdout=subprocess.PIPE, stderr=stderr, env=env)
            )
    pipes = [process.stdout for process in processes]
    fds = tuple(pipe.fileno() for pipe in pipes if pipe is not None)
    psql = [
        _binary("psql"),
        "--no-psqlrc",
        "--quiet",
        "--single-transaction",
        "--set=ON_ERROR_STOP=1",
        f"--file={pre}",
        f"--file=/dev/fd/{fds[0]}",
        f"--file={check}",
        f"--file=/dev/fd/{fds[1]}",
        f"--file={post}",
    ]
    try:
        loader = subprocess.run(psql, pass_fds=fds, capture_output=True, env=env, check=False)
    finally:
        for pipe in pipes:
            if pipe is not None:
                pipe.close()
        for process in processes:
            process.wait()
    if loader.returncode != 0:
        failed = [e for p, e in zip(processes, errors, strict=True) if p.returncode not in (0, -13)]
        if failed:
            reason = _last_line(failed[0].read_text(errors="replace"))
            raise OperationFailed(f"pg_restore could not read the dump, nothing was changed: {reason}")
        reason = _last_line(loader.stderr.decode(errors="replace"))
        raise OperationFailed(f"the database refused the restore, nothing was changed: {reason}")


def _inserts(url: str, keep: Sequence[tuple[str, Mapping[str, Any]]]) -> str:
    if not keep:
        return ""
    statements = []
    with _connect(url) as connection:
        for table, values in keep:
            columns = list(values)
            literals = [
                sql.Literal(Json(value) if isinstance(value, dict | list) else value)
                for value in values.values()
            ]
            statement = sql.SQL("INSERT INTO public.{} ({}) VALUES ({}) ON CONFLICT DO NOTHING;").format(
                sql.Identifier(table),
                sql.SQL(", ").join(map(sql.Identifier, columns)),
                sql.SQL(", ").join(literals),
            )
            statements.append(statement.as_string(connection))
    return "\n".join(statements) + "\n"


def _count_checks(rows: Mapping[str, int]) -> str:
    lines = ["DO $forge$", "DECLARE found bigint;", "BEGIN"]
    for table, count in sorted(rows.items()):
        if not _TABLE_NAME.match(table):
            raise InvalidInput(f"the archive names a table {table!r} this appliance does not have")
        lines += [
            f"  SELECT count(*) INTO found FROM public.{table};",  # noqa: S608 (checked name)
            f"  IF found <> {int(count)} THEN RAISE EXCEPTION",
            f"    'table {table}: % rows restored, the manifest says {int(count)}', found; END IF;",
        ]
    lines += ["END", "$forge$;", ""]
    return "\n".join(lines)


def create_scratch_database(url: str, name: str) -> str:
    """A new empty database ``name`` beside the one of ``url``, owned by url's role; returns its URL."""
    with _connect(url) as connection:
        connection.autocommit = True
        try:
            connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        except psycopg.errors.InsufficientPrivilege as exc:
            raise ConfigError(
                f"the role of [backups] database_url may not create the scratch database verify needs: {exc}"
            ) from exc
    return make_url(url).set(database=name).render_as_string(hide_password=False)


def drop_scratch_database(url: str, name: str) -> None:
    with _connect(url) as connection:
        connection.autocommit = True
        connection.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def _run(command: list[str], env: dict[str, str], name: str) -> None:
    finished = subprocess.run(command, capture_output=True, env=env, check=False)
    if finished.returncode != 0:
        raise OperationFailed(f"{name} failed: {_last_line(finished.stderr.decode(errors='replace'))}")


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    errors = [line for line in lines if "ERROR" in line or "error" in line]
    return (errors or lines or ["no message"])[-1]


def check_counts(found: Mapping[str, int], expected: Mapping[str, int], where: str) -> None:
    """Refuse when a table's count differs from the manifest's."""
    for table, count in sorted(expected.items()):
        if found.get(table) != count:
            raise InvalidInput(
                f"{where}: table {table} has {found.get(table, 0)} rows, the manifest says {count}",
                details={"table": table},
            )


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'
