"""Bodies of /api/v1/platform/backups."""

from __future__ import annotations

from pydantic import BaseModel, Field

from appliance.api.schemas.times import Timestamp
from appliance.services.backups.catalog import Summary


class BackupOut(BaseModel):
    name: str
    """The archive's file name in the backup directory."""
    kind: str
    """full (the whole appliance) or tenant (one tenant's export)."""
    tenant: str | None
    created_at: Timestamp
    appliance_version: str
    schema_revision: str | None
    database: str
    scheduled: bool
    size: int
    """Bytes."""
    sha256: str
    rows: int
    """Rows in the archive, all tables together."""

    @classmethod
    def of(cls, item: Summary) -> BackupOut:
        return cls(
            name=item.name,
            kind=item.kind,
            tenant=item.tenant,
            created_at=item.created_at,
            appliance_version=item.appliance_version,
            schema_revision=item.schema_revision,
            database=item.database,
            scheduled=item.scheduled,
            size=item.size,
            sha256=item.sha256,
            rows=sum(item.rows.values()),
        )


class BackupList(BaseModel):
    items: list[BackupOut]
    """The archives of this API host's backup directory, newest first."""
    directory: str
    newest_completed_at: Timestamp | None
    """When the newest backup that completed was made (any host's, from the platform's audit chain)."""
    max_age_hours: float
    """The newest backup older than this is an alert (`[backups] max_age_hours`)."""


class RestoreIn(BaseModel):
    confirm: str = Field(max_length=200)
    """The archive's name typed again: a restore replaces every row of the appliance's database."""
