"""The lifecycle of one supervised process: named states and the table of allowed transitions."""

from __future__ import annotations

from enum import StrEnum


class State(StrEnum):
    """Where one instance of a program is in its life."""

    STOPPED = "stopped"  # not running, and not trying to (or waiting for its dependencies)
    STARTING = "starting"  # spawned, not yet ready
    RUNNING = "running"  # spawned and ready
    BACKOFF = "backoff"  # exited unexpectedly; waiting before the next spawn
    STOPPING = "stopping"  # stop signal sent; waiting for the exit (SIGKILL after stop_timeout)
    EXITED = "exited"  # exited and its restart policy says leave it
    FATAL = "fatal"  # cannot be spawned at all (missing command, bad cwd...)


class IllegalTransition(RuntimeError):
    """A bug: the supervisor tried a transition the table does not allow."""

    def __init__(self, old: State, new: State) -> None:
        super().__init__(f"illegal transition {old.value} -> {new.value}")
        self.old, self.new = old, new


TRANSITIONS: dict[State, frozenset[State]] = {
    State.STOPPED: frozenset(
        {
            State.STARTING,  # STOPPED -> STARTING: wanted, and its dependencies are ready
            State.FATAL,  # STOPPED -> FATAL: the spawn itself failed
        }
    ),
    State.STARTING: frozenset(
        {
            State.RUNNING,  # STARTING -> RUNNING: the readiness probe passed (or there is none)
            State.BACKOFF,  # STARTING -> BACKOFF: exited before ready; try again later
            State.EXITED,  # STARTING -> EXITED: exited before ready and the policy says no restart
            State.STOPPING,  # STARTING -> STOPPING: stop asked, or not ready within ready.timeout
        }
    ),
    State.RUNNING: frozenset(
        {
            State.BACKOFF,  # RUNNING -> BACKOFF: exited on its own and the policy says restart
            State.EXITED,  # RUNNING -> EXITED: exited on its own and the policy says leave it
            State.STOPPING,  # RUNNING -> STOPPING: stop or restart asked
        }
    ),
    State.BACKOFF: frozenset(
        {
            State.STARTING,  # BACKOFF -> STARTING: the backoff delay is over
            State.STOPPED,  # BACKOFF -> STOPPED: stop asked while waiting
            State.FATAL,  # BACKOFF -> FATAL: the respawn itself failed (command removed meanwhile)
        }
    ),
    State.STOPPING: frozenset(
        {
            State.STOPPED,  # STOPPING -> STOPPED: exited after the stop signal (or SIGKILL)
            State.BACKOFF,  # STOPPING -> BACKOFF: it was stopped because it never became ready
        }
    ),
    State.EXITED: frozenset(
        {
            State.STARTING,  # EXITED -> STARTING: start asked by the operator
            State.STOPPED,  # EXITED -> STOPPED: stop asked; the operator acknowledges the exit
            State.FATAL,  # EXITED -> FATAL: start asked but the spawn failed
        }
    ),
    State.FATAL: frozenset(
        {
            State.STARTING,  # FATAL -> STARTING: start asked again (the command may exist now)
            State.STOPPED,  # FATAL -> STOPPED: stop asked; clears the failure
            State.FATAL,  # FATAL -> FATAL: start asked again and the spawn failed again
        }
    ),
}

LIVE = frozenset({State.STARTING, State.RUNNING, State.STOPPING})
"""States in which a process exists."""


def check_transition(old: State, new: State) -> State:
    """Return `new` if the table allows `old -> new`, else raise `IllegalTransition`."""
    if new not in TRANSITIONS[old]:
        raise IllegalTransition(old, new)
    return new
