"""One tenant out of the appliance into an archive, and from an archive into this or another appliance.

Export reads the tenant's rows (appliance.services.backups.tenant_rows) in one snapshot (REPEATABLE READ on
PostgreSQL, one read transaction on SQLite), so that they agree with each other, as the schema owner: on
PostgreSQL the tables' row-level security is FORCEd, and the owner sees one tenant's rows once the
transaction's tenant is set. The archive (appliance.services.backups.archive) holds a file per table and a
manifest: the source appliance's version and schema revision, the tenant's id and slug, the columns and
row count of each table, and the head of its audit chain. Its plain summary goes beside it.

Import checks the archive whole before anything is written (a wrong key, a damaged file, another schema
revision are refused), then does everything in one transaction, refused at once and leaving nothing when
the slug is in use or the tenant is already here. appliance.services.backups.tenant_ids says how the rows
fit in (as they were, or a copy beside the original under new ids). The tenant's audit chain is verified
before the transaction commits (it must end at the head the source recorded, unless re-linked for a
copy), and the tenant's chain and the platform's record the import.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyrage
from sqlalchemy import select, text
from sqlalchemy.engine import Connection

import appliance
from appliance.db import migrate, tenancy
from appliance.db.base import Base
from appliance.db.session import Database
from appliance.errors import Conflict, InvalidInput, NotFound, OperationFailed
from appliance.services.access.actors import Actor
from appliance.services.audit import log as audit
from appliance.services.audit import verify as audit_verify
from appliance.services.backups import archive, catalog, tenant_ids, tenant_rows
from appliance.services.monitoring import apps as monitored_apps
from appliance.services.tenancy import tenants

#: Called with (step, done, total): ``rows`` (rows read or inserted) and ``archive`` (bytes encrypted or
#: decrypted), as a job's progress is recorded (appliance.workers.jobs.JobContext.progress).
Progress = Callable[[str, int, int], None]
_STAMP = "%Y-%m-%dT%H:%M:%SZ"


@dataclass(frozen=True)
class Exported:
    archive: Path
    tenant_id: uuid.UUID
    slug: str
    rows: dict[str, int]
    size: int
    sha256: str


def export(
    database: Database,
    ref: str,
    *,
    directory: Path,
    recipient: pyrage.x25519.Recipient,
    actor: Actor,
    now: dt.datetime,
    target: Path | None = None,
    progress: Progress | None = None,
) -> Exported:
    """Write the tenant ``ref`` (slug or id) to an archive: ``target``, or a new one in ``directory``
    named by catalog.archive_name. ``database`` connects as the schema owner."""
    with archive.private_directory(directory, ".tenant-export-") as work, _snapshot(database) as conn:
        tenant = _find(conn, ref)
        tenancy.set_connection_tenant(conn, tenant["id"])
        revision = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
        audit_logs = Base.metadata.tables["audit_logs"]
        head = conn.execute(
            select(audit_logs.c.seq, audit_logs.c.hash)
            .where(audit_logs.c.tenant_id == tenant["id"])
            .order_by(audit_logs.c.seq.desc())
            .limit(1)
        ).first()
        counts = tenant_rows.count(conn, tenant["id"])
        tables = tenant_rows.dump(
            conn, tenant["id"], work, total=sum(counts.values()), progress=_step(progress, "rows")
        )
        conn.rollback()  # the snapshot is no longer needed while the archive is encrypted
        manifest: dict[str, Any] = {
            "format": catalog.FORMAT,
            "kind": "tenant",
            "created_at": now.astimezone(dt.UTC).strftime(_STAMP),
            "appliance_version": appliance.__version__,
            "schema_revision": revision,
            "database": conn.dialect.name,
            "tenant": {"id": str(tenant["id"]), "slug": tenant["slug"], "name": tenant["name"]},
            "tables": tables,
            "audit_head": {"seq": head.seq, "hash": head.hash} if head else {"seq": 0, "hash": None},
            "not_moved": tenant_rows.NOT_MOVED,
        }
        path = target or directory / catalog.archive_name("tenant", now, tenant["slug"])
        parts = [
            archive.Part(tenant_rows.part_name(name), work / tenant_rows.part_name(name)) for name in tables
        ]
        size, sha256 = archive.write(path, manifest, parts, recipient, _step(progress, "archive"))
    rows = {name: int(entry["rows"]) for name, entry in tables.items()}
    summary = {key: manifest[key] for key in ("format", "kind", "created_at", "appliance_version")}
    summary |= {
        "schema_revision": revision,
        "database": manifest["database"],
        "tenant": tenant["slug"],
        "tenant_id": str(tenant["id"]),
        "audit_head": manifest["audit_head"],
        "scheduled": False,
        "size": size,
        "sha256": sha256,
        "rows": rows,
    }
    catalog.write_summary(path, summary)
    with database.session_scope() as session:
        audit.record(
            session,
            action="tenant.exported",
            tenant_id=None,
            actor=actor,
            resource_type="tenant",
            resource_id=tenant["id"],
            summary={
                "slug": tenant["slug"],
                "archive": path.name,
                "sha256": sha256,
                "rows": sum(rows.values()),
            },
        )
    return Exported(path, tenant["id"], tenant["slug"], rows, size, sha256)


def _step(progress: Progress | None, step: str) -> Callable[[int, int], None] | None:
    if progress is None:
        return None
    return lambda done, total: progress(step, done, total)


def _snapshot(database: Database) -> Any:
    conn = database.engine.connect()
    if conn.dialect.name == "postgresql":
        conn = conn.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)
    conn.begin()
    return conn


def _find(conn: Connection, ref: str) -> dict[str, Any]:
    table = Base.metadata.tables["tenants"]
    condition = table.c.slug == ref.strip().lower()
    with contextlib.suppress(ValueError):  # a slug, not an id
        condition = condition | (table.c.id == uuid.UUID(ref))
    row = conn.execute(select(table.c.id, table.c.slug, table.c.name).where(condition)).first()
    if row is None:
        raise NotFound(f"tenant {ref!r} was not found", code="TENANT_NOT_FOUND", details={"tenant": ref})
    return dict(row._mapping)


# --------------------------------------------------------------------------- import


@dataclass(frozen=True)
class Imported:
    tenant_id: uuid.UUID
    slug: str
    source_id: uuid.UUID
    source_slug: str
    copy: bool
    rows: dict[str, int]
    left_out: dict[str, int] = field(default_factory=dict)
    accounts_matched_by_email: int = 0
    new_accounts: int = 0
    sha256: str = ""


def import_archive(
    database: Database,
    path: Path,
    identities: list[pyrage.x25519.Identity],
    *,
    scratch: Path,
    actor: Actor,
    new_slug: str | None = None,
    progress: Progress | None = None,
    operation: str | None = None,
) -> Imported:
    """Bring the tenant of the archive at ``path`` into the appliance of ``database`` (the schema owner),
    under ``new_slug`` if given; ``scratch`` is where the archive is unpacked (privately, then removed).
    ``operation`` (a job's id) is recorded with the import, so that a job run again finds it done."""
    if not path.is_file():
        raise NotFound(f"{path} does not exist", code="ARCHIVE_NOT_FOUND", details={"file": str(path)})
    slug = tenants.check_slug(new_slug) if new_slug is not None else None
    sha256, _ = archive.checksum(path)
    with archive.private_directory(scratch, ".tenant-import-") as work:
        manifest = archive.read(path, identities, work, _step(progress, "archive"))
        _check(manifest, path)
        source = manifest["tenant"]
        source_id = uuid.UUID(source["id"])
        with database.session_scope() as session:
            revision = session.execute(text("SELECT version_num FROM alembic_version")).scalar()
            if manifest["schema_revision"] != revision:
                raise InvalidInput(
                    f"{path.name} was exported at schema revision {manifest['schema_revision']}, this "
                    f"appliance's database is at {revision}: export it again after upgrading the source",
                    code="ARCHIVE_REVISION",
                    details={"archive": manifest["schema_revision"], "database": revision},
                )
            plan = _plan(session, source_id, slug or source["slug"], explicit=slug is not None)
            tenancy.set_tenant(session, plan.tenant_id)
            users = Base.metadata.tables["users"]
            members = manifest["tables"]["users"]["columns"]
            tenant_ids.plan_accounts(
                session, plan, (row for batch in tenant_rows.read(work, users, members) for row in batch)
            )
            rewriter = tenant_ids.Rewriter(session, plan, monitored_apps.new_token)
            rows = tenant_rows.load(
                session, work, manifest["tables"], rewriter, progress=_step(progress, "rows")
            )
            _verify(session, plan, manifest, path)
            summary = {
                "archive": path.name,
                "archive_sha256": sha256,
                "source_tenant_id": str(source_id),
                "source_slug": source["slug"],
                "source_appliance_version": manifest["appliance_version"],
                "source_chain_head": manifest["audit_head"],
                "copy": plan.copy,
                "operation": operation,
            }
            for chain in (plan.tenant_id, None):
                audit.record(
                    session,
                    action="tenant.imported",
                    tenant_id=chain,
                    actor=actor,
                    resource_type="tenant",
                    resource_id=plan.tenant_id,
                    summary=summary | {"slug": plan.slug},
                )
    return Imported(
        tenant_id=plan.tenant_id,
        slug=plan.slug,
        source_id=source_id,
        source_slug=source["slug"],
        copy=plan.copy,
        rows=rows,
        left_out=rewriter.left_out,
        accounts_matched_by_email=plan.matched_by_email,
        new_accounts=len(plan.new_accounts),
        sha256=sha256,
    )


def _check(manifest: dict[str, Any], path: Path) -> None:
    if manifest.get("kind") != "tenant":
        raise InvalidInput(
            f"{path.name} is a {manifest.get('kind')!r} archive, not one tenant's: restore it with "
            "`appliance backup restore`",
            code="ARCHIVE_KIND",
        )
    if int(manifest.get("format", 0)) > catalog.FORMAT:
        raise InvalidInput(
            f"{path.name} is of archive format {manifest['format']}, newer than this appliance reads "
            f"({catalog.FORMAT}): upgrade this appliance first",
            code="ARCHIVE_FORMAT",
        )
    revision = manifest.get("schema_revision")
    if revision not in migrate.known_revisions():
        raise InvalidInput(
            f"{path.name} was exported at schema revision {revision}, which this appliance does not know "
            f"(a newer appliance made it): upgrade this appliance first",
            code="ARCHIVE_REVISION",
            details={"archive": revision},
        )


def _plan(session: Any, source_id: uuid.UUID, slug: str, *, explicit: bool) -> tenant_ids.Plan:
    """Where the tenant goes, or a refusal: the slug is in use, or the tenant is here already."""
    table = Base.metadata.tables["tenants"]
    present = session.execute(select(table.c.slug).where(table.c.id == source_id)).first()
    if present is not None and not explicit:
        raise Conflict(
            f"tenant {source_id} is already here (slug {present.slug!r}): delete it (`appliance tenant "
            "delete`, then `purge`) or import a copy beside it with --as NEW_SLUG",
            code="TENANT_PRESENT",
            details={"tenant": str(source_id), "slug": present.slug},
        )
    if session.execute(select(table.c.id).where(table.c.slug == slug)).first() is not None:
        hint = "" if explicit else ": import it under another slug with --as NEW_SLUG"
        raise Conflict(
            f"a tenant with the slug {slug!r} is already here{hint}",
            code="SLUG_TAKEN",
            details={"slug": slug},
        )
    copy = present is not None
    return tenant_ids.Plan(source_id, uuid.uuid4() if copy else source_id, slug, copy)


def _verify(session: Any, plan: tenant_ids.Plan, manifest: dict[str, Any], path: Path) -> None:
    """The tenant's chain as imported verifies, and holds what the source's held (a copy's is re-linked,
    so its head differs: its length is what is checked)."""
    report = audit_verify.verify(session, plan.tenant_id)
    head = manifest["audit_head"]
    problem = report.problems[0] if report.problems else None
    if problem is not None:
        reason = f"record {problem.seq}: {problem.message}"
    elif report.records != manifest["tables"]["audit_logs"]["rows"]:
        reason = (
            f"it holds {report.records} records, the source's held {manifest['tables']['audit_logs']['rows']}"
        )
    elif (
        not plan.copy
        and report.records
        and (report.head_seq, report.head_hash) != (head["seq"], head["hash"])
    ):
        reason = f"it ends at record {report.head_seq}, not at the head the source recorded"
    else:
        return
    raise OperationFailed(
        f"the audit chain of {path.name} does not verify once imported ({reason}); nothing was imported",
        code="AUDIT_CHAIN_BROKEN",
    )
