"""Verifying the audit chains: every record of a chain checked against its hash and its place, so that an
edit, a deletion or a reordering by someone who can write the table directly (the owner, a superuser, the
SQLite file) shows. A chain cannot reveal on its own that its newest records were removed, or that every hash
after an edit was recomputed: for that, keep the heads (:attr:`ChainReport.head_hash`) somewhere the
database owner cannot write."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from appliance.db import tenancy
from appliance.db.session import Database
from appliance.errors import NotFound
from appliance.models import GENESIS_HASH, AuditLog, Tenant
from appliance.services.audit import scope
from appliance.services.audit.format import HASHED_FIELDS, compute_hash

#: How the record failed verification: its fields no longer match its hash; its prev_hash is not the
#: previous record's hash (that record was altered and re-hashed, or replaced); seq numbers are missing
#: before it (records were removed); its seq does not follow the previous one (a forged record).
ProblemKind = Literal["altered", "broken_link", "gap", "out_of_order"]


@dataclass(frozen=True)
class Problem:
    """One record that fails verification."""

    seq: int
    kind: ProblemKind
    message: str
    record_id: uuid.UUID


@dataclass(frozen=True)
class ChainReport:
    """The result of verifying one chain."""

    tenant_id: uuid.UUID | None
    records: int
    problems: tuple[Problem, ...]
    problems_omitted: int = 0
    """Problems found past ``max_problems`` (counted, not kept)."""
    head_seq: int = 0
    head_hash: str = GENESIS_HASH
    """The newest record's hash: kept elsewhere, it proves later that no record was removed from the end."""
    slug: str | None = None
    """The tenant's slug (set by :func:`verify_all`); None for the platform chain."""

    @property
    def ok(self) -> bool:
        return not self.problems and not self.problems_omitted

    @property
    def label(self) -> str:
        """The chain's name for people: the tenant's slug (or id), or ``platform``."""
        if self.tenant_id is None:
            return "platform"
        return self.slug or str(self.tenant_id)


@dataclass(frozen=True)
class Chain:
    """A chain to verify: a tenant's (by id and slug), or the platform's (both None)."""

    tenant_id: uuid.UUID | None
    slug: str | None


def verify(
    session: Session, tenant_id: uuid.UUID | None, *, batch_size: int = 1000, max_problems: int = 100
) -> ChainReport:
    """Check every record of one chain in seq order, reading ``batch_size`` rows at a time (a server-side
    cursor on PostgreSQL), so that a chain of millions is never in memory. The session must be scoped to
    the tenant (platform chain: no tenant set), as for :func:`query`."""
    scope.check_scope(session, tenant_id, writing=False)
    columns = [getattr(AuditLog, name) for name in ("id", "hash", *HASHED_FIELDS)]
    statement = scope.in_chain(select(*columns), tenant_id).order_by(AuditLog.seq)
    problems: list[Problem] = []
    omitted = records = prev_seq = 0
    prev_hash = GENESIS_HASH

    def report(row: Any, kind: ProblemKind, message: str) -> None:
        nonlocal omitted
        if len(problems) < max_problems:
            problems.append(Problem(row.seq, kind, message, row.id))
        else:
            omitted += 1

    for row in session.execute(statement.execution_options(yield_per=batch_size)):
        records += 1
        if compute_hash(dict(row._mapping)) != row.hash:
            report(row, "altered", "its fields do not match its hash: the record was edited")
        if row.seq <= prev_seq:
            report(row, "out_of_order", f"seq {row.seq} does not follow seq {prev_seq}")
        elif row.seq > prev_seq + 1:
            missing = f"{prev_seq + 1}" if row.seq == prev_seq + 2 else f"{prev_seq + 1} to {row.seq - 1}"
            report(row, "gap", f"the records before it are missing (seq {missing}): they were removed")
        elif row.prev_hash != prev_hash:
            before = "the chain's start" if prev_seq == 0 else f"record {prev_seq}'s hash"
            report(row, "broken_link", f"its prev_hash is not {before}: a record before it was replaced")
        prev_seq, prev_hash = row.seq, row.hash
    return ChainReport(tenant_id, records, tuple(problems), omitted, prev_seq, prev_hash)


def chains(session: Session, slug: str | None = None) -> list[Chain]:
    """Every chain (the platform's first, then each tenant's by slug), or the one tenant named by ``slug``
    (NotFound when there is none)."""
    if slug is not None:
        found = session.execute(select(Tenant.id, Tenant.slug).where(Tenant.slug == slug)).one_or_none()
        if found is None:
            raise NotFound(f"no tenant has the slug {slug!r}", details={"slug": slug})
        return [Chain(found.id, found.slug)]
    tenants = session.execute(select(Tenant.id, Tenant.slug).order_by(Tenant.slug))
    return [Chain(None, None), *(Chain(row.id, row.slug) for row in tenants)]


def verify_all(
    database: Database,
    *,
    slug: str | None = None,
    progress: Callable[[int, int], None] | None = None,
    batch_size: int = 1000,
) -> list[ChainReport]:
    """Verify every chain (or the tenant named by ``slug``), each in a transaction of its own.

    It takes the Database rather than a session because the role the appliance connects as sees one
    tenant's records per transaction (row-level security on ``app.tenant_id``, set once per transaction),
    and because a read-only transaction per chain keeps each snapshot short and blocks no writer (SQLite's
    write scopes hold the database's lock) on a database with thousands of tenants.
    ``progress(done, total)`` is called after each chain."""
    with database.session_scope(write=False) as session:
        targets = chains(session, slug)
    reports: list[ChainReport] = []
    for done, chain in enumerate(targets, start=1):
        with database.session_scope(write=False) as session:
            if chain.tenant_id is not None:
                tenancy.set_tenant(session, chain.tenant_id)
            found = verify(session, chain.tenant_id, batch_size=batch_size)
        reports.append(replace(found, slug=chain.slug))
        if progress is not None:
            progress(done, len(targets))
    return reports
