"""One instance of a program: its state machine, restart policy and stop escalation, free of real OS calls.

Everything that touches the OS goes through a `Launcher`; the runtime's spawns local processes (process.py).
A `kind = "container"` program is one of them too: its process is a helper that runs the container through
the Docker engine (container.py), exits with the container's exit code and stops it on the stop signal, so
the state machine below is the same for both kinds.
"""

from __future__ import annotations

import signal
from collections.abc import Callable
from typing import Protocol, TypedDict

from appliance.supervisor.backoff import Backoff, BackoffPolicy
from appliance.supervisor.events import Events
from appliance.supervisor.exits import Exit
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

    def health(self, spec: ProgramSpec, index: int, pid: int) -> None:
        """Start one health check; its outcome comes back through `Instance.health_checked(pid, ok, now)`."""


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
    ready: bool  # running, and able to work (the process has not said X_READY=0)
    status: str  # the process's own last STATUS= words ("not ready: database unavailable: ...")
    stderr_tail: list[str]  # the last stderr lines of the process that exited, while it is being retried


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
        *,
        events: Events | None = None,
    ) -> None:
        self.spec, self.index, self.launcher, self._log = spec, index, launcher, log
        self.events = events or Events()
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
        self._retry_after_stop = False  # stopped because it never became ready (or sick): back off, retry
        self._health_at: float | None = None  # None while a health check is in flight (or none is due)
        self.health_failures = 0
        self.status_text = ""  # what the process last said with STATUS= (notify.py)
        self.can_work = True  # False once the process said X_READY=0, until it says X_READY=1
        self.stderr_tail: tuple[str, ...] = ()  # the last stderr lines of the last process that exited

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
        """Want it stopped; `tick` sends the stop signal when dependency order allows. The operator's stop
        ends its run of failures: started again later, it starts afresh (no backoff, not crash-looping)."""
        self.want = False
        self._retry_after_stop = False
        self.backoff.failures, self.crash_looping = 0, False

    def restart(self, now: float) -> None:
        """Stop the running process (if any), then start a fresh one without backoff."""
        self.start(now)
        if self.state in (State.STARTING, State.RUNNING):
            self._begin_stop(now, "restart asked")

    # Events ---------------------------------------------------------------------------------------------
    def exited(self, returncode: int, now: float, stderr_tail: tuple[str, ...] = ()) -> Exit:
        """The process was reaped with a Popen-style return code (`stderr_tail`: the last lines it wrote to
        stderr); returns the record of that exit."""
        uptime = now - (now if self.started_at is None else self.started_at)  # 0.0 is a time, too
        asked = self.reason if self.state is State.STOPPING else None  # set by `_begin_stop`
        record = Exit(self.index, self.pid or 0, returncode, describe_exit(returncode), uptime, asked)
        self.pid, self._kill_at, self.exit_status = None, None, returncode
        self.reason, self.stderr_tail = record.reason, stderr_tail
        self.status_text, self.can_work = "", True
        if self.state is State.STOPPING:
            if self._retry_after_stop and self.want:
                self._retry_after_stop = False
                self._back_off(uptime, now)
            else:
                self._to(State.STOPPED)
            return record
        failed = returncode not in self.spec.success_exit_codes
        if self.want and (self.spec.restart == "always" or (self.spec.restart == "on-failure" and failed)):
            self._back_off(uptime, now)
        else:
            self.want = False
            self._to(State.EXITED)
        return record

    def probed(self, pid: int, ok: bool, now: float) -> None:
        """A readiness check of process `pid` finished."""
        if pid != self.pid or self.state is not State.STARTING:
            return  # the answer about a process that is gone, or already ready
        if ok:
            self._became_ready(now)
        else:
            self._probe_at = now + self.spec.ready.interval if self.spec.ready else now

    def reported(self, pid: int, words: str | None, can_work: bool | None) -> None:
        """Process `pid` said how it is doing (STATUS= words, X_READY=0/1); a change of its ability to work
        is written to the supervisor's log (and so the journal) and to the events."""
        if pid != self.pid or not self.live:
            return
        before = (self.can_work, self.status_text)
        if words is not None:
            self.status_text = words
        if can_work is not None:
            self.can_work = can_work
        if before == (self.can_work, self.status_text) or (before[0] and self.can_work):
            return  # nothing new, or still able to work (only the words changed)
        message = self.status_text or ("ready" if self.can_work else "not ready")
        self._note("ready", message, ready=self.can_work, status=self.status_text)

    def health_checked(self, pid: int, ok: bool, now: float) -> None:
        """A periodic health check of process `pid` finished; enough failures in a row restart it."""
        health = self.spec.health
        if pid != self.pid or self.state is not State.RUNNING or health is None:
            return
        self.health_failures = 0 if ok else self.health_failures + 1
        if self.health_failures < health.failures:
            self._health_at = now + health.interval
            return
        message = f"health check failed {self.health_failures} times"
        self._note("health", message, failures=self.health_failures)
        self._restart_sick(now, message)

    def memory_checked(self, rss: int, now: float) -> None:
        """The process group uses `rss` bytes; above the spec's memory_limit it is restarted."""
        message = over_limit(rss, self.spec.memory_limit)
        if message and self.state in (State.STARTING, State.RUNNING):
            self._note("memory", message, rss=rss, limit=self.spec.memory_limit)
            self._restart_sick(now, message)

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
                stable = self.backoff.policy.stable_after
                self._note("crash-loop", f"up for {stable:g}s, no longer crash-looping", looping=False)
            elif state is State.RUNNING and self._health_at is not None and now >= self._health_at:
                assert self.pid is not None
                self._health_at = None
                self.launcher.health(self.spec, self.index, self.pid)
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
        elif self.state is State.RUNNING:
            if self.backoff.failures and self.started_at is not None:
                candidates.append(self.started_at + self.backoff.policy.stable_after)
            if self._health_at is not None:
                candidates.append(self._health_at)
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
            ready=self.state is State.RUNNING and self.can_work,
            status=self.status_text if self.live else "",
            stderr_tail=list(self.stderr_tail) if self.failing else [],
        )

    @property
    def failing(self) -> bool:
        """It exited on its own and is being retried (or left exited), keeps crashing, or is starting
        again after a crash."""
        return (
            self.crash_looping
            or self.state in (State.BACKOFF, State.EXITED)
            or (self.state is State.STARTING and self.backoff.failures > 0)
        )

    def last_words(self) -> str:
        """The last stderr line of the process that exited, for one-line messages ("" if none)."""
        return self.stderr_tail[-1][:200] if self.stderr_tail else ""

    # Internals ------------------------------------------------------------------------------------------
    def _to(self, new: State) -> None:
        old, self.state = self.state, check_transition(self.state, new)
        if old is not new:
            said = {"stderr_tail": list(self.stderr_tail)} if new in (State.BACKOFF, State.EXITED) else {}
            self.events.emit(
                "state", f"{old.value} -> {new.value}", self.spec.name, self.index, old=old.value,
                new=new.value, pid=self.pid, reason=self.reason, **said,
            )  # fmt: skip

    def _note(self, kind: str, message: str, **fields: object) -> None:
        """An event worth a line in supervisor.log as well as in the event ring."""
        self._log(f"{self.label}: {message}")
        self.events.emit(kind, message, self.spec.name, self.index, pid=self.pid, **fields)

    def _became_ready(self, now: float) -> None:
        self._to(State.RUNNING)
        self.reason, self.health_failures = "", 0
        self._health_at = now + self.spec.health.interval if self.spec.health else None

    def _restart_sick(self, now: float, why: str) -> None:
        """Stop a process that is alive but unfit; it comes back through backoff like a crash."""
        self._retry_after_stop = self.want
        self._health_at = None
        self._begin_stop(now, why)

    def _spawn(self, now: float) -> None:
        if self.state is State.BACKOFF:
            self.restarts += 1
        try:
            pid = self.launcher.spawn(self.spec, self.index)
        except SpawnError as exc:
            self.want, self.pid, self.reason = False, None, str(exc)
            self._to(State.FATAL)
            self._note("fatal", f"FATAL: {exc}")
            return
        self.pid, self.started_at, self.reason = pid, now, ""
        self._to(State.STARTING)
        if self.spec.ready is None:
            self._became_ready(now)  # no readiness check: ready once spawned
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
        words = f": {self.last_words()}" if self.stderr_tail else ""
        if self.backoff.crash_looping and not self.crash_looping:
            self.crash_looping = True
            self._note(
                "crash-loop",
                f"crash-looping ({self.backoff.failures} fast failures; {self.reason}){words}",
                looping=True,
                failures=self.backoff.failures,
                stderr_tail=list(self.stderr_tail),
            )
        self._log(f"{self.label}: {self.reason}{words}; restarting in {delay:g}s")


def over_limit(rss: int, limit: int | None) -> str:
    """`memory limit exceeded: 612 MiB > 512 MiB` when `rss` bytes exceed `limit`, else ""."""
    if limit is None or rss <= limit:
        return ""
    return f"memory limit exceeded: {rss / (1 << 20):.0f} MiB > {limit / (1 << 20):.0f} MiB"
