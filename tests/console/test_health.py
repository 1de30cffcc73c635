"""The health view against a real appliance (its checks as GET /health reports them, and their history
growing poll by poll; the doctor's findings) and against an API where nothing listens (every row says so;
the console goes on)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from console.app import ConsoleApp
from console.screens.audit import SIGN_IN, AuditScreen
from console.screens.health import HealthScreen
from console.widgets.check_card import CheckCard
from console.widgets.doctor_findings import DoctorFindings
from tests.console.conftest import RunningAppliance, console_app
from tests.console.pilot import screen_text, until
from tests.servers import free_port


def cards(app: ConsoleApp) -> dict[str, CheckCard]:
    screen = app.screen
    assert isinstance(screen, HealthScreen)
    return screen.cards()


def dots(card: CheckCard) -> int:
    return str(card.query_one(".check-dots").render()).count("●")


def test_checks_show_the_reported_statuses_and_their_history(
    appliance: RunningAppliance, tmp_path: Path
) -> None:
    app = console_app(appliance, tmp_path, first_view="health", refresh=0.5)

    def matches_report() -> bool:
        report = appliance.api("GET", "/health").json()["checks"]
        shown = {name: card.view.status for name, card in cards(app).items()}
        return all(shown.get(name) == check["status"] for name, check in report.items())

    async def scenario() -> None:
        async with app.run_test(size=(100, 30)) as pilot:
            await until(pilot, matches_report, "the statuses of GET /health")
            shown = cards(app)
            assert list(shown) == ["api", "database", "queue", "disk", "worker", "supervisor"]
            assert shown["database"].view.status == "ok"
            assert shown["database"].line.startswith("database")
            assert " ms  ok · backend sqlite" in shown["database"].line
            assert shown["api"].view.status == "ok"
            assert shown["supervisor"].view.status == "ok"
            assert "programs running" in shown["supervisor"].line
            await until(pilot, lambda: dots(cards(app)["database"]) >= 3, "three results of the database")
            await until(pilot, lambda: dots(cards(app)["api"]) >= 3, "three results of the API")
            assert len(cards(app)["database"].view.latencies) >= 3

    asyncio.run(scenario())


def test_refresh_now_polls_without_waiting_for_the_interval(
    appliance: RunningAppliance, tmp_path: Path
) -> None:
    app = console_app(appliance, tmp_path, first_view="health", refresh=120)

    async def scenario() -> None:
        async with app.run_test(size=(100, 30)) as pilot:
            results = app.state.checks
            await until(pilot, lambda: "database" in results, "the first poll")
            assert len(results["database"].results) == 1
            await pilot.press("r")
            await until(pilot, lambda: len(results["database"].results) == 2, "a second poll at once")
            await until(pilot, lambda: dots(cards(app)["database"]) == 2, "two results in the strip")

    asyncio.run(scenario())


def test_a_dead_api_shows_on_every_row_and_the_console_goes_on(
    appliance: RunningAppliance, tmp_path: Path
) -> None:
    dead = appliance.target(api_url=f"http://127.0.0.1:{free_port()}")
    app = console_app(
        appliance, tmp_path, target=dead, signed_in=False, sign_in=False, first_view="health", refresh=0.5
    )

    async def scenario() -> None:
        async with app.run_test(size=(100, 30)) as pilot:
            await until(pilot, lambda: app.state.api.up is False, "the API down")
            await until(pilot, lambda: cards(app)["api"].view.status == "down", "the API row down")
            shown = cards(app)
            assert "cannot reach the API at" in shown["api"].line
            for name in ("database", "queue", "disk", "worker"):
                assert f"unknown: API down (cannot reach the API at {dead.api_url}" in shown[name].line
            assert shown["supervisor"].view.status == "ok"  # the supervisor still answers
            await pilot.press("r")  # asks again: down again, nothing hangs
            await until(pilot, lambda: app.state.api.failures >= 2, "a second failed poll")
            await pilot.press("6")
            await until(pilot, lambda: isinstance(app.screen, AuditScreen), "the audit view")
            screen = app.screen
            assert isinstance(screen, AuditScreen)
            await until(pilot, lambda: screen.summary == SIGN_IN, "the sign-in hint")
            await pilot.press("5")
            await until(pilot, lambda: isinstance(app.screen, HealthScreen), "the health view again")
            assert app.return_code is None
            await pilot.press("q")
            assert app.return_code == 0

    asyncio.run(scenario())


def test_the_doctors_findings_are_shown_under_the_checks(appliance: RunningAppliance, tmp_path: Path) -> None:
    app = console_app(appliance, tmp_path, first_view="health")

    async def scenario() -> None:
        async with app.run_test(size=(100, 30)) as pilot:
            screen = app.screen
            assert isinstance(screen, HealthScreen)
            findings = screen.query_one(DoctorFindings)
            await until(pilot, lambda: findings.findings, "the doctor's findings", timeout=60)
            shown = {check: status for check, status, _finding, _hint in findings.findings}
            report = appliance.api("GET", "/api/v1/platform/doctor").json()
            assert list(shown) == [f["check"] for f in report["findings"]]  # every check, in its order
            assert shown["database"] == "ok"
            assert shown["row-level-security"] == "skip"  # SQLite: the ORM keeps the tenants apart
            assert set(shown.values()) <= {"ok", "warn", "fail", "skip"}
            line = screen.doctor_line().plain
            assert line.startswith("Doctor "), line
            assert f"{list(shown.values()).count('ok')} ok" in line, line
            assert "checked" in line, line
            table = screen_text(app, "#doctor-findings")
            assert table.startswith("Check Status Finding Hint"), table
            first = screen.doctor_at
            await pilot.press("r")  # runs the doctor again
            await until(
                pilot, lambda: screen.doctor_at != first and not screen.doctor_running, "a second run"
            )

    asyncio.run(scenario())
