"""The doctor's checks of the database: it answers, its schema is current, and on PostgreSQL every tenant
table is under forced row-level security, the app role cannot bypass it, and the server's clock agrees with
this host's. They connect as the API and workers do (``database.url``); the migrations check as the owner."""

from __future__ import annotations

import time
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from appliance.db.rls import TENANT_OWNED_TABLES, UNFILTERED_TENANT_TABLES
from appliance.db.session import driver_reason
from appliance.doctor.finding import Context, Verdict, fail, ok, skip, warn

#: Clock skew between this host and the database above these many seconds: a warning, then a failure.
SKEW_WARN_S = 2.0
SKEW_FAIL_S = 30.0

_NOT_POSTGRES = "SQLite: the database is a file of this host"

#: Every table of the schema that has a tenant_id column or that the code lists as a tenant's, with its
#: row-level security flags and whether it has the tenant_isolation policy.
_TENANT_TABLES = """
SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity,
       EXISTS (SELECT 1 FROM pg_policy AS p WHERE p.polrelid = c.oid AND p.polname = 'tenant_isolation')
         AS isolated
FROM pg_class AS c
WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind IN ('r', 'p')
  AND (c.relname = ANY(:listed) OR EXISTS (
        SELECT 1 FROM pg_attribute AS a
        WHERE a.attrelid = c.oid AND a.attname = 'tenant_id' AND NOT a.attisdropped))
ORDER BY c.relname
"""


def where(url: str) -> str:
    """The database a URL names, for people: its password never shown."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return str(parsed.database)
    return f"{parsed.host or 'localhost'}:{parsed.port or 5432}/{parsed.database} as {parsed.username}"


def database(ctx: Context) -> Verdict:
    """The database answers a query, on the connection the API and workers make."""
    settings = ctx.settings
    if settings.is_sqlite:
        path = Path(make_url(settings.database_url).database or "")
        if not path.is_file():
            return fail(
                f"the SQLite database {path} does not exist", "run `appliance init`, `appliance migrate`"
            )
    started = time.monotonic()
    try:
        with ctx.engine().connect() as conn:
            if conn.dialect.name == "postgresql":
                version = f"PostgreSQL {conn.execute(text('SHOW server_version')).scalar()}"
            else:
                version = f"SQLite {conn.execute(text('SELECT sqlite_version()')).scalar()}"
    except DBAPIError as exc:
        return fail(
            f"cannot reach {where(settings.database_url)}: {driver_reason(exc)}",
            "check that the database server runs and that database.url (host, port, role, password) is "
            "right; the server's log says why it refused",
        )
    elapsed = (time.monotonic() - started) * 1000
    return ok(f"{version}, {where(settings.database_url)}, answers ({elapsed:.0f} ms)")


def migrations(ctx: Context) -> Verdict:
    """The schema is at the newest revision this version knows (read as the schema owner)."""
    from appliance.db import migrate

    settings = ctx.settings
    current, head = migrate.current_revision(settings), migrate.head_revision()
    if current is not None and current not in migrate.known_revisions():
        return warn(
            f"the schema is at {current}, which this version does not know (its newest is {head}): "
            "another host was upgraded first",
            "upgrade this host to the version the others run",
        )
    waiting = migrate.pending(settings)
    if waiting:
        return fail(
            f"{len(waiting)} migration(s) pending: the schema is at {current or 'nothing (empty database)'}, "
            f"this version needs {head}",
            "run `appliance migrate`",
        )
    return ok(f"the schema is at {head}, the newest this version knows")


def row_level_security(ctx: Context) -> Verdict:
    """Every tenant table ENABLEs and FORCEs row-level security with the tenant_isolation policy."""
    if ctx.settings.is_sqlite:
        return skip(f"{_NOT_POSTGRES}: the ORM's filter keeps tenants apart")
    listed = [*TENANT_OWNED_TABLES, *UNFILTERED_TENANT_TABLES]
    with ctx.engine().connect() as conn:
        rows = conn.execute(text(_TENANT_TABLES), {"listed": listed}).all()
    if not rows:
        return skip("no tenant table yet: the schema is not migrated")
    not_enabled = [row.relname for row in rows if not row.relrowsecurity]
    not_forced = [row.relname for row in rows if not row.relforcerowsecurity]
    no_policy = [row.relname for row in rows if not row.isolated]
    problems = [
        f"{what}: {', '.join(names)}"
        for what, names in (
            ("not ENABLEd", not_enabled),
            ("not FORCEd", not_forced),
            ("no tenant_isolation policy", no_policy),
        )
        if names
    ]
    if problems:
        table = (not_forced or not_enabled or no_policy)[0]
        return fail(
            f"row-level security is off on tenant tables: {'; '.join(problems)}",
            "as the schema owner: ALTER TABLE <table> ENABLE ROW LEVEL SECURITY, ALTER TABLE <table> FORCE "
            f"ROW LEVEL SECURITY (e.g. {table}); find who turned it off, the migrations set it",
        )
    return ok(f"{len(rows)} tenant tables ENABLE and FORCE row-level security with tenant_isolation")


def app_role(ctx: Context) -> Verdict:
    """The role of database.url is no superuser and has no BYPASSRLS, so row-level security binds it."""
    if ctx.settings.is_sqlite:
        return skip(f"{_NOT_POSTGRES}, with no roles")
    with ctx.engine().connect() as conn:
        row = conn.execute(
            text("SELECT rolname, rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user")
        ).one()
    problems = [
        words for words, on in (("is a superuser", row.rolsuper), ("has BYPASSRLS", row.rolbypassrls)) if on
    ]
    if problems:
        return fail(
            f"the app role {row.rolname} (database.url) {' and '.join(problems)}: row-level security does "
            "not bind it",
            f"ALTER ROLE {row.rolname} NOSUPERUSER NOBYPASSRLS, or connect database.url as a plain role "
            "(the owner goes in database.migrations_url; `appliance migrate` grants the app role)",
        )
    return ok(f"the app role {row.rolname} is no superuser and has no BYPASSRLS")


def clock(ctx: Context) -> Verdict:
    """This host's clock and the database server's agree (tokens, leases and backup ages go by them)."""
    if ctx.settings.is_sqlite:
        return skip(f"{_NOT_POSTGRES}, on this host's clock")
    with ctx.engine().connect() as conn:
        conn.execute(text("SELECT 1"))  # the connection's set-up is not part of the round trip measured
        before = ctx.clock().timestamp()
        server = float(conn.execute(text("SELECT extract(epoch FROM clock_timestamp())")).scalar_one())
        after = ctx.clock().timestamp()
    skew = server - (before + after) / 2
    said = f"the database's clock is {abs(skew):.3f} s {'ahead of' if skew >= 0 else 'behind'} this host's"
    said += f" (round trip {1000 * (after - before):.0f} ms)"
    hint = "synchronise both clocks with NTP (chrony or systemd-timesyncd)"
    if abs(skew) > SKEW_FAIL_S:
        return fail(said, hint)
    if abs(skew) > SKEW_WARN_S:
        return warn(said, hint)
    return ok(said)
