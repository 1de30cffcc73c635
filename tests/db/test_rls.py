"""Row-level security on PostgreSQL, as the role the API and workers connect as (no BYPASSRLS): every table
with a tenant_id is under it (read from the catalog), raw SQL inside one tenant's transaction sees and writes
that tenant's rows only, and nothing with no tenant set but the platform's own; what must cross tenants goes
through narrow paths (lookups, the owner's functions) that work whether the owner is a superuser or not."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import Connection, Engine, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from appliance.db import migrate, rls, tenancy
from appliance.db.engine import build_engine
from appliance.db.rls import (
    LOOKUPS,
    NARROW_PATHS,
    PLATFORM_ROWS_TABLES,
    TENANT_OWNED_TABLES,
    UNFILTERED_TENANT_TABLES,
)
from appliance.db.session import Database
from appliance.db.tenant_counts import COUNTED_TABLES
from appliance.errors import NotFound
from appliance.models import Project
from appliance.services.access.actors import RequestInfo
from appliance.services.common import idempotency
from appliance.services.identity import sessions, tokens
from appliance.services.jobs import durable as jobs
from appliance.services.jobs import leases, manage
from appliance.services.jobs import queries as job_queries
from appliance.services.jobs import reaper as job_reaper
from appliance.services.jobs.claims import Claims
from tests.conftest import PgDatabase
from tests.db.seed import Seeded, seed
from tests.support import make_settings, wait_for

TENANT = "tenant_id = (NULLIF(current_setting('app.tenant_id'::text, true), ''::text))::uuid"
#: Every table with a tenant_id the application knows of (the catalog check below needs none of them).
TENANT_TABLES = (*TENANT_OWNED_TABLES, *UNFILTERED_TENANT_TABLES)
KIND = jobs.KINDS.get("test.rls") or jobs.kind("test.rls")


@dataclass
class AppRole:
    """The migrated database, seeded by the owner, and an engine connected as the app role."""

    owner: Database
    app: Database
    seeded: Seeded

    @property
    def engine(self) -> Engine:
        return self.app.engine


@pytest.fixture
def app_role(tmp_path: Path, pg_database: PgDatabase) -> Iterator[AppRole]:
    settings = make_settings(tmp_path, pg_database.url)
    owner = Database(settings)
    role = pg_database.create_role()
    with owner.engine.begin() as conn:
        rls.grant_app_role(conn, role)
    with owner.session_scope() as session:
        seeded = seed(session)
    app = Database(settings, pg_database.url_as(role))
    try:
        yield AppRole(owner, app, seeded)
    finally:
        app.dispose()
        owner.dispose()


def _names(conn: Connection) -> list[str]:
    return sorted(conn.execute(text("SELECT name FROM projects")).scalars())


def unguarded_tenant_tables(conn: Connection) -> list[str]:
    """The tables of the schema that have a tenant_id column, read from the catalog, and are not under
    ENABLEd and FORCEd row-level security with the ``tenant_isolation`` policy of the current tenant."""
    rows = conn.execute(
        text(
            "SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity, p.qual, p.with_check "
            "FROM pg_attribute AS a JOIN pg_class AS c ON c.oid = a.attrelid "
            "LEFT JOIN pg_policies AS p ON p.schemaname = current_schema() AND p.tablename = c.relname "
            "  AND p.policyname = 'tenant_isolation' AND p.cmd = 'ALL' AND 'public' = ANY (p.roles) "
            "WHERE a.attname = 'tenant_id' AND NOT a.attisdropped AND c.relkind IN ('r', 'p') "
            "  AND c.relnamespace = current_schema()::regnamespace"
        )
    ).all()
    assert rows, "no table with a tenant_id column: is this the appliance's schema?"
    guarded = (True, True, f"({TENANT})", f"({TENANT})")
    return sorted(row.relname for row in rows if tuple(row[1:]) != guarded)


def test_every_table_with_a_tenant_id_is_under_forced_rls_with_tenant_isolation(
    tmp_path: Path, pg_database: PgDatabase
) -> None:
    """From the catalog, not from a list: a table added with a tenant_id and no row-level security fails
    here whatever the code's lists say."""
    engine = build_engine(make_settings(tmp_path, pg_database.url))
    try:
        with engine.connect() as conn:
            assert unguarded_tenant_tables(conn) == []
            # The check sees a table it was never told of.
            conn.execute(text("CREATE TABLE forgotten (id uuid PRIMARY KEY, tenant_id uuid NOT NULL)"))
            assert unguarded_tenant_tables(conn) == ["forgotten"]
            conn.execute(text("ALTER TABLE forgotten ENABLE ROW LEVEL SECURITY"))
            conn.execute(text(f"CREATE POLICY tenant_isolation ON forgotten USING ({TENANT})"))
            assert unguarded_tenant_tables(conn) == ["forgotten"]  # not FORCEd, no WITH CHECK
            conn.rollback()
            tables = set(
                conn.execute(
                    text(
                        "SELECT c.relname FROM pg_attribute AS a JOIN pg_class AS c ON c.oid = a.attrelid "
                        "WHERE a.attname = 'tenant_id' AND c.relkind = 'r' "
                        "AND c.relnamespace = current_schema()::regnamespace"
                    )
                ).scalars()
            )
    finally:
        engine.dispose()
    # And the code's lists name the same tables (the ORM filter's, and those it leaves to their services).
    assert tables == set(TENANT_TABLES)


