"""Typed settings of the appliance: one object, nested sections, a docstring under every field.

Settings are built once (by the CLI or by the test that needs them) and handed down; nothing here runs at
import time. Values come from a TOML file (see ``appliance.configfile``) and ``APPLIANCE_...`` environment
variables, which win over the file (``APPLIANCE_API__PORT=9000`` sets ``[api] port``). With no file at all
the appliance runs embedded: a data directory, a SQLite database, Huey on SQLite, the API on 127.0.0.1:8080.
"""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path
from typing import Any, Literal, get_origin
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from appliance import hostport

#: The placeholder shipped in the example file; refused as a real secret.
PLACEHOLDER_SECRET = "CHANGE-ME"  # noqa: S105  (the value refused, not a secret)
#: A signing key shorter than this (in characters) is refused outside development.
MIN_SECRET_LENGTH = 32

Mode = Literal["embedded", "production", "development"]


def default_data_dir() -> Path:
    """Where the appliance keeps its state when no ``data_dir`` is configured."""
    if os.geteuid() == 0:
        return Path("/var/lib/forge-appliance")
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "forge-appliance"


class Section(BaseModel):
    """A settings section: unknown keys are errors, docstrings are the documentation."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True, frozen=True)


class ApiSettings(Section):
    host: str = "127.0.0.1"
    """Address the API listens on. Use 0.0.0.0 to serve other machines."""

    port: int = Field(default=8080, ge=1, le=65535)
    """TCP port the API listens on."""

    instances: int = Field(default=1, ge=1, le=64)
    """How many API processes the supervisor runs behind the one listening socket."""

    max_body_bytes: int = Field(default=1_048_576, ge=1024)
    """Largest request body accepted, in bytes; larger bodies get 413."""

    metrics_allow_from: tuple[str, ...] = ("127.0.0.0/8", "::1/128")
    """Networks (CIDR) whose clients may read /metrics without an operator credential."""

    trusted_proxies: tuple[str, ...] = ()
    """Addresses of reverse proxies whose X-Forwarded-For header is believed."""

    threads: int | None = Field(default=None, ge=1, le=200)
    """Threads each API process runs its blocking work on (database transactions, password hashes).
    Unset: database.pool_size - 1 (one connection stays free for health checks). More threads than pooled
    connections would only wait for a connection."""

    max_in_flight: int = Field(default=256, ge=0)
    """Requests an API process works on at once (health checks aside); beyond, a request is answered 503
    with Retry-After at once, before it costs the process anything more. 0: no bound."""

    queue_limit: int = Field(default=200, ge=0)
    """Requests an API process lets wait for a thread; beyond that it answers 503 with Retry-After at once
    (load beyond capacity is shed, not queued without limit)."""

    queue_timeout: float = Field(default=5.0, gt=0)
    """Seconds a request may wait for a thread before it is answered 503 with Retry-After."""

    queue_target: float = Field(default=0.2, gt=0)
    """Seconds a request may wait for a thread while the queue is congested (it has not emptied for half
    a second): the newest requests are then served first and those that waited longer are answered 503
    with Retry-After, so that under a burst the requests served are served fast and latency is back to
    normal as soon as the burst ends."""

    stall_seconds: float = Field(default=60.0, gt=0)
    """/health/live answers 503 when requests have waited this long with none finishing (a wedged
    process), so that the supervisor's health check restarts it. Keep it above database.statement_timeout."""

    min_free_disk_mb: int = Field(default=256, ge=0)
    """/health/ready answers 503 when the data directory's file system has less free space than this
    (writes would fail), so that a load balancer sends traffic elsewhere. 0 turns the check off."""

    public_url: str | None = None
    """The API's address as its clients reach it (through a proxy or a load balancer, with a path prefix if
    it has one), e.g. https://forge.example.com: the URLs the API hands out are whole ones on it (an app's
    heartbeat_url). Unset: they are paths (/api/v1/heartbeats/...), to be put after the address the client
    used."""

    @field_validator("public_url")
    @classmethod
    def _public_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
            raise ValueError(
                f"{value!r} is not a base URL such as https://forge.example.com (http or https, a host, "
                "no query or fragment)"
            )
        return value.rstrip("/")

    @field_validator("metrics_allow_from", "trusted_proxies")
    @classmethod
    def _networks(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for item in value:
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError:
                raise ValueError(f"{item!r} is not an IP network such as 10.0.0.0/8") from None
        return value


class DatabaseSettings(Section):
    url: str | None = None
    """SQLAlchemy URL of the database. Unset: a SQLite file in the data directory.
    PostgreSQL: postgresql+psycopg://user:password@host:5432/dbname"""

    migrations_url: str | None = None
    """URL used by `appliance migrate` (the schema owner). Unset: the same as url. When its user differs
    from url's, `appliance migrate` grants url's role what the API and workers need (no BYPASSRLS: row-level
    security keeps tenants apart), and `appliance tenant purge` connects with it."""

    pool_size: int = Field(default=10, ge=1, le=200)
    """Connections each process keeps open to PostgreSQL. The pool never grows past this."""

    pool_timeout: float = Field(default=5.0, gt=0)
    """Seconds a request waits for a free connection before failing with 503."""

    statement_timeout: float = Field(default=30.0, ge=0)
    """PostgreSQL: seconds one statement of the API or a worker may run before it is cancelled (503 to an
    API client, a retry for a job). 0: no limit. Migrations and `appliance tenant purge` are not limited."""

    lock_timeout: float = Field(default=5.0, ge=0)
    """PostgreSQL: seconds a statement may wait for a lock held by another transaction (a row being
    changed, an audit chain being appended to) before it fails with 503. 0: no limit."""

    idle_in_transaction_timeout: float = Field(default=60.0, ge=0)
    """PostgreSQL: a connection idle inside a transaction this long is closed by the server, releasing its
    locks (a safety net: the appliance never leaves a transaction open while it waits). 0: never."""

    connect_timeout: int = Field(default=5, ge=1)
    """Seconds allowed to open a connection before the database counts as down."""

    sqlite_busy_timeout_ms: int = Field(default=5000, ge=0)
    """How long SQLite waits for a lock held by another process, in milliseconds."""

    echo: bool = False
    """Log every SQL statement (noisy; for debugging only)."""

    @field_validator("url", "migrations_url")
    @classmethod
    def _scheme(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("sqlite", "postgresql")):
            raise ValueError(
                f"{value.split(':', 1)[0]!r} is not supported: use sqlite:/// or postgresql+psycopg://"
            )
        return value


class QueueSettings(Section):
    url: str | None = None
    """Where Huey keeps its queue: redis://host:6379/0, or sqlite:///path. Unset: SQLite in the data dir."""

    name: str = Field(default="appliance", pattern=r"^[A-Za-z0-9_.-]+$")
    """Queue name; several appliances may share one Redis with different names."""

    workers: int = Field(default=4, ge=1, le=256)
    """Threads each worker process runs tasks on."""

    periodic: bool = True
    """Whether `appliance worker` runs the periodic scheduler (exactly one worker process should)."""

    @field_validator("url")
    @classmethod
    def _scheme(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("redis://", "rediss://", "unix://", "sqlite:///")):
            raise ValueError(f"{value!r} is not a queue URL: use redis://host:port/db or sqlite:///path")
        return value


class SecuritySettings(Section):
    secret_key: SecretStr | None = None
    """Key that signs access tokens. Prefer secret_key_file; `appliance init` generates one."""

    secret_key_file: Path | None = None
    """File holding the signing key (owner-only). Unset: <data_dir>/secrets/signing.key."""

    token_issuer: str = Field(default="forge-appliance", min_length=1)
    """The `iss` claim written into access tokens and required when they are verified."""

    token_audience: str = Field(default="forge-appliance-api", min_length=1)
    """The `aud` claim written into access tokens and required when they are verified."""

    access_token_ttl: int = Field(default=900, ge=60, le=86_400)
    """How long an access token (JWT) is valid, in seconds. Short: a revoked session dies with it."""

    refresh_token_ttl: int = Field(default=30 * 86_400, ge=3600, le=365 * 86_400)
    """How long a refresh token is valid, in seconds. Each use rotates it for a new one."""

    password_min_length: int = Field(default=12, ge=8, le=256)
    """Fewest characters a new password may have (the longest accepted is 256)."""

    invitation_ttl: int = Field(default=7 * 86_400, ge=3600, le=90 * 86_400)
    """How long an invitation into a tenant may be accepted, in seconds (7 days). Past it, the tenant's
    admins revoke it or invite the address again."""

    password_hash_memory_kib: int = Field(default=65_536, ge=1024, le=4_194_304)
    """Memory of one argon2id password hash, in KiB (RFC 9106: 64 MiB). Lower it only on a machine that
    cannot spare it: the hash is weaker. A stored hash made otherwise is remade at its next sign-in."""

    password_hash_passes: int = Field(default=3, ge=1, le=20)
    """Passes of one argon2id password hash (RFC 9106: 3)."""


class LoggingSettings(Section):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    """Lowest level written to the log."""

    json_format: bool = True
    """One JSON object per line (with the request id). False: plain text for reading by eye."""

    access_log: bool = True
    """Write one line per HTTP request."""


class SupervisorSettings(Section):
    services_file: Path | None = None
    """The supervisor's program list. Unset: the built-in default (the API and one worker)."""

    run_dir: Path | None = None
    """Where the supervisor keeps its pid, state and control socket. Unset: <data_dir>/run."""

    log_dir: Path | None = None
    """Where each program's output is written. Unset: <data_dir>/logs."""

    ready_timeout: float = Field(default=60.0, gt=0)
    """How long `appliance up` waits for /health/ready before giving up, in seconds."""


class RateLimitSettings(Section):
    enabled: bool = True
    """Rate limit requests (per IP, per user or API key, per tenant plan) and throttle failed logins."""

    url: str | None = None
    """Redis URL for the shared limiter; unset: the queue's Redis when queue.url is Redis, else in-process."""

    per_ip: int = Field(default=1200, ge=1)
    """Requests per minute from one client IP address."""

    per_principal: int | None = Field(default=None, ge=1)
    """Requests per minute by one user or API key. Unset: the limit of its tenant's plan tier."""

    free: int = Field(default=60, ge=1)
    """Requests per minute per tenant on the free plan (and on an unknown plan)."""

    team: int = Field(default=300, ge=1)
    """Requests per minute per tenant on the team plan."""

    business: int = Field(default=1000, ge=1)
    """Requests per minute per tenant on the business plan."""

    enterprise: int = Field(default=5000, ge=1)
    """Requests per minute per tenant on the enterprise plan."""

    login_failures_per_account: int = Field(default=10, ge=1)
    """Failed logins per 15 minutes for one account before its logins are refused for a while."""

    login_failures_per_ip: int = Field(default=50, ge=1)
    """Failed logins per 15 minutes from one client IP address before its logins are refused for a while."""

    @field_validator("url")
    @classmethod
    def _scheme(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError(f"{value!r} is not a Redis URL: use redis://host:port/db")
        return value


class JobSettings(Section):
    lease_seconds: float = Field(default=300.0, ge=1)
    """How long a worker holds a job it claimed; a job still running after it is taken to be lost (its
    worker died) and runs again. Longer than any job's own time limit."""

    reap_interval: float = Field(default=10.0, ge=0.1, le=3600)
    """How often the periodic worker looks for lost jobs, in seconds."""

    requeue_after: float = Field(default=60.0, ge=1)
    """A queued job not started this many seconds after it was handed to the queue is handed again (the
    hand-over after its commit may have been lost)."""

    keep_days: int = Field(default=30, ge=1)
    """Days finished jobs (succeeded, dead, cancelled) are kept before they are removed."""


class OutboundSettings(Section):
    allow_networks: tuple[str, ...] = ()
    """Networks (CIDR) that webhooks and probes may reach although they are private, loopback or
    link-local (refused by default, so that a tenant cannot reach the appliance's own network)."""

    @field_validator("allow_networks")
    @classmethod
    def _networks(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for network in value:
            try:
                ipaddress.ip_network(network, strict=False)
            except ValueError:
                raise ValueError(f"{network!r} is not a network: use CIDR, e.g. 10.0.0.0/8") from None
        return value


class WebhookSettings(Section):
    timeout: float = Field(default=15.0, gt=0, le=60)
    """Seconds a delivery may take (connect, send, and read the answer) before it counts as failed."""

    max_response_bytes: int = Field(default=65_536, ge=0)
    """How much of a receiver's answer is read; the rest is not waited for."""

    disable_after_days: float = Field(default=5.0, gt=0)
    """An endpoint that has failed every delivery for this long is disabled and its owner told."""

    concurrency: int = Field(default=50, ge=1, le=1000)
    """Deliveries one worker process sends at once."""


class MonitoringSettings(Section):
    enabled: bool = True
    """Whether the periodic worker probes the monitored applications."""

    min_interval: int = Field(default=5, ge=1)
    """The shortest probe interval a tenant may ask for, in seconds."""

    concurrency: int = Field(default=200, ge=1, le=5000)
    """Probes in flight at once."""

    refresh_seconds: float = Field(default=10.0, gt=0, le=3600)
    """How often the monitor reads the list of apps again (a new, changed or deleted app is seen within)."""

    raw_days: int = Field(default=7, ge=1)
    """Days each check result is kept."""

    rollup_days: int = Field(default=90, ge=1)
    """Days the hourly rollups are kept."""


def is_list_setting(annotation: Any) -> bool:
    """Whether a setting holds a list (``tuple[str, ...]``): from the environment, a JSON array or
    comma-separated values."""
    return get_origin(annotation) in (list, tuple, set, frozenset)


class EnvironmentSource(EnvSettingsSource):
    """``APPLIANCE_...`` variables, where a list may also be written as comma-separated values
    (``APPLIANCE_OUTBOUND__ALLOW_NETWORKS=10.0.0.0/8,192.168.0.0/16``) besides a JSON array
    (``["10.0.0.0/8"]``), as operators write lists in a shell or a systemd unit."""

    def decode_complex_value(self, field_name: str, field: FieldInfo, value: Any) -> Any:
        if (
            isinstance(value, str)
            and field is not None
            and is_list_setting(field.annotation)
            and not value.lstrip().startswith("[")
        ):
            return [item.strip() for item in value.split(",") if item.strip()]
        return super().decode_complex_value(field_name, field, value)

    def explode_env_vars(self, field_name: str, field: FieldInfo, env_vars: Any) -> dict[str, Any]:
        # A section's list set to "" (skipped by the decoding above) is the empty list.
        exploded = super().explode_env_vars(field_name, field, env_vars)
        model = field.annotation
        if isinstance(model, type) and issubclass(model, BaseModel):
            for key, value in exploded.items():
                inner = model.model_fields.get(key)
                if value == "" and inner is not None and is_list_setting(inner.annotation):
                    exploded[key] = []
        return exploded


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
