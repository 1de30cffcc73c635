"""Spawning one child: its own session, killed with the supervisor (PR_SET_PDEATHSIG), output on pipes."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Mapping

from appliance.supervisor.instance import SpawnError
from appliance.supervisor.specs import ProgramSpec

PR_SET_PDEATHSIG = 1

_prctl: Callable[..., int] | None = None
if sys.platform.startswith("linux"):
    try:
        _prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):  # pragma: no cover - a libc without prctl
        _prctl = None


def _child_setup(parent: int) -> Callable[[], None]:
    """Runs in the child between fork and exec: die with the supervisor, even if it is SIGKILLed."""

    def setup() -> None:
        if _prctl is not None:
            _prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
        if os.getppid() != parent:  # the supervisor died before prctl took effect
            os._exit(1)

    return setup


def spawn(spec: ProgramSpec, base_env: Mapping[str, str]) -> subprocess.Popen[bytes]:
    """Start `spec.command` in a new session (pid == process group id), stdout and stderr on pipes.

    Must be called from the supervisor's main thread: the parent-death signal follows the thread that forked.
    """
    env = {**base_env, **spec.environment}
    try:
        return subprocess.Popen(
            spec.command,
            cwd=spec.cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
            preexec_fn=_child_setup(os.getpid()),  # noqa: PLW1509 - spawned from the single main thread
        )
    except FileNotFoundError as exc:
        if spec.cwd is not None and exc.filename == spec.cwd:
            raise SpawnError(f"working directory not found: {spec.cwd}") from exc
        raise SpawnError(f"command not found: {spec.command[0]}") from exc
    except PermissionError as exc:
        raise SpawnError(f"permission denied: {exc.filename or spec.command[0]}") from exc
    except (OSError, subprocess.SubprocessError) as exc:
        raise SpawnError(f"cannot start {spec.command[0]}: {exc}") from exc


def signal_group(pgid: int, sig: int) -> None:
    """Send `sig` to every process of group `pgid`; a group that is already gone is fine."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)
