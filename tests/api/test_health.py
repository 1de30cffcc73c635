"""Liveness, readiness and the health report on every backend, through outages and back."""

from __future__ import annotations

from pathlib import Path

import httpx

from appliance import __version__
from appliance.api.app import create_app
from appliance.db.session import Database
from appliance.services.jobs import heartbeats
from tests.servers import PostgresServer, RedisServer
from tests.support import LiveServer, make_settings, wait_for


def test_ready_and_health_on_each_backend(tmp_path: Path, database_url: str, queue_url: str) -> None:
    settings = make_settings(tmp_path, database_url, queue_url)
    with LiveServer(create_app(settings)) as live, live.client() as client:
        assert client.get("/health/live").json() == {"status": "ok"}
        ready = client.get("/health/ready")
        assert ready.status_code == 200, ready.text
        checks = ready.json()["checks"]
        assert checks["database"]["status"] == "ok"
        expected_backend = "postgresql" if database_url.startswith("postgresql") else "sqlite"
        assert checks["database"]["detail"]["backend"] == expected_backend
        assert checks["queue"]["detail"]["backend"] == (
            "redis" if queue_url.startswith("redis") else "sqlite"
        )

        report = client.get("/health").json()
        assert report["version"] == __version__
        assert report["checks"]["worker"]["status"] == "unknown"  # no worker has run yet
        assert report["status"] == "degraded"


def test_health_is_ok_once_a_worker_reported(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    database = Database(settings)
    with database.session_scope() as session:
        heartbeats.record(session, "host:1")
    with LiveServer(create_app(settings, database=database)) as live, live.client() as client:
        report = client.get("/health").json()
    assert report["status"] == "ok", report
    assert report["checks"]["worker"]["detail"]["worker"] == "host:1"


def test_unmigrated_database_is_not_ready(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, migrated=False)
    with LiveServer(create_app(settings)) as live, live.client() as client:
        response = client.get("/health/ready")
    assert response.status_code == 503
    assert "run `appliance migrate`" in response.json()["checks"]["database"]["error"]


def _ready(client: httpx.Client) -> httpx.Response:
    return client.get("/health/ready")


def test_database_outage_and_recovery(tmp_path: Path, own_postgres_server: PostgresServer) -> None:
    server = own_postgres_server
    settings = make_settings(tmp_path, server.create_database("app"), database={"connect_timeout": 2})
    with LiveServer(create_app(settings)) as live, live.client() as client:
        assert _ready(client).status_code == 200
        server.stop()
        down = _ready(client)
        assert down.status_code == 503
        assert down.headers["retry-after"]
        body = down.json()
        assert body["checks"]["database"]["status"] == "down"
        assert "the database is unavailable" in body["checks"]["database"]["error"]
        assert body["checks"]["queue"]["status"] == "ok"
        assert client.get("/health/live").status_code == 200  # the API keeps answering
        assert client.get("/health").json()["status"] == "down"
        server.start()
        wait_for(lambda: _ready(client).status_code == 200, what="readiness after the database returned")


def test_queue_outage_and_recovery(tmp_path: Path, own_redis_server: RedisServer) -> None:
    server = own_redis_server
    settings = make_settings(tmp_path, queue_url=server.url)
    with LiveServer(create_app(settings)) as live, live.client() as client:
        assert _ready(client).status_code == 200
        server.stop()
        down = _ready(client).json()
        assert down["checks"]["queue"]["status"] == "down"
        assert down["checks"]["database"]["status"] == "ok"
        assert client.get("/health").json()["status"] == "degraded"
        server.start()
        wait_for(lambda: _ready(client).status_code == 200, what="readiness after the queue returned")
