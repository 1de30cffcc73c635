"""Shared fixtures: throwaway PostgreSQL and Redis servers, and the sqlite/postgresql/redis backend matrix.

Fixtures (see tests/servers.py for the server classes):

* ``postgres_server`` (session) -> :class:`PostgresServer`, started on first use, stopped at session end.
* ``redis_server`` (session) -> :class:`RedisServer`, likewise.
* ``pg_database`` (function) -> :class:`PgDatabase`: a fresh empty database on the session server,
  dropped ``WITH (FORCE)`` afterwards together with the roles made through ``pg_database.create_role``.
* ``pg_database_url`` (function) -> ``"postgresql+psycopg://postgres@127.0.0.1:PORT/test_xxx"``.
* ``redis_url`` (function) -> ``"redis://127.0.0.1:PORT/0"`` on the session server, FLUSHALLed first.
* ``own_postgres_server`` / ``own_redis_server`` (function) -> a private, started server the test may
  stop()/start()/kill()/restart(); closed (process stopped, directory removed) afterwards.
* ``docker_engine`` / ``appliance_images`` (session): the run's Docker engine and the container install's
  images, prepared in the background from the end of the collection (tests/containers.py).
* ``database_url`` (function, parametrized ``sqlite`` / ``postgresql``) and ``queue_url`` (parametrized
  ``sqlite-queue`` / ``redis``): the sqlite variants never start a server.

A server that cannot be started skips the tests needing it, with the reason -- or fails them when
``CI=true``. Tests using these fixtures get the ``postgres`` / ``redis`` markers automatically, so
``-m "not postgres"`` deselects them.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests import background
from tests.containers import appliance_images, docker_engine
from tests.servers import PostgresServer, RedisServer, free_port, start_or_skip

if TYPE_CHECKING:
    from appliance.db.session import Database
    from tests.db.seed import Seeded

__all__ = ["PgDatabase", "appliance_images", "docker_engine", "free_port"]

POSTGRES_FIXTURES = frozenset({"postgres_server", "pg_database", "pg_database_url", "own_postgres_server"})
REDIS_FIXTURES = frozenset({"redis_server", "redis_url", "own_redis_server"})


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        names = set(getattr(item, "fixturenames", ()))
        if names & POSTGRES_FIXTURES and item.get_closest_marker("postgres") is None:
            item.add_marker(pytest.mark.postgres)
        if names & REDIS_FIXTURES and item.get_closest_marker("redis") is None:
            item.add_marker(pytest.mark.redis)


def pytest_collection_finish(session: pytest.Session) -> None:
    """What selected tests need from tests/background.py (the Docker engine and images, a converged host)
    starts being prepared now, while the other tests run."""
    background.start_for(session.items)


def pytest_sessionfinish(session: pytest.Session) -> None:
    background.close_all()


# --------------------------------------------------------------------------- session servers


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """The session's PostgreSQL cluster (trust auth on 127.0.0.1, superuser ``postgres``)."""
    server = start_or_skip(PostgresServer())
    try:
        yield server
    finally:
        server.close()


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """The session's Redis server."""
    server = start_or_skip(RedisServer())
    try:
        yield server
    finally:
        server.close()


# --------------------------------------------------------------------------- per-test resources


@dataclass
class PgDatabase:
    """A per-test database on the session server."""

    server: PostgresServer
    name: str
    roles: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        """SQLAlchemy URL as the superuser."""
        return self.server.url(self.name)

    def url_as(self, user: str, password: str | None = None) -> str:
        """SQLAlchemy URL as another role (e.g. one without BYPASSRLS, to exercise row-level security)."""
        return self.server.url(self.name, user=user, password=password)

    def create_role(
        self,
        name: str | None = None,
        password: str | None = None,
        *,
        login: bool = True,
        superuser: bool = False,
        bypassrls: bool = False,
        createdb: bool = False,
    ) -> str:
        """Create a cluster role that is dropped after the test; returns its name (unique by default)."""
        role = name or f"role_{uuid.uuid4().hex[:10]}"
        self.server.create_role(
            role, password, login=login, superuser=superuser, bypassrls=bypassrls, createdb=createdb
        )
        self.roles.append(role)
        return role

    def plain_owner(self) -> str:
        """Make a new plain role (no superuser, no BYPASSRLS) the database's owner, as in production, and
        return its URL: migrated as it, the schema's FORCEd row-level security binds its owner too."""
        from psycopg import sql

        owner = self.create_role(password="owner-secret")
        self.server.execute(
            sql.SQL("ALTER DATABASE {} OWNER TO {}").format(sql.Identifier(self.name), sql.Identifier(owner))
        )
        return self.url_as(owner, "owner-secret")


