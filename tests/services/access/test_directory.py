"""The tenant directory on the request path: answers from memory, refreshes ahead in the background (every
due tenant in one query), and still sees a change made elsewhere within its ttl."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import event, update

from appliance.db.session import Database
from appliance.models import Tenant, TenantStatus
from appliance.services.access.directory import TenantDirectory
from appliance.services.common.refresher import Refresher
from tests.support import make_settings, wait_for


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def database(tmp_path: Path, database_url: str) -> Iterator[Database]:
    db = Database(make_settings(tmp_path, database_url))
    yield db
    db.dispose()


def _tenants(database: Database, count: int) -> list[uuid.UUID]:
    with database.session_scope() as session:
        made = [Tenant(slug=f"t{i}", name=f"T{i}") for i in range(count)]
        session.add_all(made)
        session.flush()
        return [t.id for t in made]


def test_entries_are_refreshed_ahead_in_one_query_and_a_change_shows_within_the_ttl(
    database: Database,
) -> None:
    ids = _tenants(database, 5)
    clock, refresher = Clock(), Refresher()
    directory = TenantDirectory(database, ttl=5.0, clock=clock, refresher=refresher)
    try:
        for tenant_id in ids:
            assert directory.get(tenant_id) is not None
        with database.session_scope() as session:
            session.execute(update(Tenant).where(Tenant.id == ids[0]).values(status=TenantStatus.SUSPENDED))
        queries: list[str] = []
        lock = threading.Lock()

        def count(*args: object) -> None:
            with lock:
                queries.append(str(args[2]))

        event.listen(database.engine, "before_cursor_execute", count)
        clock.now += 3.0  # past half the ttl: still answered from memory, and re-read behind the scenes
        answers = [directory.fresh(tenant_id) for tenant_id in ids]
        assert all(known for known, _ in answers)
        assert answers[0][1] is not None
        assert answers[0][1].status == TenantStatus.ACTIVE  # what it knew

        def suspended_seen() -> bool:
            info = directory.fresh(ids[0])[1]
            return info is not None and info.status == TenantStatus.SUSPENDED

        wait_for(suspended_seen, what="the refreshed entry")
        tenant_reads = [q for q in queries if "FROM tenants" in q]
        assert len(tenant_reads) == 1, tenant_reads  # five tenants, one query
        clock.now += 3.0  # 6 s after the first load, 3 s after the refresh: still fresh
        assert all(directory.fresh(tenant_id)[0] for tenant_id in ids)
    finally:
        refresher.stop()


def test_without_a_refresh_an_entry_past_its_ttl_is_read_again(database: Database) -> None:
    (tenant_id,) = _tenants(database, 1)
    clock = Clock()
    directory = TenantDirectory(database, ttl=5.0, clock=clock)
    assert directory.get(tenant_id) is not None
    clock.now += 6.0
    assert directory.fresh(tenant_id) == (False, None)
    info = directory.get(tenant_id)
    assert info is not None
    assert info.slug == "t0"
    assert directory.get(uuid.uuid4()) is None
