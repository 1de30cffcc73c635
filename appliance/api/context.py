"""What the API's routes share: settings, database and queue, built once by create_app."""

from __future__ import annotations

from dataclasses import dataclass

from huey import Huey

from appliance.config import Settings
from appliance.db.session import Database


@dataclass(frozen=True)
class AppContext:
    settings: Settings
    database: Database
    queue: Huey
