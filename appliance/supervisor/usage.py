"""CPU and memory of the supervised processes, read from /proc: for the metrics endpoint, and added to a
status answer when it asks for `usage`."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Usage:
    """CPU and memory of one process or a group of them."""

    cpu_seconds: float = 0.0
    rss_bytes: int = 0


def _read(path: str) -> bytes:
    """A small /proc file in one read (os.open: half the cost of Path.read_bytes, paid for every process)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        return os.read(fd, 4096)
    finally:
        os.close(fd)


@dataclass(frozen=True)
class ProcReader:
    """Reads /proc; the root, clock ticks and page size are parameters so tests can use a fake tree."""

    root: Path = Path("/proc")
    clock_ticks: int = field(default_factory=lambda: os.sysconf("SC_CLK_TCK"))
    page_size: int = field(default_factory=lambda: os.sysconf("SC_PAGE_SIZE"))

    def stat_fields(self, pid: int | str) -> list[str] | None:
        """Fields 3.. of /proc/<pid>/stat (state first), None if the process is gone.

        The command name (field 2) may hold spaces and parentheses, so split after its last ')'.
        """
        try:
            text = _read(f"{self.root}/{pid}/stat").decode(errors="replace")
        except OSError:
            return None
        return text[text.rfind(")") + 2 :].split()

    def rss_bytes(self, pid: int | str) -> int:
        """Resident memory of one process (statm's second field, in pages), 0 if it is gone."""
        try:
            return int(_read(f"{self.root}/{pid}/statm").split()[1]) * self.page_size
        except (OSError, IndexError, ValueError):
            return 0

    def process(self, pid: int) -> Usage:
        """User + system CPU and RSS of one process, not counting its children."""
        fields = self.stat_fields(pid)
        if fields is None:
            return Usage()
        ticks = int(fields[11]) + int(fields[12])  # utime, stime (stat fields 14 and 15)
        return Usage(ticks / self.clock_ticks, self.rss_bytes(pid))

    def groups(self, pgids: Iterable[int]) -> dict[int, Usage]:
        """Usage summed over every live process of each process group (one pass over /proc).

        CPU includes what members reaped from their own children (cutime, cstime), so a master process
        that forks short-lived workers is charged for them.
        """
        wanted = set(pgids)
        ticks: dict[int, int] = dict.fromkeys(wanted, 0)
        rss: dict[int, int] = dict.fromkeys(wanted, 0)
        if wanted:
            try:
                entries = os.listdir(self.root)
            except OSError:
                entries = []
            for entry in entries:
                if not entry.isdigit():
                    continue
                fields = self.stat_fields(entry)
                if fields is None or len(fields) < 15:
                    continue
                pgrp = int(fields[2])  # stat field 5
                if pgrp in wanted and fields[0] != "Z":
                    ticks[pgrp] += sum(int(f) for f in fields[11:15])  # utime, stime, cutime, cstime
                    rss[pgrp] += self.rss_bytes(entry)
        return {g: Usage(ticks[g] / self.clock_ticks, rss[g]) for g in wanted}


def with_usage(status: Mapping[str, Any], proc: ProcReader | None = None) -> dict[str, Any]:
    """`status` with `cpu_seconds` and `rss_bytes` on every program row (None where no process runs).

    One pass over /proc for every group at once (`ProcReader.groups`); the pid of an instance is its
    process group id, since every program runs in a session of its own. CPU counts what the group's
    members reaped from their own children, as the metrics' `appliance_program_cpu_seconds_total` does.
    """
    reader = proc or ProcReader()
    programs: list[Mapping[str, Any]] = list(status["programs"])
    groups = reader.groups(row["pid"] for row in programs if row.get("pid"))
    rows: list[dict[str, Any]] = []
    for row in programs:
        group = groups.get(row["pid"]) if row.get("pid") else None
        rows.append(
            {
                **row,
                "cpu_seconds": None if group is None else round(group.cpu_seconds, 2),
                "rss_bytes": None if group is None else group.rss_bytes,
            }
        )
    return {**status, "programs": rows}
