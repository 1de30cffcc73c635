"""The audit log on both databases: one hash chain per tenant and one for the platform, verification that
finds an edited or removed record, redaction, queries with keyset pages, concurrent writers, and
PostgreSQL's app role, which may append to the log but never change it."""

from __future__ import annotations

import datetime as dt
import enum
import hashlib
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Uuid, bindparam, select, text, update
from sqlalchemy.exc import DBAPIError

from appliance.db import rls, tenancy
from appliance.db.base import Base
from appliance.db.session import Database
from appliance.db.tenancy import TenantScopeError
from appliance.errors import InvalidInput, NotFound
from appliance.models import GENESIS_HASH, AuditLog, Tenant
from appliance.services.access.actors import Actor, RequestInfo
from appliance.services.audit import format as audit_format
from appliance.services.audit import log as audit
from appliance.services.audit import verify as audit_verify
from tests.conftest import PgDatabase
from tests.support import make_settings

T0 = dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.UTC)
AUDIT = Base.metadata.tables["audit_logs"]


@dataclass(frozen=True)
class Tenants:
    acme: uuid.UUID
    globex: uuid.UUID


def make_tenants(database: Database) -> Tenants:
    with database.session_scope() as session:
        acme, globex = Tenant(slug="acme", name="Acme"), Tenant(slug="globex", name="Globex")
        session.add_all([acme, globex])
        session.flush()
        return Tenants(acme.id, globex.id)


@pytest.fixture
def tenants(db: Database) -> Tenants:
    return make_tenants(db)


def write(
    database: Database,
    tenant_id: uuid.UUID | None,
    count: int = 1,
    *,
    scope: uuid.UUID | None = None,
    **kw: Any,
) -> list[AuditLog]:
    """``count`` records in one transaction, the session scoped to ``scope`` (default: the chain's tenant)."""
    with database.session_scope() as session:
        scope = scope or tenant_id
        if scope is not None:
            tenancy.set_tenant(session, scope)
        kw.setdefault("action", "project.update")
        return [audit.record(session, tenant_id=tenant_id, **kw) for _ in range(count)]


def verify(database: Database, tenant_id: uuid.UUID | None, **kw: Any) -> audit_verify.ChainReport:
    with database.session_scope(write=False) as session:
        if tenant_id is not None:
            tenancy.set_tenant(session, tenant_id)
        return audit_verify.verify(session, tenant_id, **kw)


def tamper(database: Database, record_id: uuid.UUID, **changes: Any) -> None:
    """Change a stored record behind the service's back, as the owner (superuser, or the SQLite file)."""
    with database.engine.begin() as conn:
        assert conn.execute(update(AUDIT).where(AUDIT.c.id == record_id).values(**changes)).rowcount == 1


def kinds(report: audit_verify.ChainReport) -> list[tuple[int, str]]:
    return [(problem.seq, problem.kind) for problem in report.problems]


# --------------------------------------------------------------------------- chains


def test_each_tenant_and_the_platform_have_a_chain_of_their_own(db: Database, tenants: Tenants) -> None:
    write(db, tenants.acme, 3)
    write(db, tenants.globex, 2)
    write(db, None, scope=tenants.acme, action="auth.login")  # a platform event from a tenant's session
    write(db, None, action="auth.login_failed")  # and from a session with no tenant
    write(db, tenants.acme)
    with db.session_scope() as session:
        tenancy.set_platform(session)
        rows = session.scalars(select(AuditLog).order_by(AuditLog.created_at)).all()
    chains: dict[uuid.UUID | None, list[AuditLog]] = {}
    for row in rows:
        chains.setdefault(row.tenant_id, []).append(row)
    assert {tenant: [r.seq for r in chain] for tenant, chain in chains.items()} == {
        tenants.acme: [1, 2, 3, 4],
        tenants.globex: [1, 2],
        None: [1, 2],
    }
    for chain in chains.values():
        assert [r.prev_hash for r in chain] == [GENESIS_HASH] + [r.hash for r in chain[:-1]]
        assert all(r.hash == audit_format.compute_hash(r.__dict__) for r in chain)


