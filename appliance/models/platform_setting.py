"""Settings operators change at run time (rate limits), shared by every process through the database."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, String
from sqlalchemy.orm import Mapped, mapped_column

from appliance.db.base import Base, utcnow


class PlatformSetting(Base):
    """One named setting. Processes re-read the table every few seconds, so a change needs no restart."""

    __tablename__ = "platform_settings"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    value: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    updated_by: Mapped[str | None] = mapped_column(String(100), default=None)