def _policies(conn: Connection) -> dict[tuple[str, str], tuple[str, str | None, str | None, set[str]]]:
    return {
        (row.tablename, row.policyname): (row.cmd, row.qual, row.with_check, set(row.roles))
        for row in conn.execute(
            text(
                "SELECT tablename, policyname, cmd, qual, with_check, roles FROM pg_policies "
                "WHERE schemaname = current_schema()"
            )
        )
    }


def test_the_policies_beside_tenant_isolation(tmp_path: Path, pg_database: PgDatabase) -> None:
    engine = build_engine(make_settings(tmp_path, pg_database.url))
    try:
        with engine.connect() as conn:
            policies = _policies(conn)
            owner = conn.execute(text("SELECT current_user")).scalar()
            enabled = set(
                conn.execute(
                    text(
                        "SELECT relname FROM pg_class WHERE relrowsecurity "
                        "AND relnamespace = current_schema()::regnamespace"
                    )
                ).scalars()
            )
    finally:
        engine.dispose()
    assert enabled == set(TENANT_TABLES)  # no other table is under row-level security
    assert policies[("audit_logs", "platform_events")][1] == "(tenant_id IS NULL)"
    for table in PLATFORM_ROWS_TABLES:  # the platform's own rows, for no tenant's transaction
        no_tenant = "(NULLIF(current_setting('app.tenant_id'::text, true), ''::text))::uuid IS NULL"
        assert policies[(table, "platform_rows")][1] == f"((tenant_id IS NULL) AND ({no_tenant}))"
    for lookup in LOOKUPS:  # a lookup reads the rows the caller names, and writes nothing
        assert policies[(lookup.table, lookup.policy)][0] == "SELECT"
    assert policies[("refresh_tokens", "refresh_tokens_user")][1] == (
        "(user_id = (NULLIF(current_setting('app.user_id'::text, true), ''::text))::uuid)"
    )
    # The counts of several tenants (appliance.db.tenant_counts): SELECT policies of the owner that the view
    # reads as, never the app role's, whose tenant-scoped queries must keep tenant_isolation alone.
    for table in COUNTED_TABLES:
        assert policies[(table, f"{table}_tenant_counts")][0] == "SELECT"
        assert policies[(table, f"{table}_tenant_counts")][3] == {owner}
    # The owner's functions' way through: the owner's alone, and only while one of them runs.
    for table in set(NARROW_PATHS.values()):
        cmd, qual, _, roles = policies[(table, f"{table}_definer")]
        assert (cmd, qual, roles) == (
            "ALL",
            f"(current_setting('app.definer'::text, true) = '{table}'::text)",
            {owner},
        )
    public = {name for (_, name), (*_, roles) in policies.items() if roles == {"public"}}
    assert public == {
        "tenant_isolation",
        "platform_events",
        "platform_rows",
        "refresh_tokens_user",
        *(lookup.policy for lookup in LOOKUPS),
    }
    expected = (
        len(TENANT_TABLES)  # tenant_isolation
        + 1  # platform_events
        + len(PLATFORM_ROWS_TABLES)
        + 1  # refresh_tokens_user
        + len(LOOKUPS)
        + len(COUNTED_TABLES)
        + len(set(NARROW_PATHS.values()))
    )
    assert len(policies) == expected


