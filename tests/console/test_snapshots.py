"""SVG snapshots of the console's layout at 80x24: each view, the palette and each dialog.

The views are drawn from a fixed state (the same path a poll takes: `ConsoleState.record_*`), so the
pictures do not change with pids, uptimes or latencies; the behaviour behind them is tested against the
real appliance in the other test files. Update after a deliberate change with `--snapshot-update`.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from textual.command import CommandList, CommandPalette
from textual.pilot import Pilot

from appliance.client.credentials import CredentialStore
from appliance.client.targets import Target
from console.app import ConsoleApp
from console.connection import Connection
from console.screens.confirm import ConfirmDialog
from console.screens.plan_dialog import PlanDialog
from console.screens.tenant_form import TenantForm
from console.screens.tenants import TenantsScreen, tenant_row
from console.screens.typed_confirm import TypedConfirmDialog
from tests.console.pilot import until

SIZE = (80, 24)
STATUS: dict[str, Any] = {
    "programs": [
        {
            "name": "api",
            "instance": 1,
            "state": "running",
            "pid": 4242,
            "started_at": None,
            "restarts": 0,
            "crash_looping": False,
            "exit_status": None,
            "reason": "",
            "cpu_seconds": 12.0,
            "rss_bytes": 96 << 20,
        },
        {
            "name": "api",
            "instance": 2,
            "state": "running",
            "pid": 4243,
            "started_at": None,
            "restarts": 1,
            "crash_looping": False,
            "exit_status": -9,
            "reason": "killed by SIGKILL",
            "cpu_seconds": 11.0,
            "rss_bytes": 94 << 20,
        },
        {
            "name": "worker",
            "instance": 1,
            "state": "backoff",
            "pid": None,
            "started_at": None,
            "restarts": 4,
            "crash_looping": True,
            "exit_status": 1,
            "reason": "exited with code 1",
            "cpu_seconds": None,
            "rss_bytes": None,
        },
    ],
    "supervisor": {"pid": 4200, "started_at": None, "version": "0.1.0"},
}
HEALTH: dict[str, Any] = {
    "status": "degraded",
    "version": "0.1.0",
    "checks": {
        "database": {"status": "ok", "latency_ms": 1.2},
        "queue": {"status": "ok", "latency_ms": 0.4},
        "disk": {"status": "ok", "latency_ms": 0.1, "detail": {"free_mb": 51234}},
        "worker": {"status": "down", "error": "no worker heartbeat for 400 s"},
    },
}
TENANTS: list[dict[str, Any]] = [
    {
        "id": f"00000000-0000-0000-0000-00000000000{i}",
        "slug": slug,
        "name": name,
        "plan": plan,
        "status": status,
        "counts": {"users": users, "organizations": 1, "projects": projects, "api_keys": keys},
    }
    for i, (slug, name, plan, status, users, projects, keys) in enumerate(
        [
            ("acme", "Acme Corporation", "enterprise", "active", 1200, 340, 12),
            ("globex", "Globex", "business", "active", 85, 40, 3),
            ("initech", "Initech", "team", "suspended", 14, 6, 1),
            ("umbrella", "Umbrella", "free", "deleted", 2, 1, 0),
        ]
    )
]


def fixed_app(tmp_path: Path, **kwargs: Any) -> ConsoleApp:
    """A console whose API does not answer and whose supervisor is elsewhere, then given a fixed state."""
    target = Target("production", "http://127.0.0.1:9", None, accent="red")  # nothing listens on port 9
    connection = Connection.open(target, CredentialStore(tmp_path / "credentials.json"))
    return ConsoleApp(connection, refresh=60.0, sign_in=False, **kwargs)


async def settle(pilot: Pilot[None]) -> None:
    app = pilot.app
    assert isinstance(app, ConsoleApp)
    await until(
        pilot, lambda: app.state.api.up is False and app.state.supervisor.up is False, "the first polls"
    )
    state = app.state
    now = time.time()  # uptimes and ages are drawn against the clock: set them relative to now
    for program in STATUS["programs"]:
        if program["pid"]:
            program["started_at"] = now - 3600
    STATUS["supervisor"]["started_at"] = now - 7200
    for step in range(12):
        at = now - 22 + step * 2
        state.record_programs(
            at,
            {
                **STATUS,
                "programs": [
                    {**p, "cpu_seconds": None if p["cpu_seconds"] is None else p["cpu_seconds"] + step * 0.1}
                    for p in STATUS["programs"]
                ],
            },
        )
        state.record_health(at, HEALTH, 8.0 + step % 4)
        state.request_rate.append(20.0 + step * 3 % 7)
        state.error_rate.append(float(step % 3 == 0))
        state.queue_depth.append(float(step % 5))
    state.api.ok(now, 9.0)
    state.supervisor.ok(now, 1.0)
    state.api.next_try = state.supervisor.next_try = float("inf")
    app.signed_in_as, app.permissions = "ops@example.com", frozenset({"tenants:read", "tenants:manage"})
    app.tenants = {t["id"]: t for t in TENANTS}
    app.redraw()
    await pilot.pause()


def test_dashboard(snap_compare: Any, tmp_path: Path) -> None:
    assert snap_compare(fixed_app(tmp_path), terminal_size=SIZE, run_before=settle)


async def tenants_view(pilot: Pilot[None]) -> None:
    await settle(pilot)
    await pilot.press("2")
    screen = pilot.app.screen
    assert isinstance(screen, TenantsScreen)
    screen.workers.cancel_all()
    screen.table.set_rows(tenant_row(t) for t in TENANTS)
    screen.query_one("#tenant-summary").update("4 tenants")  # type: ignore[attr-defined]
    screen.query_one("#tenant-detail").update("acme · Acme Corporation · enterprise · active")  # type: ignore[attr-defined]
    await pilot.pause()


def test_tenants(snap_compare: Any, tmp_path: Path) -> None:
    assert snap_compare(fixed_app(tmp_path), terminal_size=SIZE, run_before=tenants_view)


def test_tenants_read_only(snap_compare: Any, tmp_path: Path) -> None:
    assert snap_compare(fixed_app(tmp_path, read_only=True), terminal_size=SIZE, run_before=tenants_view)


def _dialog(screen: Any) -> Any:
    async def run_before(pilot: Pilot[None]) -> None:
        await settle(pilot)
        pilot.app.push_screen(screen)
        await pilot.pause()

    return run_before


def test_confirm_dialog(snap_compare: Any, tmp_path: Path) -> None:
    dialog = ConfirmDialog(  # a long name wraps; Enter's answer (the highlighted Cancel) is said
        "Suspend tenant acme?",
        "Acme Corporation of Northern Europe, Widgets and Sprockets Division: its users, tokens and API "
        "keys are refused until it is resumed.",
        "Suspend",
        True,
    )
    assert snap_compare(fixed_app(tmp_path), terminal_size=SIZE, run_before=_dialog(dialog))


def test_typed_confirm_dialog(snap_compare: Any, tmp_path: Path) -> None:
    dialog = TypedConfirmDialog("Delete tenant acme?", "Its data is purged after 30 days.", expected="acme")
    assert snap_compare(fixed_app(tmp_path), terminal_size=SIZE, run_before=_dialog(dialog))


def test_tenant_form(snap_compare: Any, tmp_path: Path) -> None:
    assert snap_compare(fixed_app(tmp_path), terminal_size=SIZE, run_before=_dialog(TenantForm()))


def test_plan_dialog(snap_compare: Any, tmp_path: Path) -> None:
    assert snap_compare(
        fixed_app(tmp_path), terminal_size=SIZE, run_before=_dialog(PlanDialog("acme", "team"))
    )


def test_login(snap_compare: Any, tmp_path: Path) -> None:
    from console.screens.login import LoginScreen

    assert snap_compare(fixed_app(tmp_path), terminal_size=SIZE, run_before=_dialog(LoginScreen()))


def test_keys(snap_compare: Any, tmp_path: Path) -> None:
    assert snap_compare(fixed_app(tmp_path), press=["question_mark"], terminal_size=SIZE, run_before=settle)


def test_palette(snap_compare: Any, tmp_path: Path) -> None:
    async def run_before(pilot: Pilot[None]) -> None:
        await settle(pilot)
        await pilot.press("ctrl+p", *"acm")
        palette = pilot.app.screen
        assert isinstance(palette, CommandPalette)
        hits = palette.query_one(CommandList)
        await until(pilot, lambda: hits.option_count >= 1 and palette._list_visible, "the hits")
        await pilot.pause(0.3)

    assert snap_compare(fixed_app(tmp_path), terminal_size=SIZE, run_before=run_before)


def _view(key: str, prepare: Any = None) -> Any:
    async def run_before(pilot: Pilot[None]) -> None:
        await settle(pilot)
        await pilot.press(key)
        await pilot.pause()
        pilot.app.screen.workers.cancel_all()
        if prepare is not None:
            prepare(pilot.app.screen)
        pilot.app.redraw()  # type: ignore[attr-defined]
        await pilot.pause(0.2)

    return run_before


def test_services(snap_compare: Any, tmp_path: Path) -> None:
    assert snap_compare(fixed_app(tmp_path), terminal_size=SIZE, run_before=_view("3"))


def test_logs(snap_compare: Any, tmp_path: Path) -> None:
    def lines(screen: Any) -> None:
        """JSON lines of the api (drawn readable: time, level, program, message, fields) and a plain one."""
        screen.tail.add("2026-12-04T10:00:00.000Z stderr INFO:     Started server process [4242]")
        for n in range(1, 30):
            level = "error" if n % 10 == 7 else "warning" if n % 10 == 3 else "info"
            entry = {
                "time": f"2026-12-04T10:00:{n:02d}.{n * 7:03d}Z",
                "level": level,
                "logger": "appliance.access",
                "process": "api",
                "message": f"GET /api/v1/projects/{n} {500 if level == 'error' else 200}",
                "request_id": f"req_{n:04d}",
                "duration_ms": n % 7 + 1.5,
            }
            screen.tail.add(f"2026-12-04T10:00:{n:02d}.{n * 7:03d}Z stderr {json.dumps(entry)}")
        screen.tail.flush()

    assert snap_compare(fixed_app(tmp_path), terminal_size=SIZE, run_before=_view("4", lines))


DOCTOR: dict[str, Any] = {
    "status": "fail",
    "checked_at": "2026-12-04T10:00:00Z",
    "findings": [
        {"check": "config", "status": "ok", "finding": "/etc/forge/appliance.toml: valid", "hint": ""},
        {
            "check": "disk-backups",
            "status": "warn",
            "finding": "/var/backups/forge: 8% free (3.1 GB)",
            "hint": "free space or move [backups] directory to a larger disk",
        },
        {"check": "database", "status": "ok", "finding": "postgresql 16.4, 3 ms", "hint": ""},
        {
            "check": "row-level-security",
            "status": "fail",
            "finding": "2 tenant tables without FORCE ROW LEVEL SECURITY: projects, webhooks",
            "hint": "run `appliance migrate`",
        },
        {"check": "redis", "status": "skip", "finding": "not used (embedded queue)", "hint": ""},
    ],
}


def _frozen_health(scroll_to_doctor: bool) -> Any:
    def frozen(screen: Any) -> None:
        """The link trails sample the links every 0.25 s and the ages count up: fix both; the doctor's
        report is a fixed one (the API of these pictures does not answer)."""
        state = screen.console.state
        at = state.api.since
        screen.clock = lambda: at + 5.0
        for trail, link in ((screen.api_trail, state.api), (screen.supervisor_trail, state.supervisor)):
            trail._seen = link.next_try  # noted: the redraw after this adds nothing
            trail.results.clear()
            trail.results.extend([("down", None), ("ok", 9.0), ("ok", 8.0)])
        screen.doctor_running = False
        screen.show_doctor(DOCTOR)
        screen.draw()
        if scroll_to_doctor:  # once the findings are laid out
            box = screen.query_one("#health-checks")
            screen.set_timer(0.1, lambda: box.scroll_end(animate=False, immediate=True))

    return frozen


def test_health(snap_compare: Any, tmp_path: Path) -> None:
    assert snap_compare(fixed_app(tmp_path), terminal_size=SIZE, run_before=_view("5", _frozen_health(False)))


def test_health_doctor(snap_compare: Any, tmp_path: Path) -> None:
    """Scrolled down to the doctor's findings: FAIL and WARN in colour, the hints wrapped."""
    assert snap_compare(fixed_app(tmp_path), terminal_size=SIZE, run_before=_view("5", _frozen_health(True)))


