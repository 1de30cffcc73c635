"""`appliance up`, `down` and `status`: the supervisor in the background, for a user without systemd.

`up` checks what would make the start fail at once (signing key, a port in use) before it starts anything,
starts `appliance supervise` detached from the terminal, checks the database schema (pending migrations)
while the supervisor starts the programs, and returns once /health/ready answers 200; if the schema is behind
or a program fails on the way, it stops what it started and says why, with the end of the log.

`status` and `down` need only the control socket and one HTTP request: this module imports nothing heavy
(no SQLAlchemy, no Alembic) at import time; `up` imports what its checks need when it runs them (tests/
test_lifecycle.py checks both).
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from appliance.cli.processes.supervise import control_socket, prepare_directories, supervisor_command
from appliance.client.supervisor import SupervisorClient, SupervisorUnavailable
from appliance.errors import ApplianceError, OperationFailed

if TYPE_CHECKING:
    from appliance.config import Settings

POLL_S = 0.05
TAIL_SHOWN = 3  # stderr lines of a failing program shown under the status table
STOP_TIMEOUT_S = 120.0


def start(settings: Settings, config_path: Path | None, progress: Callable[[str], None]) -> str:
    """Start the appliance in the background; return the API's URL once it is ready."""
    client = SupervisorClient(control_socket(settings))
    try:
        client.status()
    except SupervisorUnavailable:
        pass
    else:
        progress("the appliance is already running; waiting until it is ready")
        _wait_ready(settings, client, None, progress)
        return settings.api_url

    from appliance.cli.processes.serve import check_port_free
    from appliance.keys import signing_key

    signing_key(settings)
    check_port_free(settings.api.host, settings.api.port)

    prepare_directories(settings.run_dir, settings.log_dir)
    out_path = settings.log_dir / "supervisor.out"
    argv, env = supervisor_command(settings, config_path, flags=("--quiet",))
    with out_path.open("ab") as out:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=out,
            env=env,
            start_new_session=True,  # no terminal signal (Ctrl-C, hang-up) reaches it
            close_fds=True,
        )
    progress(f"starting the appliance (supervisor pid {proc.pid}, logs in {settings.log_dir})")
    try:
        # While the supervisor starts the programs (a second or more of imports each): the schema check
        # costs this process the import of SQLAlchemy and Alembic, which is why it is not done before.
        _check_schema(settings)
        _wait_ready(settings, client, proc, progress)
    except ApplianceError:  # not on Ctrl-C: the appliance goes on starting, as it always did
        _stop_started(client, proc)
        raise
    return settings.api_url


def _check_schema(settings: Settings) -> None:
    """Refuse to go on with migrations pending (the programs would never be ready)."""
    from appliance.db import migrate

    waiting = migrate.pending(settings)
    if waiting:
        raise OperationFailed(f"{len(waiting)} database migration(s) pending: run `appliance migrate` first")


def _wait_ready(
    settings: Settings,
    client: SupervisorClient,
    proc: subprocess.Popen[bytes] | None,
    progress: Callable[[str], None],
) -> None:
    deadline = time.monotonic() + settings.supervisor.ready_timeout
    last_reason = "no answer yet"
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            tail = _tail(settings.log_dir / "supervisor.out")
            raise OperationFailed(f"the supervisor exited with status {proc.returncode}: {tail}")
        try:
            for program in client.status()["programs"]:
                if program["state"] == "fatal":
                    log = settings.log_dir / f"{program['name']}.log"
                    raise OperationFailed(
                        f"program {program['name']} cannot run: {program.get('reason') or 'unknown reason'}"
                        f" (see {log}): {_tail(log)}"
                    )
                if program["crash_looping"]:  # 5 quick failures in a row: waiting longer tells nothing new
                    said = " | ".join(program.get("stderr_tail") or []) or "(nothing on stderr)"
                    raise OperationFailed(
                        f"program {program['name']} is crash-looping ({program.get('reason')}): {said} "
                        f"(see {settings.log_dir / (program['name'] + '.log')})"
                    )
        except SupervisorUnavailable:
            pass  # the supervisor is still opening its socket
        ok, last_reason = ready(settings)
        if ok:
            return
        time.sleep(POLL_S)
    raise OperationFailed(
        f"the appliance did not become ready within {settings.supervisor.ready_timeout:g} s "
        f"(last answer: {last_reason}); see the logs in {settings.log_dir}"
    )


def ready(settings: Settings, timeout: float = 2.0) -> tuple[bool, str]:
    """Whether /health/ready answers 200, and the reason when it does not."""
    url = f"{settings.api_url}/health/ready"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310  (our own http URL)
            return response.status == 200, f"HTTP {response.status}"
    except urllib.error.HTTPError as exc:
        body = exc.read().decode(errors="replace")[:300]
        return False, f"HTTP {exc.code} {body}"
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        return False, f"no answer on {url} ({reason})"


