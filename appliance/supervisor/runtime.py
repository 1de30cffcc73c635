"""The real event loop: one selector for child pipes, probes, the control socket and signals."""

from __future__ import annotations

import dataclasses
import os
import selectors
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from appliance.supervisor import containerspec, process
from appliance.supervisor.control import ControlServer, Detach, Reply, error
from appliance.supervisor.eventlog import EventLog
from appliance.supervisor.events import Event, Events
from appliance.supervisor.listeners import Listeners
from appliance.supervisor.logfiles import LogManager
from appliance.supervisor.logfollow import Follower
from appliance.supervisor.memory import group_rss
from appliance.supervisor.notify import NotifyReadiness
from appliance.supervisor.output import ChildOutputs, LogFile
from appliance.supervisor.probes import Probes
from appliance.supervisor.specs import ProgramSpec, ServicesSpec, SpecError, load_services
from appliance.supervisor.specview import spec_view
from appliance.supervisor.standby import Standby
from appliance.supervisor.statefile import ChildRecord, RunDir, start_ticks
from appliance.supervisor.supervisor import Supervisor

SAFETY_WAKEUP = 2.0  # seconds: the longest the loop sleeps, in case a SIGCHLD wakeup were ever lost
MEMORY_INTERVAL = 5.0  # seconds between two reads of the memory of programs that have a memory_limit


