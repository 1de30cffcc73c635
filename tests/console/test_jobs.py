"""The jobs view against a real appliance (`appliance up`: its worker runs the jobs): webhook deliveries of
two tenants whose receiver does not resolve, some dead for good and some queued for a later attempt; the
table with each tenant's slug, the filter, the query dialog, the detail pane, a retry and a cancel confirmed
by name (and a cancel the API refuses because the job moved on), a read-only operator who cannot do either,
and the dashboard's dead-job count that leads to them. Snapshots of the view, its dialog and the dashboard's
line are drawn from a fixed state."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import Input, Select

from appliance.client.errors import ApiUnavailable
from console.app import ConsoleApp
from console.connection import Connection
from console.screens.confirm import ConfirmDialog
from console.screens.dashboard import DashboardScreen
from console.screens.job_query import JobQuery, JobQueryDialog
from console.screens.jobs import JobsScreen, prefetched
from console.widgets.job_detail import job_row
from tests.console.conftest import RunningAppliance, console_app, set_password, signed_in_store
from tests.console.pilot import confirm, screen_text, showing, until
from tests.console.test_snapshots import SIZE, fixed_app, settle
from tests.identity import bearer
from tests.support import wait_for

#: RFC 6761: a name under .invalid never resolves, so every attempt fails at once with the reason.
NOWHERE = "https://receiver.invalid/hook"


@dataclass(frozen=True)
class Owner:
    tenant_id: str
    slug: str
    token: str


@dataclass(frozen=True)
class Jobs:
    """Real jobs of the appliance: `dead` ones of tenant `a` (their endpoint was turned off after their
    first attempt failed), `queued` ones of tenant `b` (waiting minutes for their third attempt)."""

    a: Owner
    b: Owner
    dead: list[str]
    queued: list[str]


def tenant_with_owner(appliance: RunningAppliance, prefix: str) -> Owner:
    slug = f"{prefix}-{uuid.uuid4().hex[:6]}"
    email = f"owner@{slug}.test"
    created = appliance.create_tenant(slug, owner_email=email)
    token = set_password(appliance.api_url, email, created["owner"]["one_time_password"])
    return Owner(str(created["id"]), slug, token)


def as_owner(appliance: RunningAppliance, owner: Owner, method: str, path: str, body: Any) -> dict[str, Any]:
    import httpx

    with httpx.Client(base_url=appliance.api_url, timeout=30) as http:
        response = http.request(method, path, json=body, headers=bearer(owner.token))
    assert response.status_code in (200, 201), response.text
    return dict(response.json())


def deliveries(appliance: RunningAppliance, owner: Owner, count: int) -> tuple[str, list[str]]:
    """An endpoint that wants organization.created, then `count` organizations: one delivery job each."""
    endpoint = as_owner(
        appliance,
        owner,
        "POST",
        "/api/v1/webhooks/endpoints",
        {"url": NOWHERE, "event_types": ["organization.created"]},
    )
    for n in range(count):
        as_owner(appliance, owner, "POST", "/api/v1/organizations", {"name": f"Org {n}", "slug": f"org-{n}"})
    listed = appliance.api("GET", "/api/v1/platform/jobs", params={"tenant_id": owner.tenant_id}).json()
    ids = [j["id"] for j in listed["items"] if j["kind"] == "webhooks.deliver"]
    assert len(ids) == count, listed
    return str(endpoint["id"]), ids


def job(appliance: RunningAppliance, job_id: str) -> dict[str, Any]:
    response = appliance.api("GET", f"/api/v1/platform/jobs/{job_id}")
    assert response.status_code == 200, response.text
    return dict(response.json())


@pytest.fixture(scope="module")
def jobs(appliance: RunningAppliance) -> Jobs:
    a, b = tenant_with_owner(appliance, "jobs-a"), tenant_with_owner(appliance, "jobs-b")
    endpoint_a, dead = deliveries(appliance, a, 3)
    _endpoint_b, queued = deliveries(appliance, b, 2)
    wait_for(
        lambda: all(job(appliance, j)["attempts"] >= 1 for j in dead), 60, 0.2, "the first attempts to fail"
    )
    as_owner(appliance, a, "PATCH", f"/api/v1/webhooks/endpoints/{endpoint_a}", {"enabled": False})
    wait_for(lambda: all(job(appliance, j)["state"] == "dead" for j in dead), 60, 0.2, "the jobs dead")
    wait_for(  # the second attempt failed too: the third is 5 minutes away
        lambda: all(
            job(appliance, j)["attempts"] == 2 and job(appliance, j)["state"] == "queued" for j in queued
        ),
        60,
        0.2,
        "the deliveries waiting for their third attempt",
    )
    return Jobs(a, b, dead, queued)


def jobs_screen(app: ConsoleApp) -> JobsScreen:
    screen = app.screen
    assert isinstance(screen, JobsScreen)
    return screen


async def loaded(pilot: Pilot[None], *ids: str) -> JobsScreen:
    app = pilot.app
    assert isinstance(app, ConsoleApp)
    await until(pilot, lambda: showing(app, JobsScreen), "the jobs view")
    screen = jobs_screen(app)
    await until(
        pilot,
        lambda: screen.loaded_at is not None and all(i in screen.table.rows for i in ids),
        "the jobs' rows",
        30,
    )
    return screen


async def query(pilot: Pilot[None], state: str = "", kind: str = "", tenant: str = "") -> None:
    """Open the query dialog with `a`, fill it in and press Query."""
    await pilot.press("a")
    await until(pilot, lambda: showing(pilot.app, JobQueryDialog), "the query dialog")
    dialog = pilot.app.screen
    dialog.query_one("#state", Select).value = state
    dialog.query_one("#kind", Input).value = kind
    dialog.query_one("#tenant", Input).value = tenant
    await pilot.click("#apply")


def test_the_query_names_what_cannot_be_a_filter() -> None:
    assert JobQuery.parse(" Dead ", " Webhooks.Deliver ", " Acme ") == JobQuery(
        "dead", "webhooks.deliver", "acme"
    )
    assert JobQuery().describe() == "every job"
    assert JobQuery("dead", "", "acme").describe() == "state dead, tenant acme"
    for values, problem in (
        (("exploded", "", ""), "state: 'exploded' is not a job state"),
        (("", "webhooks deliver", ""), "kind"),
        (("", "", "Acme Corp"), "tenant"),
        (("", "x" * 65, ""), "kind"),
    ):
        with pytest.raises(ValueError, match=problem):
            JobQuery.parse(*values)


def test_pages_read_ahead_come_in_order_and_an_error_where_it_happened() -> None:
    async def pages() -> AsyncIterator[list[dict[str, Any]]]:
        yield [{"id": "1"}]
        yield [{"id": "2"}]
        raise ApiUnavailable("the API went away")

    async def read() -> list[list[dict[str, Any]]]:
        got = []
        with pytest.raises(ApiUnavailable, match="went away"):
            async for page in prefetched(pages()):
                got.append(page)
        return got

    assert asyncio.run(read()) == [[{"id": "1"}], [{"id": "2"}]]


def test_jobs_listed_filtered_queried_shown_and_retried(
    appliance: RunningAppliance, jobs: Jobs, tmp_path: Path
) -> None:
    app = console_app(appliance, tmp_path, first_view="jobs")
    first, *_ = jobs.dead

    async def scenario() -> None:
        async with app.run_test(size=(120, 40)) as pilot:
            screen = await loaded(pilot, *jobs.dead, *jobs.queued)
            table = screen.table
            assert table.rows[first][3] in (jobs.a.tenant_id[:8], jobs.a.slug)
            await until(
                pilot, lambda: table.rows[first][3] == jobs.a.slug, "the slug, once the tenants are read"
            )
            _age, state, kind, tenant, tries, error = table.rows[first]
            assert (state, kind, tenant, tries) == ("dead", "webhooks.deliver", jobs.a.slug, "2/8")
            assert "the endpoint is disabled" in error
            assert table.rows[jobs.queued[0]][1:5] == ("queued", "webhooks.deliver", jobs.b.slug, "2/8")
            assert "receiver.invalid" in table.rows[jobs.queued[0]][5]

            await pilot.press("slash", *jobs.b.slug)
            assert set(table.shown) == set(jobs.queued)
            await pilot.press("escape")
            assert len(table.shown) == len(table.rows)

            await query(pilot, state="dead")
            await until(pilot, lambda: screen.job_query == JobQuery(state="dead"), "the new query")
            await loaded(pilot, *jobs.dead)
            assert {cells[1] for cells in table.rows.values()} == {"dead"}
            assert not set(jobs.queued) & set(table.rows)
            assert "state dead" in screen.summary

            await query(pilot, tenant=jobs.b.slug)
            await until(pilot, lambda: set(table.rows) == set(jobs.queued), "only tenant b's jobs")

            await query(pilot, state="dead", tenant=jobs.a.slug)
            await until(pilot, lambda: set(table.rows) == set(jobs.dead), "only tenant a's dead jobs")
            assert table.move_to(first)
            await until(pilot, lambda: "Last error:" in screen.detail.text, "the job in full")
            detail = screen.detail.text
            assert f"webhooks.deliver dead · tenant {jobs.a.slug} · attempts 2/8\njob {first}\n" in detail
            assert "the endpoint is disabled" in detail
            assert "\nCreated 20" in detail
            assert " → finished " in detail
            assert '\nPayload: {\n  "delivery_id": "' in detail

            await confirm(pilot, "t", f"Retry job webhooks.deliver {first[:8]} of {jobs.a.slug}?")
            await until(pilot, lambda: table.rows[first][1] != "dead", "the row updated in place")
            assert table.rows[first][1] in ("queued", "running", "succeeded")
            assert any(
                f"webhooks.deliver {first[:8]} ({jobs.a.slug}): queued" in n.message
                for n in app._notifications
            )
        assert job(appliance, first)["state"] in ("queued", "running", "succeeded")

    asyncio.run(scenario())


def test_a_queued_job_cancelled_and_one_that_moved_on_refused(
    appliance: RunningAppliance, jobs: Jobs, tmp_path: Path
) -> None:
    mine, theirs = jobs.queued
    app = console_app(appliance, tmp_path, first_view="jobs")

    async def scenario() -> None:
        async with app.run_test(size=(120, 40)) as pilot:
            screen = await loaded(pilot, mine, theirs)
            table = screen.table
            assert table.move_to(jobs.dead[-1])
            await pilot.press("x")  # a dead job cannot be cancelled: said, and nothing asked
            await until(
                pilot, lambda: any("only queued jobs" in n.message for n in app._notifications), "why not"
            )
            assert not showing(app, ConfirmDialog)

            assert table.move_to(mine)
            await pilot.press("x")
            await until(pilot, lambda: showing(app, ConfirmDialog), "the confirmation")
            shown = screen_text(app, ".dialog")
            assert f"Cancel job webhooks.deliver {mine[:8]} of {jobs.b.slug}?" in shown
            assert f"Tenant {jobs.b.slug} · queued: attempt 3 of 8 at " in shown
            assert "Enter: Cancel ·" in shown, "Enter does not cancel a job by habit"
            await pilot.press("y")
            await until(pilot, lambda: table.rows[mine][1] == "cancelled", "the cancelled state")
            assert job(appliance, mine)["state"] == "cancelled"

            refused = appliance.api(
                "POST", f"/api/v1/platform/jobs/{theirs}/cancel"
            )  # someone else was faster
            assert refused.status_code == 200, refused.text
            assert table.rows[theirs][1] == "queued"
            assert table.move_to(theirs)
            await confirm(pilot, "x", f"Cancel job webhooks.deliver {theirs[:8]} of {jobs.b.slug}?")
            await until(
                pilot,
                lambda: any("only queued jobs can be cancelled" in n.message for n in app._notifications),
                "the API's refusal",
            )
            await until(pilot, lambda: table.rows[theirs][1] == "cancelled", "the row read again")

    asyncio.run(scenario())


def test_a_read_only_operator_can_neither_retry_nor_cancel(
    appliance: RunningAppliance, jobs: Jobs, tmp_path: Path
) -> None:
    email = f"reader-{uuid.uuid4().hex[:6]}@console.test"
    appliance.create_operator(email, "--read-only")
    store = signed_in_store(tmp_path / "credentials.json", appliance, email)
    app = ConsoleApp(Connection.open(appliance.target(), store), first_view="jobs")
    dead = jobs.dead[-1]

    async def scenario() -> None:
        async with app.run_test(size=(120, 40)) as pilot:
            screen = await loaded(pilot, dead)
            await until(pilot, lambda: app.read_only, "the read-only session")
            footer = screen_text(app, "Footer")
            assert "Retry" not in footer, footer
            assert "Cancel" not in footer, footer
            assert "Query" in footer
            assert screen.table.move_to(dead)
            await pilot.press("t", "x")
            await pilot.pause(0.3)
            assert not showing(app, ConfirmDialog)
        assert job(appliance, dead)["state"] == "dead"

    asyncio.run(scenario())


def test_the_dashboard_counts_the_dead_jobs_and_d_lists_them(
    appliance: RunningAppliance, jobs: Jobs, tmp_path: Path
) -> None:
    app = console_app(appliance, tmp_path)
    dead = jobs.dead[-1]

    async def scenario() -> None:
        async with app.run_test(size=(80, 24)) as pilot:
            await until(pilot, lambda: app.state.jobs.get("dead", 0) >= 1, "the jobs counted by the metrics")
            line = app.screen.query_one("#jobs-line")
            await until(pilot, lambda: "Dead jobs: " in str(line.render()), "the dead-jobs line")
            count = app.state.jobs["dead"]
            assert f"Dead jobs: {count:,} · press d" in str(line.render())
            assert isinstance(app.screen, DashboardScreen)
            await pilot.press("d")
            screen = await loaded(pilot, dead)
            assert screen.job_query == JobQuery(state="dead")
            assert {cells[1] for cells in screen.table.rows.values()} == {"dead"}

    asyncio.run(scenario())


# --- snapshots, from a fixed state ----------------------------------------------------------------------

NOW = 1796364000.0  # 2026-12-04T06:00:00Z
TENANT = "00000000-0000-0000-0000-000000000000"  # acme in test_snapshots.TENANTS


def fixed_job(
    n: int, tenant: str | None, kind: str, state: str, attempts: int, **fields: Any
) -> dict[str, Any]:
    """A job made `10 + 7n` minutes before NOW, as the API lists it."""
    made = f"2026-12-04T05:{50 - n * 7:02d}:00Z"
    return {
        "id": f"{n:08x}-1111-2222-3333-444455556666",
        "tenant_id": tenant,
        "kind": kind,
        "state": state,
        "attempts": attempts,
        "max_attempts": 8 if kind == "webhooks.deliver" else 3,
        "payload": {},
        "result": None,
        "progress": None,
        "last_error": None,
        "run_at": made,
        "lease_until": None,
        "created_at": made,
        "started_at": made.replace(":00Z", ":01Z") if attempts else None,
        "finished_at": made.replace(":00Z", ":09Z") if state in ("dead", "succeeded", "cancelled") else None,
    } | fields


FIXED_JOBS = [
    fixed_job(
        0,
        TENANT,
        "webhooks.deliver",
        "dead",
        8,
        payload={"delivery_id": "9f1c0c1e-aaaa-bbbb-cccc-000000000001", "message_id": "msg_2Yx"},
        last_error="https://hooks.acme.test/in: connection refused",
    ),
    fixed_job(
        1, TENANT, "webhooks.deliver", "queued", 2, run_at="2026-12-04T06:04:00Z", last_error="HTTP 503"
    ),
    fixed_job(
        2, None, "backups.create", "running", 1, progress={"step": "encrypting", "done": 2, "total": 5}
    ),
    fixed_job(
        3,
        "00000000-0000-0000-0000-000000000009",
        "tenants.export",
        "succeeded",
        1,
        result={"archive": "a.age"},
    ),
    fixed_job(4, TENANT, "system.noop", "cancelled", 0, payload={"echo": "hello"}),
]


def fixed_jobs(screen: Any) -> None:
    screen.workers.cancel_all()
    state = screen.console.state
    state.jobs = {"queued": 1, "running": 1, "succeeded": 9811, "dead": 1, "cancelled": 1}
    state.jobs_waiting.extend([0, 2, 5, 3, 1, 1, 4, 2, 1, 1])
    state.jobs_dead_rate.extend([0, 0, 1, 0, 0, 3, 0, 0, 1, 0])
    screen.clock = lambda: NOW
    screen.jobs = {j["id"]: j for j in FIXED_JOBS}
    screen.draw_rows()
    screen.table.move_to(FIXED_JOBS[0]["id"])
    screen.show_detail()
    screen.say("5 jobs · every job · loaded in 0.04s")
    screen.polled()


async def jobs_view(pilot: Pilot[None], prepare: Any = fixed_jobs) -> None:
    await settle(pilot)
    await pilot.press("8")
    await until(pilot, lambda: showing(pilot.app, JobsScreen), "the jobs view")
    prepare(pilot.app.screen)
    await pilot.pause(0.2)


def test_snapshot_jobs(snap_compare: Any, tmp_path: Path) -> None:
    assert snap_compare(fixed_app(tmp_path), terminal_size=SIZE, run_before=jobs_view)


def test_snapshot_jobs_read_only(snap_compare: Any, tmp_path: Path) -> None:
    assert snap_compare(fixed_app(tmp_path, read_only=True), terminal_size=SIZE, run_before=jobs_view)


def test_snapshot_job_query_dialog(snap_compare: Any, tmp_path: Path) -> None:
    async def run_before(pilot: Pilot[None]) -> None:
        await settle(pilot)
        pilot.app.push_screen(JobQueryDialog(JobQuery("dead", "", "acme")))
        await pilot.pause()

    assert snap_compare(fixed_app(tmp_path), terminal_size=SIZE, run_before=run_before)


def test_snapshot_dashboard_with_dead_jobs(snap_compare: Any, tmp_path: Path) -> None:
    async def run_before(pilot: Pilot[None]) -> None:
        await settle(pilot)
        pilot.app.state.jobs = {"queued": 4, "running": 1, "succeeded": 120, "dead": 3, "cancelled": 0}  # type: ignore[attr-defined]
        pilot.app.redraw()  # type: ignore[attr-defined]
        await pilot.pause()

    assert snap_compare(fixed_app(tmp_path), terminal_size=SIZE, run_before=run_before)


def test_rows_name_the_tenant_by_slug_or_short_id_and_the_platform() -> None:
    tenants = {TENANT: {"slug": "acme"}}
    rows = [job_row(j, NOW, tenants)[1] for j in FIXED_JOBS]
    assert [r[3] for r in rows] == ["acme", "acme", "platform", "00000000", "acme"]
    assert rows[0] == (
        "10m00s",
        "dead",
        "webhooks.deliver",
        "acme",
        "8/8",
        "https://hooks.acme.test/in: connection refused",
    )
    assert rows[1][4] == "2/8"
    assert rows[2][5] == "-"
