"""The backups view against a real appliance (`appliance up`: its worker runs the backup jobs): the archives
listed with the newest backup's age, a backup taken with its progress shown and the new archive listed,
a verify, a restore that asks for the archive's name and refuses a wrong one, and a read-only operator
refused by the console and by the API."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from textual.widgets import Button, Label

from console import commands
from console.app import ConsoleApp
from console.screens.backups import READ_ONLY_HINT, BackupsScreen
from console.screens.typed_confirm import TypedConfirmDialog
from tests.console.conftest import RunningAppliance, console_app, signed_in_store
from tests.console.pilot import screen_text, showing, until
from tests.support import wait_for


@pytest.fixture(scope="module")
def archive(appliance: RunningAppliance) -> str:
    """A full backup of the console's appliance, taken through the API by its worker."""
    started = appliance.api("POST", "/api/v1/platform/backups")
    assert started.status_code == 202, started.text
    job_id = started.json()["id"]

    def finished() -> dict[str, Any] | None:
        job: dict[str, Any] = appliance.api("GET", f"/api/v1/platform/jobs/{job_id}").json()
        return job if job["state"] in ("succeeded", "dead") else None

    job = wait_for(finished, timeout=120, what="the backup job")
    assert job["state"] == "succeeded", job["last_error"]
    return str(job["result"]["archive"])


def backups_screen(app: ConsoleApp) -> BackupsScreen:
    screen = app.screen
    assert isinstance(screen, BackupsScreen)
    return screen


async def listed(app: ConsoleApp, pilot: Any, name: str) -> BackupsScreen:
    await until(pilot, lambda: showing(app, BackupsScreen), "the backups view")
    screen = backups_screen(app)
    await until(pilot, lambda: name in screen.table.rows, f"the archive {name}", timeout=30)
    return screen


def test_the_list_and_a_backup_taken_and_verified_with_its_progress(
    appliance: RunningAppliance, archive: str, tmp_path: Path
) -> None:
    app = console_app(appliance, tmp_path, first_view="backups")

    async def scenario() -> None:
        async with app.run_test(size=(100, 30)) as pilot:
            screen = await listed(app, pilot, archive)
            name, kind, _age, size, version, scheduled = screen.table.rows[archive]
            assert (name, kind, scheduled) == (archive, "full", "-")
            assert size.endswith(("B", "K", "M"))
            assert version
            assert screen.summary.startswith("Newest backup ")
            assert f"in {appliance.data}" in screen.summary  # the backup directory
            before = set(screen.table.rows)

            await pilot.press("b")
            await until(pilot, lambda: "✓ Backup taken: forge-" in screen.panel.text, "the backup taken", 120)
            progress = [line for line in screen.panel.lines if line.startswith("Backing up")]
            assert progress[0] == "Backing up\nqueued…", progress  # the job as the API accepted it
            assert any("%" in line and "encrypting" in line for line in progress), progress
            made = screen.panel.text.split("✓ Backup taken: ", 1)[1].split(" ", 1)[0]
            assert made not in before
            await until(pilot, lambda: screen.table.cursor_key == made, "the new archive listed and selected")

            await pilot.press("v")
            await until(pilot, lambda: "verified:" in screen.panel.text, "the verify's outcome", 120)
            assert screen.panel.text.startswith(f"✓ {made} verified: ")
            assert "audit chains intact" in screen.panel.text
            assert any(line.startswith(f"Verifying {made}") for line in screen.panel.lines)

    asyncio.run(scenario())


def test_a_restore_asks_for_the_archives_name_and_refuses_a_wrong_one(
    appliance: RunningAppliance, archive: str, tmp_path: Path
) -> None:
    app = console_app(appliance, tmp_path, first_view="backups")

    async def scenario() -> None:
        async with app.run_test(size=(100, 30)) as pilot:
            screen = await listed(app, pilot, archive)
            assert screen.table.move_to(archive)
            await pilot.press("R")
            await until(pilot, lambda: showing(app, TypedConfirmDialog), "the typed confirmation")
            await pilot.pause()
            shown = screen_text(app, ".dialog")
            assert f"Restore the whole appliance from {archive}?" in shown
            assert "Every change since the backup is lost" in shown
            assert f"Type {archive} to confirm" in shown
            await pilot.press(*archive[:-1], "x")  # one character off
            dialog = app.screen
            assert dialog.query_one("#yes", Button).disabled
            await pilot.press("enter")
            await pilot.pause()
            assert showing(app, TypedConfirmDialog)
            error = str(dialog.query_one("#typed-error", Label).content)
            assert error == f"That is not {archive!r}.", error
            await pilot.press("escape")
            await until(pilot, lambda: showing(app, BackupsScreen), "the backups view again")
            assert not screen.panel.lines  # nothing was started

    asyncio.run(scenario())
    records = appliance.api(
        "GET", "/api/v1/audit-logs/platform", params={"action": "backup.requested", "limit": 200}
    ).json()["items"]
    assert not [r for r in records if (r.get("summary") or {}).get("kind") == "backups.restore"]


def test_a_read_only_operator_sees_the_archives_and_is_refused_the_actions(
    appliance: RunningAppliance, archive: str, tmp_path: Path
) -> None:
    email = "backup-viewer@console.test"
    appliance.create_operator(email, "--read-only")
    app = console_app(appliance, tmp_path, signed_in=False, first_view="backups")
    app.connection.api.store = signed_in_store(tmp_path / "viewer.json", appliance, email)
    app.connection.api.credential = app.connection.api.store.get("local")

    async def scenario() -> None:
        async with app.run_test(size=(100, 30)) as pilot:
            screen = await listed(app, pilot, archive)
            await until(pilot, lambda: app.read_only, "the read-only permissions")
            await until(pilot, lambda: screen.panel.text == READ_ONLY_HINT, "the read-only note")
            assert screen.check_action("create", ()) is False
            await pilot.press("b")
            await pilot.pause()
            assert not screen.panel.lines
            create = next(c for c in commands.COMMANDS if c.screen == "backups" and c.action == "create")
            app.run_command(create)  # as the palette runs it
            await until(
                pilot,
                lambda: any("Read-only" in n.message for n in app._notifications),
                "the console's refusal",
            )
            screen.action_create()  # past the console's gate, as if it did not know: the API refuses
            await until(pilot, lambda: "Refused: take a backup" in screen.panel.text, "the API's refusal")
            assert "backups:manage" in screen.panel.text

    asyncio.run(scenario())
