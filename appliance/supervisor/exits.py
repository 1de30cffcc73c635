"""The recent exits of each program's processes, kept in memory for the control socket's `spec` answer."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TypedDict

KEEP = 50  # exits kept per program; older ones are forgotten


class ExitRecord(TypedDict):
    """One exit as the control socket reports it (`time` in Unix seconds)."""

    time: float
    instance: int
    pid: int
    exit_status: int  # a code >= 0, or minus the signal number that killed it
    reason: str  # "exited with code 1", "killed by SIGKILL"
    ran_seconds: float  # from spawn to exit
    expected: bool  # the supervisor had asked it to stop
    stop_reason: str | None  # why it was asked ("stop asked", "health check failed 3 times"), else None


@dataclass(frozen=True)
class Exit:
    """One reaped process of an instance, as its state machine saw it."""

    instance: int
    pid: int
    returncode: int
    reason: str
    ran: float  # seconds from spawn to exit
    stop_reason: str | None = None  # None: it exited on its own, unasked

    def record(self, when: float) -> ExitRecord:
        """This exit, reaped at `when` (Unix seconds), as the control socket reports it."""
        return ExitRecord(
            time=when,
            instance=self.instance,
            pid=self.pid,
            exit_status=self.returncode,
            reason=self.reason,
            ran_seconds=round(self.ran, 3),
            expected=self.stop_reason is not None,
            stop_reason=self.stop_reason,
        )


class ExitHistory:
    """The last `keep` exits of each program, oldest first."""

    def __init__(self, keep: int = KEEP) -> None:
        self.keep = keep
        self._exits: dict[str, deque[ExitRecord]] = {}

    def add(self, program: str, exit_: Exit, when: float) -> None:
        """Remember one exit of `program`, reaped at `when` (Unix seconds); the oldest beyond `keep` go."""
        self._exits.setdefault(program, deque(maxlen=self.keep)).append(exit_.record(when))

    def recent(self, program: str) -> list[ExitRecord]:
        """The remembered exits of `program`, newest last."""
        return [ExitRecord(**record) for record in self._exits.get(program, ())]

    def retain(self, programs: Iterable[str]) -> None:
        """Forget the exits of every program not in `programs` (removed from the services file)."""
        kept = set(programs)
        self._exits = {name: exits for name, exits in self._exits.items() if name in kept}
