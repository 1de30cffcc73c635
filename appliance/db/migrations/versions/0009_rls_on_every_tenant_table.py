"""row-level security on every table with a tenant_id: jobs, refresh_tokens, idempotency_keys

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-21 12:00:00.000000

Hand-written. ``idempotency_keys`` gets a ``tenant_id`` (NULL for operators' keys), filled from the tenant its
scope already named (``<tenant id>/<principal>``; keys of tenants purged since are removed: nobody can send
them again). On PostgreSQL, ``jobs``, ``refresh_tokens`` and ``idempotency_keys`` go under row-level
security like every other table with a tenant_id (ENABLE, FORCE, ``tenant_isolation``:
appliance.db.rls.rls_statements), so that the app role inside one tenant's transaction sees that
tenant's rows only. What legitimately reads or writes them without a tenant set goes through narrow paths:

- **Lookup policies**, where the caller already identifies the rows, as ``memberships_lookup`` and
  ``api_keys_lookup`` do: ``refresh_tokens_lookup`` (SELECT the one token whose hash the transaction names:
  a refresh, before its user and tenant are known; only the holder of the secret knows the hash) and
  ``refresh_tokens_user`` (a user's own sessions, in every tenant and on the platform: sign-in, refresh,
  sign-out, every session ended after a new password). A policy rather than a function here: the rows are
  the caller's own, the ORM queries stay as they are, and nothing is revealed past what is named.
- **Platform rows** (``platform_rows`` on jobs and idempotency_keys): rows of no tenant (the platform's own
  jobs, operators' keys) for a transaction with no tenant set, never for a tenant's.
- **SECURITY DEFINER functions** owned by the schema owner, where the work is across tenants by nature or
  must find a row before its tenant is known, and a policy would have to show whole rows: each returns
  only what its caller needs. ``jobs_claim`` (a worker claims a job by its id and learns its tenant, kind
  and payload: one statement, as before), ``jobs_succeed`` (a batch of successes by id and attempt),
  ``jobs_reap`` (the reaper's passes: ids to hand to the queue, and counts), ``jobs_state_counts`` (the
  metrics' gauge), ``jobs_ledger_page`` and ``jobs_tenant_of`` (operators' every-tenant list and lookups by
  id: ids, tenants and times only; a job's payload, result and error are then read inside its tenant),
  ``refresh_tokens_revoked_since`` (the sessions ended lately: family ids and times, for every API
  process's revocation cache) and ``idempotency_keys_purge`` (expired keys: a count). Each runs as the
  owner, whom FORCEd row-level security binds too: while its statements run it sets ``app.definer`` to
  its table, which the owner-only ``<table>_definer`` policy requires (the app role that sets it itself
  gains nothing: the policy is not its). Their search_path is fixed, and only the app role may run them
  (appliance.db.rls.grant_app_role; EXECUTE is revoked from PUBLIC).
  A role with BYPASSRLS for the workers was the other way: it would see every tenant's rows in everything
  the workers run, task bodies included.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from appliance.db.rls import rls_statements

revision: str = '0009'
down_revision: str | None = '0008'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None
# Upgrades: "contract": the version before this one reads jobs, refresh tokens and idempotency keys with no
# tenant set, which row-level security now hides from it (appliance/upgrade/schema.py).
phase = "contract"

# Frozen here: a table added to row-level security later gets its policies in its own migration.
RLS_TABLES = ('jobs', 'refresh_tokens', 'idempotency_keys')

# The narrow paths, as this revision makes them (a later change replaces a function in its own migration).
# The states and the statements are those of appliance.services.jobs.leases and .reaper, whose conditions go
# under IS TRUE so that a job is found by its primary key whatever the planner's statistics say.
FUNCTIONS: dict[str, tuple[str, str, str, str, str]] = {
    # name: (its table, arguments, returns, declarations, statements); each is PL/pgSQL (its plans are kept
    # for the session, as a prepared statement's are) wrapped by `_definition`.
    'jobs_claim': (
        'jobs',
        'p_id uuid, p_due timestamptz, p_lease_until timestamptz, p_worker text, p_now timestamptz',
        'TABLE (tenant_id uuid, kind text, payload json, attempts integer, max_attempts integer)',
        '',
        """
    RETURN QUERY
    UPDATE jobs AS j
       SET state = 'running', attempts = j.attempts + 1, lease_until = p_lease_until, worker = p_worker,
           started_at = p_now
     WHERE j.id = p_id AND (j.state = 'queued' AND j.run_at <= p_due) IS TRUE
    RETURNING j.tenant_id, j.kind::text, j.payload, j.attempts, j.max_attempts;
