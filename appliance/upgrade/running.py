"""The running appliance as an upgrade sees it through the supervisor's control socket: the venv its
programs start from, which programs run the appliance's code, their rolling replacement, and the checks
that the replacements serve."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from appliance.client.supervisor import SupervisorClient, SupervisorError, SupervisorUnavailable
from appliance.errors import OperationFailed

#: A rolling reload lasts as long as the new processes take to start and the old ones to drain.
RELOAD_TIMEOUT_S = 600.0
POLL_S = 0.2


@dataclass(frozen=True)
class Running:
    """What the supervisor runs: each program that runs the appliance's code (its command is the venv's
    Python), with the pids of its instances."""

    supervisor_pid: int
    programs: dict[str, set[int]]

    def describe(self) -> str:
        return ", ".join(f"{name} ({len(pids)})" for name, pids in self.programs.items()) or "no program"


def client_for(run_dir: Path) -> SupervisorClient:
    return SupervisorClient(run_dir / "control.sock", timeout=RELOAD_TIMEOUT_S)


def programs_venv(client: SupervisorClient) -> Path | None:
    """The venv the running programs start from (their command's `<venv>/bin/python`); None when the
    supervisor does not run or runs no program from a venv."""
    try:
        names = _names(client)
        for name in names:
            command = client.spec(name)["spec"].get("command") or []
            if command and Path(command[0]).parent.name == "bin":
                venv = Path(command[0]).parent.parent
                if (venv / "pyvenv.cfg").is_file():
                    return venv
    except SupervisorUnavailable:
        return None
    return None


def running(client: SupervisorClient, venv: Path) -> Running | None:
    """The programs started from `venv` and their live pids; None when the supervisor does not run."""
    try:
        status = client.status()
        wanted = [name for name in _names(client) if _runs_from(client, name, venv)]
    except SupervisorUnavailable:
        return None
    pids: dict[str, set[int]] = {name: set() for name in wanted}
    for row in status["programs"]:
        if row["name"] in pids and row["state"] == "running" and row["pid"]:
            pids[row["name"]].add(int(row["pid"]))
    return Running(int(status["supervisor"]["pid"]), pids)


def _names(client: SupervisorClient) -> list[str]:
    return list(dict.fromkeys(row["name"] for row in client.status()["programs"]))


def _runs_from(client: SupervisorClient, name: str, venv: Path) -> bool:
    command = client.spec(name)["spec"].get("command") or []
    # Compared as written, never resolved: the programs run through the stable path, whatever it leads to.
    return bool(command) and str(command[0]).startswith(f"{venv}/")


@dataclass(frozen=True)
class Rolled:
    """What a rolling restart replaced, and whether the services file added or removed programs."""

    programs: list[str]
    reshaped: bool


def roll(client: SupervisorClient, names: list[str], reread: bool) -> Rolled:
    """Replace the processes of `names` one instance at a time (each new one ready before an old one
    stops). With `reread`, the supervisor first re-reads its services file, which comes from the venv the
    stable path now leads to when it is the built-in one: the programs it changed are rolled by that, added
    ones started, removed ones stopped, and the others reloaded. OperationFailed when a new process did not
    become ready (the old ones then keep running)."""
    rolled: list[str] = []
    reshaped = False
    try:
        if reread:
            result = client.reload_config()
            rolled = [*result["changed"], *result["added"]]
            reshaped = bool(result["added"] or result["removed"])
        rest = [name for name in names if name not in rolled]
        if rest:
            rolled += client.reload(rest)
    except SupervisorError as exc:
        raise OperationFailed(f"the supervisor could not replace the processes: {exc}") from exc
    except SupervisorUnavailable as exc:
        raise OperationFailed(f"the supervisor does not answer: {exc}") from exc
    return Rolled(rolled, reshaped)


def check_replaced(client: SupervisorClient, venv: Path, before: Running) -> None:
    """Every instance of the programs that ran before runs a new process that says it is ready."""
    after = running(client, venv)
    if after is None:
        raise OperationFailed("the supervisor stopped answering after the restart")
    status = client.status()
    for name, old in before.programs.items():
        rows = [row for row in status["programs"] if row["name"] == name]
        for row in rows:
            if row["state"] != "running" or row.get("ready") is False:
                raise OperationFailed(
                    f"{name} instance {row['instance']} is {row['state']} after the restart: "
                    f"{row.get('status') or row.get('reason') or 'not ready'}"
                )
        left = old & after.programs.get(name, set())
        if left:
            raise OperationFailed(f"{name} still runs processes of the old version (pids {sorted(left)})")


def wait_serving(api_url: str, version: str, timeout: float) -> None:
    """Wait until /health/ready answers 200 and /api/v1 says `version`; OperationFailed with the last
    answer otherwise."""
    deadline = time.monotonic() + timeout
    last = "no answer yet"
    while time.monotonic() < deadline:
        ready, last = _get(f"{api_url}/health/ready")
        if ready is not None:
            _, info = _get(f"{api_url}/api/v1")
            try:
                served = json.loads(info).get("version")
            except ValueError:
                served = None
            if served == version:
                return
            last = f"/api/v1 says version {served}, not {version}"
        time.sleep(POLL_S)
    raise OperationFailed(f"the API is not serving {version} within {timeout:g} s (last answer: {last})")


def _get(url: str) -> tuple[int | None, str]:
    """(200, body) for a 200; (None, why) otherwise."""
    try:
        with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310  (our own http URL)
            return response.status, response.read().decode(errors="replace")
    except urllib.error.HTTPError as exc:
        return None, f"{url}: HTTP {exc.code} {exc.read().decode(errors='replace')[:200]}"
    except (urllib.error.URLError, OSError) as exc:
        return None, f"{url}: {getattr(exc, 'reason', exc)}"