def test_the_narrow_paths_are_the_owners_functions_only_the_app_role_runs(app_role: AppRole) -> None:
    with app_role.owner.engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT p.proname, p.prosecdef, p.proconfig, pg_get_userbyid(p.proowner) AS owner, "
                "has_function_privilege('public', p.oid, 'EXECUTE') AS public_runs "
                "FROM pg_proc AS p WHERE p.pronamespace = current_schema()::regnamespace"
            )
        ).all()
        schema = conn.execute(text("SELECT current_schema()")).scalar()
        owner = conn.execute(text("SELECT current_user")).scalar()
    functions = {row.proname: row for row in rows}
    assert set(functions) == set(NARROW_PATHS)
    for name in NARROW_PATHS:
        row = functions[name]
        assert row.prosecdef, name
        assert row.owner == owner, name
        assert not row.public_runs, name
        assert row.proconfig == [f"search_path={schema}, pg_temp"], name
    with app_role.engine.connect() as conn:
        runs = conn.execute(
            text(
                "SELECT bool_and(has_function_privilege(oid, 'EXECUTE')) FROM pg_proc WHERE proname = ANY(:n)"
            ),
            {"n": list(NARROW_PATHS)},
        ).scalar()
    assert runs is True
    with app_role.engine.begin() as conn:
        tenancy.set_tenant(conn, app_role.seeded.tenant_a)
        conn.execute(text("SELECT * FROM jobs_state_counts()")).all()
        # A function leaves the setting as it found it.
        assert conn.execute(text("SELECT current_setting('app.definer', true)")).scalar() in ("", None)


def test_the_app_role_cannot_bypass_rls(app_role: AppRole) -> None:
    with app_role.engine.connect() as conn:
        row = conn.execute(
            text("SELECT rolbypassrls, rolsuper FROM pg_roles WHERE rolname = current_user")
        ).one()
    assert tuple(row) == (False, False)


def test_raw_sql_sees_only_the_transactions_tenant(app_role: AppRole) -> None:
    seeded = app_role.seeded
    with app_role.engine.begin() as conn:
        tenancy.set_tenant(conn, seeded.tenant_a)
        assert _names(conn) == ["Rocket", "Sled"]
        assert conn.execute(text("SELECT count(*) FROM organizations")).scalar() == 1
    with app_role.engine.begin() as conn:
        tenancy.set_tenant(conn, seeded.tenant_b)
        assert _names(conn) == ["Secret"]
        # A tenant's UPDATE and DELETE cannot reach another tenant's rows.
        assert conn.execute(text("UPDATE projects SET description = 'x'")).rowcount == 1
        assert conn.execute(text("DELETE FROM memberships")).rowcount == 2


def test_with_no_tenant_set_the_app_role_sees_nothing(app_role: AppRole) -> None:
    with app_role.engine.begin() as conn:
        assert _names(conn) == []
        for table in TENANT_TABLES:
            if table != "audit_logs":  # platform events are visible; there are none yet
                assert conn.execute(text(f"SELECT count(*) FROM {table}")).scalar() == 0, table
    # The setting is local to its transaction: a pooled connection never carries a tenant to the next one.
    with app_role.engine.connect() as conn:
        with conn.begin():
            tenancy.set_tenant(conn, app_role.seeded.tenant_a)
            assert len(_names(conn)) == 2
        with conn.begin():
            assert _names(conn) == []


