"""CPU and memory of each instance's process group, added to a status answer when it asks for `usage`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from appliance.supervisor.metrics import ProcReader


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
