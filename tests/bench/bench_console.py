"""Benchmark of the ops console against a real appliance, each figure beside a baseline from the same run.

Run: .venv/bin/python tests/bench/bench_console.py [--tenants 10000] [--jobs 10000] [--launches 5] [--idle 30]
     [--data DIR]

1. Launch to a populated dashboard: `appliance console` in a real terminal (tmux, 80x24) until the screen
   shows the services running and the API up; baseline: a bare Textual app until its one line shows.
   Goal: under 1 s.
2. The tenants table with --tenants tenants (made through the tenants service, as the API makes them):
   - load: from switching to the view to every row in the table (the time the view stamps as its last row
     goes in, against the clock read before the key is pressed: Pilot's press returns only once the app is
     idle, which is later); baseline: the same pages fetched by the API client alone (no screen). Goal:
     under 1 s.
   - refresh: a second load updates the rows in place (rows changed: 0, cursor kept).
   - filter: each keystroke of a slug typed into `/`, from the key to the first frame drawn with the table
     filtered by it (p50, max; and until the app is idle again, which Pilot waits for); goal: under
     100 ms each.
3. The jobs table with --jobs jobs (enqueued through the jobs service across the tenants, due in a week so
   that the worker leaves them queued), in a console that has not listed the tenants yet:
   - load: from switching to the view (`8`) to every row in the table; baseline: the same pages fetched by
     the API client alone. Goal: under 1 s. Then the tenants' slugs in place of their short ids (the view
     reads the tenant list once, after the jobs).
   - refresh: a second load updates the rows in place (cursor kept).
   - filter: each keystroke of a tenant's slug typed into `/`, key to drawn frame (p50, max); goal: under
     100 ms each.
4. Idle CPU with the default 2 s refresh on the dashboard, over --idle seconds, of the console process (in
   tmux); baseline: a bare Textual app idle for the same time. Goal: under 3% of one core.

Exit status 0 unless the appliance or the console does not come up (then a clear error and status 2).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from appliance.client.api import ApiClient  # noqa: E402
from appliance.client.credentials import CredentialStore  # noqa: E402
from appliance.client.targets import Target  # noqa: E402
from console.collector import freeze_start_up  # noqa: E402
from tests.servers import free_port  # noqa: E402

PASSWORD = "correct-horse-battery-staple-42"
BARE_APP = (
    "from textual.app import App\n"
    "from textual.widgets import Static\n"
    "class Bare(App):\n"
    "    def compose(self):\n"
    "        yield Static('bare app ready')\n"
    "Bare().run()\n"
)


class BenchError(RuntimeError):
    pass


def appliance(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "appliance", *args], env=env, capture_output=True, text=True, timeout=300
    )
    if done.returncode != 0:
        raise BenchError(f"appliance {' '.join(args)} failed: {done.stderr.strip()}")
    return done.stdout + done.stderr


def start(data: Path, tenants: int, jobs: int) -> tuple[dict[str, str], str]:
    port = free_port()
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(data),
        "XDG_CONFIG_HOME": str(data / "config"),
        "APPLIANCE_DATA_DIR": str(data / "appliance"),
        "APPLIANCE_API__PORT": str(port),
        "APPLIANCE_LOGGING__ACCESS_LOG": "false",
        "APPLIANCE_RATE_LIMITS__ENABLED": "false",
    }
    url = f"http://127.0.0.1:{port}"
    if (data / "appliance").exists():  # --data of an earlier run: its tenants and operator are there
        appliance(env, "up")
        return env, url
    appliance(env, "init")
    appliance(env, "migrate")
    created = appliance(env, "admin", "create", "--email", "bench@console.test")
    found = re.search(r"one-time password: (\S+)", created)
    if not found:
        raise BenchError("no one-time password printed")
    make_tenants(env, tenants)
    make_jobs(env, jobs)
    appliance(env, "up")
    with httpx.Client(base_url=url, timeout=30) as http:
        first = http.post(
            "/api/v1/auth/login", json={"email": "bench@console.test", "password": found.group(1)}
        )
        token = first.json()["access_token"]
        http.post(
            "/api/v1/auth/password",
            json={"current_password": found.group(1), "new_password": PASSWORD},
            headers={"Authorization": f"Bearer {token}"},
        ).raise_for_status()
    store = CredentialStore(data / "config" / "forge-appliance" / "credentials.json")

    async def sign_in() -> None:
        client = ApiClient(url, store=store)
        await client.login("bench@console.test", PASSWORD)
        await client.aclose()

    asyncio.run(sign_in())
    return env, url


def make_tenants(env: dict[str, str], count: int) -> None:
    """Tenants through the service (audit records and all), in one transaction."""
    script = (
        "import sys\n"
        "from appliance.configfile import load_settings\n"
        "from appliance.db.session import Database\n"
        "from appliance.services.tenancy import tenants\n"
        "from appliance.services.access.actors import cli_operator\n"
        "db = Database(load_settings(None))\n"
        "plans = ('free', 'team', 'business', 'enterprise')\n"
        "with db.session_scope() as s:\n"
        f"    for i in range({count}):\n"
        "        tenants.create(\n"
        "            s, cli_operator(), slug=f'tenant-{i:05d}', name=f'Tenant {i}', plan=plans[i % 4]\n"
        "        )\n"
        "db.dispose()\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=900
    )
    if done.returncode != 0:
        raise BenchError(f"could not make the tenants: {done.stderr.strip()[-500:]}")


def make_jobs(env: dict[str, str], count: int) -> None:
    """Jobs through the jobs service (as a change that causes one writes it), spread over the tenants and
    three kinds, in one transaction; due in a week, so the worker leaves them queued while the bench runs."""
    script = (
        "from sqlalchemy import select\n"
        "from appliance.configfile import load_settings\n"
        "from appliance.db.session import Database\n"
        "from appliance.models import Tenant\n"
        "from appliance.services.jobs import durable\n"
        "import uuid\n"
        "db = Database(load_settings(None))\n"
        "kinds = [durable.Kind('webhooks.deliver', 8), durable.Kind('system.noop', 3),\n"
        "         durable.Kind('tenants.export', 3)]\n"
        "with db.session_scope() as s:\n"
        "    tenants = list(s.scalars(select(Tenant.id).order_by(Tenant.slug))) or [None]\n"
        f"    for i in range({count}):\n"
        "        payload = {'delivery_id': str(uuid.uuid4()), 'attempt_note': f'bench job {i}'}\n"
        "        durable.enqueue(\n"
        "            s, kinds[i % 3], payload, tenant_id=tenants[i % len(tenants)], delay=7 * 86400\n"
        "        )\n"
        "db.dispose()\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=900
    )
    if done.returncode != 0:
        raise BenchError(f"could not make the jobs: {done.stderr.strip()[-500:]}")


# -- a real terminal -----------------------------------------------------------------------------------------


def tmux(*args: str) -> str:
    return subprocess.run(["tmux", *args], capture_output=True, text=True, check=False).stdout


def launched(
    session: str, command: list[str], env: dict[str, str], ready: re.Pattern[str], timeout: float = 30
) -> float:
    """Seconds from starting `command` in a fresh 80x24 tmux window until the screen matches `ready`."""
    tmux("kill-session", "-t", session)
    started = time.perf_counter()
    subprocess.run(
        [
            "tmux",
            "new-session",
            "-d",
            "-s",
            session,
            "-x",
            "80",
            "-y",
            "24",
            "env",
            *[f"{k}={v}" for k, v in env.items()],
            *command,
        ],
        check=True,
    )
    while time.perf_counter() - started < timeout:
        if ready.search(tmux("capture-pane", "-p", "-t", session)):
            return time.perf_counter() - started
        time.sleep(0.01)
    screen = tmux("capture-pane", "-p", "-t", session)
    tmux("kill-session", "-t", session)
    raise BenchError(f"{command[0]} did not show {ready.pattern!r} in {timeout:g}s; the screen:\n{screen}")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def idle_cpu(session: str, seconds: float) -> float:
    """Percent of one core the process in `session`'s pane used over `seconds`."""
    pid = int(tmux("display-message", "-p", "-t", session, "#{pane_pid}").strip())
    time.sleep(3)  # past the first loads
    before, at = cpu_seconds(pid), time.perf_counter()
    time.sleep(seconds)
    return (cpu_seconds(pid) - before) / (time.perf_counter() - at) * 100