def test_writing_a_row_for_another_tenant_is_refused(app_role: AppRole) -> None:
    seeded = app_role.seeded
    with pytest.raises(DBAPIError, match="row-level security"), app_role.engine.begin() as conn:
        tenancy.set_tenant(conn, seeded.tenant_a)
        conn.execute(
            text(
                "INSERT INTO projects (id, tenant_id, organization_id, name, description, created_at, "
                "updated_at) VALUES (gen_random_uuid(), :tenant, :org, 'Planted', '', now(), now())"
            ),
            {"tenant": seeded.tenant_b, "org": seeded.org_b},
        )
    with pytest.raises(DBAPIError, match="row-level security"), app_role.engine.begin() as conn:
        tenancy.set_tenant(conn, seeded.tenant_a)
        conn.execute(text("UPDATE projects SET tenant_id = :b"), {"b": seeded.tenant_b})
    with app_role.engine.begin() as conn:
        tenancy.set_tenant(conn, seeded.tenant_b)
        assert _names(conn) == ["Secret"]


def test_the_orm_session_is_scoped_in_every_transaction(app_role: AppRole) -> None:
    with app_role.app.session_scope() as session:
        tenancy.set_tenant(session, app_role.seeded.tenant_a)
        assert sorted(session.scalars(select(Project.name))) == ["Rocket", "Sled"]
        session.commit()  # the next transaction sets app.tenant_id again, in after_begin
        assert session.execute(text("SELECT current_setting('app.tenant_id')")).scalar() == str(
            app_role.seeded.tenant_a
        )
        assert sorted(session.execute(text("SELECT name FROM projects")).scalars()) == ["Rocket", "Sled"]


def test_lookups_reveal_only_the_identified_rows(app_role: AppRole) -> None:
    seeded = app_role.seeded
    with app_role.engine.begin() as conn:
        tenancy.set_user(conn, seeded.user)
        tenants = set(conn.execute(text("SELECT tenant_id FROM memberships")).scalars())
        assert tenants == {seeded.tenant_a, seeded.tenant_b}
        assert conn.execute(text("UPDATE memberships SET role = 'owner'")).rowcount == 0
        assert _names(conn) == []


def test_audit_logs_are_append_only_for_the_app_role(app_role: AppRole) -> None:
    seeded = app_role.seeded
    insert = text(
        "INSERT INTO audit_logs (id, tenant_id, seq, action, summary, created_at, prev_hash, hash) "
        "VALUES (gen_random_uuid(), :tenant, 1, 'project.create', '{}', now(), '0', 'h')"
    )
    with app_role.engine.begin() as conn:
        tenancy.set_tenant(conn, seeded.tenant_a)
        conn.execute(insert, {"tenant": seeded.tenant_a})
        conn.execute(insert, {"tenant": None})  # a platform event
    for statement in ("UPDATE audit_logs SET action = 'forged'", "DELETE FROM audit_logs"):
        with pytest.raises(DBAPIError, match="permission denied"), app_role.engine.begin() as conn:
            tenancy.set_tenant(conn, seeded.tenant_a)
            conn.execute(text(statement))
    with app_role.engine.begin() as conn:
        tenancy.set_tenant(conn, seeded.tenant_b)
        # B sees the platform event but not A's record.
        assert conn.execute(text("SELECT tenant_id FROM audit_logs")).scalars().all() == [None]


def test_the_app_role_cannot_change_the_schema_version(app_role: AppRole) -> None:
    with pytest.raises(DBAPIError, match="permission denied"), app_role.engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = 'x'"))
    assert app_role.app.ping() == migrate.head_revision()


# --------------------------------------------------------------------------- jobs, sessions, idempotency keys

T0 = dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.UTC)
NO_REQUEST = RequestInfo()


@dataclass
class Ledger:
    """Each tenant's job, session and idempotency key, and the platform's own, written past row-level
    security by the superuser; ``app`` connects as the app role."""

    app: Database
    seeded: Seeded
    job: dict[str, uuid.UUID]
    token: dict[str, str]
    family: dict[str, uuid.UUID]