""",
    ),
    'jobs_succeed': (
        'jobs',
        'p_ids uuid[], p_attempts integer[], p_results text[], p_finished timestamptz[]',
        'SETOF uuid',
        '',
        """
    RETURN QUERY
    UPDATE jobs AS j
       SET state = 'succeeded', result = done.result::json, finished_at = done.finished_at, lease_until = NULL
      FROM unnest(p_ids, p_attempts, p_results, p_finished) AS done(id, attempt, result, finished_at)
     WHERE j.id = done.id AND (j.state = 'running' AND j.attempts = done.attempt) IS TRUE
    RETURNING j.id;
""",
    ),
    'jobs_reap': (
        'jobs',
        'p_now timestamptz, p_stale timestamptz, p_old timestamptz, p_pending integer, p_batch integer',
        'TABLE (requeue uuid[], expired integer, lost_pushes integer, dead integer, removed integer)',
        """
    v_again uuid[];
    v_dead uuid[];
    v_lost uuid[] := '{}';
    v_unaccounted integer;
    v_removed integer;""",
        """
    SELECT coalesce(array_agg(e.id) FILTER (WHERE e.attempts < e.max_attempts), '{}'),
           coalesce(array_agg(e.id) FILTER (WHERE e.attempts >= e.max_attempts), '{}')
      INTO v_again, v_dead
      FROM (SELECT j.id, j.attempts, j.max_attempts FROM jobs AS j
             WHERE j.state = 'running' AND j.lease_until < p_now LIMIT p_batch) AS e;
    IF cardinality(v_again) > 0 THEN
        -- RUNNING -> QUEUED: the lease ran out; the attempt it spent counts.
        UPDATE jobs AS j
           SET state = 'queued', run_at = p_now, pushed_at = p_now, lease_until = NULL,
               last_error = 'the worker running it stopped (its lease ran out); run again'
         WHERE j.id = ANY (v_again) AND j.state = 'running';
    END IF;
    IF cardinality(v_dead) > 0 THEN
        -- RUNNING -> DEAD: the lease ran out on its last attempt.
        UPDATE jobs AS j
           SET state = 'dead', finished_at = p_now, lease_until = NULL,
               last_error = 'the worker running its last attempt stopped (its lease ran out)'
         WHERE j.id = ANY (v_dead) AND j.state = 'running';
    END IF;
    IF p_pending > 0 THEN
        SELECT least(p_batch, count(*) - p_pending) INTO v_unaccounted FROM jobs AS j
         WHERE j.state = 'queued' AND j.run_at <= p_stale AND j.pushed_at <= p_stale;
    ELSE
        v_unaccounted := p_batch;
    END IF;
    IF v_unaccounted > 0 THEN
        SELECT coalesce(array_agg(w.id ORDER BY w.pushed_at, w.id), '{}') INTO v_lost
          FROM (SELECT j.id, j.pushed_at FROM jobs AS j
                 WHERE j.state = 'queued' AND j.run_at <= p_stale AND j.pushed_at <= p_stale
                 ORDER BY j.pushed_at, j.id LIMIT v_unaccounted) AS w;
        IF cardinality(v_lost) > 0 THEN
            UPDATE jobs AS j SET pushed_at = p_now WHERE j.id = ANY (v_lost);
        END IF;
    END IF;
    DELETE FROM jobs AS j
     WHERE j.id IN (SELECT f.id FROM jobs AS f
                     WHERE f.state IN ('succeeded', 'dead', 'cancelled') AND f.finished_at < p_old
                     LIMIT p_batch);
    GET DIAGNOSTICS v_removed = ROW_COUNT;
    RETURN QUERY SELECT v_again || v_lost, cardinality(v_again), cardinality(v_lost), cardinality(v_dead),
                        v_removed;
""",
    ),
    'jobs_state_counts': (
        'jobs',
        '',
        'TABLE (state text, n bigint)',
        '',
        """
    RETURN QUERY SELECT j.state::text, count(*) FROM jobs AS j GROUP BY j.state;
""",
    ),
    'jobs_ledger_page': (
        'jobs',
        'p_state text, p_kind text, p_before_at timestamptz, p_before_id uuid, p_limit integer',
        'TABLE (id uuid, tenant_id uuid, created_at timestamptz)',
        '',
        """
    RETURN QUERY
    SELECT j.id, j.tenant_id, j.created_at FROM jobs AS j
     WHERE (p_state IS NULL OR j.state = p_state) AND (p_kind IS NULL OR j.kind = p_kind)
       AND (p_before_at IS NULL OR (j.created_at, j.id) < (p_before_at, p_before_id))
     ORDER BY j.created_at DESC, j.id DESC
     LIMIT p_limit;
