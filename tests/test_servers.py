"""Tests of the throwaway-server fixtures themselves (tests/conftest.py, tests/servers.py)."""

from __future__ import annotations

import socket
from pathlib import Path

import psycopg
import pytest
import redis

from tests import servers
from tests.conftest import PgDatabase
from tests.servers import (
    PostgresServer,
    RedisServer,
    ServerUnavailable,
    ci_requires_services,
    free_port,
    start_or_skip,
    unavailable,
)


def libpq(url: str) -> str:
    """SQLAlchemy URL -> libpq URL."""
    assert url.startswith("postgresql+psycopg://"), url
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


# --------------------------------------------------------------------------- PostgreSQL


def test_pg_database_url_runs_queries(pg_database_url: str, request: pytest.FixtureRequest) -> None:
    assert pg_database_url.startswith("postgresql+psycopg://postgres@127.0.0.1:")
    with psycopg.connect(libpq(pg_database_url)) as conn:
        row = conn.execute("SELECT current_database(), 6 * 7, current_setting('fsync')").fetchone()
    assert row is not None
    assert pg_database_url.endswith("/" + row[0])
    assert row[1:] == (42, "off")
    assert request.node.get_closest_marker("postgres") is not None  # added from the fixture name


_seen_databases: list[str] = []


@pytest.mark.parametrize("round_", [1, 2])
def test_each_pg_database_url_is_fresh_and_empty(pg_database_url: str, round_: int) -> None:
    with psycopg.connect(libpq(pg_database_url), autocommit=True) as conn:
        name = conn.execute("SELECT current_database()").fetchone()
        tables = conn.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").fetchone()
        assert tables == (0,), "the database is not empty"
        conn.execute("CREATE TABLE leftover (id int)")
        if round_ == 2:
            previous = _seen_databases[-1]
            gone = conn.execute("SELECT count(*) FROM pg_database WHERE datname = %s", (previous,)).fetchone()
            assert gone == (0,), "the previous test's database was not dropped"
    assert name is not None
    assert name[0] not in _seen_databases
    _seen_databases.append(name[0])


def test_roles_without_bypassrls_are_subject_to_row_level_security(pg_database: PgDatabase) -> None:
    app = pg_database.create_role(password="app-secret")
    admin = pg_database.create_role(password="admin-secret", bypassrls=True)
    server = pg_database.server
    flags = server.execute(
        psycopg.sql.SQL(
            "SELECT rolname, rolsuper, rolbypassrls, rolcanlogin FROM pg_roles WHERE rolname IN ({}, {})"
        ).format(psycopg.sql.Literal(app), psycopg.sql.Literal(admin))
    )
    assert sorted(flags) == sorted([(app, False, False, True), (admin, False, True, True)])

    with psycopg.connect(libpq(pg_database.url), autocommit=True) as conn:
        conn.execute("CREATE TABLE notes (tenant text NOT NULL, body text)")
        conn.execute("INSERT INTO notes VALUES ('a', 'for a'), ('b', 'for b')")
        conn.execute("ALTER TABLE notes ENABLE ROW LEVEL SECURITY")
        conn.execute("CREATE POLICY by_tenant ON notes USING (tenant = current_setting('app.tenant'))")
        for role in (app, admin):
            conn.execute(psycopg.sql.SQL("GRANT SELECT ON notes TO {}").format(psycopg.sql.Identifier(role)))

    def visible(role: str, password: str) -> int:
        with psycopg.connect(libpq(pg_database.url_as(role, password))) as conn:
            conn.execute("SET app.tenant = 'a'")
            row = conn.execute("SELECT count(*) FROM notes").fetchone()
            assert row is not None
            return int(row[0])

    assert visible(app, "app-secret") == 1
    assert visible(admin, "admin-secret") == 2