def _write_ledger(
    session: Session, seeded: Seeded
) -> tuple[dict[str, uuid.UUID], dict[str, str], dict[str, uuid.UUID]]:
    job: dict[str, uuid.UUID] = {}
    token: dict[str, str] = {}
    family: dict[str, uuid.UUID] = {}
    for name, tenant_id in (("a", seeded.tenant_a), ("b", seeded.tenant_b), ("platform", None)):
        job[name] = jobs.enqueue(session, KIND, {"of": name}, tenant_id=tenant_id, now=T0).id
        scope = idempotency.scope(tenant_id, "user:x")
        key = idempotency.Request(tenant_id, scope, "k", "POST", "/api/v1/apps", name)
        claimed = idempotency.claim(session, key, T0)
        assert isinstance(claimed, idempotency.Claim)
        claimed.complete(201, [], f"the answer of {name}".encode(), T0)
    # ada's sessions in acme and in globex and on the platform (as an operator), eve's in globex.
    for name, user_id, tenant_id in (
        ("a", seeded.user, seeded.tenant_a),
        ("b", seeded.user, seeded.tenant_b),
        ("outsider", seeded.outsider, seeded.tenant_b),
        ("platform", seeded.user, None),
    ):
        issued = sessions.open_session(
            session,
            user_id=user_id,
            tenant_id=tenant_id,
            now=T0,
            ttl=dt.timedelta(days=30),
            request=NO_REQUEST,
        )
        token[name], family[name] = issued.token, issued.family_id
    return job, token, family


@pytest.fixture(params=["superuser-owner", "plain-owner"])
def ledger(request: pytest.FixtureRequest, tmp_path: Path, pg_database: PgDatabase) -> Iterator[Ledger]:
    """Migrated by a superuser, or by a plain owner role that the FORCEd row-level security binds too (as in
    production), so that the owner's functions must find their own way through."""
    owner_url = pg_database.plain_owner() if request.param == "plain-owner" else pg_database.url
    role = pg_database.create_role(password="app-secret")
    settings = make_settings(
        tmp_path, database={"url": pg_database.url_as(role, "app-secret"), "migrations_url": owner_url}
    )
    superuser, app = Database(settings, pg_database.url), Database(settings)
    try:
        with superuser.session_scope() as session:
            seeded = seed(session)
            job, token, family = _write_ledger(session, seeded)
        yield Ledger(app, seeded, job, token, family)
    finally:
        app.dispose()
        superuser.dispose()


def _column(conn: Connection, sql: str) -> set[object]:
    return set(conn.execute(text(sql)).scalars())


def test_a_tenant_sees_only_its_own_jobs_sessions_and_idempotency_keys(ledger: Ledger) -> None:
    seeded = ledger.seeded
    with ledger.app.engine.begin() as conn:
        tenancy.set_tenant(conn, seeded.tenant_a)
        assert _column(conn, "SELECT id FROM jobs") == {ledger.job["a"]}
        # The setting the owner's functions run under gives the app role nothing (the policy is the owner's).
        conn.execute(text("SELECT set_config('app.definer', 'jobs', true)"))
        assert _column(conn, "SELECT id FROM jobs") == {ledger.job["a"]}
        conn.execute(text("SELECT set_config('app.definer', 'refresh_tokens', true)"))
        assert _column(conn, "SELECT family_id FROM refresh_tokens") == {ledger.family["a"]}
        assert _column(conn, "SELECT response_body FROM idempotency_keys") == {b"the answer of a"}
        # Nor does it change another tenant's, or write one.
        assert conn.execute(text("UPDATE jobs SET state = 'cancelled'")).rowcount == 1
        assert conn.execute(text("UPDATE refresh_tokens SET revoked_at = now()")).rowcount == 1
        assert conn.execute(text("DELETE FROM idempotency_keys")).rowcount == 1
    planted = {
        "jobs": (
            "(id, tenant_id, kind, payload, state, attempts, max_attempts, run_at, pushed_at, created_at) "
            "VALUES (gen_random_uuid(), :b, 'x', '{}', 'queued', 0, 1, now(), now(), now())"
        ),
        "idempotency_keys": (
            "(id, tenant_id, principal, key, method, path, request_hash, created_at) "
            "VALUES (gen_random_uuid(), :b, 'p', 'k2', 'POST', '/', 'h', now())"
        ),
    }
    for table, values in planted.items():
        with pytest.raises(DBAPIError, match="row-level security"), ledger.app.engine.begin() as conn:
            tenancy.set_tenant(conn, seeded.tenant_a)
            conn.execute(text(f"INSERT INTO {table} {values}"), {"b": seeded.tenant_b})
    with ledger.app.engine.begin() as conn:
        # With no tenant set: the platform's own job and key, and no session at all.
        assert _column(conn, "SELECT id FROM jobs") == {ledger.job["platform"]}
        assert _column(conn, "SELECT family_id FROM refresh_tokens") == set()
        assert _column(conn, "SELECT response_body FROM idempotency_keys") == {b"the answer of platform"}
    with ledger.app.engine.begin() as conn:
        tenancy.set_tenant(conn, seeded.tenant_b)
        assert _column(conn, "SELECT id FROM jobs") == {ledger.job["b"]}  # A cancelled its own only
        assert _column(conn, "SELECT state FROM jobs") == {"queued"}
        assert _column(conn, "SELECT count(*) FROM refresh_tokens WHERE revoked_at IS NULL") == {2}