""",
    ),
    'jobs_tenant_of': (
        'jobs',
        'p_id uuid',
        'TABLE (tenant_id uuid)',
        '',
        """
    RETURN QUERY SELECT j.tenant_id FROM jobs AS j WHERE j.id = p_id;
""",
    ),
    'refresh_tokens_revoked_since': (
        'refresh_tokens',
        'p_start timestamptz',
        'TABLE (family_id uuid, revoked_at timestamptz)',
        '',
        """
    RETURN QUERY
    SELECT r.family_id, max(r.revoked_at) FROM refresh_tokens AS r
     WHERE r.revoked_at >= p_start GROUP BY r.family_id;
""",
    ),
    'idempotency_keys_purge': (
        'idempotency_keys',
        'p_before timestamptz',
        'TABLE (removed integer)',
        """
    v_removed integer;""",
        """
    DELETE FROM idempotency_keys AS k WHERE k.created_at < p_before;
    GET DIAGNOSTICS v_removed = ROW_COUNT;
    RETURN QUERY SELECT v_removed;
""",
    ),
}


def _definition(name: str, schema: str) -> str:
    """CREATE FUNCTION for one narrow path: SECURITY DEFINER (it runs as the owner), its search_path fixed,
    and ``app.definer`` naming its table while its statements run (the owner's ``<table>_definer`` policy
    asks for it), restored before it returns. (Set in the body: a function's own SET clause may set a
    custom setting only when a superuser creates it.) An error aborts the statement, and the setting with
    it."""
    table, arguments, returns, declarations, statements = FUNCTIONS[name]
    return f"""CREATE FUNCTION {name}({arguments}) RETURNS {returns}
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = {schema}, pg_temp AS $fn$
#variable_conflict use_column
DECLARE
    v_definer text := current_setting('app.definer', true);{declarations}
BEGIN
    PERFORM set_config('app.definer', '{table}', true);{statements}
    PERFORM set_config('app.definer', coalesce(v_definer, ''), true);
END
$fn$"""


def upgrade() -> None:
    with op.batch_alter_table('idempotency_keys', schema=None) as batch_op:
        batch_op.add_column(sa.Column('tenant_id', sa.Uuid(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f('fk_idempotency_keys_tenant_id_tenants'), 'tenants', ['tenant_id'], ['id'],
            ondelete='CASCADE',
        )
    bind = op.get_bind()
    if bind.dialect.name == 'postgresql':
        op.execute(
            "UPDATE idempotency_keys AS k SET tenant_id = t.id FROM tenants AS t "
            "WHERE split_part(k.principal, '/', 1) = t.id::text"
        )
    else:  # SQLite keeps a UUID as its 32 hex digits
        op.execute(
            "UPDATE idempotency_keys SET tenant_id = (SELECT t.id FROM tenants AS t "
            "WHERE t.id = replace(substr(idempotency_keys.principal, 1, 36), '-', '')) "
            "WHERE principal NOT LIKE 'platform/%'"
        )
    op.execute("DELETE FROM idempotency_keys WHERE tenant_id IS NULL AND principal NOT LIKE 'platform/%'")

    if bind.dialect.name != 'postgresql':
        return
    for table in RLS_TABLES:
        for statement in rls_statements(table):
            op.execute(statement)
    schema = bind.execute(sa.text("SELECT quote_ident(current_schema())")).scalar_one()
    for name, (_, arguments, _, _, _) in FUNCTIONS.items():
        op.execute(_definition(name, schema))
        op.execute(f"REVOKE ALL ON FUNCTION {name}({arguments}) FROM PUBLIC")


def downgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        for name, (_, arguments, _, _, _) in FUNCTIONS.items():
            op.execute(f"DROP FUNCTION IF EXISTS {name}({arguments})")
        for table in RLS_TABLES:
            policies = op.get_bind().execute(
                sa.text(
                    "SELECT policyname FROM pg_policies "
                    "WHERE schemaname = current_schema() AND tablename = :t"
                ),
                {'t': table},
            ).scalars().all()
            for policy in policies:
                op.execute(f"DROP POLICY {policy} ON {table}")
            op.execute(f"ALTER TABLE {table} NO FORCE ROW LEVEL SECURITY")
            op.execute(f"ALTER TABLE {table} DISABLE ROW LEVEL SECURITY")
    with op.batch_alter_table('idempotency_keys', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_idempotency_keys_tenant_id_tenants'), type_='foreignkey')
        batch_op.drop_column('tenant_id')