def _stop_started(client: SupervisorClient, proc: subprocess.Popen[bytes]) -> None:
    try:
        client.shutdown()
    except SupervisorUnavailable:
        proc.terminate()
    try:
        proc.wait(timeout=STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        proc.kill()


def stop(settings: Settings) -> str:
    """Stop the supervisor and every program gracefully; wait until they are gone."""
    client = SupervisorClient(control_socket(settings))
    try:
        pid = int(client.status()["supervisor"]["pid"])
        client.shutdown()
    except SupervisorUnavailable:
        return "the appliance is not running"
    deadline = time.monotonic() + STOP_TIMEOUT_S
    while _alive(pid):
        if time.monotonic() > deadline:
            raise OperationFailed(f"the supervisor (pid {pid}) did not stop within {STOP_TIMEOUT_S:g} s")
        time.sleep(POLL_S)
    return "the appliance stopped"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie (our own child, not yet reaped) counts as gone.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0] != "Z"
    except (OSError, IndexError):
        return False


def describe(settings: Settings) -> dict[str, Any]:
    """The supervisor's view of every program and whether the API is ready."""
    client = SupervisorClient(control_socket(settings))
    try:
        status = client.status()
    except SupervisorUnavailable:
        return {"running": False, "programs": [], "api_url": settings.api_url, "ready": "not running"}
    now = time.time()
    programs = []
    counts = Counter(p["name"] for p in status["programs"])
    for program in status["programs"]:
        entry = dict(program)
        started = program.get("started_at")
        if started and program["state"] == "running":
            entry["uptime"] = str(dt.timedelta(seconds=int(now - float(started))))
        else:
            entry["uptime"] = "-"
        if counts[program["name"]] > 1:
            entry["name"] = f"{program['name']}:{program['instance']}"
        entry["shown_state"] = shown_state(entry)
        entry["problem"] = problem(entry)
        programs.append(entry)
    ok, reason = ready(settings)
    return {
        "running": True,
        "supervisor": status.get("supervisor", {}),
        "programs": programs,
        "api_url": settings.api_url,
        "ready": "ready" if ok else f"not ready: {reason}",
    }


def shown_state(program: dict[str, Any]) -> str:
    """The word for a program's state in the status table: crash-looping and not ready come first."""
    if program.get("crash_looping"):
        return "crash-looping"
    if program["state"] == "running" and program.get("ready") is False:
        return "not ready"
    return str(program["state"])


def problem(program: dict[str, Any]) -> list[str]:
    """What is wrong with a program, in lines for the admin (none when nothing is): why it is not running
    and the last lines it wrote to stderr, or what it says keeps it from working."""
    name, state, reason = program["name"], program["state"], program.get("reason") or ""
    tail = [f"    {line}" for line in program.get("stderr_tail") or []][-TAIL_SHOWN:]
    if program.get("crash_looping") or state in ("backoff", "exited", "fatal") or tail:
        if state in ("starting", "running"):  # trying again after a crash: say how the last one ended
            reason = f"the last process {_exit_words(program.get('exit_status'))}"
        return [f"{name}: {shown_state(program)}: {reason or 'no reason given'}", *tail]
    if state == "running" and program.get("ready") is False:
        return [f"{name}: {program.get('status') or 'not ready (the process says so)'}"]
    if state in ("starting", "stopped") and reason:  # "waiting for db", "not ready within 30s"
        return [f"{name}: {state}: {reason}"]
    return []


def _exit_words(status: int | None) -> str:
    if status is None:
        return "exited"
    return f"exited with code {status}" if status >= 0 else f"was killed by signal {-status}"


def status_table(report: dict[str, Any]) -> str:
    """`appliance status`: one row per program instance, then what is wrong and the API's readiness."""
    if not report["running"]:
        return "the appliance is not running"
    rows = [("PROGRAM", "STATE", "PID", "UPTIME", "RESTARTS")]
    for prog in report["programs"]:
        pid = str(prog.get("pid") or "-")
        rows.append((prog["name"], prog["shown_state"], pid, prog["uptime"], str(prog["restarts"])))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows]
    problems = [line for prog in report["programs"] for line in prog["problem"]]
    if problems:
        lines += ["", *problems]
    return "\n".join([*lines, "", f"api: {report['api_url']} ({report['ready']})"])


def _tail(path: Path, lines: int = 5) -> str:
    try:
        content = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return "(no log)"
    return " | ".join(content[-lines:]) or "(empty log)"
