"""The checks before an upgrade changes anything, made by the new version: its settings, the versions and
the required stops, the database and Redis, the migrations and their phases beside the running processes,
and the disk space for the backup. Each says OK or FAIL with its reason; `appliance upgrade --check` stops
after them.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from appliance import __version__
from appliance.config import Settings
from appliance.db.engine import build_engine
from appliance.db.migrate import MIGRATIONS_DIR
from appliance.db.session import driver_reason
from appliance.errors import ApplianceError
from appliance.upgrade import schema, stops
from appliance.upgrade.layout import Layout, venv_version
from appliance.upgrade.running import Running, client_for, running

#: Room asked for beyond the backup itself: the dump and the archive made from it coexist for a moment.
SPARE_BYTES = 64 * 1024 * 1024
REDIS_TIMEOUT_S = 3.0


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


@dataclass(frozen=True)
class Inputs:
    """What the preflight looks at. `load_settings` reads the settings with this (the new) version's rules."""

    load_settings: Callable[[], Settings]
    layout: Layout
    allow_downtime: bool = False
    new_version: str = __version__
    stops: Sequence[str] = stops.REQUIRED_STOPS
    migrations: Path = MIGRATIONS_DIR


@dataclass
class Findings:
    """The checks' results, and what the steps after them need."""

    checks: list[Check] = field(default_factory=list)
    settings: Settings | None = None
    old_version: str = ""
    revision: str | None = None
    pending: list[schema.Migration] = field(default_factory=list)
    running: Running | None = None

    @property
    def failures(self) -> list[Check]:
        return [check for check in self.checks if not check.ok]

    @property
    def contracting(self) -> list[schema.Migration]:
        """Pending migrations the old version cannot run beside (no phase declared counts as contracting)."""
        return [m for m in self.pending if m.phase != "expand"]

    @property
    def needs_downtime(self) -> bool:
        return bool(self.contracting) and self.running is not None and any(self.running.programs.values())


def run(inputs: Inputs, report: Callable[[Check], None]) -> Findings:
    """Make every check, reporting each as it is made; a check that needs an earlier one that failed says
    so instead of failing for the same reason."""
    return _Preflight(inputs, report).run()


