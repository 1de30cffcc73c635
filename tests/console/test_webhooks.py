"""The webhooks view against a real appliance (`appliance up`: its worker sends the deliveries): two tenants'
endpoints, made through the tenants' own API, pointing at local receivers (one answers 200, one 500, one 410
Gone so that the appliance disables it) and one turned off by its tenant; an event each tenant's API emits
(organization.created). The console lists them with their success rates, shows the failing one's log (500
and the start of its answer), replays one message and everything failed since a time (the new attempt seen
in the console and through the API), re-enables a disabled endpoint, refuses a "since" that is not a time,
and offers a read-only operator none of it. A snapshot of the layout from a fixed state."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import Input

from console.app import ConsoleApp
from console.screens.confirm import ConfirmDialog
from console.screens.since_dialog import SinceDialog
from console.screens.webhook_rows import attempt_row
from console.screens.webhooks import WebhooksScreen
from tests.console.conftest import RunningAppliance, console_app, signed_in_store
from tests.console.owners import POLL_S, Owner, tenant_with_owner
from tests.console.pilot import confirm, screen_text, showing, until
from tests.console.test_snapshots import SIZE, fixed_app, settle
from tests.receivers import Receiver, Reply
from tests.support import wait_for

EVENT = "organization.created"
ANSWER = b"boom: the receiver's database is down (try later)"


@dataclass
class Hooks:
    first: Owner
    second: Owner
    ok: dict[str, Any]
    failing: dict[str, Any]
    gone: dict[str, Any]
    paused: dict[str, Any]
    failing_receiver: Receiver
    gone_receiver: Receiver
    gone_answers: list[int]  # what the gone receiver answers now (a test makes it answer 200 again)


def endpoint(owner: Owner, url: str) -> dict[str, Any]:
    return owner.create("/api/v1/webhooks/endpoints", {"url": url, "event_types": [EVENT]})


def attempts(owner: Owner, hook: dict[str, Any]) -> list[dict[str, Any]]:
    """The endpoint's delivery log as its tenant reads it, newest first."""
    response = owner.call("GET", f"/api/v1/webhooks/endpoints/{hook['id']}/attempts", params={"limit": 200})
    assert response.status_code == 200, response.text
    return list(response.json()["items"])


def enabled(owner: Owner, hook: dict[str, Any]) -> bool:
    return bool(owner.call("GET", f"/api/v1/webhooks/endpoints/{hook['id']}").json()["enabled"])


def event(owner: Owner, name: str) -> None:
    """Something the tenant does that its endpoints hear of: a new organization."""
    owner.create("/api/v1/organizations", {"name": name.title(), "slug": name})


@pytest.fixture(scope="module")
def hooks(appliance: RunningAppliance) -> Iterator[Hooks]:
    """Tenant one: an endpoint answered 200, one answered 500 (tried twice: at once and 5 s later, the next
    try is minutes away). Tenant two: one answered 410 Gone (disabled by the appliance), one its tenant
    turned off. One event each."""
    first, second = tenant_with_owner(appliance, "hooks-one"), tenant_with_owner(appliance, "hooks-two")
    gone_answers = [410]
    with (
        Receiver(lambda _got, _n: Reply(200, body=b"thanks")) as ok_receiver,
        Receiver(lambda _got, _n: Reply(500, body=ANSWER)) as failing_receiver,
        Receiver(lambda _got, _n: Reply(gone_answers[0], body=b"gone")) as gone_receiver,
    ):
        ok, failing = endpoint(first, ok_receiver.url), endpoint(first, failing_receiver.url)
        gone, paused = endpoint(second, gone_receiver.url), endpoint(second, f"{ok_receiver.url}/paused")
        off = second.call("PATCH", f"/api/v1/webhooks/endpoints/{paused['id']}", json={"enabled": False})
        assert off.status_code == 200, off.text
        event(first, "north")
        event(second, "south")
        wait_for(
            lambda: len(attempts(first, failing)) >= 2,
            timeout=60,
            interval=POLL_S,
            what="two attempts of the 500 one",
        )
        wait_for(lambda: attempts(first, ok), timeout=60, interval=POLL_S, what="the delivery to the 200 one")
        wait_for(lambda: not enabled(second, gone), timeout=60, interval=POLL_S, what="the 410 one disabled")
        yield Hooks(first, second, ok, failing, gone, paused, failing_receiver, gone_receiver, gone_answers)


