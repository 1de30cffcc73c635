"""One tenant exported and imported on real SQLite and PostgreSQL (a plain schema owner bound by the FORCEd
row-level security, as in production): back exactly as it was after a purge, into a second appliance
under another slug, as a copy beside the original; and every refusal leaves the appliance as it was."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from appliance.db import migrate
from appliance.db.base import Base
from appliance.db.rls import TENANT_OWNED_TABLES
from appliance.errors import Conflict, InvalidInput, OperationFailed
from appliance.models import GENESIS_HASH, TenantStatus
from appliance.services.access.actors import cli_operator
from appliance.services.audit import verify as audit_verify
from appliance.services.audit.format import compute_hash
from appliance.services.backups import archive, catalog, keys, tenant_archive, tenant_ids, tenant_rows
from appliance.services.identity import passwords
from appliance.services.tenancy import tenants
from tests.services.backups.tenant_data import (
    PASSWORD,
    Appliance,
    appliance,
    every_row,
    fill,
    outsider,
    purge,
    second_pg,
)

NOW = dt.datetime(2026, 5, 1, 9, 30, tzinfo=dt.UTC)


@pytest.fixture
def source(tmp_path: Path, database_url: str, request: pytest.FixtureRequest) -> Any:
    pg = request.getfixturevalue("pg_database") if database_url.startswith("postgresql") else None
    with appliance(tmp_path / "source", pg) as made:
        yield made


def _export(app: Appliance, slug: str, progress: Any = None) -> tenant_archive.Exported:
    key = keys.load(app.settings.backup_key_file)
    return tenant_archive.export(
        app.owner,
        slug,
        directory=app.settings.backup_dir,
        recipient=key.recipient,
        actor=cli_operator(),
        now=NOW,
        progress=progress,
    )


def _import(
    app: Appliance, path: Path, key_file: Path | None = None, **options: Any
) -> tenant_archive.Imported:
    key = keys.load(key_file or app.settings.backup_key_file)
    return tenant_archive.import_archive(
        app.owner,
        path,
        list(key.identities),
        scratch=app.settings.backup_dir,
        actor=cli_operator(),
        **options,
    )


def _of(rows: dict[str, list[tuple[Any, ...]]], table: str, tenant_id: uuid.UUID) -> list[tuple[Any, ...]]:
    """The rows of ``table`` that belong to the tenant (by tenant_id; the tenant's own row by id)."""
    column = "id" if table == "tenants" else "tenant_id"
    index = [c.name for c in Base.metadata.tables[table].columns].index(column)
    return [row for row in rows[table] if row[index] == tenant_id]


def _without_imports(rows: dict[str, list[tuple[Any, ...]]]) -> dict[str, list[tuple[Any, ...]]]:
    action = [c.name for c in Base.metadata.tables["audit_logs"].columns].index("action")
    return rows | {"audit_logs": [row for row in rows["audit_logs"] if row[action] != "tenant.imported"]}


def _chain_ok(app: Appliance, slug: str) -> audit_verify.ChainReport:
    (report,) = audit_verify.verify_all(app.owner, slug=slug)
    assert report.ok, report.problems
    return report


def test_a_tenant_exported_purged_and_imported_is_back_exactly(source: Appliance) -> None:
    left = outsider(source.owner)
    acme = fill(source.owner, "acme", outsider=left)
    globex = fill(source.owner, "globex")
    before = every_row(source.admin_url)
    tenant_tables = [name for name in before if name in TENANT_OWNED_TABLES]
    assert all(_of(before, name, acme) for name in tenant_tables), "every table holds some of acme's rows"
    seen: list[tuple[str, int, int]] = []

    exported = _export(source, "acme", progress=lambda step, done, total: seen.append((step, done, total)))

    assert exported.archive.parent == source.settings.backup_dir
    assert exported.archive.name == catalog.archive_name("tenant", NOW, "acme")
    assert exported.archive.stat().st_mode & 0o077 == 0
    assert exported.rows["app_checks"] == 5
    assert exported.rows["users"] == 2
    assert exported.rows["tenants"] == 1
    summary = catalog.read_summary(exported.archive)
    assert (summary.kind, summary.tenant, summary.sha256) == ("tenant", "acme", exported.sha256)
    assert summary.schema_revision == migrate.head_revision()
    rows_seen = [item for item in seen if item[0] == "rows"]
    assert rows_seen[-1] == ("rows", sum(exported.rows.values()), sum(exported.rows.values()))
    assert [done for _, done, _ in rows_seen] == sorted(done for _, done, _ in rows_seen)

    purge(source.owner, acme)
    assert not _of(every_row(source.admin_url), "projects", acme)

    imported = _import(source, exported.archive)

    assert (imported.tenant_id, imported.slug, imported.copy) == (acme, "acme", False)
    assert imported.rows == {
        **exported.rows,
        "users": 0,
        "mfa_factors": 0,
        "recovery_codes": 0,
    }  # kept accounts
    after = every_row(source.admin_url)
    assert _without_imports(after) | {"audit_logs": []} == before | {"audit_logs": []}
    # Each tenant's chain is as it was, plus the record of the import at acme's end.
    assert _of(_without_imports(after), "audit_logs", acme) == _of(before, "audit_logs", acme)
    assert _of(after, "audit_logs", globex) == _of(before, "audit_logs", globex)
    report = _chain_ok(source, "acme")
    assert report.records == exported.rows["audit_logs"] + 1
    newest = _newest_record(source, acme)
    assert newest["action"] == "tenant.imported"
    summary_of = json.loads(newest["summary"]) if isinstance(newest["summary"], str) else newest["summary"]
    assert summary_of["archive_sha256"] == exported.sha256
    assert summary_of["source_tenant_id"] == str(acme)
    assert summary_of["source_chain_head"]["seq"] == exported.rows["audit_logs"]
    _chain_ok(source, "globex")


def _newest_record(app: Appliance, tenant_id: uuid.UUID) -> dict[str, Any]:
    engine = create_engine(app.admin_url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            row = conn.execute(
                text("SELECT action, summary FROM audit_logs WHERE tenant_id = :t ORDER BY seq DESC LIMIT 1"),
                {"t": tenant_id if conn.dialect.name == "postgresql" else tenant_id.hex},
            ).one()
            return dict(row._mapping)
    finally:
        engine.dispose()


def test_a_tenant_moves_to_another_appliance_under_another_slug(
    source: Appliance, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    left = outsider(source.owner)
    acme = fill(source.owner, "acme", outsider=left)
    before = every_row(source.admin_url)
    exported = _export(source, "acme")

    with second_pg(request) as pg, appliance(tmp_path / "target", pg) as target:
        fill(target.owner, "acme", domain="elsewhere.example")  # the slug is taken there
        known = outsider(target.owner, "member@acme.example")  # the member has an account there already
        # The archive is opened with the source's key, given as a file.
        imported = _import(target, exported.archive, source.settings.backup_key_file, new_slug="acme-moved")
        after = every_row(target.admin_url)
        _chain_ok(target, "acme-moved")
        _chain_ok(target, "acme")

    assert (imported.tenant_id, imported.copy) == (acme, False)
    assert (imported.new_accounts, imported.accounts_matched_by_email) == (1, 1)
    users = [c.name for c in Base.metadata.tables["users"].columns]
    emails = {row[0]: row[users.index("email")] for row in before["users"]}
    member = next(user for user, email in emails.items() if email == "member@acme.example")
    owner = next(user for user, email in emails.items() if email == "owner@acme.example")
    for table in before:
        if table in ("users", "mfa_factors", "recovery_codes"):
            continue
        expected = _of(before, table, acme)
        if table == "tenants":
            expected = [(row[0], "acme-moved", *row[2:]) for row in expected]
        if table == "memberships":  # the member's account there is the one with the same address
            expected = sorted((tuple(known if v == member else v for v in row) for row in expected), key=repr)
        if table == "projects":  # the project made by someone who has no account there names no one
            expected = sorted((tuple(None if v == left else v for v in row) for row in expected), key=repr)
        assert _of(_without_imports(after), table, acme) == expected, table
    # The owner's account came with its password hash (they sign in there with their password); the
    # member's account there, its factor and codes are the ones it had.
    (moved,) = [row for row in after["users"] if row[0] == owner]
    assert moved == next(row for row in before["users"] if row[0] == owner)
    assert passwords.verify(PASSWORD, moved[users.index("password_hash")])[0]
    assert not [row for row in after["users"] if row[0] == member]
    assert [row for row in after["mfa_factors"] if row[1] == member] == []
    assert [row for row in before["mfa_factors"] if row[1] == member] != []


def test_a_copy_beside_the_original_gets_new_ids_and_a_chain_of_its_own(source: Appliance) -> None:
    acme = fill(source.owner, "acme")
    exported = _export(source, "acme")
    before = every_row(source.admin_url)

    copy = _import(source, exported.archive, new_slug="acme-copy")

    assert copy.copy
    assert copy.tenant_id != acme
    assert copy.slug == "acme-copy"
    assert copy.left_out == {
        "users": 2,
        "mfa_factors": 1,
        "recovery_codes": 2,
        "api_keys": 1,
        "invitations": 1,
    }
    after = every_row(source.admin_url)
    for table in before:
        if table in ("users", "mfa_factors", "recovery_codes"):
            assert after[table] == before[table]  # the members' accounts are theirs in both
            continue
        assert _of(_without_imports(after), table, acme) == _of(before, table, acme)  # the original untouched
        if table not in ("tenants", "api_keys", "invitations"):
            assert len(_of(_without_imports(after), table, copy.tenant_id)) == len(
                _of(before, table, acme)
            ), table
    old_ids = {
        row[0]
        for table in TENANT_OWNED_TABLES
        if table != "app_check_hourly"
        for row in _of(before, table, acme)
    }
    new_ids = {
        row[0]
        for table in TENANT_OWNED_TABLES
        if table != "app_check_hourly"
        for row in _of(after, table, copy.tenant_id)
    }
    assert new_ids
    assert not old_ids & new_ids
    report = _chain_ok(source, "acme-copy")
    assert report.records == exported.rows["audit_logs"] + 1
    _chain_ok(source, "acme")
    # Foreign keys follow the new ids: the copy's projects are in the copy's organizations, its memberships
    # name the same people, and its heartbeat URL names the copy.
    orgs = set(_column_all(after, "organizations", "id", copy.tenant_id))
    assert set(_column_all(after, "projects", "organization_id", copy.tenant_id)) <= orgs
    assert set(_column_all(after, "organizations", "parent_id", copy.tenant_id)) - {None} <= orgs
    people = set(_column_all(before, "memberships", "user_id", acme))
    assert len(people) == 2
    assert set(_column_all(after, "memberships", "user_id", copy.tenant_id)) == people
    token = _column(after, "apps", "heartbeat_token", copy.tenant_id)
    assert token != _column(before, "apps", "heartbeat_token", acme)
    assert copy.tenant_id.hex in token
    # The copy's audit record of the project names the copy's project.
    projects = {str(row[0]) for row in _of(after, "projects", copy.tenant_id)}
    named = _column_all(
        after, "audit_logs", "resource_id", copy.tenant_id, where=("resource_type", "project")
    )
    assert named
    assert set(named) <= projects


def _column(rows: dict[str, list[tuple[Any, ...]]], table: str, name: str, tenant_id: uuid.UUID) -> Any:
    (value,) = _column_all(rows, table, name, tenant_id)
    return value


def _column_all(
    rows: dict[str, list[tuple[Any, ...]]],
    table: str,
    name: str,
    tenant_id: uuid.UUID,
    where: tuple[str, Any] | None = None,
) -> list[Any]:
    names = [c.name for c in Base.metadata.tables[table].columns]
    found = _of(rows, table, tenant_id)
    if where is not None:
        found = [row for row in found if row[names.index(where[0])] == where[1]]
    return [row[names.index(name)] for row in found]


def _rewritten(app: Appliance, exported: Path, target: Path, change: Any) -> Path:
    """A copy of ``exported`` whose manifest (and parts) ``change`` edited, encrypted with the same key."""
    key = keys.load(app.settings.backup_key_file)
    with archive.private_directory(app.settings.backup_dir, ".edit-") as work:
        manifest = archive.read(exported, list(key.identities), work)
        change(manifest, work)
        parts = [archive.Part(name, work / name) for name in manifest["parts"]]
        archive.write(target, {k: v for k, v in manifest.items() if k != "parts"}, parts, key.recipient)
    return target


def test_refusals_change_nothing(source: Appliance, tmp_path: Path) -> None:
    acme = fill(source.owner, "acme")
    exported = _export(source, "acme")
    before = every_row(source.admin_url)
    other_key = tmp_path / "other.key"
    keys.create(other_key)
    damaged = tmp_path / "damaged.age"
    data = bytearray(exported.archive.read_bytes())
    data[len(data) // 2] ^= 0xFF
    damaged.write_bytes(bytes(data))
    older = _rewritten(
        source, exported.archive, tmp_path / "older.age", lambda m, _: m.update(schema_revision="0012")
    )
    newer = _rewritten(
        source, exported.archive, tmp_path / "newer.age", lambda m, _: m.update(schema_revision="9999")
    )
    format2 = _rewritten(source, exported.archive, tmp_path / "format.age", lambda m, _: m.update(format=99))

    refusals: list[tuple[type[Exception], str, Path, dict[str, Any]]] = [
        (InvalidInput, "wrong key", exported.archive, {"key_file": other_key}),
        (InvalidInput, "damaged or truncated", damaged, {}),
        (Conflict, "delete it", exported.archive, {}),  # acme is here, and no --as
        (Conflict, "slug 'acme' is already here", exported.archive, {"new_slug": "acme"}),
        (InvalidInput, "export it again after upgrading the source", older, {"new_slug": "acme-old"}),
        (InvalidInput, "upgrade this appliance first", newer, {"new_slug": "acme-new"}),
        (InvalidInput, "newer than this appliance reads", format2, {"new_slug": "acme-new"}),
        (InvalidInput, "not a valid tenant slug", exported.archive, {"new_slug": "Not A Slug"}),
    ]
    for error, words, path, options in refusals:
        with pytest.raises(error, match=words):
            _import(source, path, **options)
        assert every_row(source.admin_url) == before, words
    assert not [
        p for p in source.settings.backup_dir.iterdir() if p.name.startswith(".")
    ]  # nothing left unpacked

    # An archive whose audit chain was altered: no copy launders it, and imported as it is, it is refused.
    def forge(manifest: dict[str, Any], work: Path) -> None:
        import gzip

        part = work / tenant_rows.part_name("audit_logs")
        batches = [json.loads(line) for line in gzip.decompress(part.read_bytes()).splitlines()]
        action = manifest["tables"]["audit_logs"]["columns"].index("action")
        batches[0][0][action] = "project.forged"
        part.write_bytes(gzip.compress(b"".join(json.dumps(b).encode() + b"\n" for b in batches)))

    forged = _rewritten(source, exported.archive, tmp_path / "forged.age", forge)
    with pytest.raises(InvalidInput, match="does not verify at record 1"):
        _import(source, forged, new_slug="acme-forged")
    purge(source.owner, acme)
    emptied = every_row(source.admin_url)
    with pytest.raises(OperationFailed, match="does not verify once imported"):
        _import(source, forged)
    assert every_row(source.admin_url) == emptied


def test_a_tenant_exported_while_deleted_comes_back_active(source: Appliance) -> None:
    """Importing it is asking for it back: kept deleted, the next purge would remove it within a day."""
    acme = fill(source.owner, "acme")
    with source.owner.session_scope() as session:
        tenants.delete_tenant(session, cli_operator(), acme, dt.datetime.now(dt.UTC))
    exported = _export(source, "acme")
    purge(source.owner, acme, deleted=True)

    _import(source, exported.archive)

    with source.owner.session_scope(write=False) as session:
        back = tenants.get(session, acme)
        assert (back.status, back.deleted_at, back.purge_after) == (TenantStatus.ACTIVE, None, None)


def test_a_tenant_that_is_not_here_cannot_be_exported(source: Appliance) -> None:
    with pytest.raises(Exception, match="tenant 'nobody' was not found"):
        _export(source, "nobody")


def test_every_table_is_moved_or_said_not_to_be() -> None:
    """A new table must say whether it moves with its tenant; a new UUID column what it names."""
    moved = {table.name for table in tenant_rows.moved_tables()}
    accounted = moved | set(tenant_rows.NOT_MOVED) | set(tenant_rows.PLATFORM_TABLES)
    assert accounted == set(Base.metadata.tables)
    assert not moved & set(tenant_rows.NOT_MOVED)
    for name in moved:
        tenant_ids.rules(name)  # raises for a UUID column no rule covers


def test_values_of_every_type_come_back_exactly(tmp_path: Path) -> None:
    """Times with and without microseconds, big integers, floats JSON cannot hold, JSON, enums, bytes."""
    from sqlalchemy import JSON, BigInteger, Column, Double, Enum, LargeBinary, MetaData, Table, Uuid

    from appliance.db.base import UTCDateTime
    from appliance.models import TenantPlan

    table = Table(
        "values_test",
        MetaData(),
        Column("id", Uuid(), primary_key=True),
        Column("at", UTCDateTime()),
        Column("big", BigInteger()),
        Column("ratio", Double()),
        Column("doc", JSON()),
        Column("plan", Enum(TenantPlan)),
        Column("blob", LargeBinary()),
    )
    rows = [
        (
            uuid.uuid4(),
            dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
            2**62,
            float("nan"),
            {"a": [1, None]},
            TenantPlan.TEAM,
            b"\x00\xff",
        ),
        (uuid.uuid4(), NOW.replace(microsecond=7), -(2**63), float("-inf"), [], TenantPlan.FREE, b""),
        (uuid.uuid4(), NOW, None, 0.1, None, None, None),
    ]
    import gzip

    import orjson

    floats = [3]
    assert not tenant_rows._finite(rows, floats)
    assert tenant_rows._finite(rows[2:], floats)
    spelled = [tenant_rows._spelled(row, floats) for row in rows]  # as dump writes a batch with a NaN
    part = tmp_path / tenant_rows.part_name("values_test")
    part.parent.mkdir()
    part.write_bytes(gzip.compress(orjson.dumps(spelled, default=tenant_rows._default) + b"\n"))
    (back,) = tenant_rows.read(tmp_path, table, [c.name for c in table.columns])
    got = [tuple(row[c.name] for c in table.columns) for row in back]
    assert repr(got) == repr(rows)  # repr: nan == nan is False
    assert got[1][1].microsecond == 7
    assert got[0][5] is TenantPlan.TEAM


def test_a_copy_rechains_each_record_from_the_source_chain() -> None:
    """compute_hash over the re-written fields, linked from the copy's genesis."""
    plan = tenant_ids.Plan(uuid.uuid4(), uuid.uuid4(), "copy", copy=True)
    rewriter = tenant_ids.Rewriter(None, plan, lambda tenant: f"hb_{tenant.hex}")  # type: ignore[arg-type]
    prev = GENESIS_HASH
    copied = []
    for seq in (1, 2):
        row: dict[str, Any] = {
            "id": uuid.uuid4(),
            "tenant_id": plan.source_id,
            "seq": seq,
            "actor_user_id": None,
            "actor_api_key_id": None,
            "actor_name": None,
            "action": "project.create",
            "resource_type": "rate_limits",
            "resource_id": "global",
            "summary": {},
            "ip": None,
            "user_agent": None,
            "request_id": None,
            "created_at": NOW,
            "prev_hash": prev,
        }
        row["hash"] = prev = compute_hash(row)
        copied.append(rewriter("audit_logs", dict(row)))
    assert [r["tenant_id"] for r in copied if r] == [plan.tenant_id] * 2
    assert copied[0]
    assert copied[1]
    assert copied[1]["prev_hash"] == copied[0]["hash"] == compute_hash(copied[0])
    assert copied[0]["prev_hash"] == GENESIS_HASH
    assert copied[0]["resource_id"] == "global"
