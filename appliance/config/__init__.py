"""Typed settings of the appliance: one object, nested sections, a docstring under every field.

Settings are built once (by the CLI or by the test that needs them) and handed down; nothing here runs at
import time. Values come from a TOML file (see ``appliance.configfile``) and ``APPLIANCE_...`` environment
variables, which win over the file (``APPLIANCE_API__PORT=9000`` sets ``[api] port``). With no file at all
the appliance runs embedded: a data directory, a SQLite database, Huey on SQLite, the API on 127.0.0.1:8080.

This package is the settings' public face: the root ``Settings`` lives here, and the names callers use are
imported here. The sections live by what they configure: serving (api, rate_limits, logging, supervisor),
storage (database, queue), security, workloads (jobs, outbound, webhooks, monitoring); environment reads the
``APPLIANCE_...`` variables.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from appliance import hostport
from appliance.config.environment import EnvironmentSource, is_list_setting
from appliance.config.operations import BackupSettings
from appliance.config.security import MIN_SECRET_LENGTH, PLACEHOLDER_SECRET, SecuritySettings
from appliance.config.serving import ApiSettings, LoggingSettings, RateLimitSettings, SupervisorSettings
from appliance.config.storage import DatabaseSettings, QueueSettings
from appliance.config.workloads import JobSettings, MonitoringSettings, OutboundSettings, WebhookSettings

__all__ = [
    "MIN_SECRET_LENGTH",
    "PLACEHOLDER_SECRET",
    "ApiSettings",
    "BackupSettings",
    "DatabaseSettings",
    "JobSettings",
    "LoggingSettings",
    "Mode",
    "MonitoringSettings",
    "OutboundSettings",
    "QueueSettings",
    "RateLimitSettings",
    "SecuritySettings",
    "Settings",
    "SupervisorSettings",
    "WebhookSettings",
    "default_data_dir",
    "is_list_setting",
]

Mode = Literal["embedded", "production", "development"]


def default_data_dir() -> Path:
    """Where the appliance keeps its state when no ``data_dir`` is configured."""
    if os.geteuid() == 0:
        return Path("/var/lib/forge-appliance")
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "forge-appliance"


class Settings(BaseSettings):
    """Everything the appliance can be told. See config/appliance.example.toml for a commented file."""

    model_config = SettingsConfigDict(
        env_prefix="APPLIANCE_",
        env_nested_delimiter="__",
        extra="forbid",
        use_attribute_docstrings=True,
        frozen=True,
    )

    mode: Mode = "embedded"
    """embedded (one machine, defaults), production (refuses default secrets), development (lenient)."""

    data_dir: Path = Field(default_factory=default_data_dir)
    """Directory for the database, queue, secrets, logs and run files."""

    api: ApiSettings = ApiSettings()
    database: DatabaseSettings = DatabaseSettings()
    queue: QueueSettings = QueueSettings()
    security: SecuritySettings = SecuritySettings()
    logging: LoggingSettings = LoggingSettings()
    supervisor: SupervisorSettings = SupervisorSettings()
    rate_limits: RateLimitSettings = RateLimitSettings()
    jobs: JobSettings = JobSettings()
    outbound: OutboundSettings = OutboundSettings()
    webhooks: WebhookSettings = WebhookSettings()
    monitoring: MonitoringSettings = MonitoringSettings()
    backups: BackupSettings = BackupSettings()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The file's values arrive as init arguments; the environment overrides them.
        return EnvironmentSource(settings_cls), init_settings

    @model_validator(mode="after")
    def _expand_paths(self) -> Settings:
        # Derived defaults follow data_dir; the object is frozen, so fill them in once here.
        data = self.data_dir.expanduser()
        object.__setattr__(self, "data_dir", data)
        if self.database.url is None:
            db = self.database.model_copy(update={"url": f"sqlite:///{data / 'appliance.db'}"})
            object.__setattr__(self, "database", db)
        if self.queue.url is None:
            queue = self.queue.model_copy(update={"url": f"sqlite:///{data / 'queue.db'}"})
            object.__setattr__(self, "queue", queue)
        if self.security.secret_key_file is None:
            sec = self.security.model_copy(update={"secret_key_file": data / "secrets" / "signing.key"})
            object.__setattr__(self, "security", sec)
        if self.backups.directory is None or self.backups.key_file is None:
            backups = self.backups.model_copy(
                update={
                    "directory": self.backups.directory or data / "backups",
                    "key_file": self.backups.key_file or data / "secrets" / "backup.key",
                }
            )
            object.__setattr__(self, "backups", backups)
        sup = self.supervisor
        updates = {}
        if sup.run_dir is None:
            updates["run_dir"] = data / "run"
        if sup.log_dir is None:
            updates["log_dir"] = data / "logs"
        if updates:
            object.__setattr__(self, "supervisor", sup.model_copy(update=updates))
        return self

    # Resolved views, so that callers never deal with the optional forms above.
    @property
    def database_url(self) -> str:
        assert self.database.url is not None
        return self.database.url

    @property
    def migrations_url(self) -> str:
        return self.database.migrations_url or self.database_url

    @property
    def queue_url(self) -> str:
        assert self.queue.url is not None
        return self.queue.url

    @property
    def rate_limit_url(self) -> str | None:
        """The Redis the rate limiter shares between processes; None: an in-process limiter."""
        if self.rate_limits.url is not None:
            return self.rate_limits.url
        if self.queue_url.startswith(("redis://", "rediss://", "unix://")):
            return self.queue_url
        return None

    @property
    def secret_key_file(self) -> Path:
        assert self.security.secret_key_file is not None
        return self.security.secret_key_file

    @property
    def backup_dir(self) -> Path:
        assert self.backups.directory is not None
        return self.backups.directory

    @property
    def backup_key_file(self) -> Path:
        assert self.backups.key_file is not None
        return self.backups.key_file

    @property
    def run_dir(self) -> Path:
        assert self.supervisor.run_dir is not None
        return self.supervisor.run_dir

    @property
    def log_dir(self) -> Path:
        assert self.supervisor.log_dir is not None
        return self.supervisor.log_dir

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def api_url(self) -> str:
        return f"http://{hostport.join(hostport.reachable(self.api.host), self.api.port)}"