def webhooks_screen(app: ConsoleApp) -> WebhooksScreen:
    screen = app.screen
    assert isinstance(screen, WebhooksScreen)
    return screen


async def endpoint_rows(app: ConsoleApp, pilot: Pilot[None], *hooks: dict[str, Any]) -> WebhooksScreen:
    await until(pilot, lambda: showing(app, WebhooksScreen), "the webhooks view")
    screen = webhooks_screen(app)
    await until(pilot, lambda: all(h["id"] in screen.table.rows for h in hooks), "the endpoints", 30)
    return screen


async def log_of(pilot: Pilot[None], screen: WebhooksScreen, hook: dict[str, Any]) -> None:
    """Select `hook` and wait for its delivery log."""
    assert screen.table.move_to(hook["id"])
    await until(pilot, lambda: screen.log_of == hook["id"] and screen.attempts, "the delivery log")


def test_endpoints_with_their_success_rates_and_the_log_of_a_failing_one(
    appliance: RunningAppliance, hooks: Hooks, tmp_path: Path
) -> None:
    app = console_app(appliance, tmp_path, first_view="webhooks")

    async def scenario() -> None:
        async with app.run_test(size=(110, 32)) as pilot:
            screen = await endpoint_rows(app, pilot, hooks.ok, hooks.failing, hooks.gone, hooks.paused)
            rows = screen.table.rows
            assert rows[hooks.ok["id"]][:5] == (hooks.first.slug, hooks.ok["url"], "enabled", "100%", "1")
            slug, url, state, rate, _tries, failing = rows[hooks.failing["id"]]
            assert (slug, url, state, rate) == (hooks.first.slug, hooks.failing["url"], "enabled", "0%")
            assert failing != "-"  # failing for some seconds
            assert rows[hooks.gone["id"]][:3] == (hooks.second.slug, hooks.gone["url"], "disabled")
            assert rows[hooks.paused["id"]][2] == "disabled"

            await log_of(pilot, screen, hooks.failing)
            log = [screen.deliveries.rows[k] for k in screen.deliveries.shown]
            assert len(log) >= 2
            for _time, event_type, _try, status, latency, _error, answer in log:
                assert (event_type, status) == (EVENT, "500")
                assert latency.endswith("ms")
                assert answer == ANSWER.decode()
            assert "failing for" in str(screen.heading.content)
            assert "message " in str(screen.attempt_pane.content)

            await pilot.press("tab")
            assert screen.focused is screen.deliveries
            await pilot.press("tab")
            assert screen.focused is screen.table

            assert screen.table.move_to(hooks.gone["id"])
            await until(pilot, lambda: "410 Gone" in str(screen.heading.content), "why it is disabled")

            await pilot.press("slash", *hooks.second.slug)
            assert set(screen.table.shown) == {hooks.gone["id"], hooks.paused["id"]}

    asyncio.run(scenario())


