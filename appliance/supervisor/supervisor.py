"""The reconcile logic: each tick, bring every instance towards what is wanted, in dependency order."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator

from appliance.supervisor.backoff import BackoffPolicy
from appliance.supervisor.events import Events
from appliance.supervisor.exits import ExitHistory
from appliance.supervisor.instance import Instance, InstanceStatus, Launcher
from appliance.supervisor.rollout import ReloadAsk, ReloadJob, ServicesDiff, diff_services
from appliance.supervisor.specs import ProgramSpec, ServicesSpec
from appliance.supervisor.states import State


class UnknownProgram(KeyError):
    """A command named a program that the services file does not define."""

    def __init__(self, names: list[str], known: Iterable[str], *, all_too: bool = True) -> None:
        super().__init__(names)
        listed = ", ".join(known) + (", or 'all'" if all_too else "")
        self.message = f"unknown program {', '.join(map(repr, names))} (programs: {listed})"

    def __str__(self) -> str:
        return self.message


class Supervisor:
    """What should run and what runs; time and OS operations come in from outside (`now`, `launcher`)."""

    def __init__(
        self,
        services: ServicesSpec,
        launcher: Launcher,
        log: Callable[[str], None],
        policy: BackoffPolicy | None = None,
        *,
        events: Events | None = None,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.services = services
        self.wall_clock = wall_clock  # Unix seconds, to date exits; every other time here is monotonic
        self.log, self.launcher, self.policy = log, launcher, policy or BackoffPolicy()
        self.events = events or Events()
        self.instances: dict[str, list[Instance]] = {
            spec.name: [self.new_instance(spec, i) for i in range(1, spec.instances + 1)]
            for spec in services.programs
        }
        self.surge: list[Instance] = []  # new instances of a rolling reload, not yet ready
        self.retiring: list[Instance] = []  # replaced or removed instances, until their process is gone
        self.jobs: list[ReloadJob] = []
        self.exits = ExitHistory()  # recent exits per program, for the control socket's `spec`
        self._dependents: dict[str, list[str]] = {}
        self._index_dependents()

    def new_instance(self, spec: ProgramSpec, index: int) -> Instance:
        """A fresh instance (stopped, not wanted) of `spec`."""
        return Instance(spec, index, self.launcher, self.policy, self.log, events=self.events)

    def retire(self, inst: Instance) -> None:
        """Stop `inst`, which no longer belongs to its program; it is forgotten once its process is gone."""
        inst.stop()
        self.retiring.append(inst)

    # Commands -------------------------------------------------------------------------------------------
    def resolve(self, names: Iterable[str]) -> list[str]:
        """Program names in dependency order; 'all' means every program. Raise `UnknownProgram`."""
        wanted = list(names)
        if "all" in wanted:
            return list(self.instances)
        unknown = [n for n in wanted if n not in self.instances]
        if unknown:
            raise UnknownProgram(unknown, self.instances)
        return [n for n in self.instances if n in wanted]

    def start(self, names: Iterable[str], now: float) -> list[str]:
        """Want these programs and, first, everything they depend on running; return the names started."""
        chosen = self._with_dependencies(self.resolve(names))
        for name in chosen:
            for inst in self.instances[name]:
                inst.start(now)
        return chosen

    def stop(self, names: Iterable[str]) -> list[str]:
        """Want these programs stopped; dependents stop before their dependencies."""
        chosen = self.resolve(names)
        for job in [j for j in self.jobs if set(j.names) & set(chosen)]:
            job.cancel("stop asked")
        for name in chosen:
            for inst in self.instances[name]:
                inst.stop()
        return chosen

    def reload(self, names: Iterable[str], done: Callable[[str], None]) -> ReloadAsk:
        """Replace the processes of these programs one at a time; `done(error)` once finished.

        A reload of a program that a reload under way still has to roll waits for it, then rolls every
        process again (each process running after `done` was started after this ask). An identical ask
        made while such a reload waits its turn joins it: one more rollout would replace the same
        processes for nothing.
        """
        chosen = self.resolve(names)
        joinable = next(
            (j for j in self.jobs if not j.begun and not j.done and set(chosen) <= set(j.names)), None
        )
        ahead = [j for j in self.jobs if not j.done and j is not joinable]
        waits_for = [n for n in chosen if any(n in job.names for job in ahead)]
        if joinable is not None:
            joinable.join(done)
            self.events.emit("reload", f"{', '.join(chosen)}: joined a reload asked earlier", joined=True)
            return ReloadAsk(chosen, waits_for, joined=True)
        self.jobs.append(ReloadJob(self, chosen, done))
        if waits_for:
            message = (
                f"{', '.join(waits_for)}: a reload is under way; this one waits for it, then rolls again"
            )
            self.events.emit("reload", message, waiting=True)
        return ReloadAsk(chosen, waits_for, joined=False)

    def rolled_before(self, job: ReloadJob, name: str) -> bool:
        """An unfinished job asked before `job` still has program `name` to roll."""
        for other in self.jobs:
            if other is job:
                return False
            if not other.done and name in other.names:
                return True
        return False

    def reconfigure(self, new: ServicesSpec, now: float, done: Callable[[str], None]) -> ServicesDiff:
        """Adopt a new services file: roll changed programs, start added ones, stop removed ones."""
        diff = diff_services(self.services, new)
        for name in diff.removed:
            for inst in self.instances.pop(name):
                self.retire(inst)
        instances: dict[str, list[Instance]] = {}
        for spec in new.programs:
            if spec.name in diff.added:
                instances[spec.name] = [self.new_instance(spec, i) for i in range(1, spec.instances + 1)]
                for inst in instances[spec.name]:
                    inst.start(now)
            else:
                instances[spec.name] = self.instances[spec.name]
        self.instances, self.services = instances, new
        self.exits.retain(instances)
        self._index_dependents()
        self.jobs.append(ReloadJob(self, list(diff.changed), done))
        for name in diff.added + diff.removed:
            self.events.emit("reload", f"{name}: {'added' if name in diff.added else 'removed'}", name)
        return diff

    def restart(self, names: Iterable[str], now: float) -> list[str]:
        """Replace the processes of these programs with fresh ones."""
        chosen = self.resolve(names)
        for name in self._with_dependencies(chosen):
            for inst in self.instances[name]:
                if name in chosen:
                    inst.restart(now)
                else:
                    inst.start(now)
        return chosen

    # Events ---------------------------------------------------------------------------------------------
    def exited(
        self, pid: int, returncode: int, now: float, stderr_tail: tuple[str, ...] = ()
    ) -> Instance | None:
        """Record the exit of `pid` (and the last lines it wrote to stderr); return its instance (None if
        the pid is not ours)."""
        inst = self.by_pid(pid)
        if inst is not None:
            record = inst.exited(returncode, now, stderr_tail)
            if inst.spec.name in self.instances:  # not a removed program's last process
                self.exits.add(inst.spec.name, record, self.wall_clock())
        return inst

    def probed(self, pid: int, ok: bool, now: float) -> None:
        """Record the outcome of a readiness check of `pid`."""
        inst = self.by_pid(pid)
        if inst is not None:
            inst.probed(pid, ok, now)

    def reported(self, pid: int, words: str | None, can_work: bool | None) -> None:
        """Record what process `pid` said about itself (STATUS= words, X_READY=0/1)."""
        inst = self.by_pid(pid)
        if inst is not None:
            inst.reported(pid, words, can_work)

    def health_checked(self, pid: int, ok: bool, now: float) -> None:
        """Record the outcome of a health check of `pid`."""
        inst = self.by_pid(pid)
        if inst is not None:
            inst.health_checked(pid, ok, now)

    # Reconcile ------------------------------------------------------------------------------------------
    def tick(self, now: float) -> None:
        """Bring every instance one step towards what is wanted."""
        # Rollouts first, so that what they decide (spawn a new instance, stop an old one) happens now.
        for job in list(self.jobs):
            job.step(now)
        self.jobs = [j for j in self.jobs if not j.done]
        for name, insts in self.instances.items():
            spec = self.spec(name)
            waiting = [d for d in spec.depends_on if not self.ready(d)]
            # Stop dependents first: a program stops only once the dependents being stopped are gone.
            blocking = [
                d for d in self._dependents[name] if any(i.live and not i.want for i in self.instances[d])
            ]
            for inst in insts:
                inst.tick(now, may_start=not waiting, may_stop=not blocking, waiting_for=", ".join(waiting))
        for inst in self.surge:
            waiting = [d for d in inst.spec.depends_on if d in self.instances and not self.ready(d)]
            inst.tick(now, may_start=not waiting, may_stop=True, waiting_for=", ".join(waiting))
        for inst in self.retiring:
            inst.tick(now, may_start=False, may_stop=True)
        self.retiring = [i for i in self.retiring if i.live]

    def ready(self, name: str) -> bool:
        """Every instance of `name` is running and ready."""
        return all(inst.state is State.RUNNING for inst in self.instances[name])

    def unattended(self) -> dict[tuple[str, int], str]:
        """The `listen` addresses (with their program) that the supervisor should answer on itself: those of
        `when_down = "http-503"` programs none of whose instances is up or coming up normally (a start
        that follows a crash does not count: its clients might wait for nothing; answering until one is
        ready also keeps a crash loop from flipping the socket back and forth)."""
        found: dict[tuple[str, int], str] = {}
        for name, insts in self.instances.items():
            spec = self.spec(name)
            if spec.listen is None or spec.when_down != "http-503":
                continue
            every = [*insts, *(i for i in self.surge if i.spec.name == name)]
            if not any(
                i.state is State.RUNNING or (i.state is State.STARTING and not i.backoff.failures)
                for i in every
            ):
                found[spec.listen] = name
        return found

    def idle(self, names: Iterable[str] | None = None) -> bool:
        """No process of these programs (default: of any program) is alive."""
        chosen = None if names is None else set(names)
        return not any(inst.live for inst in self.all() if chosen is None or inst.spec.name in chosen)

    def next_deadline(self) -> float | None:
        """The earliest monotonic time at which `tick` has something to do on its own."""
        return min((d for inst in self.all() if (d := inst.next_deadline()) is not None), default=None)

    def status(self, now: float, wall_now: float) -> list[InstanceStatus]:
        """Every instance, in dependency order."""
        return [inst.status(now, wall_now) for inst in self.all()]

    # Lookups --------------------------------------------------------------------------------------------
    def all(self) -> Iterator[Instance]:
        """Every instance of every program, dependencies first."""
        for insts in self.instances.values():
            yield from insts
        yield from self.surge
        yield from self.retiring

    def by_pid(self, pid: int) -> Instance | None:
        """The instance whose current process is `pid`."""
        return next((inst for inst in self.all() if inst.pid == pid), None)

    def known(self, name: str) -> ProgramSpec:
        """The spec of program `name`; `UnknownProgram` (listing the programs) if there is none."""
        spec = self.services.get(name)
        if spec is None:
            raise UnknownProgram([name], self.instances, all_too=False)
        return spec

    def spec(self, name: str) -> ProgramSpec:
        """The spec of program `name` (which must exist)."""
        spec = self.services.get(name)
        assert spec is not None
        return spec

    def _index_dependents(self) -> None:
        self._dependents = {spec.name: [] for spec in self.services.programs}
        for spec in self.services.programs:
            for dep in spec.depends_on:
                self._dependents[dep].append(spec.name)

    def _with_dependencies(self, names: list[str]) -> list[str]:
        chosen: set[str] = set()
        pending = list(names)
        while pending:
            name = pending.pop()
            if name not in chosen:
                chosen.add(name)
                pending.extend(self.spec(name).depends_on)
        return [n for n in self.instances if n in chosen]
