"""The run directory: one supervisor at a time (flock), state.json, and the leftovers of a dead one."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypedDict


class RunDirBusy(RuntimeError):
    """Another live supervisor owns the run directory."""


class ChildRecord(TypedDict):
    """A child as state.json lists it; `start_ticks` tells a recycled pid from the process we spawned."""

    program: str
    instance: int
    pid: int
    start_ticks: int


def _stat(pid: int) -> tuple[str, int, int] | None:
    """(state letter, process group, start ticks) of `pid` from /proc/<pid>/stat, None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            stat = handle.read()
    except OSError:
        return None
    fields = stat[stat.rindex(b")") + 2 :].split()
    return fields[0].decode(), int(fields[2]), int(fields[19])


def start_ticks(pid: int) -> int | None:
    """The start time of `pid` in clock ticks since boot (/proc/<pid>/stat field 22), None if it is gone."""
    stat = _stat(pid)
    return None if stat is None else stat[2]


def group_members(pgid: int, leader_ticks: int) -> list[int]:
    """Live processes of the group our child `pgid` led, started at `leader_ticks`.

    If the leader is alive its start time must match (else the pid was recycled). If it is gone, the
    group id cannot have been reused while other members held it, so they are ours.
    """
    leader = _stat(pgid)
    if leader is not None and leader[0] != "Z" and leader[2] != leader_ticks:
        return []
    members = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            stat = _stat(int(entry))
            if stat is not None and stat[0] != "Z" and stat[1] == pgid and stat[2] >= leader_ticks:
                members.append(int(entry))
    return members


class RunDir:
    """Owns `<run_dir>`: the lock, the pid file and the state file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.pid_file = path / "supervisor.pid"
        self.state_file = path / "state.json"
        self.socket_path = path / "control.sock"
        self._lock_fd: int | None = None
        self._last = ""

    def acquire(self) -> None:
        """Lock the run dir for this process and write supervisor.pid; raise `RunDirBusy` if taken."""
        self.path.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(self.pid_file, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = os.read(fd, 32).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise RunDirBusy(
                f"another supervisor (pid {owner}) is already running with run dir {self.path}"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._lock_fd = fd

    def release(self) -> None:
        """Remove the socket, the state and pid files, and drop the lock."""
        for path in (self.socket_path, self.state_file, self.pid_file):
            with contextlib.suppress(OSError):
                path.unlink()
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def write_state(self, children: list[ChildRecord]) -> None:
        """Rewrite state.json (atomically) if what it says changed."""
        text = json.dumps(
            {
                "supervisor": {"pid": os.getpid(), "start_ticks": start_ticks(os.getpid())},
                "children": children,
            },
            indent=1,
        )
        if text == self._last:
            return
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(self.state_file)
        self._last = text

    def stale_children(self) -> list[ChildRecord]:
        """Children listed by a previous supervisor's state file (call after `acquire`: it is dead then)."""
        try:
            data = json.loads(self.state_file.read_text(encoding="utf-8"))
            return [c for c in data.get("children", []) if isinstance(c.get("pid"), int)]
        except (OSError, ValueError, AttributeError):
            return []


def clean_stale(
    children: list[ChildRecord], log: Callable[[str], None], timeout: float = 10.0, sleep: float = 0.05
) -> None:
    """Stop what is left of a dead supervisor's children: TERM to each group, then KILL after `timeout`."""
    groups = {}
    for child in children:
        members = group_members(child["pid"], child["start_ticks"])
        if members:
            groups[child["pid"]] = child["start_ticks"]
            log(f"stopping {child['program']}-{child['instance']} left by a dead supervisor: pids {members}")
            with contextlib.suppress(OSError):
                os.killpg(child["pid"], signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while groups and time.monotonic() < deadline:
        groups = {g: t for g, t in groups.items() if group_members(g, t)}
        time.sleep(sleep)
    for pgid in groups:
        log(f"leftover group {pgid} still alive after {timeout:g}s, SIGKILL")
        with contextlib.suppress(OSError):
            os.killpg(pgid, signal.SIGKILL)
