"""A short-lived, in-process view of each tenant's status and plan, so that authenticating a request
does not read the tenants table every time.

An entry is trusted for ``ttl`` (5 s by default): a suspension made in this process takes effect at once
(`invalidate`), one made by another process or host within ``ttl``. With a `Refresher`, an entry used after
half its ttl is re-read in the background, so that a busy tenant's requests never wait for the read.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import select

from appliance.db.session import Database
from appliance.models import Tenant
from appliance.services.common.refresher import Refresher


@dataclass(frozen=True)
class TenantInfo:
    id: uuid.UUID
    slug: str
    plan: str
    status: str


class TenantDirectory:
    def __init__(
        self,
        database: Database,
        *,
        ttl: float = 5.0,
        max_entries: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
        refresher: Refresher | None = None,
    ) -> None:
        self._database = database
        self._refresher = refresher
        self._ttl = ttl
        self._max = max_entries
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: dict[uuid.UUID, tuple[float, TenantInfo | None]] = {}
        self._loaders: dict[uuid.UUID, threading.Lock] = {}
        self._due: set[uuid.UUID] = set()

    def fresh(self, tenant_id: uuid.UUID) -> tuple[bool, TenantInfo | None]:
        """Without any I/O: (True, the tenant or None if it does not exist) when the entry is current,
        (False, None) when it must be loaded with `get`."""
        entry = self._entries.get(tenant_id)
        if entry is None:
            return False, None
        age = self._clock() - entry[0]
        if age >= self._ttl / 2 and self._refresher is not None:
            self._due.add(tenant_id)
            self._refresher.submit("tenants", self._refresh_due)
        if age < self._ttl:
            return True, entry[1]
        return False, None

    def get(self, tenant_id: uuid.UUID) -> TenantInfo | None:
        """The tenant as of at most ``ttl`` ago; None when it does not exist (any more)."""
        known, info = self.fresh(tenant_id)
        if known:
            return info
        # One load per tenant at a time: requests arriving meanwhile wait for it rather than each
        # querying the database again.
        with self._loading(tenant_id):
            known, info = self.fresh(tenant_id)
            if known:
                return info
            return self._store(tenant_id)

    def _store(self, tenant_id: uuid.UUID) -> TenantInfo | None:
        now = self._clock()
        info = self._load([tenant_id]).get(tenant_id)
        self._put(now, {tenant_id: info})
        return info

    def _refresh_due(self) -> None:
        """Re-read every tenant whose entry is past half its ttl, a thousand to a query."""
        with self._lock:
            due, self._due = list(self._due), set()
        for start in range(0, len(due), 1000):
            chunk = due[start : start + 1000]
            now = self._clock()
            found = self._load(chunk)
            self._put(now, {tenant_id: found.get(tenant_id) for tenant_id in chunk})

    def _put(self, now: float, infos: dict[uuid.UUID, TenantInfo | None]) -> None:
        with self._lock:
            if len(self._entries) + len(infos) > self._max:
                self._entries.clear()  # rare: a full reload costs one query per active tenant
            for tenant_id, info in infos.items():
                self._entries[tenant_id] = (now, info)

    def _loading(self, tenant_id: uuid.UUID) -> threading.Lock:
        with self._lock:
            lock = self._loaders.get(tenant_id)
            if lock is None:
                if len(self._loaders) >= self._max:
                    self._loaders.clear()
                lock = self._loaders[tenant_id] = threading.Lock()
            return lock

    def invalidate(self, tenant_id: uuid.UUID) -> None:
        with self._lock:
            self._entries.pop(tenant_id, None)

    def _load(self, tenant_ids: list[uuid.UUID]) -> dict[uuid.UUID, TenantInfo]:
        """The tenants that exist among ``tenant_ids``."""
        with self._database.session_scope(write=False) as session:
            rows = session.execute(
                select(Tenant.id, Tenant.slug, Tenant.plan, Tenant.status).where(Tenant.id.in_(tenant_ids))
            ).all()
        return {
            row.id: TenantInfo(id=row.id, slug=row.slug, plan=str(row.plan), status=str(row.status))
            for row in rows
        }