def test_replaying_one_message_sends_it_again(
    appliance: RunningAppliance, hooks: Hooks, tmp_path: Path
) -> None:
    app = console_app(appliance, tmp_path, first_view="webhooks")
    before = attempts(hooks.first, hooks.failing)
    received = hooks.failing_receiver.count()

    async def scenario() -> None:
        async with app.run_test(size=(110, 32)) as pilot:
            screen = await endpoint_rows(app, pilot, hooks.failing)
            await log_of(pilot, screen, hooks.failing)
            await pilot.press("tab")
            await confirm(pilot, "p", f"Replay {EVENT} to {hooks.failing['url']}?")
            await until(
                pilot,
                lambda: any(a["attempt"] > before[0]["attempt"] for a in screen.attempts.values()),
                "the replay's attempt in the log",
                30,
            )
            assert any(f"Replaying {EVENT}" in n.message for n in app._notifications)

    asyncio.run(scenario())
    after = attempts(hooks.first, hooks.failing)
    newest = after[0]
    assert newest["attempt"] > before[0]["attempt"]
    assert newest["delivery_id"] == before[0]["delivery_id"]  # the same message's delivery, sent again
    assert newest["status_code"] == 500
    sent = hooks.failing_receiver.received
    assert len(sent) > received
    assert sent[-1].headers["webhook-id"] == sent[0].headers["webhook-id"]


def test_a_disabled_endpoint_re_enabled_then_what_failed_replayed_since_a_time(
    appliance: RunningAppliance, hooks: Hooks, tmp_path: Path
) -> None:
    app = console_app(appliance, tmp_path, first_view="webhooks")
    url = hooks.gone["url"]

    async def scenario() -> None:
        async with app.run_test(size=(110, 32)) as pilot:
            screen = await endpoint_rows(app, pilot, hooks.gone)
            await log_of(pilot, screen, hooks.gone)
            assert [screen.attempts[k]["status_code"] for k in screen.deliveries.shown] == [410]

            await pilot.press("P")  # refused while it is off: nothing asked, nothing sent
            await until(
                pilot,
                lambda: any("re-enable it first" in n.message for n in app._notifications),
                "the refusal",
            )
            assert not showing(app, SinceDialog)

            await pilot.press("e")
            await until(pilot, lambda: showing(app, ConfirmDialog), "the confirmation")
            await pilot.pause()
            question = screen_text(app, ".dialog")
            assert f"Re-enable {url}?" in question
            assert f"Tenant {hooks.second.slug}:" in question
            assert "the receiver answered 410 Gone" in question
            await pilot.press("y")
            await until(pilot, lambda: screen.table.rows[hooks.gone["id"]][2] == "enabled", "the row enabled")
            assert enabled(hooks.second, hooks.gone)

            hooks.gone_answers[0] = 200  # the receiver is back
            await pilot.press("P")
            await until(pilot, lambda: showing(app, SinceDialog), "the since dialog")
            dialog = app.screen
            assert isinstance(dialog, SinceDialog)
            box = dialog.query_one(Input)
            assert box.value == "24h"
            box.value = ""
            await pilot.press(*"yesterday", "enter")
            assert showing(app, SinceDialog)
            assert dialog.error.startswith("since: 'yesterday' is not a time"), dialog.error
            box.value = ""
            await pilot.press(*"2h", "enter")
            await until(pilot, lambda: not showing(app, SinceDialog), "the dialog closed")
            await until(
                pilot,
                lambda: any(a["status_code"] == 200 for a in screen.attempts.values()),
                "the replayed delivery's attempt in the log",
                30,
            )
            assert any(
                f"Replaying 1 failed delivery to {url} ({hooks.second.slug})" in n.message
                for n in app._notifications
            )

    asyncio.run(scenario())
    log = attempts(hooks.second, hooks.gone)
    assert [a["status_code"] for a in log] == [200, 410]
    assert len(hooks.gone_receiver.received) == 2  # the refused and the bad "since" sent nothing


