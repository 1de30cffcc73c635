"""The reconcile logic: each tick, bring every instance towards what is wanted, in dependency order."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

from appliance.supervisor.backoff import BackoffPolicy
from appliance.supervisor.instance import Instance, InstanceStatus, Launcher
from appliance.supervisor.specs import ProgramSpec, ServicesSpec
from appliance.supervisor.states import State


class UnknownProgram(KeyError):
    """A command named a program that the services file does not define."""

    def __init__(self, names: list[str], known: Iterable[str]) -> None:
        super().__init__(names)
        self.message = (
            f"unknown program {', '.join(map(repr, names))} (programs: {', '.join(known)}, or 'all')"
        )

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
    ) -> None:
        self.services = services
        self.log = log
        policy = policy or BackoffPolicy()
        self.instances: dict[str, list[Instance]] = {
            spec.name: [Instance(spec, i, launcher, policy, log) for i in range(1, spec.instances + 1)]
            for spec in services.programs
        }
        self._dependents: dict[str, list[str]] = {spec.name: [] for spec in services.programs}
        for spec in services.programs:
            for dep in spec.depends_on:
                self._dependents[dep].append(spec.name)

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
        for name in chosen:
            for inst in self.instances[name]:
                inst.stop()
        return chosen

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
    def exited(self, pid: int, returncode: int, now: float) -> Instance | None:
        """Record the exit of `pid`; return its instance (None if the pid is not ours)."""
        inst = self.by_pid(pid)
        if inst is not None:
            inst.exited(returncode, now)
        return inst

    def probed(self, pid: int, ok: bool, now: float) -> None:
        """Record the outcome of a readiness check of `pid`."""
        inst = self.by_pid(pid)
        if inst is not None:
            inst.probed(pid, ok, now)

    # Reconcile ------------------------------------------------------------------------------------------
    def tick(self, now: float) -> None:
        """Bring every instance one step towards what is wanted."""
        for name, insts in self.instances.items():
            spec = self.spec(name)
            waiting = [d for d in spec.depends_on if not self.ready(d)]
            # Stop dependents first: a program stops only once the dependents being stopped are gone.
            blocking = [
                d for d in self._dependents[name] if any(i.live and not i.want for i in self.instances[d])
            ]
            for inst in insts:
                inst.tick(now, may_start=not waiting, may_stop=not blocking, waiting_for=", ".join(waiting))

    def ready(self, name: str) -> bool:
        """Every instance of `name` is running and ready."""
        return all(inst.state is State.RUNNING for inst in self.instances[name])

    def idle(self, names: Iterable[str] | None = None) -> bool:
        """No process of these programs (default: of any program) is alive."""
        chosen = self.instances if names is None else names
        return not any(inst.live for name in chosen for inst in self.instances[name])

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

    def by_pid(self, pid: int) -> Instance | None:
        """The instance whose current process is `pid`."""
        return next((inst for inst in self.all() if inst.pid == pid), None)

    def spec(self, name: str) -> ProgramSpec:
        """The spec of program `name` (which must exist)."""
        return self.instances[name][0].spec

    def _with_dependencies(self, names: list[str]) -> list[str]:
        chosen: set[str] = set()
        pending = list(names)
        while pending:
            name = pending.pop()
            if name not in chosen:
                chosen.add(name)
                pending.extend(self.spec(name).depends_on)
        return [n for n in self.instances if n in chosen]