def test_a_tenant_record_needs_the_session_scoped_to_that_tenant(db: Database, tenants: Tenants) -> None:
    with pytest.raises(TenantScopeError, match="no tenant set"), db.session_scope() as session:
        audit.record(session, action="project.create", tenant_id=tenants.acme)
    with pytest.raises(TenantScopeError, match=f"scoped to tenant {tenants.globex}"):
        write(db, tenants.acme, scope=tenants.globex)
    with db.session_scope() as session:  # platform scope may write any chain (as the database allows)
        tenancy.set_platform(session)
        audit.record(session, action="tenant.suspend", tenant_id=tenants.acme)
    assert verify(db, tenants.acme).records == 1


def test_the_actor_and_the_request_are_recorded(db: Database, tenants: Tenants) -> None:
    user, key = uuid.uuid4(), uuid.uuid4()
    via_browser = Actor(
        user_id=user, tenant_id=tenants.acme, request=RequestInfo("203.0.113.7", "Firefox", "req-1")
    )
    via_key = Actor(user_id=None, tenant_id=tenants.acme, api_key_id=key)
    (by_user,) = write(db, tenants.acme, actor=via_browser, resource_type="project", resource_id=key)
    (by_key,) = write(db, tenants.acme, actor=via_key, request=RequestInfo(user_agent="x" * 1000))
    assert (by_user.actor_user_id, by_user.actor_api_key_id) == (user, None)
    assert (by_user.ip, by_user.user_agent, by_user.request_id) == ("203.0.113.7", "Firefox", "req-1")
    assert (by_user.resource_type, by_user.resource_id) == ("project", str(key))
    assert (by_key.actor_user_id, by_key.actor_api_key_id) == (None, key)
    assert by_key.user_agent == "x" * 400  # clipped to the column: a long header never fails the change
    assert verify(db, tenants.acme).ok
    with pytest.raises(ValueError, match="action must be 1 to 100"):
        write(db, tenants.acme, action="")


# --------------------------------------------------------------------------- verification


def test_an_untouched_chain_verifies(db: Database, tenants: Tenants) -> None:
    written = write(db, tenants.acme, 5, summary={"name": ["Rocket", "Sled"]})
    write(db, None, 2)
    report = verify(db, tenants.acme, batch_size=2)  # three batches
    assert (report.ok, report.records, report.problems) == (True, 5, ())
    assert (report.head_seq, report.head_hash) == (5, written[-1].hash)
    reports = audit_verify.verify_all(db)
    assert [(r.label, r.records, r.ok) for r in reports] == [
        ("platform", 2, True),
        ("acme", 5, True),
        ("globex", 0, True),
    ]
    assert reports[2].head_hash == GENESIS_HASH


@pytest.mark.parametrize(
    "changes",
    [
        pytest.param({"action": "project.delete"}, id="action"),
        pytest.param({"summary": {"name": ["Rocket", "Forged"]}}, id="summary"),
        pytest.param({"created_at": T0}, id="created_at"),
        pytest.param({"actor_user_id": None}, id="actor"),
        pytest.param({"ip": "198.51.100.1"}, id="ip"),
    ],
)
def test_an_edited_record_is_found_altered_at_its_seq(
    db: Database, tenants: Tenants, changes: dict[str, Any]
) -> None:
    actor = Actor(user_id=uuid.uuid4(), tenant_id=tenants.acme, request=RequestInfo(ip="203.0.113.7"))
    written = write(db, tenants.acme, 4, actor=actor, summary={"name": ["Rocket", "Sled"]})
    tamper(db, written[1].id, **changes)
    report = verify(db, tenants.acme)
    assert not report.ok
    # Only the edited record: the next one still links to the hash stored with it.
    assert kinds(report) == [(2, "altered")]
    assert report.problems[0].record_id == written[1].id
    assert verify(db, tenants.globex).ok