CONSOLE_READY = re.compile(r"API up.*\n(.*\n)*.*api\s+running", re.MULTILINE)
BARE_READY = re.compile("bare app ready")


def bench_launch(env: dict[str, str], launches: int, idle: float) -> dict[str, float]:
    console = [sys.executable, "-m", "appliance", "console"]
    bare = [sys.executable, "-c", BARE_APP]
    console_times, bare_times = [], []
    for _ in range(launches):
        bare_times.append(launched("bench-bare", bare, env, BARE_READY))
        console_times.append(launched("bench-console", console, env, CONSOLE_READY))
    results = {
        "launch_console_s": statistics.median(console_times),
        "launch_bare_s": statistics.median(bare_times),
    }
    results["idle_console_pct"] = idle_cpu("bench-console", idle)
    results["idle_bare_pct"] = idle_cpu("bench-bare", idle)
    tmux("kill-session", "-t", "bench-console")
    tmux("kill-session", "-t", "bench-bare")
    return results


# -- the tenants table, in process ---------------------------------------------------------------------------


async def typed(pilot: Any, table: Any, text: str) -> tuple[list[float], list[float]]:
    """For each keystroke of `text` in the filter box: seconds from the key to the first frame drawn after
    the table took it (what the operator waits for), and until the app was idle again (Pilot's press waits
    for that: its own sleeps make up most of it)."""
    app = pilot.app
    frames: list[float] = []
    filtered: list[float] = []
    display, filter_rows = app._display, table.filter

    def drawn(screen: Any, update: Any) -> None:
        if update is not None:
            frames.append(time.perf_counter())
        display(screen, update)

    def stamped(needle: str) -> None:
        filter_rows(needle)
        filtered.append(time.perf_counter())

    app._display, table.filter = drawn, stamped
    answered, idle = [], []
    try:
        for key in text:
            frames.clear()
            filtered.clear()
            started = time.perf_counter()
            await pilot.press("minus" if key == "-" else key)
            idle.append(time.perf_counter() - started)
            after = [frame for frame in frames if filtered and frame >= filtered[-1]]
            if not after:
                raise BenchError(f"the key {key!r} drew no frame of a filtered table")
            answered.append(after[0] - started)
    finally:
        del app._display, table.filter  # the methods of their classes again
    return answered, idle


