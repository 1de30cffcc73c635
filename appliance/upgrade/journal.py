"""What an upgrade works on (its context) and what it has changed so far (its journal), which is exactly
what a rollback undoes, newest first."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from appliance.config import Settings
from appliance.errors import OperationFailed
from appliance.upgrade.layout import Layout
from appliance.upgrade.running import Running

Echo = Callable[[str], None]


@dataclass(frozen=True)
class Context:
    """One upgrade: the stable venv path, the new venv (`staged`), the settings file, and where lines go."""

    layout: Layout
    staged: Path
    config_path: Path | None
    echo: Echo

    def appliance(self, *args: str, python: Path | None = None) -> list[str]:
        """A command of the version the stable path leads to now (or of `python`'s), started the way the
        supervisor starts its programs: through that path, so that `appliance up` hands it on to them."""
        config = ["--config", str(self.config_path.resolve())] if self.config_path else []
        # -P: the working directory (possibly a checkout) must not stand in for the venv's package.
        return [str(python or self.layout.python), "-P", "-m", "appliance", *config, *args]

    def run(self, *args: str, what: str, python: Path | None = None) -> None:
        """Run one `appliance` command, its output indented; OperationFailed when it fails."""
        command = self.appliance(*args, python=python)
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        for line in (done.stdout + done.stderr).splitlines():
            if line.strip():
                self.echo(f"      {line}")
        if done.returncode != 0:
            said = [line for line in done.stderr.splitlines() if line.strip()] or [f"exit {done.returncode}"]
            raise OperationFailed(f"{what} failed: {said[-1]}")


@dataclass
class Journal:
    """What the upgrade changed, in the order it did; `rollback` reads it."""

    settings: Settings
    old_version: str
    new_version: str
    running: Running | None
    previous: Path  # the venv the stable path led to before (resolved): the rollback's target
    backup: Path | None = None
    revision: str | None = None  # the database's before the migrations
    fingerprint: str = ""  # the schema's before the migrations
    migrated: list[str] = field(default_factory=list)
    stopped: bool = False  # the appliance was stopped for contracting migrations
    adopted: Path | None = None  # where the stable path's directory went, on the first upgrade
    switched: bool = False  # the stable path leads to the new venv
    rolled: list[str] = field(default_factory=list)  # programs with processes of the new version
    reshaped: bool = False  # the new services file added or removed programs
    started: bool = False  # the appliance was started again on the new version