def test_own_postgres_server_survives_stop_and_start(own_postgres_server: PostgresServer) -> None:
    server = own_postgres_server
    port, url = server.port, server.create_database("keep")
    with psycopg.connect(libpq(url), autocommit=True) as conn:
        conn.execute("CREATE TABLE t (v int)")
        conn.execute("INSERT INTO t VALUES (1)")

    server.stop()
    assert not server.running
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(libpq(url), connect_timeout=2).close()

    server.start()
    assert server.port == port
    with psycopg.connect(libpq(url), autocommit=True) as conn:
        assert conn.execute("SELECT v FROM t").fetchall() == [(1,)]
        conn.execute("INSERT INTO t VALUES (2)")

    server.kill()  # crash: immediate shutdown, crash recovery on the next start
    server.start()
    assert server.port == port
    with psycopg.connect(libpq(url)) as conn:
        rows = conn.execute("SELECT v FROM t ORDER BY v").fetchall()
    assert rows[0] == (1,)  # (2,) may be lost: synchronous_commit=off and no clean shutdown


@pytest.mark.postgres
def test_durable_private_server_keeps_commits_across_a_kill() -> None:
    with start_or_skip(PostgresServer(settings={"synchronous_commit": "on"})) as server:
        url = server.create_database("app")
        with psycopg.connect(libpq(url), autocommit=True) as conn:
            conn.execute("CREATE TABLE t AS SELECT 1 AS v")
        server.kill()
        server.start()
        with psycopg.connect(libpq(url)) as conn:
            assert conn.execute("SELECT v FROM t").fetchall() == [(1,)]


def test_drop_database_forces_disconnects(own_postgres_server: PostgresServer) -> None:
    url = own_postgres_server.create_database("busy")
    with psycopg.connect(libpq(url), autocommit=True) as conn:
        own_postgres_server.drop_database("busy")
        with pytest.raises(psycopg.OperationalError):
            conn.execute("SELECT 1")
    assert own_postgres_server.execute("SELECT count(*) FROM pg_database WHERE datname = 'busy'") == [(0,)]


@pytest.mark.postgres
def test_password_auth_server() -> None:
    with start_or_skip(PostgresServer(auth="scram-sha-256")) as server:
        assert server.superuser_password
        assert f":{server.superuser_password}@" in server.superuser_url
        server.create_role("alice", "s3cret")
        server.create_database("appdb", owner="alice")
        with psycopg.connect(libpq(server.url("appdb", user="alice", password="s3cret"))) as conn:
            assert conn.execute("SELECT current_user").fetchone() == ("alice",)
        with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
            psycopg.connect(libpq(server.url("appdb", user="alice", password="wrong"))).close()
        directory = server.directory
    assert not directory.exists()
    assert not server.running


# --------------------------------------------------------------------------- Redis


@pytest.mark.parametrize("round_", [1, 2])
def test_redis_url_set_get_on_a_flushed_server(
    redis_url: str, round_: int, request: pytest.FixtureRequest
) -> None:
    assert redis_url.startswith("redis://127.0.0.1:")
    assert redis_url.endswith("/0")
    assert request.node.get_closest_marker("redis") is not None
    with redis.Redis.from_url(redis_url) as client:
        assert client.dbsize() == 0, "redis_url was not flushed before the test"
        client.set("greeting", f"hello {round_}")
        assert client.get("greeting") == f"hello {round_}".encode()


def test_own_redis_server_survives_stop_and_start(own_redis_server: RedisServer) -> None:
    server = own_redis_server
    port = server.port
    with redis.Redis.from_url(server.url) as client:
        assert client.ping()
        server.stop()
        with pytest.raises(redis.ConnectionError):
            client.ping()
        server.start()
        assert server.port == port
        assert client.ping()  # the same client reconnects to the same port
        client.set("k", "v")
        server.kill()
        server.start()
        assert server.port == port
        assert client.get("k") is None  # no persistence, by design
    with redis.Redis(unix_socket_path=str(server.unix_socket)) as over_socket:
        assert over_socket.ping()