async def alone(pages: AsyncIterator[list[Any]], count: int, what: str) -> float:
    """Seconds the API client alone takes over every page of a list (a load's same-run baseline)."""
    fetched, started = 0, time.perf_counter()
    async for page in pages:
        fetched += len(page)
    took = time.perf_counter() - started
    if fetched < count:
        raise BenchError(f"the API listed {fetched} {what}, not {count}")
    return took


async def shown(pilot: Any, key: str, kind: type[Any]) -> tuple[Any, float]:
    """Press `key` and wait for the view (a `kind`) to load: the view, and when the key was pressed. The
    load's time is the view's own stamp as its last row went in, less that."""
    pressed = time.time()
    await pilot.press(key)
    screen = pilot.app.screen
    assert isinstance(screen, kind)
    while screen.loaded_at is None:
        await asyncio.sleep(0.005)
    return screen, pressed


async def reloaded(pilot: Any, screen: Any) -> tuple[float, float]:
    """The cursor moved down, then a second load: its seconds, and 1.0 when the cursor stayed put."""
    await pilot.press("down", "down", "down")
    cursor, first = screen.table.cursor_key, screen.loaded_at
    started = time.perf_counter()
    screen.action_reload_rows()
    while screen.loaded_at == first:
        await asyncio.sleep(0.005)
    return time.perf_counter() - started, float(screen.table.cursor_key == cursor)


