"""Resident memory of whole process groups, read from /proc (a program's children count towards it)."""

from __future__ import annotations

import os

PAGE = os.sysconf("SC_PAGE_SIZE")


def group_rss(pgids: set[int]) -> dict[int, int]:
    """Bytes of RSS per process group in `pgids`, summed over every live process of each group."""
    totals = dict.fromkeys(pgids, 0)
    if not pgids:
        return totals
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as handle:
                stat = handle.read()
        except OSError:
            continue  # exited meanwhile
        fields = stat[stat.rindex(b")") + 2 :].split()
        pgid = int(fields[2])
        if pgid in totals:
            totals[pgid] += int(fields[21]) * PAGE  # rss, in pages
    return totals
