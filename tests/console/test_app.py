"""The console as a whole against a real appliance: signing in, the dashboard, the two link indicators,
read-only mode, the keys screen and the command palette."""

from __future__ import annotations

import asyncio
import re
import stat
from pathlib import Path

import httpx
from textual.command import CommandPalette
from textual.widgets import Input, Label

from appliance.client.api import ApiClient
from appliance.client.credentials import CredentialStore
from appliance.client.targets import Target
from console import commands
from console.app import ConsoleApp
from console.connection import Connection
from console.screens.dashboard import DashboardScreen
from console.screens.keys import KeysScreen
from console.screens.login import LoginScreen
from console.screens.password import PasswordScreen
from console.screens.tenants import TenantsScreen
from console.widgets.row_table import RowTable
from console.widgets.status_bar import StatusBar
from tests.console.conftest import RunningAppliance, console_app, run_appliance
from tests.console.pilot import showing, tenant_row, until
from tests.identity import STRONG_PASSWORD
from tests.servers import free_port


def status_line(app: object) -> str:
    screen = app.screen  # type: ignore[attr-defined]
    return str(screen.query_one(StatusBar).render())


def test_dashboard_shows_services_health_and_both_links(appliance: RunningAppliance, tmp_path: Path) -> None:
    app = console_app(appliance, tmp_path, refresh=0.5)

    async def scenario() -> None:
        async with app.run_test(size=(80, 24)) as pilot:
            assert isinstance(app.screen, DashboardScreen)
            table = app.screen.query_one(RowTable)
            await until(pilot, lambda: {"api", "worker"} <= set(table.rows), "the api and worker rows")
            await until(pilot, lambda: table.rows["api"][1] == "running", "the api running")
            assert table.rows["api"][2].isdigit(), "a pid"
            assert table.rows["api"][6] != "-", "its memory"
            await until(pilot, lambda: len(app.state.latency) >= 2, "two health polls")
            line = status_line(app)
            assert "API up" in line
            assert "supervisor up" in line
            assert "database" in str(app.screen.query_one("#health-line").render())
            await until(pilot, lambda: len(app.state.request_rate) >= 1, "a request rate from /metrics")

    asyncio.run(scenario())


def test_api_down_supervisor_up_is_said_and_nothing_freezes(
    appliance: RunningAppliance, tmp_path: Path
) -> None:
    dead = appliance.target(api_url=f"http://127.0.0.1:{free_port()}")
    app = console_app(appliance, tmp_path, signed_in=False, target=dead, refresh=0.5, sign_in=False)

    async def scenario() -> None:
        async with app.run_test(size=(80, 24)) as pilot:
            await until(
                pilot, lambda: app.state.api.up is False and app.state.supervisor.up, "both links known"
            )
            line = status_line(app)
            assert "API DOWN" in line
            assert "supervisor up" in line
            assert "cannot reach the API" in app.state.api.error
            table = app.screen.query_one(RowTable)
            await until(pilot, lambda: "api" in table.rows, "the services from the supervisor")
            await pilot.press("2")  # the tenants view says why it is empty instead of hanging
            assert isinstance(app.screen, TenantsScreen)
            assert "Sign in" in str(app.screen.query_one("#tenant-summary").render())
            await pilot.press("1")
            failures = app.state.api.failures
            await pilot.pause(1.5)
            assert app.state.api.failures <= failures + 2, "a dead API is retried with backoff, not hammered"

    asyncio.run(scenario())


def test_sign_in_wrong_then_right_keeps_the_token_private(
    appliance: RunningAppliance, tmp_path: Path
) -> None:
    app = console_app(appliance, tmp_path, signed_in=False)
    credentials = tmp_path / "credentials.json"

    async def scenario() -> None:
        async with app.run_test(size=(80, 24)) as pilot:
            await until(pilot, lambda: showing(app, LoginScreen), "the sign-in dialog")
            app.screen.query_one("#email", Input).value = appliance.operator_email
            app.screen.query_one("#password", Input).value = "not the password"
            await pilot.click("#sign-in")
            error = app.screen.query_one("#login-error", Label)
            await until(pilot, lambda: "Not signed in" in str(error.render()), "the refusal")
            assert isinstance(app.screen, LoginScreen)
            assert not credentials.exists()
            app.screen.query_one("#password", Input).value = STRONG_PASSWORD
            await pilot.click("#sign-in")
            await until(pilot, lambda: not isinstance(app.screen, LoginScreen), "the dialog to close")
            await until(pilot, lambda: appliance.operator_email in status_line(app), "who is signed in")
            assert "READ-ONLY" not in status_line(app)

    asyncio.run(scenario())
    mode = stat.S_IMODE(credentials.stat().st_mode)
    assert mode == 0o600, oct(mode)
    assert STRONG_PASSWORD not in credentials.read_text()