async def filter_keys(pilot: Any, table: Any, text: str, prefix: str) -> dict[str, float]:
    """`text` typed into the view's `/` box (then cleared): the keystrokes' figures, named `prefix`_..."""
    await pilot.press("slash")
    keystrokes, idle = await typed(pilot, table, text)
    figures = {
        f"{prefix}_key_p50_ms": statistics.median(keystrokes) * 1000,
        f"{prefix}_key_max_ms": max(keystrokes) * 1000,
        f"{prefix}_idle_p50_ms": statistics.median(idle) * 1000,
        f"{prefix}_rows_left": float(len(table.shown)),
    }
    await pilot.press("escape")
    return figures


async def bench_tenants(url: str, store_path: Path, count: int) -> dict[str, float]:
    from console.app import ConsoleApp
    from console.connection import Connection
    from console.screens.tenants import TenantsScreen, tenant_row

    store = CredentialStore(store_path)
    client = ApiClient(url, store=store)
    results: dict[str, float] = {"fetch_pages_s": await alone(client.tenant_pages(), count, "tenants")}
    await client.aclose()
    app = ConsoleApp(Connection.open(Target("local", url, None), store))
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause(0.5)
        screen, pressed = await shown(pilot, "2", TenantsScreen)
        results["table_load_s"] = screen.loaded_at - pressed
        results["rows"] = len(screen.table.rows)
        results["table_refresh_s"], results["refresh_cursor_kept"] = await reloaded(pilot, screen)
        summary = str(screen.query_one("#tenant-summary").render())
        results["refresh_rows_changed"] = float(re.search(r"(\d+) changed", summary).group(1))  # type: ignore[union-attr]
        results |= await filter_keys(pilot, screen.table, "tenant-09999", "filter")
        screen.table.set_rows([])
        results |= await filter_keys(pilot, screen.table, "tenant-09999", "empty")
        screen.table.set_rows(tenant_row(t) for t in app.tenants.values())
        started = time.perf_counter()
        for _ in range(20):
            screen.table.filter("tenant-0")
            screen.table.filter("")
        results["filter_call_ms"] = (time.perf_counter() - started) / 40 * 1000
    return results


async def bench_jobs(url: str, store_path: Path, count: int) -> dict[str, float]:
    from console.app import ConsoleApp
    from console.connection import Connection
    from console.screens.jobs import JobsScreen

    store = CredentialStore(store_path)
    client = ApiClient(url, store=store)
    baseline = await alone(client.platform_job_pages(), count, "jobs")
    results: dict[str, float] = {"jobs_fetch_pages_s": baseline}
    await client.aclose()
    app = ConsoleApp(Connection.open(Target("local", url, None), store))
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause(0.5)
        screen, pressed = await shown(pilot, "8", JobsScreen)
        results["jobs_load_s"] = screen.loaded_at - pressed
        results["jobs_rows"] = len(screen.table.rows)
        last = screen.table.shown[-1]
        while not screen.table.rows[last][3].startswith("tenant-"):
            if time.time() - pressed > 60:
                raise BenchError(f"the jobs view showed no tenant's slug in 60 s: {screen.table.rows[last]}")
            await asyncio.sleep(0.005)
        results["jobs_slugs_s"] = time.time() - pressed
        results["jobs_refresh_s"], results["jobs_cursor_kept"] = await reloaded(pilot, screen)
        results |= await filter_keys(pilot, screen.table, screen.table.rows[last][3], "jobs_filter")
    return results


