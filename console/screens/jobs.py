"""Jobs: every tenant's durable jobs and the platform's own, newest first, in one table (filtered as you
type, or queried on the server by state, kind and tenant), with the jobs waiting and gone dead per minute
and the counts by state above it, the selected job in full below, and the operator's hand on one job:
run a dead or cancelled one again, cancel a queued one, each confirmed by naming it and its tenant."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.timer import Timer
from textual.widgets import Input, Static

from appliance.client.errors import ApiError, NotFound, Unauthorized
from console import collector
from console import format as fmt
from console.screens.confirm import ConfirmDialog
from console.screens.job_query import JobQuery, JobQueryDialog
from console.screens.table_view import TableScreen
from console.widgets.job_detail import (
    STATE_STYLES,
    Job,
    JobDetail,
    job_name,
    job_row,
    state_counts,
    tenant_label,
)
from console.widgets.row_table import Column, RowTable
from console.widgets.trend import Trend

SHOW_EVERY_S = 0.25  # while the first load streams in: drawing after every page would double its time
MAX_JOBS = 20_000  # the newest; a query narrows the rest down
SIGN_IN = "Sign in (ctrl+l) to see the jobs."
COLUMNS = (
    Column("Age", 6, "right"),
    Column("State", 9, colours=STATE_STYLES),
    Column("Kind", 18),
    Column("Tenant", 14, colours={"platform": "dim"}),
    Column("Tries", 5, "right"),
    Column("Last error"),
)


async def prefetched(pages: AsyncIterator[list[Job]], ahead: int = 2) -> AsyncGenerator[list[Job], None]:
    """`pages` as they come, the next ones asked for while this one is drawn: the API reads the next page
    while the console draws this one, instead of each waiting for the other."""
    queue: asyncio.Queue[list[Job] | Exception | None] = asyncio.Queue(maxsize=ahead)

    async def pump() -> None:
        try:
            async for page in pages:
                await queue.put(page)
        except Exception as exc:  # handed to the reader, which raises it where it would have come
            await queue.put(exc)
            return
        await queue.put(None)

    task = asyncio.create_task(pump())
    try:
        while (item := await queue.get()) is not None:
            if isinstance(item, Exception):
                raise item
            yield item
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


class JobsScreen(TableScreen):
    NAME = "jobs"
    FILTER = "job-filter"
    ROW = "job"
    SIGN_IN = SIGN_IN
    TITLE = "Jobs"
    AUTO_FOCUS = "#job-table"
    DEFAULT_CSS = """
    JobsScreen #job-trends { height: 4; }
    JobsScreen #job-counts { width: 37; height: 4; border: round $panel; padding: 0 1; }
    JobsScreen #job-filter { height: 3; }
    JobsScreen #job-summary { height: 1; padding: 0 1; color: $text-muted; }
    """

    def __init__(self) -> None:
        super().__init__()
        self.job_query = JobQuery()
        self.jobs: dict[str, Job] = {}
        self.loaded_at: float | None = None
        self.clock: Callable[[], float] = time.time  # what ages are drawn against
        self._loading = False
        self._load_id = 0
        self._detail_timer: Timer | None = None
        self._unknown_tenants: set[str] = set()  # looked up and not found: not asked for again
        # Held, not queried: a worker that ends as the console quits draws on widgets already removed.
        self.table = RowTable(COLUMNS, id="job-table", empty="No jobs loaded yet.")
        self.detail = JobDetail(id="job-detail")
        self._summary = Static("", id="job-summary")

    def body(self) -> ComposeResult:
        with Horizontal(id="job-trends"):
            yield Trend("Waiting", id="trend-waiting")
            yield Trend("Gone dead/min", id="trend-dead")
            yield Static("", id="job-counts")
        yield Input(placeholder="filter: words in state, kind, tenant or error", id="job-filter")
        yield self._summary
        yield self.table
        yield self.detail

    def on_mount(self) -> None:
        self.query_one("#job-filter", Input).display = False  # shown by `/`: hidden, it takes no focus
        self.query_one("#job-counts", Static).border_title = "Jobs by state"
        self.keep_loaded()
        self.table.focus()

    @property
    def summary(self) -> str:
        """The line above the table, as plain text."""
        return str(self._summary.content)

    def say(self, text: str | Text) -> None:
        self._summary.update(text, layout=False)  # one line, always: no layout of the whole screen

    def polled(self) -> None:
        super().polled()
        state = self.console.state
        waiting, dead = list(state.jobs_waiting), list(state.jobs_dead_rate)
        self.query_one("#trend-waiting", Trend).show(waiting, f"{waiting[-1]:.0f}" if waiting else "-")
        self.query_one("#trend-dead", Trend).show(dead, f"{dead[-1]:.1f}" if dead else "-")
        self.query_one("#job-counts", Static).update(state_counts(state.jobs), layout=False)
        if not self.console.signed_in_as and (self.jobs or self.summary != SIGN_IN):
            self._load_id += 1  # signed out: what the session saw goes with it; a load under way is dropped
            self.jobs, self.loaded_at = {}, None
            self.table.set_rows([])
            self.detail.show(None)
            self.say(SIGN_IN)

    # --- loading ------------------------------------------------------------------------------------

    def show_state(self, state: str) -> None:
        """Show only the jobs in `state` (the dashboard's `d`: the dead ones), every tenant's."""
        self.query_one("#job-filter", Input).value = ""
        self.table.filter("")
        self._set_query(JobQuery(state=state))

    def _set_query(self, query: JobQuery) -> None:
        if query != self.job_query:
            self.job_query = query
            self._load_id += 1  # rows of the old filters are not answers to the new ones
            self.jobs, self.loaded_at = {}, None
            self.table.set_rows([])
            self.detail.show(None)
        self.action_reload_rows()

    @work(exclusive=True, group="jobs-load")
    async def load(self) -> None:
        self._load_id += 1
        load_id, query = self._load_id, self.job_query
        self._loading = True
        started = time.perf_counter()
        fresh: dict[str, Job] = {}
        waiting: list[Job] = []  # fetched, not yet in the table
        first, shown_at = self.loaded_at is None, 0.0
        try:
            tenant_id = await self._tenant_id(query.tenant) if query.tenant else None
            if query.tenant and tenant_id is None:
                self.table.set_rows([])
                self.say(Text(f"No tenant has the slug {query.tenant!r}.", "bold red"))
                return
            if first:
                self.say(f"Loading… ({query.describe()})")
            pages = self.console.connection.api.platform_job_pages(
                state=query.state or None, kind=query.kind or None, tenant_id=tenant_id
            )
            with collector.held():
                async with contextlib.aclosing(prefetched(pages)) as stream:
                    async for page in stream:
                        if load_id != self._load_id:
                            return
                        for job in page:
                            fresh[str(job["id"])] = job
                        if first:  # the first rows at once, then a few redraws a second (a reload: in place)
                            waiting.extend(page)
                            now = time.perf_counter()
                            if now - shown_at >= SHOW_EVERY_S:
                                self._append(waiting)
                                self.say(f"Loading… {len(fresh):,} jobs ({query.describe()})")
                                shown_at = now
                        if len(fresh) >= MAX_JOBS:
                            break
        except Unauthorized as exc:
            self.console.session_ended(exc)
            return
        except ApiError as exc:  # shown; the rows loaded before stay
            self.say(Text(f"Could not load the jobs: {exc.message}", "bold red"))
            return
        finally:
            self._loading = False
        if load_id == self._load_id:
            self._loaded(fresh, waiting if first else None, query, started)

    def _loaded(
        self, fresh: dict[str, Job], waiting: list[Job] | None, query: JobQuery, started: float
    ) -> None:
        """A load is complete: the rows not yet drawn (`waiting`, on a first load, which drew the others as
        they came), or every row again in place (a reload); then the line above the table and the pane."""
        if waiting is not None:
            self._append(waiting)
        if waiting is None or self.jobs.keys() != fresh.keys():  # a reload, or rows of a load cut short
            self.jobs = fresh
            self.draw_rows()
        self.loaded_at = time.time()
        took = time.perf_counter() - started
        capped = f" · the newest {MAX_JOBS:,} only: query (a) to narrow" if len(fresh) >= MAX_JOBS else ""
        self.say(f"{len(fresh):,} jobs · {query.describe()} · loaded in {took:.2f}s{capped}")
        self.show_detail()
        self._fill_in_tenants()

    def _append(self, jobs: list[Job]) -> None:
        self.jobs.update((str(j["id"]), j) for j in jobs)
        now, tenants = self.clock(), self.console.tenants
        self.table.append_rows(job_row(j, now, tenants) for j in jobs)
        jobs.clear()

    def draw_rows(self) -> None:
        """Every row again (ages move on, slugs may have become known), in place."""
        now, tenants = self.clock(), self.console.tenants
        self.table.set_rows(job_row(j, now, tenants) for j in self.jobs.values())

    async def _tenant_id(self, slug: str) -> str | None:
        """The id of the tenant called `slug`, from the tenants known, or else the API's list."""
        for _ in range(2):
            found = next((tid for tid, t in self.console.tenants.items() if t.get("slug") == slug), None)
            if found or not await self._load_tenants():
                return found
        return None

    async def _load_tenants(self) -> bool:
        """The tenant list, as the tenants view keeps it (for the slugs); False when it could not load."""
        fresh: dict[str, dict[str, Any]] = {}
        try:
            async for page in self.console.connection.api.tenant_pages():
                fresh.update((str(t["id"]), t) for t in page)
        except ApiError:
            return False  # the short ids stay
        self.console.tenants = fresh
        return True

    @work(exclusive=True, group="jobs-tenants")
    async def _fill_in_tenants(self) -> None:
        """Jobs of tenants the console has not listed yet: fetch the tenants once, then show their slugs."""
        known = self.console.tenants
        wanted = {
            str(j["tenant_id"])
            for j in self.jobs.values()
            if j.get("tenant_id") and str(j["tenant_id"]) not in known
        } - self._unknown_tenants
        if not wanted or not await self._load_tenants():
            return
        self._unknown_tenants |= wanted - self.console.tenants.keys()
        self.draw_rows()
        self.show_detail()

    # --- filter ---------------------------------------------------------------------------------------

    @work(group="jobs-query")
    async def action_query(self) -> None:
        query = await self.app.push_screen_wait(JobQueryDialog(self.job_query))
        if query is not None:
            self._set_query(query)

    # --- detail ---------------------------------------------------------------------------------------

    def selected(self) -> Job | None:
        key = self.table.cursor_key
        return self.jobs.get(key) if key else None

    @on(RowTable.Highlighted, "#job-table")
    def _highlighted(self) -> None:
        self.show_detail()
        if self._detail_timer is not None:
            self._detail_timer.stop()
        self._detail_timer = self.set_timer(0.3, self._refresh_selected)  # not one request per arrow press

    def show_detail(self) -> None:
        job = self.selected()
        self.detail.show(job, tenant_label(job, self.console.tenants) if job else "")

    def _refresh_selected(self) -> None:
        job = self.selected()
        if job is not None and self.console.signed_in_as:
            self.refresh_job(str(job["id"]))

    @work(group="jobs-detail")
    async def refresh_job(self, job_id: str) -> None:
        """The job as it is now (its progress, its state): the row and the pane follow."""
        try:
            job = await self.console.connection.api.platform_job(job_id)
        except NotFound:
            self._gone(job_id)
            return
        except ApiError:
            return  # the row as listed stays
        self.changed(job)

    def changed(self, job: Job) -> None:
        """One job changed (an action's answer, a fresh read): its row in place, and the pane."""
        key = str(job["id"])
        if key not in self.jobs:
            return
        self.jobs[key] = job
        self.table.update_row(*job_row(job, self.clock(), self.console.tenants))
        if self.table.cursor_key == key:
            self.show_detail()

    def _gone(self, job_id: str) -> None:
        """The job was removed (finished ones are kept for a while only): drop its row."""
        if self.jobs.pop(job_id, None) is not None:
            self.draw_rows()
            self.show_detail()

    # --- actions (gated by check_action in the base screen; the API refuses too) ---------------------

    def _question(self, job: Job, then: str) -> tuple[str, str]:
        """A confirmation's title and question, naming the job, its tenant, where it stands and its error."""
        tenant = tenant_label(job, self.console.tenants)
        attempts, most = job.get("attempts", 0), job.get("max_attempts", "?")
        if job.get("state") == "queued":
            where = f"queued: attempt {attempts + 1} of {most} at {fmt.when(job.get('run_at'))}"
        else:
            where = f"{job.get('state')} after {attempts} of {most} attempts"
        error = str(job.get("last_error") or "").split("\n", 1)[0]
        said = f"; last error: {error[:200]}" if error else ""
        return f"{job_name(job)} of {tenant}", f"Tenant {tenant} · {where}{said}.\n{then}"

    async def _act(self, job: Job, verb: str, call: Callable[[str], Awaitable[Job]]) -> None:
        job_id = str(job["id"])
        result = await self.attempt(f"{verb} job {job_name(job)}", call(job_id))
        if result is None:  # refused (its state moved on meanwhile?), gone or unreachable: read it again
            self.refresh_job(job_id)
            return
        self.notify(
            f"Job {job_name(result)} ({tenant_label(result, self.console.tenants)}): {result['state']}."
        )
        self.changed(result)

    @work(group="job-action")
    async def action_retry(self) -> None:
        job = self.selected()
        if job is None:
            self.notify("Select a job first.", severity="warning")
            return
        if job.get("state") not in ("dead", "cancelled"):
            self.notify(
                f"Job {job_name(job)} is {job.get('state')}: only dead or cancelled jobs can be retried.",
                severity="warning",
            )
            return
        named, question = self._question(job, "It runs again now, with a fresh set of attempts.")
        if await self.app.push_screen_wait(ConfirmDialog(f"Retry job {named}?", question, "Retry")):
            await self._act(job, "retry", self.console.connection.api.retry_job)

    @work(group="job-action")
    async def action_cancel(self) -> None:
        job = self.selected()
        if job is None:
            self.notify("Select a job first.", severity="warning")
            return
        if job.get("state") != "queued":
            self.notify(
                f"Job {job_name(job)} is {job.get('state')}: only queued jobs can be cancelled.",
                severity="warning",
            )
            return
        named, question = self._question(job, "It will not run (it can be retried later).")
        dialog = ConfirmDialog(f"Cancel job {named}?", question, "Cancel job", danger=True)
        if await self.app.push_screen_wait(dialog):
            await self._act(job, "cancel", self.console.connection.api.cancel_job)