def test_saved_session_that_was_ended_asks_to_sign_in_again(
    appliance: RunningAppliance, tmp_path: Path
) -> None:
    app = console_app(appliance, tmp_path)
    credential = app.connection.api.credential
    assert credential is not None
    ended = httpx.post(
        f"{appliance.api_url}/api/v1/auth/logout",
        headers={"Authorization": f"Bearer {credential.access_token}"},
        timeout=10,
    )
    assert ended.status_code == 204, ended.text

    async def scenario() -> None:
        async with app.run_test(size=(80, 24)) as pilot:
            await until(pilot, lambda: showing(app, LoginScreen), "the sign-in dialog")
            reason = str(app.screen.query_one("#login-reason").render())
            assert "ended" in reason, reason

    asyncio.run(scenario())


def test_read_only_is_shown_and_hides_write_keys(appliance: RunningAppliance, tmp_path: Path) -> None:
    app = console_app(appliance, tmp_path, read_only=True, first_view="tenants")

    async def scenario() -> None:
        async with app.run_test(size=(100, 30)) as pilot:
            await until(pilot, lambda: "READ-ONLY" in status_line(app), "the read-only badge")
            screen = app.screen
            assert isinstance(screen, TenantsScreen)
            assert not app.allows("tenants", "suspend")
            assert screen.check_action("suspend", ()) is False
            assert screen.check_action("filter", ()) is True
            suspend = next(c for c in commands.COMMANDS if c.screen == "tenants" and c.action == "suspend")
            app.run_command(suspend)  # as the palette runs it
            await until(
                pilot,
                lambda: any("Read-only" in n.message for n in app._notifications),
                "the refusal of a write action from the palette",
            )
            await pilot.press("question_mark")
            await until(pilot, lambda: showing(app, KeysScreen), "the keys screen")
            keys = app.screen
            assert isinstance(keys, KeysScreen)
            rows = {(view, action): note for view, _key, action, note in keys.rows}
            assert rows[("tenants", "Suspend")].endswith("(off: read-only)")
            assert not rows[("tenants", "Filter")].endswith("(off: read-only)")

    asyncio.run(scenario())


def test_read_only_operator_opens_read_only(appliance: RunningAppliance, tmp_path: Path) -> None:
    email = "viewer@console.test"
    appliance.create_operator(email, "--read-only")
    app = console_app(appliance, tmp_path, signed_in=False)
    from tests.console.conftest import signed_in_store

    app.connection.api.store = signed_in_store(tmp_path / "viewer.json", appliance, email)
    app.connection.api.credential = app.connection.api.store.get("local")

    async def scenario() -> None:
        async with app.run_test(size=(100, 30)) as pilot:
            await until(pilot, lambda: app.permissions is not None, "the permissions")
            assert app.read_only
            assert "READ-ONLY" in status_line(app)

    asyncio.run(scenario())


def test_palette_lists_actions_and_jumps_to_a_tenant(appliance: RunningAppliance, tmp_path: Path) -> None:
    tenant = appliance.create_tenant("palette-jump")
    app = console_app(appliance, tmp_path, first_view="tenants")

    async def scenario() -> None:
        async with app.run_test(size=(100, 30)) as pilot:
            _screen, table = await tenant_row(pilot, tenant["id"])
            await pilot.press("1")
            await pilot.press("ctrl+p")
            await until(pilot, lambda: showing(app, CommandPalette), "the palette")
            await pilot.press(*"palette-jump")
            await pilot.pause(0.5)
            await pilot.press("enter")
            await until(pilot, lambda: showing(app, TenantsScreen), "the tenants view")
            await until(pilot, lambda: table.cursor_key == tenant["id"], "the cursor on the tenant")

    asyncio.run(scenario())


def test_quit_is_immediate_even_while_a_call_hangs(appliance: RunningAppliance, tmp_path: Path) -> None:
    import socket

    hung = socket.socket()
    hung.bind(("127.0.0.1", 0))
    hung.listen(8)  # accepts connections, never answers
    target = Target("hung", f"http://127.0.0.1:{hung.getsockname()[1]}", appliance.control_socket)
    app = console_app(appliance, tmp_path, signed_in=False, target=target, sign_in=False)

    async def scenario() -> None:
        async with app.run_test(size=(80, 24)) as pilot:
            await until(pilot, lambda: "api" in app._busy, "a call in flight")
            loop = asyncio.get_running_loop()
            started = loop.time()
            await pilot.press("q")
            await until(pilot, lambda: app._exit_renderables is not None or not app.is_running, "the exit", 5)
            assert loop.time() - started < 5

    try:
        asyncio.run(scenario())
    finally:
        hung.close()


