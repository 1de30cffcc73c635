"""narrow paths for operators' every-tenant lists of monitored apps and webhook endpoints

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-08 12:00:00.000000

Hand-written. Operators list every tenant's monitored apps and webhook endpoints (GET /api/v1/platform/apps
and /platform/webhooks/endpoints). Both tables are under FORCEd row-level security and the app role sees
one tenant's rows at a time, so, as migration 0009 did for jobs, the owner's SECURITY DEFINER functions give
what crosses tenants and nothing more: ``apps_ledger_page`` and ``webhook_endpoints_ledger_page`` a page's
ids, tenants and creation times (newest first, by keyset), ``apps_tenant_of`` and
``webhook_endpoints_tenant_of`` the tenant of one id. The rows themselves (URLs, settings, checks, attempts)
are then read inside each tenant's scope. Each function sets ``app.definer`` to its table while it runs, and
the owner-only ``<table>_definer`` policy made here shows it the rows (appliance.db.rls.NARROW_PATHS).

Expand: new functions and a policy for the owner only; the previous version calls none of them and sees
what it saw.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from appliance.db.rls import definer_policy

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None
phase = "expand"

# Frozen here: the tables whose ``<table>_definer`` policy this revision makes.
TABLES = ("apps", "webhook_endpoints")

# name: (its table, arguments, returns, statements); each is PL/pgSQL wrapped by `_definition`.
FUNCTIONS: dict[str, tuple[str, str, str, str]] = {
    "apps_ledger_page": (
        "apps",
        "p_status text, p_before_at timestamptz, p_before_id uuid, p_limit integer",
        "TABLE (id uuid, tenant_id uuid, created_at timestamptz)",
        """
    RETURN QUERY
    SELECT a.id, a.tenant_id, a.created_at FROM apps AS a
     WHERE (p_status IS NULL OR a.status = p_status)
       AND (p_before_at IS NULL OR (a.created_at, a.id) < (p_before_at, p_before_id))
     ORDER BY a.created_at DESC, a.id DESC
     LIMIT p_limit;
""",
    ),
    "apps_tenant_of": (
        "apps",
        "p_id uuid",
        "TABLE (tenant_id uuid)",
        """
    RETURN QUERY SELECT a.tenant_id FROM apps AS a WHERE a.id = p_id;
""",
    ),
    "webhook_endpoints_ledger_page": (
        "webhook_endpoints",
        "p_enabled boolean, p_before_at timestamptz, p_before_id uuid, p_limit integer",
        "TABLE (id uuid, tenant_id uuid, created_at timestamptz)",
        """
    RETURN QUERY
    SELECT e.id, e.tenant_id, e.created_at FROM webhook_endpoints AS e
     WHERE (p_enabled IS NULL OR e.enabled = p_enabled)
       AND (p_before_at IS NULL OR (e.created_at, e.id) < (p_before_at, p_before_id))
     ORDER BY e.created_at DESC, e.id DESC
     LIMIT p_limit;
""",
    ),
    "webhook_endpoints_tenant_of": (
        "webhook_endpoints",
        "p_id uuid",
        "TABLE (tenant_id uuid)",
        """
    RETURN QUERY SELECT e.tenant_id FROM webhook_endpoints AS e WHERE e.id = p_id;
""",
    ),
}


def _definition(name: str, schema: str) -> str:
    """CREATE FUNCTION for one narrow path, as migration 0009 makes them: SECURITY DEFINER, its search_path
    fixed, and ``app.definer`` naming its table while its statements run (restored before it returns)."""
    table, arguments, returns, statements = FUNCTIONS[name]
    return f"""CREATE FUNCTION {name}({arguments}) RETURNS {returns}
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = {schema}, pg_temp AS $fn$
#variable_conflict use_column
DECLARE
    v_definer text := current_setting('app.definer', true);
BEGIN
    PERFORM set_config('app.definer', '{table}', true);{statements}
    PERFORM set_config('app.definer', coalesce(v_definer, ''), true);
END
$fn$"""


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return  # SQLite has no row-level security: operators' lists read the tables directly
    for table in TABLES:
        op.execute(definer_policy(table))
    schema = bind.execute(sa.text("SELECT quote_ident(current_schema())")).scalar_one()
    for name, (_, arguments, _, _) in FUNCTIONS.items():
        op.execute(_definition(name, schema))
        op.execute(f"REVOKE ALL ON FUNCTION {name}({arguments}) FROM PUBLIC")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for name, (_, arguments, _, _) in FUNCTIONS.items():
        op.execute(f"DROP FUNCTION IF EXISTS {name}({arguments})")
    for table in TABLES:
        op.execute(f"DROP POLICY IF EXISTS {table}_definer ON {table}")