@pytest.mark.parametrize(("removed", "found_at", "missing"), [(2, 3, "seq 2"), (1, 2, "seq 1")])
def test_a_removed_record_leaves_a_gap(
    db: Database, tenants: Tenants, removed: int, found_at: int, missing: str
) -> None:
    written = write(db, tenants.acme, 4)
    write(db, tenants.globex, 4)
    delete = text("DELETE FROM audit_logs WHERE id = :id").bindparams(bindparam("id", type_=Uuid()))
    with db.engine.begin() as conn:
        deleted = conn.execute(delete, {"id": written[removed - 1].id})
        assert deleted.rowcount == 1
    report = verify(db, tenants.acme)
    assert kinds(report) == [(found_at, "gap")]
    assert missing in report.problems[0].message
    assert report.problems[0].record_id == written[found_at - 1].id
    assert verify(db, tenants.globex).ok


def test_an_edit_whose_hash_was_recomputed_breaks_the_next_link(db: Database, tenants: Tenants) -> None:
    written = write(db, tenants.acme, 3)
    forged = {name: getattr(written[1], name) for name in audit_format.HASHED_FIELDS} | {
        "action": "project.delete"
    }
    tamper(db, written[1].id, action="project.delete", hash=audit_format.compute_hash(forged))
    assert kinds(verify(db, tenants.acme)) == [(3, "broken_link")]


def test_a_removed_and_renumbered_record_is_found(db: Database, tenants: Tenants) -> None:
    """Deleting seq 2 and moving seq 3 down to 2 hides the gap; the hash covers seq, and the link breaks."""
    written = write(db, tenants.acme, 3)
    with db.engine.begin() as conn:
        conn.execute(AUDIT.delete().where(AUDIT.c.id == written[1].id))
    tamper(db, written[2].id, seq=2)
    assert kinds(verify(db, tenants.acme)) == [(2, "altered"), (2, "broken_link")]


def test_problems_past_the_limit_are_counted(db: Database, tenants: Tenants) -> None:
    for row in write(db, tenants.acme, 5):
        tamper(db, row.id, action="forged")
    report = verify(db, tenants.acme, max_problems=2)
    assert (len(report.problems), report.problems_omitted, report.ok) == (2, 3, False)


def test_verify_all_names_one_tenant_or_fails_clearly(db: Database, tenants: Tenants) -> None:
    write(db, tenants.globex, 2)
    assert [(r.slug, r.records) for r in audit_verify.verify_all(db, slug="globex")] == [("globex", 2)]
    with pytest.raises(NotFound, match="'nosuch'"):
        audit_verify.verify_all(db, slug="nosuch")
    seen: list[tuple[int, int]] = []
    audit_verify.verify_all(db, progress=lambda done, total: seen.append((done, total)))
    assert seen == [(1, 3), (2, 3), (3, 3)]


def test_concurrent_writers_get_consecutive_seqs(
    db: Database, tenants: Tenants, monkeypatch: pytest.MonkeyPatch
) -> None:
    """8 threads x 10 records into one chain, each record in a transaction of its own: no seq is given twice
    and none is skipped (an advisory lock on PostgreSQL, the write lock taken early on SQLite)."""
    start = threading.Barrier(8)
    compute_hash = audit_format.compute_hash

    def slow_hash(fields: Any) -> str:
        time.sleep(0.002)  # widen the window between reading the chain's head and inserting after it
        return compute_hash(fields)

    monkeypatch.setattr(audit, "compute_hash", slow_hash)

    def writer(number: int) -> None:
        start.wait()
        for i in range(10):
            write(db, tenants.acme, summary={"writer": number, "i": i})

    with ThreadPoolExecutor(8) as pool:
        for future in [pool.submit(writer, n) for n in range(8)]:
            future.result()
    report = verify(db, tenants.acme)
    assert (report.ok, report.records, report.head_seq) == (True, 80, 80)