def test_a_read_only_operator_sees_no_write_keys_and_changes_nothing(
    appliance: RunningAppliance, hooks: Hooks, tmp_path: Path
) -> None:
    email = "hooks-viewer@console.test"
    appliance.create_operator(email, "--read-only")
    app = console_app(appliance, tmp_path, signed_in=False, first_view="webhooks")
    app.connection.api.store = signed_in_store(tmp_path / "viewer.json", appliance, email)
    app.connection.api.credential = app.connection.api.store.get("local")
    before = attempts(hooks.first, hooks.failing)

    async def scenario() -> None:
        async with app.run_test(size=(110, 32)) as pilot:
            screen = await endpoint_rows(app, pilot, hooks.paused, hooks.failing)
            await until(pilot, lambda: app.read_only, "the read-only permissions")
            for action in ("replay", "replay_failed", "enable"):
                assert screen.check_action(action, ()) is False, action
            await pilot.pause()
            footer = screen_text(app)
            assert "Replay" not in footer
            assert "Re-enable" not in footer
            assert "Refresh" in footer

            assert screen.table.move_to(hooks.paused["id"])
            await pilot.press("e", "P")
            await log_of(pilot, screen, hooks.failing)
            await pilot.press("tab", "p")
            await pilot.pause(0.3)
            assert not showing(app, ConfirmDialog)
            assert not showing(app, SinceDialog)

    asyncio.run(scenario())
    assert not enabled(hooks.second, hooks.paused)
    assert len(attempts(hooks.first, hooks.failing)) == len(before)


# --- the layout, from a fixed state --------------------------------------------------------------------

NOW = 1796364000.0  # 2026-12-04T06:00:00Z


def iso(seconds_ago: float) -> str:
    return dt.datetime.fromtimestamp(NOW - seconds_ago, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


FIXED_ENDPOINTS: list[dict[str, Any]] = [
    {
        "id": f"00000000-0000-0000-0000-00000000000{i}",
        "url": url,
        "tenant_slug": slug,
        "enabled": reason is None,
        "disabled_reason": reason,
        "failing_since": iso(failing) if failing else None,
        "success_rate": rate,
        "attempts_24h": tries,
        "event_types": events,
        "description": "",
    }
    for i, (slug, url, reason, failing, rate, tries, events) in enumerate(
        [
            ("acme", "https://hooks.acme.example/forge", None, 0, 1.0, 42, []),
            (
                "globex",
                "https://ci.globex.example/hooks/forge",
                None,
                7300,
                0.25,
                12,
                [EVENT, "project.created"],
            ),
            (
                "initech",
                "https://old.initech.example/hook",
                "every delivery failed for 5 days",
                432000,
                None,
                0,
                [],
            ),
        ]
    )
]
FIXED_ATTEMPTS: list[dict[str, Any]] = [
    {
        "id": f"10000000-0000-0000-0000-00000000000{i}",
        "delivery_id": "20000000-0000-0000-0000-000000000001",
        "message_id": "30000000-0000-0000-0000-000000000001",
        "event_type": EVENT,
        "attempt": 8 - i,
        "status_code": 500 if i % 4 else 200,
        "latency_ms": 30.0 + i,
        "error": "answered 500" if i % 4 else None,
        "response_excerpt": ANSWER.decode() if i % 4 else "thanks",
        "created_at": iso(300 * i),
    }
    for i in range(8)
]


def test_webhooks_layout(snap_compare: Any, tmp_path: Path) -> None:
    async def run_before(pilot: Pilot[None]) -> None:
        await settle(pilot)
        await pilot.press("0")
        screen = webhooks_screen(pilot.app)  # type: ignore[arg-type]
        screen.clock = lambda: NOW
        screen.show_endpoints({e["id"]: e for e in FIXED_ENDPOINTS})
        screen.table.move_to(FIXED_ENDPOINTS[1]["id"])
        await pilot.pause(0.6)  # the log's timer fires (its call fails: the API does not answer)
        screen.workers.cancel_all()
        screen.log_of = FIXED_ENDPOINTS[1]["id"]
        screen.attempts = {a["id"]: a for a in FIXED_ATTEMPTS}
        screen.deliveries.set_rows(attempt_row(a) for a in FIXED_ATTEMPTS)
        screen.deliveries.action_cursor(1)
        await pilot.pause()

    assert snap_compare(fixed_app(tmp_path), terminal_size=SIZE, run_before=run_before)
