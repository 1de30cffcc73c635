"""Settings of the day-2 operations: scheduled backups, where they go and how long they are kept."""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import Field, field_validator

from appliance.config.section import Section

_CRON_FIELD = re.compile(r"^(\*|\d+(-\d+)?)(/\d+)?(,(\*|\d+(-\d+)?)(/\d+)?)*$")
_CRON_NAMES = ("minute", "hour", "day of month", "month", "day of week")


class BackupSettings(Section):
    directory: Path | None = None
    """Where archives are written (and listed, verified, pruned). Unset: <data_dir>/backups. Put it on
    another disk or a mounted remote share: a backup on the database's own disk does not survive that disk."""

    key_file: Path | None = None
    """The age identity archives are encrypted to (created by `appliance init`, mode 0600). Unset:
    <data_dir>/secrets/backup.key. Keep a copy off this machine: without it no archive can be read."""

    database_url: str | None = None
    """PostgreSQL: the role `pg_dump` reads the database as, and in which `appliance backup verify` makes
    its scratch database. It must see every tenant's rows (the tables' row-level security is FORCEd, so the
    schema owner does not): a role with BYPASSRLS, pg_read_all_data and CREATEDB (the playbooks make one).
    Unset: database.migrations_url, which works when that role is a superuser."""

    schedule: str = "17 * * * *"
    """When the periodic worker takes a backup, as a cron line (minute hour day month weekday, UTC).
    The default, every hour at :17, gives a recovery point of at most one hour. Empty: no scheduled
    backups."""

    keep_hourly: int = Field(default=24, ge=0)
    """Scheduled archives kept: the newest of each of the last N hours..."""

    keep_daily: int = Field(default=7, ge=0)
    """...of each of the last N days..."""

    keep_weekly: int = Field(default=4, ge=0)
    """...and of each of the last N ISO weeks. Older scheduled archives are removed after each scheduled
    backup; archives made by hand (`appliance backup create`) are never removed automatically."""

    max_age_hours: float = Field(default=26.0, gt=0)
    """The newest good backup older than this is a failure for `appliance doctor` and the
    ApplianceBackupTooOld alert."""

    @field_validator("database_url")
    @classmethod
    def _postgresql(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith("postgresql"):
            raise ValueError(f"{value.split(':', 1)[0]!r} is not supported: use postgresql+psycopg://")
        return value

    @field_validator("schedule")
    @classmethod
    def _cron(cls, value: str) -> str:
        value = " ".join(value.split())
        if not value:
            return value
        fields = value.split(" ")
        if len(fields) != len(_CRON_NAMES):
            raise ValueError(f"{value!r} is not a cron line: five fields, minute hour day month weekday")
        for name, field in zip(_CRON_NAMES, fields, strict=True):
            if not _CRON_FIELD.match(field):
                raise ValueError(f"{field!r} is not a cron {name} field (e.g. *, 5, 1-5, */15, 0,30)")
        return value
