"""Spawning one child: its own session, killed with the supervisor (PR_SET_PDEATHSIG), output on pipes.

This is the launcher of every program: a `kind = "container"` program is a process too, the helper that runs
its container (container.py), which the runtime spawns here with the helper's argv.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import pwd
import signal
import subprocess
import sys
from collections.abc import Callable, Mapping

from appliance.supervisor.instance import SpawnError
from appliance.supervisor.listeners import LISTEN_FD
from appliance.supervisor.specs import ProgramSpec

PR_SET_PDEATHSIG = 1

_prctl: Callable[..., int] | None = None
if sys.platform.startswith("linux"):
    try:
        _prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):  # pragma: no cover - a libc without prctl
        _prctl = None


def die_with_parent(sig: int) -> None:
    """Have the kernel send `sig` to this process when its parent dies (Linux; nothing elsewhere)."""
    if _prctl is not None:
        _prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0)


def _child_setup(parent: int, listen_fd: int | None) -> Callable[[], None]:
    """Runs in the child between fork and exec: die with the supervisor, even if it is SIGKILLed.

    Also puts the shared listening socket at fd 3 (systemd's convention). The supervisor keeps its own
    fd 3 busy (see `reserve_fd3`), so fd 3 here is never subprocess's exec-error pipe; subprocess closes
    every other descriptor after this runs, keeping fd 3 because it is in `pass_fds`. Credentials are
    changed by subprocess before this runs, and changing them clears the parent-death signal: so it is
    set here, after.
    """

    def setup() -> None:
        if listen_fd is not None and listen_fd != LISTEN_FD:
            os.dup2(listen_fd, LISTEN_FD)  # dup2 clears close-on-exec on the copy
        die_with_parent(signal.SIGKILL)
        if os.getppid() != parent:  # the supervisor died before prctl took effect
            os._exit(1)

    return setup


def reserve_fd3() -> int | None:
    """Make sure fd 3 is taken in the supervisor (by /dev/null if free); return the fd opened, if any."""
    try:
        os.fstat(LISTEN_FD)
    except OSError:
        fd = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
        if fd == LISTEN_FD:
            return fd
        os.close(fd)  # a lower descriptor was free: fd 3 is then taken by the next long-lived open
    return None


def spawn(
    spec: ProgramSpec, base_env: Mapping[str, str], listen_fd: int | None = None
) -> subprocess.Popen[bytes]:
    """Start `spec.command` in a new session (pid == process group id), stdout and stderr on pipes.

    With `listen_fd`, the child gets that socket as fd 3 with LISTEN_FDS=1 and LISTEN_FDNAMES=<program>
    (no LISTEN_PID: the pid is not known before exec). With `spec.user`, it runs as that user and its
    groups, with HOME, USER and LOGNAME set. Must be called from the supervisor's main thread: the
    parent-death signal follows the thread that forked.
    """
    env = {**base_env, **spec.environment}
    env.pop("LISTEN_PID", None)
    if listen_fd is not None:
        env.update(LISTEN_FDS="1", LISTEN_FDNAMES=spec.name)
    else:
        env.pop("LISTEN_FDS", None)
        env.pop("LISTEN_FDNAMES", None)
    uid: int | None = None
    gid: int | None = None
    groups: list[int] | None = None
    if spec.user is not None:
        try:
            user = pwd.getpwnam(spec.user)
        except KeyError as exc:
            raise SpawnError(f"no such user: {spec.user}") from exc
        groups = os.getgrouplist(spec.user, user.pw_gid)
        uid, gid = user.pw_uid, user.pw_gid
        env.update(HOME=user.pw_dir, USER=spec.user, LOGNAME=spec.user)
    try:
        return subprocess.Popen(
            spec.command,
            cwd=spec.cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
            pass_fds=() if listen_fd is None else (LISTEN_FD, listen_fd),
            preexec_fn=_child_setup(os.getpid(), listen_fd),  # noqa: PLW1509 - from the single main thread
            user=uid,
            group=gid,
            extra_groups=groups,
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
