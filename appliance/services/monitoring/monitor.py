"""The monitor's database work, tenant by tenant: reading the apps to watch and their last beats, writing a
batch of results and transitions, and removing old results.

Row-level security has deliberately no policy that shows every tenant's rows, so each function reads the
tenant ids first (``tenants`` is not tenant-owned) and then scopes the same transaction to one tenant after
another (appliance.db.tenancy.set_tenant). The caller owns the transaction (the monitor's session scope)."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from appliance.db import tenancy
from appliance.models import App
from appliance.services.monitoring import apps
from appliance.services.monitoring import checks as app_checks
from appliance.services.monitoring import status as app_status
from appliance.services.monitoring.checks import CheckRow
from appliance.services.monitoring.status import Transition


@dataclass
class Batch:
    """Results and transitions gathered since the last write, by tenant, in the order they happened."""

    checks: dict[uuid.UUID, list[CheckRow]] = field(default_factory=dict)
    transitions: list[Transition] = field(default_factory=list)

    def add(self, tenant_id: uuid.UUID, row: CheckRow) -> None:
        self.checks.setdefault(tenant_id, []).append(row)

    def __len__(self) -> int:
        return sum(len(rows) for rows in self.checks.values()) + len(self.transitions)

    def then(self, later: Batch) -> Batch:
        """This batch followed by ``later`` (a failed write is retried with what came after it)."""
        merged = Batch({k: list(v) for k, v in self.checks.items()}, [*self.transitions, *later.transitions])
        for tenant_id, rows in later.checks.items():
            merged.checks.setdefault(tenant_id, []).extend(rows)
        return merged


def load(session: Session) -> list[dict[str, Any]]:
    """Every enabled app of every active tenant (appliance.services.monitoring.apps.MONITORED_COLUMNS)."""
    found: list[dict[str, Any]] = []
    for tenant_id in apps.tenant_ids(session):
        tenancy.set_tenant(session, tenant_id)
        found.extend(apps.monitored(session))
    return found


def read_beats(
    session: Session, wanted: Mapping[uuid.UUID, Sequence[uuid.UUID]]
) -> dict[uuid.UUID, dt.datetime | None]:
    """The last beat of each app in ``wanted`` (app ids by tenant); a deleted app is missing."""
    beats: dict[uuid.UUID, dt.datetime | None] = {}
    for tenant_id, app_ids in wanted.items():
        tenancy.set_tenant(session, tenant_id)
        beats.update(apps.last_beats(session, list(app_ids)))
    return beats


def store(session: Session, batch: Batch) -> None:
    """Write the batch: per tenant one insert of checks, one upsert of rollups, then its transitions
    (incidents and events). Results of apps deleted meanwhile are dropped."""
    tenants = list(dict.fromkeys([*batch.checks, *(t.tenant_id for t in batch.transitions)]))
    for tenant_id in tenants:
        tenancy.set_tenant(session, tenant_id)
        rows = batch.checks.get(tenant_id, [])
        live = app_checks.existing_apps(session, [row.app_id for row in rows])
        app_checks.record(session, tenant_id, [row for row in rows if row.app_id in live])
        moving = [t for t in batch.transitions if t.tenant_id == tenant_id]
        # The apps that change, in one query: apply() then finds each in the identity map (no SELECT, and
        # no autoflush of the previous one's UPDATE each time; the UPDATEs go as one batch at the flush).
        # A thousand first checks after a start took tens of seconds of round trips without it.
        held = (
            list(session.scalars(select(App).where(App.id.in_({t.app_id for t in moving})))) if moving else []
        )
        for transition in moving:
            app_status.apply(session, transition)
        # Written while the session is still this tenant's: set_tenant does not flush, so the next tenant's
        # first query would flush these rows under the wrong tenant (TenantScopeError, the whole batch lost
        # and retried, growing, every second).
        session.flush()
        del held


def cleanup(session: Session, now: dt.datetime, *, raw_days: int, rollup_days: int) -> tuple[int, int]:
    """Remove every tenant's results past their retention; how many checks and rollups went."""
    removed = [0, 0]
    for tenant_id in apps.tenant_ids(session, active_only=False):
        tenancy.set_tenant(session, tenant_id)
        checks, rollups = app_checks.cleanup(session, now, raw_days=raw_days, rollup_days=rollup_days)
        removed[0] += checks
        removed[1] += rollups
    return removed[0], removed[1]
