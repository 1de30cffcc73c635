"""Which scheduled archives the retention policy keeps: the newest of each hour, day and ISO week asked
for; never an archive made by hand, never the newest of all."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from appliance.config import BackupSettings
from appliance.services.backups import catalog, retention


def _summary(moment: dt.datetime, *, scheduled: bool = True, kind: catalog.Kind = "full") -> catalog.Summary:
    return catalog.Summary(
        path=Path("/backups") / catalog.archive_name(kind, moment),
        kind=kind,
        created_at=moment,
        appliance_version="0.2.0",
        schema_revision="0013",
        database="sqlite",
        tenant=None,
        scheduled=scheduled,
        size=1,
        sha256="0" * 64,
        rows={},
    )


NOW = dt.datetime(2026, 12, 7, 12, 30, tzinfo=dt.UTC)  # a Monday


def test_hourly_archives_for_three_weeks_keep_the_newest_of_each_hour_day_and_week() -> None:
    archives = [_summary(NOW - dt.timedelta(minutes=13 + 60 * n)) for n in range(24 * 21)]
    archives += [_summary(NOW - dt.timedelta(minutes=40 + 60 * n)) for n in range(3)]  # two in some hours
    policy = BackupSettings(keep_hourly=3, keep_daily=2, keep_weekly=2)
    kept = retention.to_keep(archives, policy, NOW)
    at = [dt.datetime(2026, 12, 7, h, m, tzinfo=dt.UTC) for h, m in ((12, 17), (11, 50), (10, 50))]
    expected = {catalog.archive_name("full", moment) for moment in at}  # each of 3 hours' newest
    # Yesterday's newest is also the previous ISO week's (today, Monday, starts a week).
    expected.add(catalog.archive_name("full", dt.datetime(2026, 12, 6, 23, 17, tzinfo=dt.UTC)))
    assert kept == expected
    assert len(kept) == 4


def test_archives_made_by_hand_and_tenant_exports_are_never_pruned(tmp_path: Path) -> None:
    policy = BackupSettings(keep_hourly=1, keep_daily=0, keep_weekly=0)
    made = []
    for n, scheduled in enumerate((True, True, False)):
        moment = NOW - dt.timedelta(hours=n)
        path = tmp_path / catalog.archive_name("full", moment)
        path.write_bytes(b"x")
        catalog.write_summary(
            path,
            {
                "format": 1,
                "kind": "full",
                "created_at": moment.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "appliance_version": "0.2.0",
                "database": "sqlite",
                "scheduled": scheduled,
                "size": 1,
                "sha256": "0" * 64,
            },
        )
        made.append(path)
    removed = retention.prune(catalog.listing(tmp_path), policy, NOW)
    assert removed == [made[1].name]
    assert not made[1].exists()
    assert not catalog.summary_path(made[1]).exists()
    assert made[0].exists()
    assert made[2].exists()  # by hand