def test_a_session_is_seen_by_its_user_or_by_the_hash_of_its_token(ledger: Ledger) -> None:
    seeded = ledger.seeded
    with ledger.app.engine.begin() as conn:
        tenancy.set_user(conn, seeded.user)
        # ada's own sessions, in every tenant and on the platform; never eve's.
        assert _column(conn, "SELECT family_id FROM refresh_tokens") == {
            ledger.family["a"],
            ledger.family["b"],
            ledger.family["platform"],
        }
    with (
        ledger.app.session_scope() as session,
        tenancy.refresh_token_lookup(session, tokens.hash_refresh_token(ledger.token["outsider"])),
    ):
        rows = session.execute(text("SELECT family_id FROM refresh_tokens")).scalars().all()
        assert rows == [ledger.family["outsider"]]
        # The lookup reads; it does not write.
        changed = session.connection().execute(text("UPDATE refresh_tokens SET revoked_at = now()"))
        assert changed.rowcount == 0


def test_a_refresh_rotates_any_tenants_session_before_its_tenant_is_known(ledger: Ledger) -> None:
    seeded = ledger.seeded
    for name in ("b", "platform"):
        with ledger.app.session_scope() as session:
            rotation = sessions.rotate(
                session, ledger.token[name], now=T0, ttl=dt.timedelta(days=1), request=NO_REQUEST
            )
        assert (rotation.user_id, rotation.issued.family_id) == (seeded.user, ledger.family[name])
        with ledger.app.session_scope() as session, pytest.raises(sessions.RefreshReused):
            sessions.rotate(session, ledger.token[name], now=T0, ttl=dt.timedelta(days=1), request=NO_REQUEST)
    # The reuse ended both sessions, which every API process then learns of, whatever their tenant.
    with ledger.app.session_scope() as session:
        ended = dict(sessions.revoked_since(session, None, T0, dt.timedelta(minutes=15)))
        assert set(ended) == {ledger.family["b"], ledger.family["platform"]}
        assert sessions.family_revoked(session, ledger.family["b"], user_id=seeded.user)
        assert not sessions.family_revoked(session, ledger.family["a"], user_id=seeded.user)
        # A new password ends every other session of the user, in every tenant.
        assert sessions.revoke_user(session, seeded.user, T0) == [ledger.family["a"]]