def test_first_sign_in_with_a_one_time_password_asks_for_a_new_one(
    appliance: RunningAppliance, tmp_path: Path
) -> None:
    email = "newcomer@console.test"
    done = run_appliance("admin", "create", "--email", email, env=appliance.env)
    assert done.returncode == 0, done.stderr
    found = re.search(r"one-time password: (\S+)", done.stdout)
    assert found
    app = console_app(appliance, tmp_path, signed_in=False)
    chosen = "a long and fresh passphrase 7"

    async def scenario() -> None:
        async with app.run_test(size=(80, 24)) as pilot:
            await until(pilot, lambda: showing(app, LoginScreen), "the sign-in dialog")
            app.screen.query_one("#email", Input).value = email
            app.screen.query_one("#password", Input).value = found.group(1)
            await pilot.click("#sign-in")
            await until(pilot, lambda: showing(app, PasswordScreen), "the new-password dialog")
            # No putting it off: the API answers nothing else until the password is changed.
            assert not app.screen.query("#later")
            await pilot.press("escape")
            await pilot.pause()
            assert isinstance(app.screen, PasswordScreen)
            error = app.screen.query_one("#password-error", Label)
            assert "must be changed" in str(error.render())
            app.screen.query_one("#new", Input).value = chosen
            app.screen.query_one("#again", Input).value = "something else entirely 8"
            await pilot.click("#change")
            await until(pilot, lambda: "differ" in str(error.render()), "the mismatch")
            app.screen.query_one("#again", Input).value = chosen
            await pilot.pause(0.3)  # a button ignores a second click within its 0.2 s press effect
            await pilot.click("#change")
            await until(pilot, lambda: not isinstance(app.screen, PasswordScreen), "the dialog to close")

    asyncio.run(scenario())
    again = httpx.post(
        f"{appliance.api_url}/api/v1/auth/login", json={"email": email, "password": chosen}, timeout=30
    )
    assert again.status_code == 200, again.text
    assert again.json()["must_change_password"] is False


def test_a_saved_session_that_must_change_its_password_asks_to_sign_in(
    appliance: RunningAppliance, tmp_path: Path
) -> None:
    """The dialog needs the current password, which a saved session does not keep: sign in again."""
    email = "returning@console.test"
    done = run_appliance("admin", "create", "--email", email, env=appliance.env)
    assert done.returncode == 0, done.stderr
    found = re.search(r"one-time password: (\S+)", done.stdout)
    assert found
    store = CredentialStore(tmp_path / "credentials.json")

    async def saved() -> None:
        client = ApiClient(appliance.api_url, store=store)
        await client.login(email, found.group(1))
        await client.aclose()

    asyncio.run(saved())
    app = ConsoleApp(Connection.open(appliance.target(), store))

    async def scenario() -> None:
        async with app.run_test(size=(80, 24)) as pilot:
            await until(pilot, lambda: showing(app, LoginScreen), "the sign-in dialog")
            reason = str(app.screen.query_one("#login-reason", Label).render())
            assert "must change its password" in reason
            assert app.screen.query_one("#email", Input).value == email

    asyncio.run(scenario())


def test_the_new_password_dialog_offers_signing_out_instead(
    appliance: RunningAppliance, tmp_path: Path
) -> None:
    """Who does not want to choose a password now signs out: no session is kept that can do nothing."""
    email = "undecided@console.test"
    done = run_appliance("admin", "create", "--email", email, env=appliance.env)
    assert done.returncode == 0, done.stderr
    found = re.search(r"one-time password: (\S+)", done.stdout)
    assert found
    app = console_app(appliance, tmp_path, signed_in=False)

    async def scenario() -> None:
        async with app.run_test(size=(80, 24)) as pilot:
            await until(pilot, lambda: showing(app, LoginScreen), "the sign-in dialog")
            app.screen.query_one("#email", Input).value = email
            app.screen.query_one("#password", Input).value = found.group(1)
            await pilot.click("#sign-in")
            await until(pilot, lambda: showing(app, PasswordScreen), "the new-password dialog")
            # Clicked once laid out: a click on a dialog still being arranged lands on nothing.
            await until(pilot, lambda: app.screen.query_one("#sign-out").region.area > 0, "its buttons")
            await pilot.click("#sign-out")
            await until(pilot, lambda: app.connection.api.credential is None, "the session forgotten")
            assert not isinstance(app.screen, PasswordScreen)
            assert app.permissions is None

    asyncio.run(scenario())
    assert (
        not (tmp_path / "credentials.json").exists()
        or email not in (tmp_path / "credentials.json").read_text()
    )