class Runtime:
    """Runs the `Supervisor` logic against real processes until shut down (SIGTERM, SIGINT or `shutdown`)."""

    def __init__(
        self,
        services: ServicesSpec,
        run_dir: RunDir,
        log_dir: Path,
        log: EventLog,
        version: str,
        *,
        listeners: Listeners | None = None,
    ) -> None:
        self.run_dir, self.log_dir, self.log, self.version = run_dir, log_dir, log, version
        self.fd3 = process.reserve_fd3()  # before any other descriptor is opened (see process._child_setup)
        self.listeners = listeners or Listeners()
        self.selector = selectors.DefaultSelector()
        self.events = Events()
        self.sup = Supervisor(services, self, log, events=self.events)
        self.probes = Probes(self.selector, self._probed)
        self.health_probes = Probes(self.selector, self._health_checked)
        self._followers: set[Follower] = set()
        self._memory_at = 0.0
        self.control: ControlServer | None = None
        self.base_env = dict(os.environ)
        # systemd's notify socket is the supervisor's own; children get ours instead (notify.py).
        self.notify = NotifyReadiness(
            run_dir.path / "notify.sock",
            self.selector,
            self._probed,
            self.base_env.pop("NOTIFY_SOCKET", None),
            self._reported,
        )
        self.started_at = time.time()
        self.shutting_down = False
        self._procs: dict[int, subprocess.Popen[bytes]] = {}
        self._ticks: dict[int, int] = {}
        # Log rotation, quota, `logs` requests and followers (logfiles.py); policy from the [logs] table.
        self.log_files = LogManager(services, log_dir, log, self.selector)
        self.outputs = ChildOutputs(self.selector, self._open_log)
        self.standby = Standby(self.selector)  # answers 503 for a `listen` program while none is up
        self._waiters: list[tuple[Callable[[], bool], Callable[[], None]]] = []
        self._shutdown_replies: list[Reply] = []
        self._signalled: int | None = None
        self._dirty = True
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)

    # Launcher (used by the Supervisor logic) ------------------------------------------------------------
    def spawn(self, spec: ProgramSpec, index: int) -> int:
        """Spawn one process of `spec` and route its output to its log file."""
        # Every program gets the notify socket: READY=1 counts for `ready.notify` ones, STATUS= and X_READY=
        # lines for all (notify.py).
        launched = spec if spec.container is None else self._container_helper(spec, index)
        proc = process.spawn(launched, self.notify.env_for(self.base_env), self.listeners.fd_for(spec.listen))
        label = spec.label(index)
        assert proc.stdout is not None
        assert proc.stderr is not None
        self.outputs.attach(proc.pid, label, os.dup(proc.stdout.fileno()), os.dup(proc.stderr.fileno()))
        proc.stdout.close()
        proc.stderr.close()
        self._procs[proc.pid] = proc
        self._ticks[proc.pid] = start_ticks(proc.pid) or 0
        self._dirty = True
        helper = f" to run container {self._container_name(spec, index)}" if spec.container else ""
        self.log(f"{label}: spawned pid {proc.pid}{helper}")
        return proc.pid

    def _container_helper(self, spec: ProgramSpec, index: int) -> ProgramSpec:
        """The process that runs instance `index` of container program `spec` (see container.py)."""
        assert spec.container is not None
        job = containerspec.launch(
            spec.name,
            index,
            spec.container,
            command=spec.command,
            environment=dict(spec.environment),
            stop_signal=spec.stop_signal,
            stop_timeout=spec.stop_timeout,
            memory_limit=spec.memory_limit,
            run_dir=self.run_dir.path,
        )
        return dataclasses.replace(
            spec, kind="process", container=None, command=containerspec.helper_command(job.name),
            environment=job.to_env(), cwd=None, user=None,
        )  # fmt: skip

    def _container_name(self, spec: ProgramSpec, index: int) -> str | None:
        """The engine's name for the container of instance `index` of `spec` (None for a process)."""
        if spec.container is None:
            return None
        return containerspec.container_name(self.run_dir.path, spec.name, index)

    def signal(self, pid: int, sig: signal.Signals) -> None:
        """Signal the process group of `pid`."""
        process.signal_group(pid, sig)

    def probe(self, spec: ProgramSpec, index: int, pid: int) -> None:
        """Start one readiness check of `pid`."""
        assert spec.ready is not None
        if spec.ready.kind == "notify":
            self.notify.probe(pid)
            return
        self.probes.start(spec.ready, pid, time.monotonic())

    def health(self, spec: ProgramSpec, index: int, pid: int) -> None:
        """Start one health check of `pid`."""
        assert spec.health is not None
        self.health_probes.start(spec.health.check, pid, time.monotonic())

    # ControlTarget (used by the control socket) ---------------------------------------------------------
    def status(self) -> dict[str, Any]:
        """Every instance and the supervisor itself."""
        programs = [
            {**row, "container": self._container_name(inst.spec, inst.index)}
            for inst, row in zip(self.sup.all(), self.sup.status(time.monotonic(), time.time()), strict=True)
        ]
        me = {"pid": os.getpid(), "started_at": self.started_at, "version": self.version}
        return {"programs": programs, "supervisor": me}

    def spec(self, name: str) -> dict[str, Any]:
        """Program `name`'s spec as parsed, and its recent exits; `UnknownProgram` if there is none."""
        spec = self.sup.known(name)
        return {
            "spec": spec_view(spec, self.sup.policy, self.log_files.policy),
            "exits": self.sup.exits.recent(name),
        }

    def start(self, names: list[str], reply: Reply) -> None:
        """Start programs; answered at once."""
        if self.shutting_down:
            reply(error("the supervisor is shutting down"))
            return
        reply({"ok": True, "programs": self.sup.start(names, time.monotonic())})

    def restart(self, names: list[str], reply: Reply) -> None:
        """Restart programs; answered at once."""
        if self.shutting_down:
            reply(error("the supervisor is shutting down"))
            return
        reply({"ok": True, "programs": self.sup.restart(names, time.monotonic())})

    def stop(self, names: list[str], reply: Reply) -> None:
        """Stop programs; answered once their processes are gone."""
        chosen = self.sup.stop(names)
        self._waiters.append((lambda: self.sup.idle(chosen), lambda: reply({"ok": True, "programs": chosen})))

    def logs(self, request: dict[str, Any], reply: Reply, detach: Detach | None) -> None:
        """Answer a `logs` request, or stream new lines to a follower (see logfiles.py)."""
        self.log_files.handle(request, reply, detach)

    def reload(self, names: list[str], reply: Reply) -> None:
        """Replace the processes of programs one at a time; answered when the rollout is over."""
        if self.shutting_down:
            reply(error("the supervisor is shutting down"))
            return

        how: dict[str, Any] = {}

        def done(problem: str) -> None:
            reply({**error(problem), **how} if problem else {"ok": True, **how})

        ask = self.sup.reload(names, done)
        how.update(programs=ask.programs, waited_for=ask.waits_for, joined=ask.joined)
        programs = ", ".join(ask.programs)
        if ask.joined:
            self.log(f"reload of {programs} asked; joins the reload of {programs} waiting its turn")
        elif ask.waits_for:
            self.log(
                f"reload of {programs} asked; waits for the reload of {', '.join(ask.waits_for)} under way"
            )
        else:
            self.log(f"reload of {programs} asked")

    def reload_config(self, reply: Reply) -> None:
        """Re-read the services file and adopt it, or refuse it whole; answered when the rollout is over."""
        if self.shutting_down:
            reply(error("the supervisor is shutting down"))
            return
        path = self.sup.services.path
        try:
            new = load_services(path)
            fresh = self.listeners.prepare(new)
        except SpecError as exc:
            self.log(f"services file refused, nothing changed: {exc}")
            self.events.emit("reload-config", f"refused: {exc}", failed=True)
            reply(error(str(exc)))
            return
        self.standby.close()  # `adopt` may close a socket it answers on; the next turn takes them again
        self.listeners.adopt(new, fresh)
        result: dict[str, Any] = {}

        def done(problem: str) -> None:
            reply({**error(problem), **result} if problem else {"ok": True, **result})

        diff = self.sup.reconfigure(new, time.monotonic(), done)
        result.update(changed=diff.changed, added=diff.added, removed=diff.removed, unchanged=diff.unchanged)
        self.log(f"services file reloaded: {', '.join(f'{k} {v}' for k, v in result.items() if v)}")
        self.events.emit("reload-config", "services file reloaded", **result)

    def events_request(self, since: float | None, follow: bool, reply: Reply, detach: Detach | None) -> None:
        """The recent events; with `follow`, then every new one on the same connection."""
        recent = self.events.recent(since)
        if not follow or detach is None:
            reply({"ok": True, "events": recent})
            return
        follower = Follower(detach(), self.selector, self._followers.discard)
        self._followers.add(follower)
        for event in recent:
            follower.send(event)

        def forward(event: Event) -> None:
            if not follower.send(event):
                self.events.unsubscribe(forward)

        self.events.subscribe(forward)

    def shutdown(self, reply: Reply) -> None:
        """Stop everything, answer, exit."""
        self._shutdown_replies.append(reply)
        self.begin_shutdown("shutdown asked on the control socket")

    # The loop -------------------------------------------------------------------------------------------
    def begin_shutdown(self, why: str) -> None:
        """Stop every program (dependents first); the loop ends when none is left."""
        if not self.shutting_down:
            self.shutting_down = True
            self.notify.stopping()
            self.log(f"shutting down: {why}")
            self.sup.stop(["all"])

    def run(self) -> None:
        """Start every program and supervise until shut down."""
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGCHLD):
            signal.signal(signum, self._on_signal)
        signal.set_wakeup_fd(self._wake_w, warn_on_full_buffer=False)
        self.selector.register(self._wake_r, selectors.EVENT_READ, self._drain_wakeup)
        self.control = ControlServer(self.run_dir.socket_path, self.selector, self)
        # Metrics hook (metrics.py): the services file's optional [metrics] endpoint, served by this loop's
        # selector from `self.status`; absent table -> None. It lives as long as the process.
        from appliance.supervisor import metrics

        self.metrics = metrics.serve(self.sup.services.path, self.selector, self.status, self.log)
        self.log(f"supervising {', '.join(self.sup.instances)} (pid {os.getpid()})")
        self.sup.start(["all"], time.monotonic())
        try:
            self._loop()
        finally:
            self._close()

    def _loop(self) -> None:
        while True:
            now = time.monotonic()
            if self._signalled is not None:
                signum, self._signalled = self._signalled, None
                if signum == signal.SIGHUP:
                    self.log("SIGHUP: reloading the services file")
                    self.reload_config(lambda answer: None if answer["ok"] else self.log(answer["error"]))
                elif signum != signal.SIGCHLD:
                    self.begin_shutdown(f"{signal.Signals(signum).name} received")
            self._reap(now)
            self.probes.expire(now)
            self.health_probes.expire(now)
            self.standby.expire(now)
            if now >= self._memory_at:
                self._memory_at = now + MEMORY_INTERVAL
                self._check_memory(now)
            self.sup.tick(now)
            self._after_tick()
            self.log_files.tick(time.time())  # age-based rotation of quiet logs, quota, followers
            if self.shutting_down and self.sup.idle():
                return
            sources = (self.sup, self.probes, self.health_probes, self.standby)
            deadlines = [d for source in sources if (d := source.next_deadline()) is not None]
            timeout = min([SAFETY_WAKEUP, *(d - now for d in deadlines)])
            for key, mask in self.selector.select(max(timeout, 0.0)):
                try:
                    key.data(mask)
                except Exception as exc:  # one bad event (a bug, a full disk) must not end supervision
                    self.log(f"internal error while handling an event: {exc!r}")

    def _reap(self, now: float) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            returncode = os.waitstatus_to_exitcode(status)
            proc = self._procs.pop(pid, None)
            if proc is None:
                if not self.probes.reaped(pid, returncode):
                    self.health_probes.reaped(pid, returncode)
                continue
            proc.returncode = returncode  # reaped here, so Popen must not wait for it again
            self._ticks.pop(pid, None)
            self.notify.forget(pid)
            self._dirty = True
            said = self.outputs.exited(pid)  # its last words, before the group is killed
            # The group dies with its leader: no orphaned grandchild keeps a port or a lock.
            process.signal_group(pid, signal.SIGKILL)
            inst = self.sup.exited(pid, returncode, now, said)
            if inst is not None and inst.state.value in ("stopped", "exited"):
                words = f": {inst.last_words()}" if inst.state.value == "exited" and said else ""
                self.log(f"{inst.label}: pid {pid} {inst.reason}{words}, now {inst.state.value}")

    def _after_tick(self) -> None:
        # systemd (Type=notify) hears READY=1 once the first starts are settled, not once all succeed: a
        # program crash-looping on a dead database must not make systemd kill the supervisor that retries it.
        if not self.shutting_down and not any(inst.state.value == "starting" for inst in self.sup.all()):
            self.notify.started()
        held = self.listeners.by_address
        answered = {held[a]: name for a, name in self.sup.unattended().items() if a in held}
        for change in self.standby.update(answered):
            self.log(change)
            self.events.emit("standby", change)
        if self._dirty:
            self._dirty = False
            children = [
                ChildRecord(program=i.spec.name, instance=i.index, pid=i.pid, start_ticks=self._ticks[i.pid])
                for i in self.sup.all()
                if i.pid is not None and i.pid in self._ticks
            ]
            try:
                self.run_dir.write_state(children)
            except OSError as exc:
                self.log(f"cannot write {self.run_dir.state_file}: {exc}")
        if self._waiters:
            done = [w for w in self._waiters if w[0]()]
            for waiter in done:
                self._waiters.remove(waiter)
                waiter[1]()

    def _close(self) -> None:
        for _, answer in self._waiters:
            answer()
        for reply in self._shutdown_replies:
            reply({"ok": True})
        self.log("all programs stopped" if self.sup.idle() else "exiting with programs still running")
        self.probes.close()
        self.health_probes.close()
        self.standby.close()
        for follower in list(self._followers):
            follower.close()
        self.listeners.close()
        self.notify.close()
        if self.metrics is not None:
            self.metrics.close()
        if self.control is not None:
            self.control.close()
        self.log_files.close()  # followers, then the last compressions (bounded wait)
        self.outputs.close()
        signal.set_wakeup_fd(-1)
        self.selector.close()

    # Callbacks ------------------------------------------------------------------------------------------
    def _on_signal(self, signum: int, _frame: object) -> None:
        if signum != signal.SIGCHLD:  # SIGCHLD only needs the wakeup byte; the loop reaps every turn
            self._signalled = signum

    def _drain_wakeup(self, _mask: int) -> None:
        try:
            while os.read(self._wake_r, 512):
                pass
        except BlockingIOError:
            pass

    def _open_log(self, label: str) -> LogFile:
        path = self.log_dir / f"{label}.log"
        try:
            return self.log_files.open(label)  # rotating, per the [logs] policy
        except OSError as exc:  # run the program anyway; losing its output beats not running it
            self.log(f"{label}: cannot open {path} ({exc.strerror}), its output is discarded")
            return LogFile(Path(os.devnull))

    def _probed(self, pid: int, ok: bool) -> None:
        self.sup.probed(pid, ok, time.monotonic())

    def _reported(self, pid: int, words: str | None, can_work: bool | None) -> None:
        self.sup.reported(pid, words, can_work)

    def _health_checked(self, pid: int, ok: bool) -> None:
        self.sup.health_checked(pid, ok, time.monotonic())

    def _check_memory(self, now: float) -> None:
        # A container's limit is the engine's to enforce (its helper's memory is not the container's).
        limited = [
            i
            for i in self.sup.all()
            if i.spec.memory_limit and i.pid is not None and i.spec.container is None
        ]
        if limited:
            rss = group_rss({i.pid for i in limited if i.pid is not None})
            for inst in limited:
                if inst.pid is not None:
                    inst.memory_checked(rss[inst.pid], now)
        for follower in list(self._followers):
            follower.expire(now)