BACKUPS: dict[str, Any] = {
    "items": [
        {
            "name": f"forge-202612{day:02d}T020000000000Z-{kind}{'-acme' if kind == 'tenant' else ''}.age",
            "kind": kind,
            "tenant": "acme" if kind == "tenant" else None,
            "created_at": f"2026-12-{day:02d}T02:00:00Z",
            "appliance_version": "0.1.0",
            "schema_revision": "0013",
            "database": "postgresql",
            "scheduled": scheduled,
            "size": size,
            "sha256": "0" * 64,
            "rows": 120_000,
        }
        for day, kind, scheduled, size in (
            (4, "full", True, 48_500_000),
            (3, "tenant", False, 2_100_000),
            (3, "full", True, 47_900_000),
            (1, "full", False, 1_200_000_000),
        )
    ],
    "directory": "/var/backups/forge",
    "newest_completed_at": "2026-12-04T02:00:00Z",
    "max_age_hours": 26.0,
}


def test_backups(snap_compare: Any, tmp_path: Path) -> None:
    def fill(screen: Any) -> None:
        """Ages against a fixed clock (four hours after the newest backup), and a verify half done."""
        screen.clock = lambda: 1796364000.0  # 2026-12-04T06:00:00Z
        screen.show_listing(BACKUPS)
        screen.table.move_to(BACKUPS["items"][0]["name"])
        screen.panel.show(
            f"Verifying {BACKUPS['items'][0]['name']}",
            {"state": "running", "progress": {"step": "verifying audit chains", "done": 2, "total": 5}},
        )

    assert snap_compare(fixed_app(tmp_path), terminal_size=SIZE, run_before=_view("7", fill))


def test_audit(snap_compare: Any, tmp_path: Path) -> None:
    from console.screens.audit import audit_row

    records = [
        {
            "id": f"rec-{i}",
            "created_at": f"2026-12-04T10:0{i}:00Z",
            "actor_user_id": "5f0c2a1e-0000-0000-0000-000000000000",
            "actor_api_key_id": None,
            "actor_label": "ops@example.com",
            "action": action,
            "resource_type": "tenant",
            "resource_id": TENANTS[i % 4]["id"],
            "ip": "127.0.0.1",
            "details": {"slug": TENANTS[i % 4]["slug"]},
        }
        for i, action in enumerate(
            ["tenant.create", "tenant.suspend", "tenant.plan", "auth.login", "tenant.delete"]
        )
    ]

    def fill(screen: Any) -> None:
        screen.records = {r["id"]: r for r in records}
        screen.table.set_rows(audit_row(r) for r in reversed(records))
        screen.say("5 records")

    assert snap_compare(fixed_app(tmp_path), terminal_size=SIZE, run_before=_view("6", fill))