@pytest.mark.redis
def test_start_failure_reports_the_server_log() -> None:
    try:
        binary = servers.find_redis_server()
    except ServerUnavailable as exc:
        unavailable(str(exc))
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        server = RedisServer(port=holder.getsockname()[1], binary=binary)
        try:
            expected = r"(?s)exited with code.*log tail.*Address already in use"
            with pytest.raises(ServerUnavailable, match=expected):
                server.start()
        finally:
            server.close()


# --------------------------------------------------------------------------- backend matrix


def test_database_url_matrix(database_url: str, request: pytest.FixtureRequest) -> None:
    if request.node.callspec.id == "sqlite":
        assert database_url.startswith("sqlite:////")
        assert database_url.endswith("/app.db")
        assert "postgres_server" not in request.fixturenames, "the sqlite variant must not start PostgreSQL"
        assert request.node.get_closest_marker("postgres") is None
    else:
        assert request.node.callspec.id == "postgresql"
        assert request.node.get_closest_marker("postgres") is not None
        with psycopg.connect(libpq(database_url)) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)


def test_queue_url_matrix(queue_url: str, request: pytest.FixtureRequest) -> None:
    if request.node.callspec.id == "sqlite-queue":
        assert queue_url.startswith("sqlite:////")
        assert queue_url.endswith("/queue.db")
        assert "redis_server" not in request.fixturenames
    else:
        assert request.node.callspec.id == "redis"
        with redis.Redis.from_url(queue_url) as client:
            assert client.ping()


# --------------------------------------------------------------------------- helpers, as units


def test_free_port_is_bindable() -> None:
    port = free_port()
    assert 1024 <= port <= 65535
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))


@pytest.mark.parametrize(
    ("environ", "in_ci"),
    [
        ({"CI": "true"}, True),
        ({"CI": "TRUE"}, True),
        ({"CI": "false"}, False),
        ({"CI": ""}, False),
        ({}, False),
    ],
)
def test_ci_requires_services(environ: dict[str, str], in_ci: bool) -> None:
    assert ci_requires_services(environ) is in_ci


def test_unavailable_skips_outside_ci() -> None:
    with pytest.raises(pytest.skip.Exception, match="redis-server not found"):
        unavailable("redis-server not found", environ={})


def test_unavailable_fails_in_ci() -> None:
    with pytest.raises(pytest.fail.Exception, match=r"initdb failed.*CI=true"):
        unavailable("initdb failed", environ={"CI": "true"})


def test_unavailable_reads_the_real_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception):
        unavailable("x")
    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception):
        unavailable("x")


def test_missing_binaries_say_what_is_missing(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv(servers.PG_BINDIR_ENV, raising=False)
    monkeypatch.delenv(servers.REDIS_SERVER_ENV, raising=False)
    monkeypatch.setattr(servers, "_PG_VERSIONED_GLOB", str(tmp_path / "pg" / "*" / "bin"))
    monkeypatch.setattr(servers, "_REDIS_FALLBACKS", (str(tmp_path / "redis-server"),))
    with pytest.raises(ServerUnavailable, match="PostgreSQL server binaries not found: no `initdb`"):
        PostgresServer().start()
    with pytest.raises(ServerUnavailable, match="`redis-server` not found"):
        RedisServer().start()


def test_postgres_bindir_prefers_the_newest_version(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for version in ("9.6", "15", "13"):
        bindir = tmp_path / version / "bin"
        bindir.mkdir(parents=True)
        for name in ("initdb", "postgres"):
            (bindir / name).write_text("#!/bin/sh\n")
            (bindir / name).chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    monkeypatch.delenv(servers.PG_BINDIR_ENV, raising=False)
    monkeypatch.setattr(servers, "_PG_VERSIONED_GLOB", str(tmp_path / "*" / "bin"))
    assert servers.find_postgres_bindir() == tmp_path / "15" / "bin"
