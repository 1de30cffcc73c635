"""Bodies of /api/v1/tenant-imports."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class TenantImportIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    archive: str = Field(min_length=1, max_length=255)
    """The archive's file name in the backup directory (the export job's result names it)."""
    slug: str | None = Field(default=None, max_length=63)
    """Import under this slug; a copy with new ids when the original tenant is here."""
