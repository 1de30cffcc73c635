"""The helper that runs one container program's instance: `python -m appliance.supervisor.container NAME`.

The supervisor spawns, signals and reaps it like any process, so a container gets the restarts, backoff,
log capture, probes and stops of a process without a second launcher in the supervisor's loop. Its job
(containerspec.Launch) comes in its environment. It:

1. removes the container of the same name that a killed supervisor (and helper) left behind;
2. checks that the engine answers and holds the image; if not, says so in one line on stderr (which the
   supervisor shows as the crash-loop reason) and exits 125, like `docker run`: it is retried with backoff,
   so loading the image is enough to bring the program up;
3. creates and starts the container, and copies its stdout and stderr to its own (the program's log);
4. on a stop signal (the supervisor sends the program's stop_signal) asks the engine to stop it: the engine
   sends that signal to the container and kills it `stop_after` seconds later, within the program's
   stop_timeout; the supervisor's death is a stop too (the parent-death signal is SIGTERM);
5. once the container has exited, removes it and exits with its exit code.
"""

from __future__ import annotations

import contextlib
import os
import queue
import signal
import sys
import threading
from typing import BinaryIO

from appliance.supervisor.containerspec import HELPER_ENV, Launch
from appliance.supervisor.engineapi import STDOUT, Engine, EngineError, EngineUnreachable
from appliance.supervisor.process import die_with_parent

EXIT_ENGINE = 125  # the engine, not the container, failed (docker run's own code for it)
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT, signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2)
FLUSH_WAIT = 5.0  # seconds to let the last output through once the container has exited

Event = tuple[str, object]  # ("signal", signum) | ("exit", code) | ("lost" or "gone", why)


class Helper:
    """One run of one container, from the leftover's removal to its own."""

    def __init__(self, job: Launch, out: BinaryIO, err: BinaryIO) -> None:
        self.job, self.out, self.err = job, out, err
        self.engine = Engine(job.engine)
        self.where = f"the Docker engine at {job.engine}"
        self.events: queue.SimpleQueue[Event] = queue.SimpleQueue()  # put() is safe in a signal handler
        self.signalled: int | None = None

    def on_signal(self, signum: int, _frame: object) -> None:
        self.events.put(("signal", signum))

    def say(self, line: str) -> None:
        with contextlib.suppress(OSError):  # a supervisor that died reads nothing: stop the container anyway
            self.err.write(f"{line}\n".encode())
            self.err.flush()

    def stop_asked(self) -> bool:
        """A stop signal came before the container ran (the events hold nothing else then)."""
        with contextlib.suppress(queue.Empty):
            while self.signalled is None:
                kind, value = self.events.get_nowait()
                if kind == "signal":
                    self.signalled = int(str(value))
        return self.signalled is not None

    def run(self) -> int:
        """Run the container to its end; the exit code of the container, or 125 if the engine failed."""
        job = self.job
        try:
            self.engine.ping()
            if self.engine.remove(job.name):
                self.say(f"removed container {job.name}, left running by an earlier supervisor")
            if not self.engine.image_exists(job.image):
                self.say(f"image {job.image} is not on {self.where}: build or load it")
                return EXIT_ENGINE
            if self.stop_asked():
                return 128 + (self.signalled or 0)
            container = self.engine.create(job.name, job.create)
        except EngineUnreachable as exc:
            self.say(f"cannot reach {self.where}: {exc}")
            return EXIT_ENGINE
        except EngineError as exc:
            self.say(f"cannot create container {job.name}: {exc}")
            return EXIT_ENGINE
        try:
            return self._run(container)
        finally:
            with contextlib.suppress(EngineError):
                self.engine.remove(container)

    def _run(self, container: str) -> int:
        if self.stop_asked():
            return 128 + (self.signalled or 0)
        try:
            self.engine.start(container)
        except EngineError as exc:
            self.say(f"cannot start container {self.job.name}: {runtime_words(str(exc))}")
            return EXIT_ENGINE
        copier = threading.Thread(target=self._copy_output, args=(container,), daemon=True)
        copier.start()
        threading.Thread(target=self._wait, args=(container,), daemon=True).start()
        stopping = False
        while True:
            kind, value = self.events.get()
            if kind == "signal" and not stopping:
                stopping = True
                try:
                    self.engine.stop(container, self.job.stop_after)
                except EngineError as exc:  # the engine went away: the wait says so
                    self.say(f"cannot stop container {self.job.name}: {exc}")
            elif kind == "exit":
                copier.join(FLUSH_WAIT)
                code = int(str(value))
                if not stopping and self._out_of_memory(container):
                    self.say(f"container {self.job.name} was killed: out of memory (memory_limit)")
                return code
            elif kind == "lost":
                self.say(f"lost {self.where} while container {self.job.name} ran: {value}")
                return EXIT_ENGINE
            elif kind == "gone":
                self.say(f"{self.where} lost track of container {self.job.name}: {value}")
                return EXIT_ENGINE

    def _wait(self, container: str) -> None:
        try:
            self.events.put(("exit", self.engine.wait(container)))
        except EngineUnreachable as exc:
            self.events.put(("lost", str(exc)))
        except EngineError as exc:  # removed behind our back, say
            self.events.put(("gone", str(exc)))

    def _copy_output(self, container: str) -> None:
        try:
            for stream, data in self.engine.output(container):
                target = self.out if stream == STDOUT else self.err
                target.write(data)
                target.flush()
        except EngineError as exc:  # a logging driver the engine cannot read back, an engine gone
            self.say(f"cannot read the output of container {self.job.name}: {exc}")
        except OSError:  # nobody reads our output any more (the supervisor died): the stop follows
            pass

    def _out_of_memory(self, container: str) -> bool:
        try:
            return bool(self.engine.inspect(container).get("State", {}).get("OOMKilled"))
        except EngineError:
            return False


def runtime_words(message: str) -> str:
    """The part of an engine's start error that names the problem: `exec: "prog": executable file not found
    in $PATH: unknown` rather than the layers it went through (shim task, OCI runtime, runc)."""
    _, found, words = message.rpartition("unable to start container process: ")
    return words if found else message


def main() -> int:
    """Run the job in $FORGE_CONTAINER; the container's exit code."""
    text = os.environ.pop(HELPER_ENV, None)
    if text is None:
        print(
            f'{sys.argv[0]}: the supervisor runs this for kind = "container" programs (no ${HELPER_ENV})',
            file=sys.stderr,
        )
        return 2
    job = Launch.from_json(text)
    helper = Helper(job, sys.stdout.buffer, sys.stderr.buffer)
    for signum in STOP_SIGNALS:
        signal.signal(signum, helper.on_signal)
    die_with_parent(signal.SIGTERM)  # in place of the SIGKILL every child gets: stop the container first
    if os.getppid() != job.supervisor:  # the supervisor died before that took effect
        return 128 + signal.SIGTERM
    return helper.run()


if __name__ == "__main__":
    sys.exit(main())
