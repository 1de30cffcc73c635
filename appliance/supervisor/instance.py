"""One instance of a program: its state machine, restart policy and stop escalation, free of real OS calls."""

from __future__ import annotations

import signal
from collections.abc import Callable
from typing import Protocol, TypedDict

from appliance.supervisor.backoff import Backoff, BackoffPolicy
from appliance.supervisor.specs import ProgramSpec
from appliance.supervisor.states import LIVE, State, check_transition

KILL_RETRY = 5.0  # seconds between two SIGKILLs of a group that will not die (a D-state process)


class SpawnError(Exception):
    """The process could not be spawned at all; the message is the reason shown in status."""


class Launcher(Protocol):
    """The OS operations an instance needs; the real one spawns processes, the tests' one pretends."""

    def spawn(self, spec: ProgramSpec, index: int) -> int:
        """Start the process; return its pid (also its process group id); raise `SpawnError`."""

    def signal(self, pid: int, sig: signal.Signals) -> None:
        """Send `sig` to the process group `pid`; a group that is gone is not an error."""

    def probe(self, spec: ProgramSpec, index: int, pid: int) -> None:
        """Start one readiness check; its outcome comes back through `Instance.probed(pid, ok, now)`."""


class InstanceStatus(TypedDict):
    """One row of the control socket's status answer."""

    name: str
    instance: int
    state: str
    pid: int | None
    started_at: float | None
    restarts: int
    crash_looping: bool
    exit_status: int | None
    reason: str


def describe_exit(returncode: int) -> str:
    """`exited with code 1`, `killed by SIGKILL`: the words for a Popen-style return code."""
    if returncode >= 0:
        return f"exited with code {returncode}"
    try:
        return f"killed by {signal.Signals(-returncode).name}"
    except ValueError:
        return f"killed by signal {-returncode}"


