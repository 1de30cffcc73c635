"""/metrics: per-route counts and latency, correct across several API processes, read by a real Prometheus."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from appliance.api.app import create_app
from tests.identity import identity_api
from tests.servers import free_port, unavailable
from tests.support import ApiProcesses, LiveServer, make_settings, wait_for

REPO = Path(__file__).resolve().parents[2]


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def requests_total(text: str, route: str, status: str) -> float:
    key = ("appliance_http_requests_total", (("method", "GET"), ("route", route), ("status", status)))
    return samples(text).get(key, 0.0)


def test_counts_by_route_template_and_status(tmp_path: Path) -> None:
    with LiveServer(create_app(make_settings(tmp_path))) as live, live.client() as client:
        before = client.get("/metrics").text
        for _ in range(3):
            client.get("/api/v1")
        client.get("/api/v1/no/such/route/123")
        after = client.get("/metrics")
    assert after.headers["content-type"].startswith("text/plain")
    assert requests_total(after.text, "/api/v1", "200") - requests_total(before, "/api/v1", "200") == 3
    # Unknown paths share one label value, so a scanner cannot explode the series count.
    assert (
        requests_total(after.text, "<unmatched>", "404") - requests_total(before, "<unmatched>", "404") == 1
    )
    found = samples(after.text)
    assert any(name == "appliance_http_request_duration_seconds_bucket" for name, _ in found)
    assert ("appliance_queue_depth", ()) in found
    assert ("appliance_db_pool_size", ()) in found


def test_refused_outside_the_allowed_networks(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, api={"metrics_allow_from": ("10.0.0.0/8",)})
    with LiveServer(create_app(settings)) as live, live.client() as client:
        response = client.get("/metrics")
    assert response.status_code == 403
    assert response.json()["error"]["message"] == (
        "Metrics are not readable from 127.0.0.1 without an operator's access token."
    )


def test_an_operators_token_opens_metrics_from_outside_the_allowed_networks(tmp_path: Path) -> None:
    database = f"sqlite:///{tmp_path / 'app.db'}"
    # 127.0.0.1, where the test calls from, is outside the allowed network.
    with identity_api(tmp_path, database, api={"metrics_allow_from": ("10.0.0.0/8",)}) as identity:
        client = identity.client
        acme = identity.tenant("acme")
        key = client.post(
            "/api/v1/api-keys", json={"name": "ci", "scopes": ["projects:read"]}, headers=acme.owner.headers
        ).json()["key"]
        anonymous = client.get("/metrics")
        assert anonymous.status_code == 403
        assert anonymous.json()["error"]["details"] == {"client": "127.0.0.1"}
        for operator in (identity.operator, identity.new_operator(read_only=True)):
            scraped = client.get("/metrics", headers=operator.headers)
            assert scraped.status_code == 200, scraped.text
            assert scraped.headers["content-type"].startswith("text/plain")
            assert requests_total(scraped.text, "/api/v1/auth/me", "200") >= 1
        tenant_user = client.get("/metrics", headers=acme.owner.headers)
        assert tenant_user.status_code == 403
        assert tenant_user.json()["error"]["code"] == "OPERATOR_REQUIRED"
        tenant_key = client.get("/metrics", headers={"X-API-Key": key})
        assert tenant_key.status_code == 403
        assert tenant_key.json()["error"]["code"] == "OPERATOR_REQUIRED"
        forged = client.get("/metrics", headers={"Authorization": "Bearer not-a-token"})
        assert forged.status_code == 401
        assert forged.headers["www-authenticate"].startswith("Bearer")
        assert "not-a-token" not in forged.text


def test_several_processes_report_one_total(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    env = {"PROMETHEUS_MULTIPROC_DIR": str(metrics_dir), "APPLIANCE_LOGGING__ACCESS_LOG": "false"}
    with ApiProcesses(settings, 2, tmp_path, env) as apis:
        for _ in range(60):  # a new connection each time, so the kernel spreads them over both processes
            assert httpx.get(f"{apis.url}/api/v1", timeout=10).status_code == 200
        served_by = {p.name.rsplit("_", 1)[1] for p in metrics_dir.glob("counter_*.db")}
        assert len(served_by) == 2, "both processes should have served requests"
        for _ in range(6):  # whichever process answers the scrape reports the same total
            text = httpx.get(f"{apis.url}/metrics", timeout=10).text
            assert requests_total(text, "/api/v1", "200") == 60


def test_real_prometheus_scrapes_the_api(tmp_path: Path) -> None:
    binary = shutil.which("prometheus")
    if binary is None:
        unavailable("prometheus is not installed (./install.sh --test installs it)")
    assert binary is not None
    promtool = shutil.which("promtool")
    assert promtool is not None
    subprocess.run([promtool, "check", "rules", str(REPO / "config/prometheus/alerts.yml")], check=True)

    settings = make_settings(tmp_path)
    with LiveServer(create_app(settings)) as live:
        config = tmp_path / "prometheus.yml"
        config.write_text(
            (REPO / "config/prometheus/prometheus.yml")
            .read_text()
            .replace("scrape_interval: 15s", "scrape_interval: 1s")
            .replace("127.0.0.1:8080", f"127.0.0.1:{live.port}")
            .replace("  - alerts.yml", f"  - {REPO / 'config/prometheus/alerts.yml'}")
        )
        subprocess.run([promtool, "check", "config", str(config)], check=True, capture_output=True)
        port = free_port()
        log = (tmp_path / "prometheus.log").open("wb")
        prom = subprocess.Popen(
            [
                binary,
                f"--config.file={config}",
                f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            with live.client() as client:
                client.get("/api/v1")

            def query(expr: str) -> list[dict[str, object]]:
                try:
                    body = httpx.get(
                        f"http://127.0.0.1:{port}/api/v1/query", params={"query": expr}, timeout=5
                    )
                except httpx.HTTPError:
                    return []
                result: list[dict[str, object]] = (
                    body.json()["data"]["result"] if body.status_code == 200 else []
                )
                return result

            up = wait_for(lambda: query('up{job="appliance"} == 1'), timeout=60, what="a successful scrape")
            assert up
            series = wait_for(
                lambda: query('appliance_http_requests_total{route="/api/v1",status="200"}'),
                timeout=30,
                what="the request counter in Prometheus",
            )
            assert float(series[0]["value"][1]) >= 1
        finally:
            prom.terminate()
            prom.wait(timeout=30)
            log.close()
            time.sleep(0)


@pytest.mark.parametrize("name", ["prometheus.yml", "alerts.yml"])
def test_shipped_prometheus_files_exist(name: str) -> None:
    assert (REPO / "config" / "prometheus" / name).is_file()


def test_jobs_by_state_and_job_durations_by_kind(tmp_path: Path) -> None:
    from appliance.db.session import Database
    from appliance.services.jobs import durable as jobs
    from appliance.workers.jobs import Runner
    from appliance.workers.tasks import NOOP

    settings = make_settings(tmp_path)
    with LiveServer(create_app(settings)) as live, live.client() as client:
        database = Database(settings)
        with database.session_scope() as session:
            ids = [jobs.enqueue(session, NOOP, {}, tenant_id=None).id for _ in range(3)]
        before = samples(client.get("/metrics").text)
        runner = Runner(settings, database, "metrics-test", lambda _items: None)
        runner.run(ids[0])  # a worker's attempt, in this process: its metrics are this registry's
        after = samples(client.get("/metrics").text)
        database.dispose()
    assert before[("appliance_jobs", (("state", "queued"),))] == 3
    assert after[("appliance_jobs", (("state", "queued"),))] == 2
    assert after[("appliance_jobs", (("state", "succeeded"),))] == 1
    count = ("appliance_job_duration_seconds_count", (("kind", "system.noop"), ("outcome", "succeeded")))
    assert after[count] - before.get(count, 0.0) == 1