class _Preflight:
    def __init__(self, inputs: Inputs, report: Callable[[Check], None]) -> None:
        self.inputs, self.report = inputs, report
        self.found = Findings()

    def run(self) -> Findings:
        self.record("versions", self.versions)
        if not self.record("settings", self.settings_valid):
            for name in ("database", "redis", "migrations", "processes", "disk space"):
                self.skipped(name, "the settings are not valid")
            return self.found
        reachable = self.record("database", self.database)
        self.record("redis", lambda: _redis(self.settings))
        if reachable:
            self.record("migrations", self.migrations)
        else:
            self.skipped("migrations", "the database cannot be reached")
        self.record("processes", self.processes)
        if reachable:
            self.record("disk space", lambda: _disk(self.settings))
        else:
            self.skipped("disk space", "the database cannot be reached")
        return self.found

    @property
    def settings(self) -> Settings:
        assert self.found.settings is not None
        return self.found.settings

    def record(self, name: str, step: Callable[[], str]) -> bool:
        try:
            check = Check(name, True, step())
        except ApplianceError as exc:
            check = Check(name, False, exc.message)
        self.found.checks.append(check)
        self.report(check)
        return check.ok

    def skipped(self, name: str, why: str) -> None:
        check = Check(name, False, f"not checked: {why}")
        self.found.checks.append(check)
        self.report(check)

    def versions(self) -> str:
        old, new = venv_version(self.inputs.layout.venv), self.inputs.new_version
        self.found.old_version = old
        why = stops.problem(old, new, self.inputs.stops)
        if why:
            raise ApplianceError(why)
        between = "no required stop between them" if self.inputs.stops else "no required stops"
        return f"{old} -> {new} ({between})"

    def settings_valid(self) -> str:
        from appliance.keys import signing_key

        self.found.settings = self.inputs.load_settings()
        signing_key(self.found.settings)
        return f"valid for {self.inputs.new_version} (mode {self.found.settings.mode})"

    def database(self) -> str:
        url = make_url(self.settings.database_url)
        backend = url.get_backend_name()
        if backend == "sqlite" and not Path(url.database or "").is_file():  # connecting would create it
            raise ApplianceError(f"the database file {url.database} does not exist: nothing to upgrade here")
        self.found.revision = schema.revision(self.settings)
        return f"{backend}, at revision {self.found.revision or 'none'}"

    def migrations(self) -> str:
        if self.found.revision is None:
            raise ApplianceError(
                "the database has no schema: this is a new install (run `appliance migrate`)"
            )
        self.found.pending = schema.pending(schema.scripts(self.inputs.migrations), self.found.revision)
        if not self.found.pending:
            return "none pending"
        return f"{len(self.found.pending)} pending: {', '.join(str(m) for m in self.found.pending)}"

    def processes(self) -> str:
        found, venv = self.found, self.inputs.layout.venv
        found.running = running(client_for(self.settings.run_dir), venv)
        if found.running is None:
            return "the appliance is not running: nothing to restart"
        what = found.running.describe()
        if not found.running.programs:
            raise ApplianceError(
                f"the appliance runs, but none of its programs starts from {venv}: name the venv they start "
                "from with --venv"
            )
        if not found.needs_downtime:
            return f"running {what}: each replaced by a new one once that one is ready"
        names = ", ".join(str(m) for m in found.contracting)
        if self.inputs.allow_downtime:
            return f"running {what}; {names} cannot run beside them: the appliance stops (--allow-downtime)"
        raise ApplianceError(
            f"{names} contracts the schema (drops or changes what {found.old_version or 'the old version'} "
            f"still uses) while {what} of the old version run: stop the appliance first, or pass "
            "--allow-downtime to have the upgrade stop it for the migrations (the API is down meanwhile)"
        )


def _redis(settings: Settings) -> str:
    urls = [
        u
        for u in dict.fromkeys([settings.queue_url, settings.rate_limit_url])
        if u and not u.startswith("sqlite")
    ]
    if not urls:
        return "not used (the queue is on SQLite)"
    import redis

    for url in urls:
        try:
            redis.Redis.from_url(
                url, socket_connect_timeout=REDIS_TIMEOUT_S, socket_timeout=REDIS_TIMEOUT_S
            ).ping()
        except redis.RedisError as exc:
            raise ApplianceError(f"Redis at {_safe(url)} does not answer: {exc}") from exc
    return f"{', '.join(_safe(u) for u in urls)} answers"


def _safe(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True) if "://" in url else url


def _disk(settings: Settings) -> str:
    estimate = _database_size(settings)
    need = 2 * estimate + SPARE_BYTES
    where = settings.backup_dir
    while not where.exists() and where != where.parent:
        where = where.parent  # not made yet: the file system it will be made on
    free = shutil.disk_usage(where).free
    sizes = f"{free // 2**20} MiB free in {where}, the backup needs about {need // 2**20} MiB"
    if free < need:
        raise ApplianceError(f"not enough disk space for the backup: {sizes}")
    return sizes


def _database_size(settings: Settings) -> int:
    url = make_url(settings.database_url)
    if url.get_backend_name() == "sqlite":
        path = Path(url.database or "")
        return sum(p.stat().st_size for p in (path, path.with_name(path.name + "-wal")) if p.is_file())
    engine = build_engine(settings, settings.migrations_url, bounded=False)
    try:
        with engine.connect() as conn:
            return int(conn.execute(text("SELECT pg_database_size(current_database())")).scalar_one())
    except DBAPIError as exc:
        raise ApplianceError(f"cannot measure the database: {driver_reason(exc)}") from exc
    finally:
        engine.dispose()