class Instance:
    """Drives one process towards what is wanted; `tick(now)` acts, the `on_*` methods record events."""

    def __init__(
        self,
        spec: ProgramSpec,
        index: int,
        launcher: Launcher,
        policy: BackoffPolicy,
        log: Callable[[str], None],
    ) -> None:
        self.spec, self.index, self.launcher, self._log = spec, index, launcher, log
        self.label = spec.label(index)
        self.state = State.STOPPED
        self.want = False
        self.pid: int | None = None
        self.started_at: float | None = None  # monotonic time of the last spawn
        self.restarts = 0
        self.exit_status: int | None = None
        self.reason = ""
        self.backoff = Backoff(policy)
        self.crash_looping = False
        self._retry_at = 0.0
        self._ready_by = 0.0
        self._probe_at: float | None = None  # None while a probe is in flight
        self._kill_at: float | None = None
        self._retry_after_stop = False  # stopped because it never became ready: back off, then retry

    @property
    def live(self) -> bool:
        """A process exists for this instance."""
        return self.state in LIVE

    # Commands -------------------------------------------------------------------------------------------
    def start(self, now: float) -> None:
        """Want it running; a process in backoff is retried at once."""
        self.want = True
        if self.state is State.BACKOFF:
            self._retry_at = now

    def stop(self) -> None:
        """Want it stopped; `tick` sends the stop signal when dependency order allows."""
        self.want = False
        self._retry_after_stop = False

    def restart(self, now: float) -> None:
        """Stop the running process (if any), then start a fresh one without backoff."""
        self.start(now)
        if self.state in (State.STARTING, State.RUNNING):
            self._begin_stop(now, "restart asked")

    # Events ---------------------------------------------------------------------------------------------
    def exited(self, returncode: int, now: float) -> None:
        """The process was reaped with a Popen-style return code."""
        uptime = now - (self.started_at or now)
        self.pid, self._kill_at, self.exit_status = None, None, returncode
        self.reason = describe_exit(returncode)
        if self.state is State.STOPPING:
            if self._retry_after_stop and self.want:
                self._retry_after_stop = False
                self._back_off(uptime, now)
            else:
                self._to(State.STOPPED)
            return
        failed = returncode not in self.spec.success_exit_codes
        if self.want and (self.spec.restart == "always" or (self.spec.restart == "on-failure" and failed)):
            self._back_off(uptime, now)
        else:
            self.want = False
            self._to(State.EXITED)

    def probed(self, pid: int, ok: bool, now: float) -> None:
        """A readiness check of process `pid` finished."""
        if pid != self.pid or self.state is not State.STARTING:
            return  # the answer about a process that is gone, or already ready
        if ok:
            self._to(State.RUNNING)
            self.reason = ""
        else:
            self._probe_at = now + self.spec.ready.interval if self.spec.ready else now

    # Reconcile ------------------------------------------------------------------------------------------
    def tick(self, now: float, may_start: bool, may_stop: bool, waiting_for: str = "") -> None:
        """Act towards what is wanted: spawn, probe, stop or escalate to SIGKILL when due."""
        state = self.state
        if self.want:
            if state in (State.STOPPED, State.EXITED, State.FATAL) or (
                state is State.BACKOFF and now >= self._retry_at
            ):
                if may_start:
                    self._spawn(now)
                elif waiting_for:
                    self.reason = f"waiting for {waiting_for}"
            elif state is State.STARTING:
                self._check_ready(now)
            elif (
                state is State.RUNNING
                and self.started_at is not None
                and self.backoff.stable(now - self.started_at)
                and self.crash_looping
            ):
                self.crash_looping = False
                self._log(
                    f"{self.label}: up for {self.backoff.policy.stable_after:g}s, no longer crash-looping"
                )
        elif state in (State.STARTING, State.RUNNING) and may_stop:
            self._begin_stop(now, "stop asked")
        elif state is State.BACKOFF:
            self._to(State.STOPPED)
        if self.state is State.STOPPING and self._kill_at is not None and now >= self._kill_at and self.pid:
            self._log(
                f"{self.label}: alive {self.spec.stop_timeout:g}s after {self.spec.stop_signal.name}, SIGKILL"
            )
            self.launcher.signal(self.pid, signal.SIGKILL)
            self._kill_at = now + KILL_RETRY

    def next_deadline(self) -> float | None:
        """The monotonic time at which `tick` next has something to do on its own, if any."""
        candidates: list[float] = []
        if self.state is State.BACKOFF and self.want:
            candidates.append(self._retry_at)
        elif self.state is State.STARTING:
            candidates.append(self._ready_by)
            if self._probe_at is not None:
                candidates.append(self._probe_at)
        elif self.state is State.RUNNING and self.backoff.failures and self.started_at is not None:
            candidates.append(self.started_at + self.backoff.policy.stable_after)
        if self.state is State.STOPPING and self._kill_at is not None:
            candidates.append(self._kill_at)
        return min(candidates, default=None)

    def status(self, now: float, wall_now: float) -> InstanceStatus:
        """This instance as the control socket reports it (`started_at` in Unix seconds)."""
        started = None if self.started_at is None or not self.live else wall_now - (now - self.started_at)
        return InstanceStatus(
            name=self.spec.name,
            instance=self.index,
            state=self.state.value,
            pid=self.pid,
            started_at=started,
            restarts=self.restarts,
            crash_looping=self.crash_looping,
            exit_status=self.exit_status,
            reason=self.reason,
        )

    # Internals ------------------------------------------------------------------------------------------
    def _to(self, new: State) -> None:
        self.state = check_transition(self.state, new)

    def _spawn(self, now: float) -> None:
        if self.state is State.BACKOFF:
            self.restarts += 1
        try:
            pid = self.launcher.spawn(self.spec, self.index)
        except SpawnError as exc:
            self.want, self.pid, self.reason = False, None, str(exc)
            self._to(State.FATAL)
            self._log(f"{self.label}: FATAL: {exc}")
            return
        self.pid, self.started_at, self.reason = pid, now, ""
        self._to(State.STARTING)
        if self.spec.ready is None:
            self._to(State.RUNNING)  # no readiness check: ready once spawned
        else:
            self._ready_by, self._probe_at = now + self.spec.ready.timeout, now
            self._check_ready(now)

    def _check_ready(self, now: float) -> None:
        ready = self.spec.ready
        assert ready is not None
        assert self.pid is not None
        if now >= self._ready_by:
            self._retry_after_stop = True
            self._begin_stop(now, f"not ready within {ready.timeout:g}s")
        elif self._probe_at is not None and now >= self._probe_at:
            self._probe_at = None
            self.launcher.probe(self.spec, self.index, self.pid)

    def _begin_stop(self, now: float, why: str) -> None:
        assert self.pid is not None
        self._to(State.STOPPING)
        self.reason = why
        self.launcher.signal(self.pid, self.spec.stop_signal)
        self._kill_at = now + self.spec.stop_timeout

    def _back_off(self, uptime: float, now: float) -> None:
        delay = self.backoff.failed(uptime)
        self._retry_at = now + delay
        self._to(State.BACKOFF)
        if self.backoff.crash_looping and not self.crash_looping:
            self.crash_looping = True
            self._log(f"{self.label}: crash-looping ({self.backoff.failures} fast failures; {self.reason})")
        self._log(f"{self.label}: {self.reason}; restarting in {delay:g}s")
