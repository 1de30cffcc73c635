"""The response body of /api/v1/platform/doctor: the doctor's findings, as `appliance doctor --json`."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Literal

from pydantic import BaseModel

from appliance.api.schemas.times import Timestamp
from appliance.doctor.finding import Finding, Overall


class FindingOut(BaseModel):
    check: str
    """The check's stable name: config, secret-files, disk-data, disk-backups, database, migrations,
    row-level-security, app-role, clock, redis, queue, supervisor, tls-certificate, backups."""
    status: Literal["ok", "warn", "fail", "skip"]
    """skip: the check does not apply here (row-level security on SQLite), or what it needs failed."""
    finding: str
    """One line naming the value found."""
    hint: str
    """How to fix it (warn and fail); empty otherwise."""


class DoctorReport(BaseModel):
    status: Literal["ok", "warn", "fail"]
    """The worst status of the findings."""
    checked_at: Timestamp
    findings: list[FindingOut]

    @classmethod
    def of(cls, findings: Sequence[Finding], status: Overall, at: dt.datetime) -> DoctorReport:
        return cls(
            status=status,
            checked_at=at,
            findings=[FindingOut.model_validate(finding.as_dict()) for finding in findings],
        )