@pytest.fixture
def pg_database(postgres_server: PostgresServer) -> Iterator[PgDatabase]:
    """A fresh, empty database (from template0) on the session server, dropped WITH (FORCE) after the test."""
    name = f"test_{uuid.uuid4().hex[:12]}"
    postgres_server.create_database(name)
    database = PgDatabase(postgres_server, name)
    try:
        yield database
    finally:
        if postgres_server.running:
            postgres_server.drop_database(name, force=True)
            for role in reversed(database.roles):
                postgres_server.drop_role(role)


@pytest.fixture
def pg_database_url(pg_database: PgDatabase) -> str:
    """``postgresql+psycopg://postgres@127.0.0.1:PORT/test_xxx``: a fresh empty database for this test."""
    return pg_database.url


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """``redis://127.0.0.1:PORT/0`` on the session server, emptied (FLUSHALL) before the test."""
    redis_server.flushall()
    return redis_server.url


@pytest.fixture
def own_postgres_server() -> Iterator[PostgresServer]:
    """A private PostgreSQL cluster the test may stop()/start()/kill(); same data dir and port on restart."""
    server = start_or_skip(PostgresServer())
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def own_redis_server() -> Iterator[RedisServer]:
    """A private Redis server the test may stop()/start()/kill(); same port on restart (data not kept)."""
    server = start_or_skip(RedisServer())
    try:
        yield server
    finally:
        server.close()


# --------------------------------------------------------------------------- backend matrix


@pytest.fixture(
    params=[
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgres),
    ]
)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """SQLAlchemy URL: ``sqlite:///<tmp>/app.db`` or a fresh PostgreSQL database (server started lazily)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'app.db'}"
    url: str = request.getfixturevalue("pg_database_url")
    return url


@pytest.fixture(
    params=[
        pytest.param("sqlite", id="sqlite-queue"),
        pytest.param("redis", id="redis", marks=pytest.mark.redis),
    ]
)
def queue_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Queue backend URL: ``sqlite:///<tmp>/queue.db`` or ``redis://127.0.0.1:PORT/0`` (flushed)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'queue.db'}"
    url: str = request.getfixturevalue("redis_url")
    return url


# --------------------------------------------------------------------------- isolation


@pytest.fixture(autouse=True, scope="session")
def _light_password_hashes() -> None:
    """Services called straight from a test hash as the suite's settings do (tests.support.LIGHT_HASHES)."""
    from appliance.services.identity import passwords
    from tests.support import LIGHT_HASHES

    passwords.configure(LIGHT_HASHES["password_hash_memory_kib"], LIGHT_HASHES["password_hash_passes"])


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings a test builds never see the developer's APPLIANCE_* variables or metrics directory."""
    import os

    for name in list(os.environ):
        if name.startswith("APPLIANCE_") or name == "PROMETHEUS_MULTIPROC_DIR":
            monkeypatch.delenv(name)


# --------------------------------------------------------------------------- identity data


@pytest.fixture
def db(tmp_path: Path, database_url: str) -> Iterator[Database]:
    """A Database on each backend, migrated, for model and tenancy tests."""
    from appliance.db.session import Database
    from tests.support import make_settings

    database = Database(make_settings(tmp_path, database_url))
    try:
        yield database
    finally:
        database.dispose()


@pytest.fixture
def seeded(db: Database) -> Seeded:
    """Two tenants with organizations, members, projects and keys (tests/db/seed.py)."""
    from tests.db.seed import seed

    with db.session_scope() as session:
        return seed(session)