# --------------------------------------------------------------------------- what is stored


def test_secrets_are_redacted_at_any_depth(db: Database, tenants: Tenants) -> None:
    summary = {
        "password": "hunter2",
        "changes": {"totp_secret": ["a", "b"], "name": ["Old", "New"]},
        "keys": [{"key_hash": "h", "prefix": "fa_123"}],
        "Refresh_Token": "r",
    }
    expected = {
        "password": audit_format.REDACTED,
        "changes": {"totp_secret": audit_format.REDACTED, "name": ["Old", "New"]},
        "keys": [{"key_hash": audit_format.REDACTED, "prefix": "fa_123"}],
        "Refresh_Token": audit_format.REDACTED,
    }
    assert audit_format.redact(summary) == expected
    (row,) = write(db, tenants.acme, summary=summary)
    with db.engine.connect() as conn:
        stored = conn.execute(text("SELECT CAST(summary AS TEXT) FROM audit_logs")).scalar_one()
    for secret in ("hunter2", '"a"', '"h"', '"r"'):
        assert secret not in stored
    assert row.summary == expected


class Color(enum.StrEnum):
    RED = "red"


def test_a_summary_survives_the_round_trip(db: Database, tenants: Tenants) -> None:
    ref, moment = (
        uuid.uuid4(),
        dt.datetime(2024, 5, 1, 14, 0, 0, 5, tzinfo=dt.timezone(dt.timedelta(hours=2))),
    )
    summary = {
        "ref": ref,
        "at": moment,
        "day": dt.date(2024, 5, 1),
        "color": Color.RED,
        "pair": (1, 2.5),
        "big": 2**70,
        "text": 'naïve ☃ "quoted"',
        "none": None,
        "flag": False,
        "nested": {"empty": [], "zero": 0.0},
    }
    (row,) = write(db, tenants.acme, summary=summary)
    with db.session_scope() as session:
        tenancy.set_tenant(session, tenants.acme)
        reloaded = session.scalars(select(AuditLog)).one().summary
    assert reloaded == row.summary
    assert reloaded["ref"] == str(ref)
    assert reloaded["at"] == "2024-05-01T12:00:00.000005Z"
    assert (reloaded["day"], reloaded["color"], reloaded["pair"]) == ("2024-05-01", "red", [1, 2.5])
    assert verify(db, tenants.acme).ok


