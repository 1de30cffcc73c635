"""Tables the appliance keeps about itself rather than about any tenant."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from appliance.db.base import Base, utcnow


class WorkerHeartbeat(Base):
    """The last sign of life of each worker process, written by a periodic task."""

    __tablename__ = "worker_heartbeats"

    worker: Mapped[str] = mapped_column(String(200), primary_key=True)
    """host:pid of the worker process that ran the task."""
    last_seen: Mapped[dt.datetime] = mapped_column(default=utcnow)
    beats: Mapped[int] = mapped_column(default=0)
