"""Backups: the archives of the backup directory and the age of the newest backup (in a warning style when
it is older than allowed, or there is none), and the operator's actions: take a backup now, verify the
selected archive, restore the whole appliance from it (after typing its name).

Each action is a durable job of the API's workers: this view polls it (every POLL_S) to show its step and
percent while it runs, then how it ended, and lists the archives again. One job at a time is followed here;
leaving the view does not stop it.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Awaitable, Callable
from typing import Any

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.widgets import Static

from appliance.client.errors import ApiError, Forbidden, NotFound, Unauthorized
from console import format as fmt
from console.screens.base import ConsoleScreen
from console.screens.typed_confirm import TypedConfirmDialog
from console.widgets.job_progress import FINISHED, JobProgress
from console.widgets.row_table import Column, RowTable

Archive = dict[str, Any]
Job = dict[str, Any]
POLL_S = 0.5
POLL_MAX_S = 5.0  # while the API does not answer, the job is asked after longer and longer waits
RELOAD_S = 30.0
SIGN_IN = "Sign in (ctrl+l) to see the backups."
HINT = "b backs up now · v verifies the selected archive · R restores the appliance from it"
READ_ONLY_HINT = "Read-only: the archives are listed; taking, verifying and restoring need a full operator."
COLUMNS = (  # fits 80 columns with a whole archive name (forge-<stamp>-full.age: 38 cells)
    Column("Name"),
    Column("Kind", 6),
    Column("Age", 6, "right"),
    Column("Size", 6, "right"),
    Column("Version", 8),
    Column("Sched", 5),
)


def moment(value: str | None) -> float | None:
    """An RFC 3339 time of the API as a Unix time."""
    if not value:
        return None
    try:
        return dt.datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def backup_row(item: Archive, now: float) -> tuple[str, tuple[str, ...]]:
    made = moment(item.get("created_at"))
    return str(item["name"]), (
        str(item["name"]),
        str(item.get("kind", "?")),
        fmt.duration(None if made is None else now - made),
        fmt.size(item.get("size")),
        str(item.get("appliance_version", "?")),
        "yes" if item.get("scheduled") else "-",
    )


def freshness(listing: dict[str, Any], now: float) -> Text:
    """The newest completed backup's age against `[backups] max_age_hours`: a warning when there is none
    or it is older, as the ApplianceNoBackup and ApplianceBackupTooOld alerts would say."""
    allowed = float(listing.get("max_age_hours") or 0)
    newest = moment(listing.get("newest_completed_at"))
    if newest is None:
        line = Text("No backup has completed yet", "bold black on yellow")
    elif allowed and now - newest > allowed * 3600:
        line = Text(
            f"Newest backup {fmt.duration(now - newest)} ago: older than the {allowed:g}h allowed",
            "bold black on yellow",
        )
    else:
        line = Text(f"Newest backup {fmt.duration(now - newest)} ago", "green")
        line.append(f" (allowed {allowed:g}h)", "dim")
    count = len(listing.get("items") or ())
    line.append(f" · {count} archive{'' if count == 1 else 's'} in {listing.get('directory', '?')}", "dim")
    return line


def created(job: Job) -> Text:
    result = job.get("result") or {}
    return Text(
        f"✓ Backup taken: {result.get('archive')} · {fmt.size(result.get('size'))} · "
        f"{result.get('rows', '?')} rows",
        "green",
    )


def verified(job: Job) -> Text:
    result = job.get("result") or {}
    if result.get("ok"):
        return Text(
            f"✓ {result.get('archive')} verified: {result.get('tables')} tables, {result.get('rows')} rows "
            f"as counted, {result.get('chains')} audit chains intact",
            "green",
        )
    problems = "; ".join(str(p) for p in result.get("problems") or ()) or "(none named)"
    return Text(f"✗ {result.get('archive')}: the audit chains do not verify: {problems}", "bold red")


def restored(job: Job) -> Text:
    result = job.get("result") or {}
    made = fmt.when(result.get("made_at"))
    return Text(
        f"✓ The appliance is back to {result.get('archive')} (made {made}); every later change is gone.",
        "green",
    )


def ended(title: str, job: Job, success: Callable[[Job], Text]) -> Text:
    """How a job ended (or that its attempt failed and when the worker tries again)."""
    state = job.get("state")
    if state == "succeeded":
        return success(job)
    if state == "cancelled":
        return Text(f"{title}: cancelled.", "yellow")
    error = job.get("last_error") or "no reason recorded"
    if state == "queued":
        return Text(
            f"✗ {title}: attempt {job.get('attempts')} failed: {error}; the worker tries again at "
            f"{fmt.when(job.get('run_at'))}",
            "bold yellow",
        )
    return Text(f"✗ {title} failed: {error}", "bold red")


def following(job: Job) -> bool:
    """Still worth polling: not finished, and not waiting for a retry after a failed attempt."""
    return job.get("state") not in FINISHED and not (job.get("state") == "queued" and job.get("last_error"))


class BackupsScreen(ConsoleScreen):
    NAME = "backups"
    TITLE = "Backups"
    AUTO_FOCUS = "#backup-table"

    def __init__(self) -> None:
        super().__init__()
        self.listing: dict[str, Any] | None = None
        self.archives: dict[str, Archive] = {}
        self.note = ""  # why the last listing failed, shown instead of the age line
        self.job: Job | None = None  # the job followed now
        self.clock: Callable[[], float] = time.time  # what ages are drawn against
        self.poll_s = POLL_S
        # Held, not queried: a worker that ends as the console quits draws on widgets already removed.
        self._summary = Static("", id="backup-summary")
        self.table = RowTable(COLUMNS, id="backup-table", empty="No archives in the backup directory.")
        self.panel = JobProgress(id="backup-job")

    def body(self) -> ComposeResult:
        yield self._summary
        yield self.table
        yield self.panel

    def on_mount(self) -> None:
        self.set_interval(RELOAD_S, self._reload_if_shown)

    @property
    def summary(self) -> str:
        return str(self._summary.content)

    def signed_in(self) -> None:
        self.action_reload_rows()

    def polled(self) -> None:
        super().polled()
        if not self.console.signed_in_as and self.listing is not None:
            self.listing, self.archives = None, {}  # signed out: what the session saw goes with it
        self.draw()

    def _reload_if_shown(self) -> None:
        if self.is_current and self.console.signed_in_as:
            self.action_reload_rows()

    # --- the list -------------------------------------------------------------------------------------

    def action_reload_rows(self) -> None:
        if not self.console.signed_in_as:
            self.draw()
            return
        self.load()

    @work(exclusive=True, group="backups-load")
    async def load(self, select: str | None = None) -> None:
        try:
            listing = await self.console.connection.api.backups()
        except Unauthorized as exc:
            self.console.session_ended(exc)
            return
        except ApiError as exc:  # the rows listed before stay
            self.note = f"Could not list the backups: {exc.message}"
            self.draw()
            return
        self.show_listing(listing)
        if select:
            self.table.move_to(select)

    def show_listing(self, listing: dict[str, Any]) -> None:
        self.listing, self.note = listing, ""
        self.archives = {str(item["name"]): item for item in listing.get("items") or ()}
        self.draw()

    def draw(self) -> None:
        """The rows (their ages move on), the age line, and what the keys do while no job is followed."""
        now = self.clock()
        self.table.set_rows(backup_row(item, now) for item in self.archives.values())
        summary = self._summary
        if not self.console.signed_in_as:
            summary.update(SIGN_IN)
        elif self.note:
            summary.update(Text(self.note, "bold red"))
        elif self.listing is None:
            summary.update("Loading…")
        else:
            summary.update(freshness(self.listing, now))
        if not self.panel.lines:
            self.panel.idle(READ_ONLY_HINT if self.console.read_only else HINT)

    def selected(self) -> Archive | None:
        key = self.table.cursor_key
        return self.archives.get(key) if key else None

    # --- actions (gated by check_action in the base screen; the API refuses too) ---------------------

    def _ready(self, archive: Archive | None = None, *, needs_archive: bool = False) -> bool:
        if self.job is not None:
            self.notify("A backup job is still running: wait until it ends.", severity="warning")
            return False
        if not needs_archive:
            return True
        if archive is None:
            self.notify("Select an archive first.", severity="warning")
            return False
        if archive.get("kind") != "full":
            self.notify(
                f"{archive['name']} is one tenant's export: import it with `appliance tenant import`; "
                "verify and restore take a full backup.",
                severity="warning",
                timeout=8,
            )
            return False
        return True

    async def _start(self, what: str, call: Awaitable[Job]) -> Job | None:
        """Ask the API to start a job; a 403 says which permission is missing."""
        try:
            return await call
        except Forbidden as exc:
            self.panel.say(f"✗ Refused: {what}: {exc.message}", "bold red")
            self.notify(f"Refused: {what}: {exc.message}", severity="error", timeout=8)
            return None
        except Unauthorized as exc:
            self.console.session_ended(exc)
        except ApiError as exc:
            self.panel.say(f"✗ {what}: {exc.message}", "bold red")
            self.notify(f"{what}: {exc.message}", severity="error", timeout=8)
        return None

    @work(group="backup-action")
    async def action_create(self) -> None:
        if not self._ready():
            return
        job = await self._start("take a backup", self.console.connection.api.create_backup())
        if job is not None:
            await self.follow("Backing up", job, created)

    @work(group="backup-action")
    async def action_verify(self) -> None:
        archive = self.selected()
        if archive is None or not self._ready(archive, needs_archive=True):
            return
        name = str(archive["name"])
        job = await self._start(f"verify {name}", self.console.connection.api.verify_backup(name))
        if job is not None:
            await self.follow(f"Verifying {name}", job, verified)

    @work(group="backup-action")
    async def action_restore(self) -> None:
        archive = self.selected()
        if archive is None or not self._ready(archive, needs_archive=True):
            return
        name = str(archive["name"])
        made = moment(archive.get("created_at"))
        age = fmt.duration(None if made is None else self.clock() - made)
        dialog = TypedConfirmDialog(
            f"Restore the whole appliance from {name}?",
            f"Made {fmt.when(archive.get('created_at'))} ({age} ago). Every change since the backup is "
            "lost: tenants, users, keys, jobs and audit records made after it are gone, and the signing "
            "key and settings go back to the archive's.",
            expected=name,
            confirm="Restore",
        )
        if not await self.app.push_screen_wait(dialog):
            return
        job = await self._start(
            f"restore {name}", self.console.connection.api.restore_backup(name, confirm=name)
        )
        if job is not None:
            await self.follow(f"Restoring {name}", job, restored)

    async def follow(self, title: str, job: Job, success: Callable[[Job], Text]) -> None:
        """Show the job's progress until it ends, then its outcome; then list the archives again."""
        api, delay = self.console.connection.api, self.poll_s
        self.job = job
        self.panel.show(title, job)
        try:
            while following(job):
                await asyncio.sleep(delay)
                try:
                    job = await api.platform_job(str(job["id"]))
                except Unauthorized as exc:
                    self.panel.say(f"{title}: sign in again to follow it (it goes on).", "yellow")
                    self.console.session_ended(exc)
                    return
                except NotFound:
                    self.panel.say(f"{title}: the job is no longer known to the API.", "bold red")
                    return
                except ApiError as exc:  # the job goes on in the worker: ask again, less often
                    delay = min(POLL_MAX_S, delay * 2)
                    self.panel.say(
                        f"{title}: no answer about the job ({exc.message}); asking again…", "yellow"
                    )
                    continue
                delay = self.poll_s
                self.job = job
                self.panel.show(title, job)
            outcome = ended(title, job, success)
            self.panel.finished(outcome)
            failed = job.get("state") != "succeeded" or outcome.plain.startswith("✗")
            self.notify(outcome.plain, severity="error" if failed else "information", timeout=8)
        finally:
            self.job = None
        result = job.get("result")
        made = result.get("archive") if success is created and isinstance(result, dict) else None
        self.load(select=str(made) if made else None)
