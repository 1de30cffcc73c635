"""What a check says (a Verdict), the row of the report it becomes (a Finding), and what checks are given
(a Context: the settings, the settings file, the clock, the time allowed, the database engine they share)."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from appliance.config import Settings

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

Status = Literal["ok", "warn", "fail", "skip"]
#: A whole report's status: the worst of its findings' (skips count as nothing).
Overall = Literal["ok", "warn", "fail"]
#: Seconds a check may take before it counts as failed (a dead dependency must not hang the doctor).
DEFAULT_TIMEOUT_S = 15.0
#: Where the nginx role (playbooks/roles/nginx: nginx_tls_dir) keeps the certificate, by default.
SYSTEM_CERTIFICATE = Path("/etc/forge-appliance/tls/appliance.crt")


@dataclass(frozen=True)
class Verdict:
    """What one check found: its status, one line naming the value, and how to fix it (warn and fail)."""

    status: Status
    finding: str
    hint: str = ""


def ok(finding: str) -> Verdict:
    return Verdict("ok", finding)


def warn(finding: str, hint: str) -> Verdict:
    return Verdict("warn", finding, hint)


def fail(finding: str, hint: str) -> Verdict:
    return Verdict("fail", finding, hint)


def skip(finding: str) -> Verdict:
    return Verdict("skip", finding)


@dataclass(frozen=True)
class Finding:
    """One row of the report: the check's name and its verdict."""

    check: str
    status: Status
    finding: str
    hint: str = ""

    def as_dict(self) -> dict[str, str]:
        return {"check": self.check, "status": self.status, "finding": self.finding, "hint": self.hint}


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass
class Context:
    """What every check is given. The database engine is made once, on first use, and shared by the checks
    that need it (each takes its own connection); `close` disposes of it."""

    settings: Settings
    config_path: Path | None = None
    """The settings file in force (its directory may hold tls/appliance.crt), None for the defaults."""
    clock: Callable[[], dt.datetime] = utc_now
    timeout: float = DEFAULT_TIMEOUT_S
    certificates: tuple[Path, ...] | None = None
    """Where to look for the TLS certificate; None: tls/appliance.crt beside the settings file, then
    SYSTEM_CERTIFICATE."""
    _engine: Engine | None = field(default=None, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    @property
    def io_timeout(self) -> float:
        """Seconds one connection attempt or read may take: short enough to leave the check time to say so."""
        return max(1.0, min(5.0, self.timeout / 3))

    def engine(self) -> Engine:
        from appliance.db.engine import build_engine

        with self._lock:
            if self._engine is None:
                self._engine = build_engine(self.settings)
            return self._engine

    def certificate_paths(self) -> tuple[Path, ...]:
        if self.certificates is not None:
            return self.certificates
        beside = [self.config_path.absolute().parent / "tls" / "appliance.crt"] if self.config_path else []
        return tuple(dict.fromkeys([*beside, SYSTEM_CERTIFICATE]))

    def close(self) -> None:
        with self._lock:
            if self._engine is not None:
                self._engine.dispose()
                self._engine = None