def report(launch: dict[str, float], tenants: dict[str, float], jobs: dict[str, float]) -> None:
    ratio = launch["launch_console_s"] / launch["launch_bare_s"]
    lines = [
        f"launch to a populated dashboard: {launch['launch_console_s']:.2f} s "
        f"(bare Textual app {launch['launch_bare_s']:.2f} s, {ratio:.1f}x)",
        f"{int(tenants['rows'])} tenants: table loaded in {tenants['table_load_s']:.2f} s "
        f"(the API client alone: {tenants['fetch_pages_s']:.2f} s)",
        f"  refresh in place: {tenants['table_refresh_s']:.2f} s, rows changed "
        f"{int(tenants['refresh_rows_changed'])}, cursor kept: {bool(tenants['refresh_cursor_kept'])}",
        f"  filter keystroke, key to drawn frame: p50 {tenants['filter_key_p50_ms']:.1f} ms, "
        f"max {tenants['filter_key_max_ms']:.1f} ms "
        f"({int(tenants['filter_rows_left'])} rows left); the same keys on an empty table: p50 "
        f"{tenants['empty_key_p50_ms']:.1f} ms, max {tenants['empty_key_max_ms']:.1f} ms; filter() alone "
        f"{tenants['filter_call_ms']:.2f} ms; until idle (Pilot): p50 {tenants['filter_idle_p50_ms']:.1f} ms",
        f"idle CPU at 2 s refresh: console {launch['idle_console_pct']:.2f}% of one core "
        f"(bare Textual app {launch['idle_bare_pct']:.2f}%)",
    ]
    if jobs:
        lines[4:4] = [
            f"{int(jobs['jobs_rows'])} jobs: table loaded in {jobs['jobs_load_s']:.2f} s "
            f"(the API client alone: {jobs['jobs_fetch_pages_s']:.2f} s); the tenants' slugs in place at "
            f"{jobs['jobs_slugs_s']:.2f} s",
            f"  refresh in place: {jobs['jobs_refresh_s']:.2f} s, "
            f"cursor kept: {bool(jobs['jobs_cursor_kept'])}",
            f"  filter keystroke, key to drawn frame: p50 {jobs['jobs_filter_key_p50_ms']:.1f} ms, "
            f"max {jobs['jobs_filter_key_max_ms']:.1f} ms ({int(jobs['jobs_filter_rows_left'])} rows left); "
            f"until idle (Pilot): p50 {jobs['jobs_filter_idle_p50_ms']:.1f} ms",
        ]
    print("\n".join(lines))


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tenants", type=int, default=10_000)
    parser.add_argument("--jobs", type=int, default=10_000, help="jobs for the jobs view (0: skip it)")
    parser.add_argument("--launches", type=int, default=5)
    parser.add_argument("--idle", type=float, default=30.0)
    parser.add_argument("--data", type=Path, help="keep the appliance here, and reuse it when it exists")
    args = parser.parse_args()
    if not shutil.which("tmux"):
        print("bench_console: tmux is needed (apt-get install tmux)", file=sys.stderr)
        return 2
    data = args.data or Path(tempfile.mkdtemp(prefix="fa-bench-console-", dir="/tmp"))
    env: dict[str, str] = {}
    try:
        print(f"making {args.tenants} tenants, {args.jobs} jobs and starting the appliance…", flush=True)
        env, url = start(data, args.tenants, args.jobs)
        store_path = data / "config" / "forge-appliance" / "credentials.json"
        freeze_start_up()  # as `appliance console` does before its app starts
        tenants = asyncio.run(bench_tenants(url, store_path, args.tenants))
        jobs = asyncio.run(bench_jobs(url, store_path, args.jobs)) if args.jobs else {}
        launch = bench_launch(env, args.launches, args.idle)
    except BenchError as exc:
        print(f"bench_console: {exc}", file=sys.stderr)
        return 2
    finally:
        if env:
            subprocess.run(
                [sys.executable, "-m", "appliance", "down"], env=env, capture_output=True, check=False
            )
        if args.data is None:
            shutil.rmtree(data, ignore_errors=True)
    report(launch, tenants, jobs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
