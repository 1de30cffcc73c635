"""The audit view against a real appliance: the platform trail newest first, the local filter, the query
dialog (server-side filters; input that cannot be one is refused before any call), and the sign-in hint."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from pathlib import Path
from typing import Any

import pytest
from rich.json import JSON
from textual.widgets import Static

from console.app import ConsoleApp
from console.screens import audit
from console.screens.audit import SIGN_IN, AuditScreen
from console.screens.audit_query import AuditQuery, AuditQueryDialog
from tests.console.conftest import RunningAppliance, console_app
from tests.console.pilot import until

NOW = dt.datetime(2026, 11, 22, 12, 0, tzinfo=dt.UTC)


def audit_screen(app: ConsoleApp) -> AuditScreen:
    screen = app.screen
    assert isinstance(screen, AuditScreen)
    return screen


def test_query_turns_ages_into_times_and_refuses_what_is_not_a_filter() -> None:
    query = AuditQuery.parse(" Tenant.* ", "", "1h", "2026-11-22T11:30:00Z", NOW)
    assert query.params(NOW) == {
        "action": "tenant.*",
        "since": "2026-11-22T11:00:00Z",
        "until": "2026-11-22T11:30:00Z",
    }
    assert AuditQuery.parse("", "", "2d", "", NOW).params(NOW) == {"since": "2026-11-20T12:00:00Z"}
    for values, problem in (
        (("tenant.", "", "", ""), "action"),
        (("", "bob", "", ""), "actor"),
        (("", "", "yesterday", ""), "since"),
        (("", "", "", "99999999999w"), "until"),
        (("", "", "1h", "2h"), "since must be before until"),
    ):
        with pytest.raises(ValueError, match=problem):
            AuditQuery.parse(*values, now=NOW)


def test_audit_lists_filters_and_queries_the_trail(
    appliance: RunningAppliance, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    slug = f"audited-{uuid.uuid4().hex[:6]}"
    tenant = appliance.create_tenant(slug)
    app = console_app(appliance, tmp_path, first_view="audit")
    calls: list[dict[str, Any]] = []
    api = app.connection.api
    real = api.platform_audit_page

    async def counted(filters: dict[str, Any] | None = None, *args: Any) -> Any:
        calls.append(dict(filters or {}))
        return await real(filters, *args)

    monkeypatch.setattr(api, "platform_audit_page", counted)

    def created() -> str | None:
        for key, record in audit_screen(app).records.items():
            if record["action"] == "tenant.create" and record["resource_id"] == tenant["id"]:
                return key
        return None

    async def scenario() -> None:
        async with app.run_test(size=(100, 30)) as pilot:
            screen = audit_screen(app)
            table = screen.table
            await until(pilot, created, "the tenant.create record")
            key = created()
            assert key is not None
            _time, actor, action, resource, _ip = table.rows[key]
            assert (action, resource) == ("tenant.create", f"tenant {slug}")
            assert appliance.operator_email.startswith(actor.rstrip("…"))  # by e-mail, not by id
            assert screen.records[key]["actor_label"] == appliance.operator_email
            by_cli = [k for k, r in screen.records.items() if r["action"] == "operator.create"]
            assert by_cli  # `appliance admin create`: the OS user and host
            assert all(table.rows[k][1].startswith("cli:") for k in by_cli)
            times = [screen.records[k]["created_at"] for k in table.shown]
            assert times == sorted(times, reverse=True)  # newest first
            assert any(not r["action"].startswith("tenant.") for r in screen.records.values())

            def detail() -> str:
                shown = screen.query_one("#audit-record", Static).content
                return shown.text.plain if isinstance(shown, JSON) else ""

            table.move_to(key)
            await until(pilot, lambda: f'"slug": "{slug}"' in detail(), "the record in the detail pane")
            assert f'"id": "{key}"' in detail()

            await pilot.press("slash", *slug)
            await until(pilot, lambda: table.shown == [key], "only the tenant's record")
            await pilot.press("escape")
            assert len(table.shown) == len(screen.records)

            await pilot.press("a")
            await until(pilot, lambda: isinstance(app.screen, AuditQueryDialog), "the query dialog")
            await pilot.press(*"tenant.*", "enter")
            await until(pilot, lambda: screen.summary.startswith(f"{len(screen.records)}"), "the answer")
            assert calls[-1] == {"action": "tenant.*"}
            assert key in screen.records
            assert all(r["action"].startswith("tenant.") for r in screen.records.values())
            assert "action tenant.*" in screen.summary

            asked = len(calls)
            await pilot.press("a")
            await until(pilot, lambda: isinstance(app.screen, AuditQueryDialog), "the query dialog again")
            dialog = app.screen
            assert isinstance(dialog, AuditQueryDialog)
            await pilot.press("tab", "tab", *"last tuesday", "enter")
            await until(pilot, lambda: "not a time" in dialog.error, "the refusal of the time")
            assert dialog.error.startswith("since: 'last tuesday' is not a time")
            assert app.screen is dialog
            await pilot.press("escape")
            await until(pilot, lambda: app.screen is screen, "the audit view again")
            assert len(calls) == asked  # nothing was sent

    asyncio.run(scenario())


def test_unsigned_console_asks_to_sign_in(appliance: RunningAppliance, tmp_path: Path) -> None:
    app = console_app(appliance, tmp_path, signed_in=False, sign_in=False, first_view="audit")

    async def scenario() -> None:
        async with app.run_test(size=(100, 30)) as pilot:
            screen = audit_screen(app)
            await until(pilot, lambda: screen.summary == SIGN_IN, "the sign-in hint")
            await pilot.press("r")
            assert screen.summary == SIGN_IN
            assert not screen.table.rows

    asyncio.run(scenario())


def test_the_last_row_loads_the_next_page(
    appliance: RunningAppliance, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for _ in range(3):
        appliance.create_tenant(f"paged-{uuid.uuid4().hex[:6]}")
    monkeypatch.setattr(audit, "PAGE", 2)
    app = console_app(appliance, tmp_path, first_view="audit")

    async def scenario() -> None:
        async with app.run_test(size=(100, 30)) as pilot:
            screen = audit_screen(app)
            await until(pilot, lambda: len(screen.records) == 2, "the first page")
            assert screen.summary.startswith("2+ records")
            first = list(screen.records)
            await pilot.press("end")
            await until(pilot, lambda: len(screen.records) == 4, "the second page")
            assert list(screen.records)[:2] == first  # appended below, newest first throughout
            times = [r["created_at"] for r in screen.records.values()]
            assert times == sorted(times, reverse=True)
            assert screen.table.cursor_key == first[1]  # the cursor stays where it was

    asyncio.run(scenario())
