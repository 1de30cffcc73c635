"""Which scheduled archives to keep: the newest of each of the last N hours, days and ISO weeks.

Archives made by hand are never removed here; nor is the newest archive of all, whatever the settings.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence

from appliance.config import BackupSettings
from appliance.services.backups.catalog import Summary, summary_path


def _hour(moment: dt.datetime) -> tuple[int, ...]:
    return (moment.year, moment.month, moment.day, moment.hour)


def _day(moment: dt.datetime) -> tuple[int, ...]:
    return (moment.year, moment.month, moment.day)


def _week(moment: dt.datetime) -> tuple[int, ...]:
    year, week, _ = moment.isocalendar()
    return (year, week)


def to_keep(archives: Sequence[Summary], policy: BackupSettings, now: dt.datetime) -> set[str]:
    """Names of the scheduled full archives the policy keeps (``archives`` in any order)."""
    scheduled = sorted(
        (item for item in archives if item.scheduled and item.kind == "full"),
        key=lambda item: item.created_at,
        reverse=True,
    )
    keep: set[str] = set()
    if scheduled:
        keep.add(scheduled[0].name)
    rules: list[tuple[int, Callable[[dt.datetime], tuple[int, ...]], dt.timedelta]] = [
        (policy.keep_hourly, _hour, dt.timedelta(hours=1)),
        (policy.keep_daily, _day, dt.timedelta(days=1)),
        (policy.keep_weekly, _week, dt.timedelta(weeks=1)),
    ]
    for count, bucket, width in rules:
        if count <= 0:
            continue
        window = {bucket(now - width * n) for n in range(count)}
        taken: set[tuple[int, ...]] = set()
        for item in scheduled:
            slot = bucket(item.created_at)
            if slot in window and slot not in taken:
                taken.add(slot)
                keep.add(item.name)
    return keep


def prune(archives: Sequence[Summary], policy: BackupSettings, now: dt.datetime) -> list[str]:
    """Remove the scheduled archives (and their summaries) the policy does not keep; returns their names."""
    keep = to_keep(archives, policy, now)
    removed = []
    for item in archives:
        if item.scheduled and item.kind == "full" and item.name not in keep:
            summary_path(item.path).unlink(missing_ok=True)
            item.path.unlink(missing_ok=True)
            removed.append(item.name)
    return removed
