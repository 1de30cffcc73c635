"""The apps view against a real appliance (`appliance up`: its worker runs the monitor): two tenants' apps,
registered through the tenants' own API (one probing a local server that answers, one a closed port, one
paused), listed with their tenants, the down one first; the detail pane's uptime, latency, checks and open
incident; the filter; the reload every RELOAD_S in place. A snapshot of the layout from a fixed state."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import Sparkline

from console.app import ConsoleApp
from console.screens.apps import AppsScreen, alarming, ordered
from tests.console.conftest import RunningAppliance, console_app
from tests.console.owners import POLL_S, Owner, tenant_with_owner
from tests.console.pilot import screen_text, showing, until
from tests.console.test_snapshots import SIZE, fixed_app, settle
from tests.receivers import Receiver, Reply
from tests.servers import free_port
from tests.support import wait_for


@dataclass(frozen=True)
class Apps:
    first: Owner
    second: Owner
    up: dict[str, Any]
    down: dict[str, Any]
    paused: dict[str, Any]
    url: str


def register(owner: Owner, name: str, url: str, **extra: Any) -> dict[str, Any]:
    """An http app probed every 5 s (the shortest allowed), down after one failure, up after one success."""
    body = {"name": name, "url": url, "interval": 5, "timeout": 2}
    return owner.create("/api/v1/apps", body | {"fail_threshold": 1, "recover_threshold": 1} | extra)


def status(owner: Owner, app: dict[str, Any]) -> str:
    return str(owner.call("GET", f"/api/v1/apps/{app['id']}").json()["status"])


@pytest.fixture(scope="module")
def apps(appliance: RunningAppliance) -> Iterator[Apps]:
    """Tenant one probes a local server that answers 200 and has a paused app; tenant two probes a port
    nothing listens on. Ready once the monitor has found the first up and the second down."""
    first, second = tenant_with_owner(appliance, "apps-one"), tenant_with_owner(appliance, "apps-two")
    with Receiver(lambda _got, _n: Reply(200, body=b"ok"), path="/health") as server:
        up = register(first, "storefront", server.url)
        paused = register(first, "legacy-crm", server.url, enabled=False)
        down = register(second, "billing-api", f"http://127.0.0.1:{free_port()}/ping")
        wait_for(lambda: status(first, up) == "up", timeout=90, interval=POLL_S, what="the storefront app up")
        wait_for(
            lambda: status(second, down) == "down",
            timeout=90,
            interval=POLL_S,
            what="the billing-api app down",
        )
        yield Apps(first, second, up, down, paused, server.url)


async def apps_view(app: ConsoleApp, pilot: Pilot[None], *ids: str) -> AppsScreen:
    await until(pilot, lambda: showing(app, AppsScreen), "the apps view")
    screen = app.screen
    assert isinstance(screen, AppsScreen)
    await until(pilot, lambda: all(i in screen.table.rows for i in ids), "the apps' rows", timeout=30)
    return screen


def test_every_tenants_apps_down_first_with_uptime_latency_checks_and_incidents(
    appliance: RunningAppliance, apps: Apps, tmp_path: Path
) -> None:
    app = console_app(appliance, tmp_path, first_view="apps")
    up, down, paused = (str(a["id"]) for a in (apps.up, apps.down, apps.paused))

    async def scenario() -> None:
        async with app.run_test(size=(100, 32)) as pilot:
            screen = await apps_view(app, pilot, up, down, paused)
            rows = screen.table.rows
            assert rows[down][:5] == ("down", "billing-api", apps.second.slug, "http", apps.down["url"])
            assert rows[up][:5] == ("up", "storefront", apps.first.slug, "http", apps.url)
            assert rows[paused][0] == "paused"
            shown = screen.table.shown
            assert shown.index(down) < shown.index(up)
            first = [alarming(screen.apps[key]) for key in shown]  # down or open incident: before the rest
            assert first == sorted(first, reverse=True), first
            assert screen.table.cursor_key == shown[0]  # the first row (a down one) selected

            assert screen.table.move_to(down)
            await until(pilot, lambda: "Uptime" in str(screen.heading.content), "the down app's detail")
            await until(pilot, lambda: "OPEN" in str(screen.incidents.content), "its open incident")
            heading = str(screen.heading.content)
            assert heading.startswith("billing-api down for ")
            assert apps.second.slug in heading
            assert "24h 0.00%" in heading
            assert "7d 0.00%" in heading
            assert "30d 0.00%" in heading
            checks = str(screen.checks.content)
            assert "✗" in checks
            assert "✓" not in checks
            assert "connect" in checks.lower()  # nothing listens there: the error says so
            assert "OPEN" in screen_text(app, "#app-incidents")

            assert screen.table.move_to(up)
            await until(pilot, lambda: "storefront up" in str(screen.heading.content), "the up app's detail")
            assert "24h 100.00%" in str(screen.heading.content)
            assert "✓ 200" in str(screen.checks.content)
            assert "none" in str(screen.incidents.content)
            sparkline = screen.latency.query_one(Sparkline)
            assert sparkline.data
            assert max(sparkline.data) > 0

            await pilot.press("slash", *apps.second.slug)
            assert [screen.table.rows[k][1] for k in screen.table.shown] == ["billing-api"]
            await pilot.press("escape")
            assert up in screen.table.shown
            assert down in screen.table.shown

    asyncio.run(scenario())


def test_the_list_reloads_itself_in_place(appliance: RunningAppliance, apps: Apps, tmp_path: Path) -> None:
    """An app turned on by its tenant shows as such without a key pressed; the cursor stays where it was."""
    app = console_app(appliance, tmp_path, first_view="apps")
    up, paused = str(apps.up["id"]), str(apps.paused["id"])

    async def scenario() -> None:
        async with app.run_test(size=(100, 32)) as pilot:
            screen = await apps_view(app, pilot, up, paused)
            assert screen.table.move_to(up)
            loaded = screen.loaded_at
            turned_on = apps.first.call("PATCH", f"/api/v1/apps/{paused}", json={"enabled": True})
            assert turned_on.status_code == 200, turned_on.text
            await until(pilot, lambda: screen.table.rows[paused][0] != "paused", "the app turned on", 45)
            assert screen.loaded_at != loaded
            assert screen.table.cursor_key == up

    try:
        asyncio.run(scenario())
    finally:
        apps.first.call("PATCH", f"/api/v1/apps/{paused}", json={"enabled": False})


# --- the layout, from a fixed state --------------------------------------------------------------------

NOW = 1796364000.0  # 2026-12-04T06:00:00Z


def iso(seconds_ago: float) -> str:
    return dt.datetime.fromtimestamp(NOW - seconds_ago, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


FIXED_APPS: list[dict[str, Any]] = [
    {
        "id": f"00000000-0000-0000-0000-00000000000{i}",
        "name": name,
        "kind": kind,
        "url": url,
        "interval": interval,
        "enabled": enabled,
        "status": state,
        "status_changed_at": None if changed is None else iso(changed),
        "created_at": iso(600),
        "tenant_slug": slug,
        "open_incident_since": iso(incident) if incident else None,
    }
    for i, (name, kind, url, interval, enabled, state, changed, slug, incident) in enumerate(
        [
            ("shop", "http", "https://shop.acme.example/health", 30, True, "up", 259200, "acme", None),
            ("billing", "http", "https://billing.globex.example/ping", 60, True, "down", 252, "globex", 312),
            ("nightly-etl", "heartbeat", None, 86400, True, "up", 7200, "acme", None),
            ("legacy-crm", "http", "http://crm.initech.example/", 300, False, "unknown", None, "initech", 0),
        ]
    )
]
FIXED_CHECKS: list[dict[str, Any]] = [
    {
        "checked_at": iso(60 * i),
        "ok": i > 4,
        "status_code": 200 if i > 4 else None,
        "latency_ms": 40.0 + i * 7 % 30 if i > 4 else None,
        "error": None if i > 4 else "cannot connect: connection refused",
    }
    for i in range(60)
]
FIXED_INCIDENTS: list[dict[str, Any]] = [
    {"started_at": iso(312), "ended_at": None, "reason": "cannot connect: connection refused"},
    {"started_at": iso(86400), "ended_at": iso(86400 - 420), "reason": "answered 503"},
]
FIXED_UPTIME: dict[str, Any] = {
    "windows": {
        "24h": {"checks": 1440, "failures": 12, "percent": 99.1667},
        "7d": {"checks": 10080, "failures": 19, "percent": 99.8115},
        "30d": {"checks": 43200, "failures": 19, "percent": 99.956},
    }
}


def test_apps_layout(snap_compare: Any, tmp_path: Path) -> None:
    async def run_before(pilot: Pilot[None]) -> None:
        await settle(pilot)
        await pilot.press("9")
        screen = pilot.app.screen
        assert isinstance(screen, AppsScreen)
        screen.clock = lambda: NOW
        screen.apps = {a["id"]: a for a in FIXED_APPS}
        screen.draw()
        screen.table.action_edge(0)
        await pilot.pause(0.5)  # the detail's timer fires (its call fails: the API does not answer)
        screen.workers.cancel_all()
        screen.summary.update("4 apps · 1 down · 1 open incidents")
        down = screen.apps[str(screen.table.cursor_key)]
        screen.show_app(down, FIXED_UPTIME, FIXED_CHECKS, FIXED_INCIDENTS)
        await pilot.pause()

    assert next(a["name"] for a in ordered(FIXED_APPS)) == "billing"
    assert snap_compare(fixed_app(tmp_path), terminal_size=SIZE, run_before=run_before)
