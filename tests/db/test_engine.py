"""The engine and the session scope on both databases: pragmas, UTC times, commit and rollback."""

from __future__ import annotations

import datetime as dt
import threading
from pathlib import Path

import pytest
from sqlalchemy import select, text

from appliance.db.session import Database
from appliance.errors import Conflict, Unavailable
from appliance.models import Tenant, TenantPlan
from tests.servers import PostgresServer
from tests.support import make_settings


def test_sqlite_runs_in_wal_with_foreign_keys(tmp_path: Path) -> None:
    db = Database(make_settings(tmp_path))
    try:
        with db.engine.connect() as conn:
            assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
            assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
            assert conn.execute(text("PRAGMA busy_timeout")).scalar() == 5000
    finally:
        db.dispose()


def test_session_scope_commits_or_rolls_back(tmp_path: Path, database_url: str) -> None:
    db = Database(make_settings(tmp_path, database_url))
    try:
        with db.session_scope() as session:
            session.add(Tenant(slug="acme", name="Acme", plan=TenantPlan.TEAM))
        with pytest.raises(RuntimeError), db.session_scope() as session:
            session.add(Tenant(slug="globex", name="Globex"))
            session.flush()
            raise RuntimeError("boom")
        with db.session_scope() as session:
            slugs = session.scalars(select(Tenant.slug)).all()
            tenant = session.scalars(select(Tenant)).one()
        assert slugs == ["acme"]
        assert tenant.plan is TenantPlan.TEAM
        assert tenant.created_at.tzinfo is dt.UTC
        assert abs((dt.datetime.now(dt.UTC) - tenant.created_at).total_seconds()) < 60
    finally:
        db.dispose()


def test_naive_datetimes_are_refused(tmp_path: Path) -> None:
    db = Database(make_settings(tmp_path))
    try:
        with pytest.raises(Exception, match="naive datetime"), db.session_scope() as session:
            session.add(Tenant(slug="x", name="X", created_at=dt.datetime(2026, 1, 1)))
            session.flush()
    finally:
        db.dispose()


def test_database_down_is_unavailable_then_recovers(
    tmp_path: Path, own_postgres_server: PostgresServer
) -> None:
    server = own_postgres_server
    url = server.create_database("app")
    db = Database(make_settings(tmp_path, url, database={"connect_timeout": 2}))
    try:
        assert db.ping() is not None
        server.stop()
        with pytest.raises(Unavailable, match="the database is unavailable"):
            db.ping()
        server.start()
        assert db.ping() is not None
    finally:
        db.dispose()


def test_a_unique_violation_at_commit_is_a_conflict_naming_no_sql(tmp_path: Path, database_url: str) -> None:
    database = Database(make_settings(tmp_path, database_url))
    try:
        with database.session_scope() as session:
            session.add(Tenant(slug="acme", name="Acme"))
        with pytest.raises(Conflict) as caught, database.session_scope() as session:
            session.add(Tenant(slug="acme", name="Acme again"))
        assert caught.value.code == "CONCURRENT_CHANGE"
        assert "INSERT" not in caught.value.message
        with database.session_scope() as session:
            assert len(session.scalars(select(Tenant)).all()) == 1
    finally:
        database.dispose()


def test_sqlite_writers_of_one_process_take_turns_and_give_them_back(tmp_path: Path) -> None:
    db = Database(make_settings(tmp_path, database={"sqlite_busy_timeout_ms": 300}))
    try:
        with db.session_scope() as session:
            session.add(Tenant(slug="acme", name="Acme"))
        # A turn ends with its transaction, whether it committed, rolled back or failed.
        for _ in range(3):
            with pytest.raises(RuntimeError), db.session_scope() as session:
                session.execute(text("UPDATE tenants SET name = 'x'"))
                raise RuntimeError("boom")
        with pytest.raises(Conflict), db.session_scope() as session:
            session.add(Tenant(slug="acme", name="Again"))

        holding, release = threading.Event(), threading.Event()

        def hold() -> None:
            with db.session_scope() as session:
                session.execute(text("UPDATE tenants SET name = 'held'"))
                holding.set()
                release.wait(30)

        holder = threading.Thread(target=hold)
        holder.start()
        assert holding.wait(30)
        # Another writer of the process waits its turn, bounded by the busy timeout, and says why.
        outcome: list[BaseException] = []

        def write() -> None:
            try:
                with db.session_scope() as session:
                    session.execute(text("UPDATE tenants SET name = 'second'"))
            except BaseException as exc:
                outcome.append(exc)

        second = threading.Thread(target=write)
        second.start()
        second.join(30)
        assert len(outcome) == 1
        assert isinstance(outcome[0], Unavailable)
        assert "no write turn" in str(outcome[0])
        # Readers never wait for a turn.
        with db.session_scope(write=False) as session:
            assert session.scalars(select(Tenant.name)).one() == "Acme"
        release.set()
        holder.join(30)
        with db.session_scope() as session:
            session.execute(text("UPDATE tenants SET name = 'third'"))
        with db.session_scope(write=False) as session:
            assert session.scalars(select(Tenant.name)).one() == "third"
    finally:
        db.dispose()
