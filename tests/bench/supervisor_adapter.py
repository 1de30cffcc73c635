"""The appliance supervisor as an adapter of the shared supervisor benchmark (/work/shared/bench/supervisors).

Run it beside the anchors (the harness is read-only; this file plugs in from outside):

    cd /work/shared/bench/supervisors
    /tmp/anchors-venv/bin/python bench.py --out /tmp/supbench-results \
        --adapter-file /work/main/tests/bench/supervisor_adapter.py:ApplianceAdapter \
        --supervisors pm2,supervisord,circus,s6,appliance

The harness may run under any Python 3.11 (the anchors' venv finds supervisord and circusd next to it): the
supervisor itself runs under the repository's venv (`--opt appliance_python=...` to override), and its
status comes through `appliance.client.supervisor`, which is standard library only.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:  # the harness loads this file by path; make `appliance` importable
    sys.path.insert(0, str(REPO))

from appliance.client.supervisor import SupervisorClient  # noqa: E402

if TYPE_CHECKING:
    # The harness is untyped and lives outside the repository: these stand-ins describe the part of
    # `adapters.base` this adapter uses, so that mypy --strict can check the adapter itself.
    RUNNING, STARTING, BACKOFF, FATAL, STOPPED, UNKNOWN = (
        "running",
        "starting",
        "backoff",
        "fatal",
        "stopped",
        "unknown",
    )

    class Program:
        name: str
        argv: list[str]
        port: int | None
        env: dict[str, str]

    class Status:
        def __init__(self, state: str, raw: str = "", restarts: int | None = None) -> None: ...

    class Adapter:
        opts: dict[str, Any]
        workdir: Path | None
        programs: list[Program]

        def spawn(self, argv: list[str], log_name: str) -> subprocess.Popen[bytes]: ...

else:  # the harness puts its own folder first on sys.path
    from adapters.base import BACKOFF, FATAL, RUNNING, STARTING, STOPPED, UNKNOWN, Adapter, Program, Status

# Our states -> the harness's. `stopping` still has a process but is on its way out; `exited` is "ran and
# its restart policy says leave it", which the harness counts as gave-up/stopped like supervisord's EXITED.
STATES = {
    "running": RUNNING,
    "starting": STARTING,
    "backoff": BACKOFF,
    "fatal": FATAL,
    "stopped": STOPPED,
    "stopping": STOPPED,
    "exited": STOPPED,
}


def toml_string(value: str) -> str:
    """A TOML basic string (JSON string escapes are valid TOML ones for what argv and env hold)."""
    out = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{out}"'


def render_services(programs: list[Program]) -> str:
    """A services file naming only the command and environment: every policy stays at our defaults."""
    sections = []
    for program in programs:
        lines = [f"[programs.{program.name}]"]
        lines.append("command = [" + ", ".join(toml_string(a) for a in program.argv) + "]")
        if program.env:
            pairs = ", ".join(f"{toml_string(k)} = {toml_string(v)}" for k, v in program.env.items())
            lines.append(f"environment = {{ {pairs} }}")
        sections.append("\n".join(lines) + "\n")
    return "\n".join(sections)


class ApplianceAdapter(Adapter):
    """`python -m appliance supervise` in the foreground, driven over its JSON control socket."""

    name = "appliance"
    description = (
        "Forge Appliance supervisor (Python, stdlib), `python -m appliance supervise` in the foreground, "
        "status/stop/shutdown over its Unix control socket; every policy at our defaults (restart=always, "
        "backoff 0 s then 0.5 s doubling to 30 s, reset after 10 s up; SIGTERM, stop_timeout 10 s)"
    )

    def _python(self) -> str:
        return str(self.opts.get("appliance_python", REPO / ".venv" / "bin" / "python"))

    def env(self) -> dict[str, str]:
        """`--opt appliance_src=DIR` runs a snapshot of the package (a tree holding `appliance/`) instead
        of the checkout, so that a long run is not disturbed by edits made meanwhile."""
        environ = dict(os.environ)
        if "appliance_src" in self.opts:
            environ["PYTHONPATH"] = str(self.opts["appliance_src"])
        return environ

    def available(self) -> tuple[bool, str]:
        """Our venv's interpreter can import the supervisor."""
        try:
            out = subprocess.run(
                env=self.env(),
                args=[
                    self._python(),
                    "-c",
                    "import appliance, appliance.supervisor.main; print(appliance.__version__)",
                ],
                capture_output=True,
                text=True,
                timeout=30,
                check=False,
            )
        except OSError as exc:
            return False, f"cannot run {self._python()}: {exc}"
        if out.returncode != 0:
            return False, f"{self._python()} cannot import appliance: {out.stderr.strip()[-200:]}"
        return True, f"appliance {out.stdout.strip()}"

    def setup(self, workdir: Path, programs: list[Program]) -> None:
        """Write services.toml into the fresh work directory."""
        self.workdir, self.programs = workdir, programs
        self.services = workdir / "services.toml"
        self.services.write_text(render_services(programs))
        self.client = SupervisorClient(workdir / "run" / "control.sock", timeout=120)

    def start(self) -> None:
        """Spawn the supervisor in the foreground; it starts every program itself."""
        assert self.workdir is not None
        argv = [self._python(), "-m", "appliance", "supervise", "--services", str(self.services)]
        argv += ["--run-dir", str(self.workdir / "run"), "--log-dir", str(self.workdir / "logs"), "--quiet"]
        self.proc = self.spawn(argv, "appliance.out")

    def daemon_pids(self) -> list[int]:
        """The supervisor is one process."""
        return [self.proc.pid]

    def status(self, name: str) -> Status:
        """The first instance of `name`; the raw word says `crash-looping` when the supervisor does."""
        try:
            rows = [p for p in self.client.status()["programs"] if p["name"] == name]
        except (ConnectionError, RuntimeError, OSError) as exc:
            return Status(UNKNOWN, f"? ({exc})", None)
        if not rows:
            return Status(UNKNOWN, "no such program", None)
        row = rows[0]
        raw = row["state"] + (" (crash-looping)" if row["crash_looping"] else "")
        return Status(STATES.get(row["state"], UNKNOWN), raw, row["restarts"])

    def stop_all(self) -> None:
        """`stop all` answers once every process is gone."""
        self.client.stop(["all"])

    def shutdown(self) -> None:
        """`shutdown` answers once everything is stopped; then reap the supervisor."""
        with contextlib.suppress(
            ConnectionError, RuntimeError, OSError
        ):  # gone already: killed by the harness
            self.client.shutdown()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=30)
