"""Rotated log files: their names, when to rotate, which to delete for the quota, gzip off the event loop.

A current file is `<label>.log`. Rotation renames it to `<label>.<YYYYmmddTHHMMSS.fffZ>.log`, stamped
with the UTC time of the rotation (so names sort by age, and a file holds lines older than its stamp);
compression then turns that into `<label>.<stamp>.log.gz`. Labels hold no dot, so `api.` never matches
`api-2.`.
"""

from __future__ import annotations

import contextlib
import gzip
import os
import queue
import re
import shutil
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from appliance.supervisor.logpolicy import LogPolicy

_ROTATED = re.compile(r"^([A-Za-z0-9][A-Za-z0-9_-]*)\.(\d{8}T\d{6}\.\d{3}Z)\.log(\.gz)?$")
_CURRENT = re.compile(r"^([A-Za-z0-9][A-Za-z0-9_-]*)\.log$")


@dataclass(frozen=True)
class LogDirEntry:
    """One log file in the log dir."""

    path: Path
    label: str
    size: int
    stamp: str | None  # rotation stamp; None for a current file


def rotation_stamp(now: float) -> str:
    """`20261122T051200.123Z`: sorts like the time it names."""
    return time.strftime("%Y%m%dT%H%M%S", time.gmtime(now)) + f".{int(now % 1 * 1000):03d}Z"


def rotated_path(current: Path, now: float) -> tuple[Path, float]:
    """Where `<label>.log` goes when rotated at `now`, and the time its name says (later if `now` is taken).

    The caller passes a `now` past its previous rotation: a name freed by the quota must not be reused, or
    a newer file would sort as the oldest one.
    """
    label = current.name.removesuffix(".log")
    while True:
        candidate = current.with_name(f"{label}.{rotation_stamp(now)}.log")
        if not candidate.exists() and not candidate.with_name(candidate.name + ".gz").exists():
            return candidate, now
        now += 0.001


def should_rotate(size: int, incoming: int, first_at: float | None, now: float, policy: LogPolicy) -> bool:
    """Whether to rotate before writing `incoming` bytes; an empty file never rotates (no empty files)."""
    if size == 0:
        return False
    return size + incoming > policy.max_bytes or (first_at is not None and now - first_at >= policy.max_age)


def scan(log_dir: Path) -> list[LogDirEntry]:
    """Every current and rotated log file of `log_dir`, rotated ones oldest first, then current ones."""
    found: list[LogDirEntry] = []
    try:
        names = os.listdir(log_dir)
    except OSError:
        return []
    for name in names:
        rotated, current = _ROTATED.match(name), _CURRENT.match(name)
        if rotated is None and current is None:
            continue
        try:
            size = os.stat(log_dir / name).st_size
        except OSError:  # deleted meanwhile
            continue
        if rotated is not None:
            found.append(LogDirEntry(log_dir / name, rotated.group(1), size, rotated.group(2)))
        elif current is not None:
            found.append(LogDirEntry(log_dir / name, current.group(1), size, None))
    return sorted(found, key=lambda e: (e.stamp is None, e.stamp or "", e.path.name))


def rotated_of(log_dir: Path, label: str) -> list[LogDirEntry]:
    """The rotated files of one label, oldest first."""
    return [e for e in scan(log_dir) if e.label == label and e.stamp is not None]


def quota_victims(entries: Iterable[LogDirEntry], quota: int) -> list[LogDirEntry]:
    """The rotated files to delete, oldest first, to bring the total to `quota`; never a current file."""
    entries = list(entries)
    excess = sum(e.size for e in entries) - quota
    victims: list[LogDirEntry] = []
    for entry in sorted((e for e in entries if e.stamp is not None), key=lambda e: (e.stamp, e.path.name)):
        if excess <= 0:
            break
        victims.append(entry)
        excess -= entry.size
    return victims


def compress(path: Path) -> Path:
    """Gzip `path` into `path.gz` (through a temporary name, so a crash leaves no half file) and remove it."""
    target = path.with_name(path.name + ".gz")
    partial = path.with_name(path.name + ".gz.tmp")
    with open(path, "rb") as src, gzip.open(partial, "wb", compresslevel=6) as dst:
        shutil.copyfileobj(src, dst, 1 << 20)
    os.replace(partial, target)
    path.unlink()
    return target


class Housekeeper:
    """A worker thread compresses rotated files and enforces the quota: the loop never waits on disk."""

    def __init__(self, log_dir: Path, policy: LogPolicy, log: Callable[[str], None]) -> None:
        self.log_dir, self.policy, self.log = log_dir, policy, log
        self._jobs: queue.Queue[Path | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="log-housekeeper", daemon=True)
        self._thread.start()
        for partial in log_dir.glob("*.log.gz.tmp"):  # left by a crash during compression
            with contextlib.suppress(OSError):
                partial.unlink()
        for entry in scan(log_dir):  # rotated but not compressed before the last exit
            if entry.stamp is not None and entry.path.suffix == ".log":
                self.rotated(entry.path)
        self.check_quota()

    def rotated(self, path: Path) -> None:
        """A file was just rotated: compress it (if the policy says so), then check the quota."""
        self._jobs.put(path)

    def check_quota(self) -> None:
        """Check the quota soon (the current files grow between rotations too)."""
        self._jobs.put(self.log_dir)  # the directory itself stands for "nothing to compress"

    def close(self, timeout: float = 10.0) -> None:
        """Finish queued work (bounded by `timeout`), then stop the thread."""
        self._jobs.put(None)
        self._thread.join(timeout)

    def _run(self) -> None:
        while (job := self._jobs.get()) is not None:
            try:
                if job != self.log_dir and self.policy.compress and job.exists():
                    compress(job)
                self._enforce_quota()
            except Exception as exc:  # a full disk or a vanished file must not end housekeeping
                self.log(f"log housekeeping failed on {job}: {exc!r}")

    def _enforce_quota(self) -> None:
        entries = scan(self.log_dir)
        total = sum(e.size for e in entries)
        for victim in quota_victims(entries, self.policy.quota_bytes):
            with contextlib.suppress(FileNotFoundError):
                victim.path.unlink()
                self.log(
                    f"log quota {self.policy.quota_bytes} bytes exceeded ({total} bytes): "
                    f"deleted {victim.path.name} ({victim.size} bytes)"
                )