def test_a_worker_claims_any_tenants_job_by_id_and_the_reaper_finds_every_tenants(ledger: Ledger) -> None:
    seeded = ledger.seeded
    with ledger.app.engine.begin() as conn:
        tenancy.set_tenant(conn, seeded.tenant_a)  # whatever the connection's scope
        claimed = leases.claim(conn, ledger.job["b"], "w1", 30, now=T0)
    assert claimed is not None
    assert (claimed.tenant_id, claimed.payload, claimed.attempt) == (seeded.tenant_b, {"of": "b"}, 1)
    with ledger.app.engine.begin() as conn:
        platform = leases.claim(conn, ledger.job["platform"], "w1", 30, now=T0)
        assert platform is not None
        assert leases.renew(conn, [claimed, platform], 30, now=T0) == 2
    # The worker dies; its leases run out, and the reaper hands both jobs on, with the one never pushed.
    with ledger.app.engine.begin() as conn:
        reaped = job_reaper.reap(conn, requeue_after=60, keep_days=30, now=T0 + dt.timedelta(minutes=5))
    assert (reaped.expired, reaped.lost_pushes) == (2, 1)
    assert set(reaped.requeue) == set(ledger.job.values())
    with ledger.app.engine.begin() as conn:
        again = leases.claim(conn, ledger.job["b"], "w2", 30, now=T0 + dt.timedelta(minutes=6))
        assert again is not None
        assert leases.fail(conn, again, "down", retry_in=None, now=T0 + dt.timedelta(minutes=7)) is None
    with ledger.app.session_scope() as session:
        assert job_queries.counts(session) == {
            "queued": 2,
            "running": 0,
            "succeeded": 0,
            "dead": 1,
            "cancelled": 0,
        }
        # And still, with no tenant set, the app role reads no tenant's job itself.
        assert session.execute(text("SELECT count(*) FROM jobs WHERE tenant_id IS NOT NULL")).scalar() == 0


def test_operators_list_every_tenants_jobs_and_act_on_one(ledger: Ledger) -> None:
    seeded = ledger.seeded
    with ledger.app.session_scope() as session:
        tenancy.set_platform(session)
        page, cursor = job_queries.list_page(session, tenant_id=None, every_tenant=True, limit=2)
        rest, end = job_queries.list_page(session, tenant_id=None, every_tenant=True, limit=2, cursor=cursor)
        assert end is None
        listed = {job.id: job.payload for job in [*page, *rest]}
        assert listed == {job_id: {"of": name} for name, job_id in ledger.job.items()}
        mine, _ = job_queries.list_page(session, tenant_id=seeded.tenant_b, limit=10)
        assert [job.id for job in mine] == [ledger.job["b"]]
        cancelled = manage.cancel(session, manage.get(session, ledger.job["b"], None, every_tenant=True))
        assert cancelled.tenant_id == seeded.tenant_b
        with pytest.raises(NotFound):
            manage.get(session, uuid.uuid4(), None, every_tenant=True)
    with ledger.app.engine.begin() as conn:
        tenancy.set_tenant(conn, seeded.tenant_b)
        assert _column(conn, "SELECT state FROM jobs") == {"cancelled"}


def test_expired_idempotency_keys_of_every_tenant_are_purged(ledger: Ledger) -> None:
    assert idempotency.purge_expired(ledger.app, T0 + idempotency.RETENTION) == 0
    assert idempotency.purge_expired(ledger.app, T0 + idempotency.RETENTION + dt.timedelta(seconds=1)) == 3
    with ledger.app.engine.begin() as conn:
        tenancy.set_tenant(conn, ledger.seeded.tenant_a)
        assert _column(conn, "SELECT count(*) FROM idempotency_keys") == {0}


def test_the_workers_hot_path_claims_and_records_any_tenants_successes(ledger: Ledger) -> None:
    hot = Claims(ledger.app)
    told: list[bool] = []
    try:
        claimed = [hot.claim(ledger.job[name], "w", 30) for name in ("a", "b", "platform")]
        for job in claimed:
            assert job is not None
            hot.succeed_soon(job, {"done": job.payload["of"]}, told.append)
        wait_for(lambda: len(told) == 3, 10, what="the successes written")
    finally:
        hot.close()
    assert told == [True, True, True]
    for tenant_id, name in ((ledger.seeded.tenant_a, "a"), (ledger.seeded.tenant_b, "b")):
        with ledger.app.engine.begin() as conn:
            tenancy.set_tenant(conn, tenant_id)
            rows = conn.execute(text("SELECT state, result::text FROM jobs")).all()
            assert [tuple(row) for row in rows] == [("succeeded", f'{{"done": "{name}"}}')]