@pytest.mark.parametrize(
    ("summary", "error", "match"),
    [
        ({"ratio": float("nan")}, ValueError, r"summary\.ratio: nan"),
        ({"limit": {"max": float("inf")}}, ValueError, r"summary\.limit\.max: inf"),
        ({"when": dt.datetime(2024, 5, 1)}, ValueError, "naive"),
        ({1: "one"}, TypeError, "key 1 is not a string"),
        ({"raw": b"bytes"}, TypeError, "bytes is not JSON"),
        ({"items": [object()]}, TypeError, r"summary\.items\[0\]: a object"),
    ],
)
def test_values_json_cannot_hold_are_refused(
    db: Database, tenants: Tenants, summary: dict[Any, Any], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        write(db, tenants.acme, summary=summary)
    assert verify(db, tenants.acme).records == 0


def test_the_hash_is_sha256_of_the_canonical_json() -> None:
    """The serialization is part of every stored hash: changing it would fail every existing chain."""
    tenant, user = uuid.UUID(int=1), uuid.UUID(int=2)
    fields = {
        "tenant_id": tenant,
        "seq": 7,
        "actor_user_id": user,
        "actor_api_key_id": None,
        "action": "project.create",
        "resource_type": "project",
        "resource_id": "p1",
        "summary": {"b": [1, "é"], "a": None},
        "ip": "203.0.113.7",
        "user_agent": None,
        "request_id": "r1",
        "created_at": dt.datetime(2024, 5, 1, 14, 0, tzinfo=dt.timezone(dt.timedelta(hours=2))),
        "prev_hash": GENESIS_HASH,
    }
    canonical = (
        '{"action":"project.create","actor_api_key_id":null,'
        '"actor_user_id":"00000000-0000-0000-0000-000000000002","created_at":"2024-05-01T12:00:00.000000Z",'
        f'"ip":"203.0.113.7","prev_hash":"{GENESIS_HASH}","request_id":"r1","resource_id":"p1",'
        '"resource_type":"project","seq":7,"summary":{"a":null,"b":[1,"\\u00e9"]},'
        '"tenant_id":"00000000-0000-0000-0000-000000000001","user_agent":null}'
    )
    assert audit_format.compute_hash(fields) == hashlib.sha256(canonical.encode()).hexdigest()
    # A record written before actor_name existed (or without one) keeps its hash; one with it is covered.
    unnamed = audit_format.compute_hash(fields | {"actor_name": None})
    assert unnamed == hashlib.sha256(canonical.encode()).hexdigest()
    assert audit_format.compute_hash(fields | {"actor_name": "cli:root@host"}) != unnamed
    # id and hash are not covered; every other field is.
    assert audit_format.compute_hash(fields | {"id": uuid.uuid4(), "hash": "x"}) == audit_format.compute_hash(
        fields
    )
    for name in audit_format.HASHED_FIELDS:
        changed = fields | {name: "other" if name != "seq" else 8}
        assert audit_format.compute_hash(changed) != audit_format.compute_hash(fields), name
    with pytest.raises(KeyError, match="prev_hash"):
        audit_format.compute_hash({k: v for k, v in fields.items() if k != "prev_hash"})


# --------------------------------------------------------------------------- queries


def test_query_filters_by_actor_action_resource_and_time(db: Database, tenants: Tenants) -> None:
    ada, bob, key = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    as_ada = Actor(user_id=ada, tenant_id=tenants.acme)
    as_bob = Actor(user_id=bob, tenant_id=tenants.acme)
    as_key = Actor(user_id=None, tenant_id=tenants.acme, api_key_id=key)
    plan = [
        (as_ada, "project.create", "project", "p1"),
        (as_ada, "project.update", "project", "p1"),
        (as_bob, "projectx.create", "projectx", "p2"),  # 'project.*' must not match it
        (as_key, "member.invite", "membership", "m1"),
        (as_bob, "project.delete", "project", "p1"),
    ]
    for minute, (actor, action, rtype, rid) in enumerate(plan):
        write(
            db, tenants.acme, actor=actor, action=action, resource_type=rtype, resource_id=rid,
            now=T0 + dt.timedelta(minutes=minute),
        )  # fmt: skip
    write(db, tenants.globex, action="project.create", now=T0)

    def actions(**filters: Any) -> list[str]:
        with db.session_scope() as session:
            tenancy.set_tenant(session, tenants.acme)
            return [r.action for r in audit.query(session, tenant_id=tenants.acme, **filters)]

    assert actions() == [
        "project.delete",
        "member.invite",
        "projectx.create",
        "project.update",
        "project.create",
    ]
    assert actions(actor_user_id=ada) == ["project.update", "project.create"]
    assert actions(actor_api_key_id=key) == ["member.invite"]
    assert actions(action="project.*") == ["project.delete", "project.update", "project.create"]
    assert actions(action="project.create") == ["project.create"]
    assert actions(action="project_*") == []  # '_' is not a wildcard, nor is a '*' not after a dot
    assert actions(resource_type="project", resource_id="p1", actor_user_id=bob) == ["project.delete"]
    window = {"since": T0 + dt.timedelta(minutes=1), "until": T0 + dt.timedelta(minutes=3)}
    assert actions(**window) == ["projectx.create", "project.update"]  # since inclusive, until exclusive
    assert actions(descending=False, limit=2) == ["project.create", "project.update"]


def test_query_pages_by_keyset_through_equal_times(db: Database, tenants: Tenants) -> None:
    for minute in (0, 0, 0, 1, 1, 2, 3):
        write(db, tenants.acme, now=T0 + dt.timedelta(minutes=minute))
    for descending in (True, False):
        with db.session_scope() as session:
            tenancy.set_tenant(session, tenants.acme)
            everything = audit.query(session, tenant_id=tenants.acme, limit=100, descending=descending)
            pages: list[list[AuditLog]] = []
            after = None
            while page := audit.query(
                session, tenant_id=tenants.acme, limit=3, after=after, descending=descending
            ):
                pages.append(page)
                after = (page[-1].created_at, page[-1].id)
        assert [len(p) for p in pages] == [3, 3, 1]
        assert [r.id for p in pages for r in p] == [r.id for r in everything]
        keys = [(r.created_at, r.id) for r in everything]
        assert keys == sorted(keys, reverse=descending)


def test_query_reads_one_chain_only(db: Database, tenants: Tenants) -> None:
    write(db, tenants.acme)
    write(db, None, action="auth.login")
    with db.session_scope() as session:
        tenancy.set_tenant(session, tenants.acme)
        with pytest.raises(TenantScopeError, match="read the audit chain of tenant"):
            audit.query(session, tenant_id=tenants.globex)
        with pytest.raises(TenantScopeError, match="read the platform audit chain"):
            audit.query(session, tenant_id=None)
        with pytest.raises(InvalidInput, match="limit must be between 1 and 500"):
            audit.query(session, tenant_id=tenants.acme, limit=0)
        with pytest.raises(InvalidInput, match="naive"):
            audit.query(session, tenant_id=tenants.acme, since=dt.datetime(2024, 5, 1))
    with db.session_scope() as session:
        assert [r.action for r in audit.query(session, tenant_id=None)] == ["auth.login"]


# --------------------------------------------------------------------------- PostgreSQL's app role


@dataclass
class AppRole:
    owner: Database
    app: Database
    tenants: Tenants


@pytest.fixture
def app_role(tmp_path: Path, pg_database: PgDatabase) -> Iterator[AppRole]:
    """The migrated database, tenants made by the owner, and a Database connected as a role without
    BYPASSRLS (as the API and the workers connect)."""
    settings = make_settings(tmp_path, pg_database.url)
    owner = Database(settings)
    role = pg_database.create_role()
    with owner.engine.begin() as conn:
        rls.grant_app_role(conn, role)
    made = make_tenants(owner)
    app = Database(settings, pg_database.url_as(role))
    try:
        yield AppRole(owner, app, made)
    finally:
        app.dispose()
        owner.dispose()


def test_the_app_role_appends_to_every_chain_and_verifies_them(app_role: AppRole) -> None:
    app, made = app_role.app, app_role.tenants
    write(app, made.acme, 3)
    write(app, made.globex, 2)
    write(app, None, scope=made.acme, action="auth.login")
    write(app, None, action="auth.login_failed")
    reports = audit_verify.verify_all(app)
    assert [(r.label, r.records, r.ok) for r in reports] == [
        ("platform", 2, True),
        ("acme", 3, True),
        ("globex", 2, True),
    ]
    # What the app role verified is what the owner sees.
    assert [r.head_hash for r in reports] == [r.head_hash for r in audit_verify.verify_all(app_role.owner)]


def test_the_app_role_cannot_change_or_remove_records(app_role: AppRole) -> None:
    (row,) = write(app_role.app, app_role.tenants.acme)
    for statement in ("UPDATE audit_logs SET action = 'forged'", "DELETE FROM audit_logs"):
        with pytest.raises(DBAPIError, match="permission denied"), app_role.app.engine.begin() as conn:
            tenancy.set_tenant(conn, app_role.tenants.acme)
            conn.execute(text(statement))
    report = verify(app_role.app, app_role.tenants.acme)
    assert (report.ok, report.head_hash) == (True, row.hash)
