"""A fake launcher for exact, fast tests of the supervisor's logic."""

from __future__ import annotations

import signal

from appliance.supervisor.instance import SpawnError
from appliance.supervisor.specs import ProgramSpec


class FakeLauncher:
    """Pretends to spawn: hands out pids and records every signal and probe."""

    def __init__(self) -> None:
        self.next_pid = 1000
        self.spawned: list[tuple[str, int, int]] = []  # (program, instance, pid)
        self.signals: list[tuple[int, signal.Signals]] = []
        self.probes: list[int] = []
        self.health_checks: list[int] = []
        self.missing: set[str] = set()  # programs whose command "does not exist"

    def spawn(self, spec: ProgramSpec, index: int) -> int:
        if spec.name in self.missing:
            raise SpawnError(f"command not found: {spec.command[0]}")
        self.next_pid += 1
        self.spawned.append((spec.name, index, self.next_pid))
        return self.next_pid

    def signal(self, pid: int, sig: signal.Signals) -> None:
        self.signals.append((pid, sig))

    def probe(self, spec: ProgramSpec, index: int, pid: int) -> None:
        self.probes.append(pid)

    def health(self, spec: ProgramSpec, index: int, pid: int) -> None:
        self.health_checks.append(pid)

    def pids(self, name: str) -> list[int]:
        """Every pid spawned for program `name`, oldest first."""
        return [pid for program, _, pid in self.spawned if program == name]
