"""Rolling replacement of a program's instances: one new process ready before each old one stops."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from appliance.supervisor.events import Events
from appliance.supervisor.instance import Instance
from appliance.supervisor.specs import ProgramSpec, ServicesSpec
from appliance.supervisor.states import State


class Supervisor(Protocol):
    """What a rollout uses of the supervisor (appliance.supervisor.supervisor.Supervisor): a protocol, so
    that this module, which the supervisor imports, does not import it back."""

    instances: dict[str, list[Instance]]
    surge: list[Instance]
    events: Events
    services: ServicesSpec
    log: Callable[[str], None]

    def new_instance(self, spec: ProgramSpec, index: int) -> Instance: ...

    def retire(self, inst: Instance) -> None: ...

    def rolled_before(self, job: ReloadJob, name: str) -> bool: ...

    def spec(self, name: str) -> ProgramSpec: ...


_NOT_YET = (State.STOPPED, State.STARTING)  # a fresh instance in these has not failed (yet)


@dataclass(frozen=True)
class ServicesDiff:
    """How a new services file differs from the running one, program by program (new file's order)."""

    changed: list[str]
    added: list[str]
    removed: list[str]
    unchanged: list[str]


def diff_services(old: ServicesSpec, new: ServicesSpec) -> ServicesDiff:
    """Compare two services files; a program whose spec differs in any key counts as changed."""
    before = {p.name: p for p in old.programs}
    changed, added, unchanged = [], [], []
    for spec in new.programs:
        if spec.name not in before:
            added.append(spec.name)
        elif before[spec.name] == spec:
            unchanged.append(spec.name)
        else:
            changed.append(spec.name)
    removed = [name for name in before if new.get(name) is None]
    return ServicesDiff(changed, added, removed, unchanged)


class Rollout:
    """Replaces the instances of one program with instances of `spec`, one at a time (a surge of one).

    For each index: spawn a new instance; once it is RUNNING (its readiness probe passed) it takes the
    old one's place and the old one is stopped gracefully; the next index starts once the old process is
    gone. A new instance that fails to become ready is stopped, the old ones keep running, and the
    rollout ends with `error` set.

    A container cannot surge: the new one would take the old one's name, and its published ports. When
    either spec is a container's, the old instance stops first and the new one starts once it is gone (a
    restart, one instance at a time, each waited for until ready); a new one that does not become ready
    ends the rollout with `error` set, and stays, retried with backoff like any crashed instance.
    """

    def __init__(self, sup: Supervisor, spec: ProgramSpec) -> None:
        self.sup, self.spec, self.name = sup, spec, spec.name
        self.next_index = 1
        self.fresh: Instance | None = None  # the surge instance, not yet ready
        self.old: Instance | None = None  # the replaced instance, stopping
        self.replacing: Instance | None = None  # a container's new instance, started once `old` is gone
        self.done = False
        self.error = ""

    def step(self, now: float) -> None:
        """Advance as far as possible without waiting."""
        while not self.done:
            if self.old is not None:
                if self.old.live:
                    return
                self.old = None
                if self.replacing is not None:
                    self.replacing.start(now)
            if self.replacing is not None:
                if self.replacing.state is not State.RUNNING:
                    if self.replacing.state not in _NOT_YET:
                        self._fail(f"{self.replacing.label}: the new container did not become ready")
                    return
                self.sup.events.emit("reload", f"{self.replacing.label}: new container ready", self.name)
                self.replacing = None
                continue
            if self.fresh is not None:
                if self.fresh.state is not State.RUNNING:
                    if self.fresh.state not in _NOT_YET:
                        self._fail(f"{self.fresh.label}: the new process did not become ready")
                    return
                self._promote(self.fresh)
                self.fresh = None
                continue
            self._begin_next(now)

    def cancel(self, why: str) -> None:
        """Abandon the rollout (the program is being stopped): the new process is stopped too."""
        if not self.done:
            self._fail(f"interrupted: {why}")

    def _begin_next(self, now: float) -> None:
        current = self.sup.instances[self.name]
        index = self.next_index
        if index > self.spec.instances:  # fewer instances than before: stop the ones left over
            for inst in current[self.spec.instances :]:
                self.sup.retire(inst)
            del current[self.spec.instances :]
            self.done = True
            self.sup.events.emit("reload", f"{self.name}: every instance replaced", self.name, done=True)
            return
        self.next_index += 1
        inst = self.sup.new_instance(self.spec, index)
        if index <= len(current) and not current[index - 1].want:
            self.sup.retire(current[index - 1])  # stopped by the operator: swap it, start nothing
            current[index - 1] = inst
            return
        if index <= len(current) and "container" in (self.spec.kind, current[index - 1].spec.kind):
            self.old, self.replacing, current[index - 1] = current[index - 1], inst, inst
            self.sup.retire(self.old)
            self.sup.log(f"reload {inst.label}: stopping the old container before starting the new one")
            self.sup.events.emit("reload", f"{inst.label}: stopping the old container", self.name, index)
            return
        inst.start(now)
        self.sup.surge.append(inst)
        self.fresh = inst
        self.sup.events.emit("reload", f"{inst.label}: starting a new process", self.name, index)

    def _promote(self, fresh: Instance) -> None:
        current = self.sup.instances[self.name]
        self.sup.surge.remove(fresh)
        if fresh.index <= len(current):
            self.old = current[fresh.index - 1]
            current[fresh.index - 1] = fresh
            self.sup.retire(self.old)
            message = f"{fresh.label}: pid {fresh.pid} ready, stopping pid {self.old.pid}"
        else:
            current.append(fresh)
            message = f"{fresh.label}: pid {fresh.pid} ready"
        self.sup.log(f"reload {message}")
        self.sup.events.emit("reload", message, self.name, fresh.index, pid=fresh.pid)

    def _fail(self, message: str) -> None:
        self.done, self.error = True, f"reload of {self.name} stopped: {message}"
        outcome = "the old processes keep running"
        if self.replacing is not None:  # the program's instance now: it keeps being retried
            reason = self.replacing.reason
            self.error += f" ({reason})" if reason else ""
            outcome = "the new container is retried with backoff" if self.replacing.want else "stopped"
            self.replacing = None
        if self.fresh is not None:
            reason = self.fresh.reason
            self.error += f" ({reason})" if reason else ""
            self.sup.surge.remove(self.fresh)
            self.sup.retire(self.fresh)
            self.fresh = None
        self.sup.log(f"{self.error}; {outcome}")
        self.sup.events.emit("reload", self.error, self.name, failed=True)


@dataclass(frozen=True)
class ReloadAsk:
    """How a `reload` request was taken: the programs, and whether it had to wait for or join another."""

    programs: list[str]
    waits_for: list[str]  # programs of a reload already under way that this one waits for, then rolls again
    joined: bool  # it shares a reload asked earlier that had not begun yet (one rollout answers both)


class ReloadJob:
    """Rolls several programs one after the other; each `done(error)` is called once ("" on success).

    Jobs run in the order they were asked: a job does not begin rolling a program while an earlier job
    still has that program to roll, so two reloads of one program never run side by side (each would
    surge and retire instances under the other's feet). The spec of each program is read when its turn
    comes, so that a job queued behind a services-file change rolls the new spec.
    """

    def __init__(self, sup: Supervisor, names: list[str], done: Callable[[str], None]) -> None:
        self.sup, self.pending = sup, list(names)
        self.finishers = [done]
        self.current: Rollout | None = None
        self.begun = False  # a rollout of this job has started (a later ask can no longer join it)
        self.done = False

    @property
    def names(self) -> list[str]:
        """The programs this job has yet to finish."""
        return ([self.current.name] if self.current else []) + list(self.pending)

    def join(self, done: Callable[[str], None]) -> None:
        """Answer `done` too when this job ends (an identical ask made before it began)."""
        self.finishers.append(done)

    def step(self, now: float) -> None:
        """Advance the current rollout; start the next when it is done and no earlier job holds it."""
        while not self.done:
            if self.current is None:
                if not self.pending:
                    self._end("")
                    return
                name = self.pending[0]
                if self.sup.services.get(name) is None:  # removed by a services-file change meanwhile
                    self.pending.pop(0)
                    continue
                if self.sup.rolled_before(self, name):
                    return  # an earlier reload still has this program to roll: wait for it
                self.pending.pop(0)
                self.current, self.begun = Rollout(self.sup, self.sup.spec(name)), True
            self.current.step(now)
            if not self.current.done:
                return
            if self.current.error:
                self._end(self.current.error)
                return
            self.current = None

    def cancel(self, why: str) -> None:
        """Stop rolling (the programs are being stopped)."""
        if self.current is not None:
            self.current.cancel(why)
        self._end(self.current.error if self.current else f"interrupted: {why}")

    def _end(self, error: str) -> None:
        if not self.done:
            self.done = True
            for finish in self.finishers:
                finish(error)
