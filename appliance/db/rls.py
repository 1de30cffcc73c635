"""Row-level security on PostgreSQL: which tables are tenant-owned, the policies that guard them, the
settings those policies read, and what the app role is granted.

Row-level security is the floor of tenant isolation: the API and the workers connect as a role without
BYPASSRLS (granted by :func:`grant_app_role`), and every tenant-owned table only shows and accepts the rows
of the tenant set for the current transaction (appliance.db.tenancy.set_tenant sets it). Migrations put each
table under it with :func:`rls_statements`, as the owner.

This module sits in the db layer and never imports appliance.models: it knows tables by name.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.engine import Connection

#: Every table whose rows belong to exactly one tenant (tenant_id NOT NULL), plus audit_logs whose platform
#: events (tenant_id NULL) get a policy of their own. Each has row-level security ENABLEd and FORCEd with the
#: ``tenant_isolation`` policy, and is filtered by the ORM (appliance.db.tenancy). tests/db/test_tenancy.py
#: fails when a mapped table with a tenant_id column is in neither this list nor UNFILTERED_TENANT_TABLES,
#: and tests/db/test_rls.py when a table of the database with a tenant_id column is not under forced
#: row-level security.
TENANT_OWNED_TABLES: tuple[str, ...] = (
    "organizations",
    "memberships",
    "roles",
    "projects",
    "api_keys",
    "audit_logs",
    "webhook_endpoints",
    "webhook_messages",
    "webhook_deliveries",
    "webhook_attempts",
    "apps",
    "app_checks",
    "app_check_hourly",
    "app_incidents",
    "invitations",
)

#: Tables with a tenant_id column that are under row-level security like the others (``tenant_isolation``,
#: ENABLEd and FORCEd) but not under the ORM filter, and why: their services name the rows they read (by
#: tenant, by user, by id) themselves, and some rows belong to no tenant. Their reads and writes that cannot
#: name the tenant first go through the narrow paths of :data:`NARROW_PATHS`.
UNFILTERED_TENANT_TABLES: dict[str, str] = {
    "refresh_tokens": (
        "a token is found by the hash of a secret only its holder knows, before any tenant is known, and "
        "then acted on as its user's (refresh_tokens_user); platform operators' tokens have no tenant"
    ),
    "jobs": (
        "the queue's ledger: a worker claims a job by its id before it knows the tenant, and the reaper and "
        "the operators' lists read every tenant's ledger (through owner functions that return the ledger's "
        "columns only); the platform's own jobs have no tenant"
    ),
    "idempotency_keys": (
        "found by the caller's scope (tenant and principal) and the key, which the service names itself; "
        "operators' keys have no tenant"
    ),
}

#: Tables whose rows of no tenant (tenant_id NULL: the platform's own) are seen and written only by a
#: transaction with no tenant set, never by a tenant's (policy ``platform_rows``). audit_logs' platform
#: events are the exception with a policy of their own (``platform_events``): a tenant's transaction reads
#: and appends them (a sign-in is recorded before the tenant is chosen).
PLATFORM_ROWS_TABLES: tuple[str, ...] = ("jobs", "idempotency_keys")

#: The narrow paths past row-level security, one ``<table>_definer`` policy each: SECURITY DEFINER functions
#: owned by the schema owner, each returning only what its caller needs, and the table they read or write.
#: While one runs, ``app.definer`` names its table (set by the function, restored before it returns), and
#: the owner's policy ``<table>_definer`` (for the owner only, never the app role) shows it the table's rows.
#: The app role may EXECUTE them (:func:`grant_app_role`); nobody else may. Migration 0009 says why these
#: are functions and the others lookups.
NARROW_PATHS: dict[str, str] = {
    "jobs_claim": "jobs",
    "jobs_succeed": "jobs",
    "jobs_reap": "jobs",
    "jobs_state_counts": "jobs",
    "jobs_ledger_page": "jobs",
    "jobs_tenant_of": "jobs",
    "refresh_tokens_revoked_since": "refresh_tokens",
    "idempotency_keys_purge": "idempotency_keys",
    # Operators' every-tenant lists and lookups by id (migration 0014): ids, tenants and times only.
    "apps_ledger_page": "apps",
    "apps_tenant_of": "apps",
    "webhook_endpoints_ledger_page": "webhook_endpoints",
    "webhook_endpoints_tenant_of": "webhook_endpoints",
}
DEFINER_SETTING = "app.definer"

#: Tables that were under row-level security before they had narrow paths, with the migration that made
#: their ``<table>_definer`` policy (:func:`definer_policy`). :func:`rls_statements` leaves that policy out
#: for them: the migration that made each table runs it, and must go on making what it made then.
LATER_DEFINERS: dict[str, str] = {"apps": "0014", "webhook_endpoints": "0014"}

#: Tables the app role may only read and append to (no UPDATE, no DELETE).
APPEND_ONLY_TABLES: tuple[str, ...] = ("audit_logs",)

#: Tables the app role may only read (the migration owner writes them).
READ_ONLY_TABLES: tuple[str, ...] = ("alembic_version",)

TENANT_SETTING = "app.tenant_id"
USER_SETTING = "app.user_id"

_CURRENT_TENANT = f"nullif(current_setting('{TENANT_SETTING}', true), '')::uuid"


@dataclass(frozen=True)
class Lookup:
    """A narrow read of a tenant-owned table before the tenant is known: only the rows whose ``column``
    equals the value the session set under ``setting`` (PostgreSQL) and ``session.info[info_key]`` (ORM).

    These are not a bypass: each reveals only rows the caller already identifies (its own memberships, the
    key whose prefix it holds), for SELECT only."""

    table: str
    column: str
    setting: str
    info_key: str
    sql_type: str

    @property
    def policy(self) -> str:
        return f"{self.table}_lookup"


LOOKUPS: tuple[Lookup, ...] = (
    # Sign-in: "which tenants is this user a member of?"
    Lookup("memberships", "user_id", USER_SETTING, "user_id", "uuid"),
    # API key authentication: the presented key's prefix finds its row, and so its tenant.
    Lookup("api_keys", "prefix", "app.api_key_prefix", "api_key_prefix", "text"),
    # Invitations: "which invitations are addressed to me?" (the signed-in invitee, or one who holds a token).
    Lookup("invitations", "email", "app.invitee_email", "invitee_email", "text"),
    # Token refresh: the presented refresh token's hash finds its row, and so its user and tenant.
    Lookup("refresh_tokens", "token_hash", "app.refresh_token_hash", "refresh_token_hash", "text"),
)


def rls_statements(table: str) -> list[str]:
    """The SQL that puts ``table`` under row-level security (run by migrations, as the owner).

    There is deliberately no policy the app role could switch on to see every tenant: platform (operator)
    work that must cross tenants will connect with a separate role, not by setting a flag. (The counts of
    several named tenants are read through a view of the owner's: appliance.db.tenant_counts; the work
    across tenants of jobs, sessions, idempotency keys, apps and webhook endpoints through the owner's
    functions of :data:`NARROW_PATHS`, whose ``<table>_definer`` policies are the owner's, not the app
    role's; a table of :data:`LATER_DEFINERS` gets its policy from the migration named there.)"""
    statements = [
        f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY",
        # FORCE: the policies apply to the table's owner too (unless it is a superuser or has BYPASSRLS).
        f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY",
        f"CREATE POLICY tenant_isolation ON {table} "
        f"USING (tenant_id = {_CURRENT_TENANT}) WITH CHECK (tenant_id = {_CURRENT_TENANT})",
    ]
    if table == "audit_logs":
        # Platform events (sign-ins before a tenant is chosen, operator actions) belong to no tenant.
        statements.append(
            "CREATE POLICY platform_events ON audit_logs "
            "USING (tenant_id IS NULL) WITH CHECK (tenant_id IS NULL)"
        )
    if table in PLATFORM_ROWS_TABLES:
        # The platform's own rows, for a transaction that acts for no tenant (never for a tenant's).
        platform = f"tenant_id IS NULL AND {_CURRENT_TENANT} IS NULL"
        statements.append(
            f"CREATE POLICY platform_rows ON {table} USING ({platform}) WITH CHECK ({platform})"
        )
    if table == "refresh_tokens":
        # A user's own sessions, in every tenant and on the platform: signing in, refreshing once the token's
        # hash found it (refresh_tokens_lookup), signing out, ending every session after a new password.
        user = f"user_id = nullif(current_setting('{USER_SETTING}', true), '')::uuid"
        statements.append(
            f"CREATE POLICY refresh_tokens_user ON refresh_tokens USING ({user}) WITH CHECK ({user})"
        )
    if table in NARROW_PATHS.values() and table not in LATER_DEFINERS:
        statements.append(definer_policy(table))
    for lookup in LOOKUPS:
        if lookup.table == table:
            value = f"nullif(current_setting('{lookup.setting}', true), '')::{lookup.sql_type}"
            statements.append(
                f"CREATE POLICY {lookup.policy} ON {table} FOR SELECT USING ({lookup.column} = {value})"
            )
    return statements


def definer_policy(table: str) -> str:
    """The ``<table>_definer`` policy: the owner's alone, and only while one of the table's SECURITY DEFINER
    functions (:data:`NARROW_PATHS`) runs."""
    running = f"current_setting('{DEFINER_SETTING}', true) = '{table}'"
    return (
        f"CREATE POLICY {table}_definer ON {table} TO CURRENT_USER USING ({running}) WITH CHECK ({running})"
    )


def grant_app_role(connection: Connection, role: str) -> None:
    """Give the role the API and workers connect as what it needs on every table, and no more.

    Run as the owner after each migration (tables created later are not covered by earlier grants).
    The role must not have BYPASSRLS; audit_logs is append-only (SELECT, INSERT), alembic_version read-only,
    views (appliance.db.tenant_counts) are read-only, and of the schema's functions it may run the narrow
    paths (:data:`NARROW_PATHS`) that exist.
    """
    if connection.dialect.name != "postgresql":
        raise RuntimeError("roles and grants exist on PostgreSQL only")
    connection.execute(text(grant_app_role_sql(role)))


def grant_app_role_sql(role: str) -> str:
    """:func:`grant_app_role` as one SQL statement (a DO block reading the catalog when it runs), so that a
    restore can grant in the transaction that loads the tables."""

    def array(names: tuple[str, ...] | list[str]) -> str:
        return "ARRAY[" + ", ".join("'" + name.replace("'", "''") + "'" for name in names) + "]::text[]"

    quoted_role = "'" + role.replace("'", "''") + "'"
    narrow = array(list(NARROW_PATHS))
    # Literals quoted above; the names the block reads come from the catalog and go through %I.
    return f"""DO $grant$
DECLARE
  item record;
  target text := {quoted_role};
BEGIN
  EXECUTE format('GRANT USAGE ON SCHEMA %I TO %I', current_schema(), target);
  FOR item IN SELECT c.relname, c.relkind FROM pg_class c
      WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm') LOOP
    EXECUTE format('REVOKE ALL ON %I FROM %I', item.relname, target);
    EXECUTE format('GRANT %s ON %I TO %I',
      CASE WHEN item.relkind IN ('v', 'm') OR item.relname = ANY({array(READ_ONLY_TABLES)}) THEN 'SELECT'
           WHEN item.relname = ANY({array(APPEND_ONLY_TABLES)}) THEN 'SELECT, INSERT'
           ELSE 'SELECT, INSERT, UPDATE, DELETE' END,
      item.relname, target);
  END LOOP;
  EXECUTE format('GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA %I TO %I', current_schema(), target);
  FOR item IN SELECT p.oid::regprocedure::text AS signature FROM pg_proc p
      WHERE p.pronamespace = current_schema()::regnamespace AND p.proname = ANY({narrow}) LOOP
    EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO %I', item.signature, target);
  END LOOP;
END
$grant$"""  # noqa: S608
