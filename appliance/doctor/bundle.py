"""`appliance support-bundle`: one .tar.gz (mode 0600) to attach to a support ticket, with every secret
value taken out.

It holds the effective settings (secrets redacted, and where they came from), versions, `appliance status`,
the doctor's report, the tail of each log, the supervisor's recent events and the platform's recent audit
records, each as a file under one directory, and a manifest that lists them and says what could not be
collected and why (a bundle is most wanted when things are broken: nothing missing stops it). Every byte
written passes through the Scrubber first (JSON string by string, so that it stays JSON).
"""

from __future__ import annotations

import datetime as dt
import io
import json
import os
import platform
import re
import tarfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from appliance import __version__
from appliance.config import Settings
from appliance.doctor import collect, report
from appliance.doctor.finding import Context, utc_now
from appliance.doctor.scrub import REDACTED, Scrubber
from appliance.errors import InvalidInput


@dataclass(frozen=True)
class Written:
    """The bundle made: where, how large, and what could not be collected."""

    path: Path
    size: int
    missing: list[str]


@dataclass
class _Parts:
    """The bundle's files as they are gathered, scrubbed on the way in."""

    scrubber: Scrubber
    files: list[tuple[str, bytes]] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)

    def add(self, name: str, content: bytes) -> None:
        self.files.append((name, self.scrubber.data(content)))

    def add_json(self, name: str, data: Any) -> None:
        # Scrubbed string by string, not as text: see Scrubber.json.
        plain = json.loads(json.dumps(data, default=str))
        encoded = json.dumps(self.scrubber.json(plain), indent=2).encode() + b"\n"
        self.files.append((name, encoded))

    def gather(self, name: str, what: Callable[[], Any]) -> None:
        """``what()`` as JSON in ``name``, or a line in the manifest saying why it is not there."""
        try:
            data = what()
        except Exception as exc:  # a part that cannot be had is reported, never the end of the bundle
            self.missing.append(f"{name}: {type(exc).__name__}: {exc}")
            return
        self.add_json(name, data)


def destination(output: Path | None, now: dt.datetime) -> Path:
    """Where the bundle goes: ``output`` (a file, or a directory to put it in), else the current one."""
    host = re.sub(r"[^A-Za-z0-9.-]+", "-", platform.node()) or "host"
    name = f"forge-support-{host}-{now:%Y%m%dT%H%M%SZ}.tar.gz"
    path = Path.cwd() / name if output is None else output / name if output.is_dir() else output
    if path.exists():
        raise InvalidInput(
            f"{path} exists already: name another file with --output", details={"file": str(path)}
        )
    if not path.parent.is_dir():
        raise InvalidInput(f"the directory {path.parent} does not exist", details={"file": str(path)})
    return path


def build(
    settings: Settings,
    *,
    output: Path | None = None,
    config_path: Path | None = None,
    status: Callable[[], Any] | None = None,
    clock: Callable[[], dt.datetime] = utc_now,
    timeout: float = 5.0,
) -> Written:
    """Gather everything and write the bundle; ``status`` gives `appliance status --json`'s report."""
    from appliance.configfile import redacted, sources

    now = clock()
    path = destination(output, now)
    parts = _Parts(Scrubber.of(settings))
    parts.gather("config.json", lambda: {"sources": sources(config_path), "settings": redacted(settings)})
    parts.gather("versions.json", lambda: collect.versions(settings, timeout))
    if status is not None:
        parts.gather("status.json", status)
    parts.gather(
        "doctor.json", lambda: report.as_json(report.run(Context(settings, config_path, clock=clock)))
    )
    parts.gather("events.json", lambda: collect.events(settings, timeout))
    parts.gather("audit.json", lambda: collect.audit_records(settings))
    _logs(settings, parts)
    manifest = {
        "created_at": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "appliance_version": __version__,
        "host": platform.node(),
        "files": [name for name, _ in parts.files],
        "not_collected": parts.missing,
        "redaction": f"secret values (passwords, keys) are replaced by {REDACTED}",
        "log_lines": f"the last {collect.LOG_LINES} lines of each log file",
    }
    parts.add_json("manifest.json", manifest)
    _write(path, path.name.removesuffix(".tar.gz"), parts.files, now)
    return Written(path, path.stat().st_size, [parts.scrubber.text(line) for line in parts.missing])


def _logs(settings: Settings, parts: _Parts) -> None:
    try:
        taken, compressed = collect.log_files(settings.log_dir)
    except OSError as exc:
        parts.missing.append(f"logs: {settings.log_dir}: {exc.strerror or exc}")
        return
    for path in taken:
        try:
            parts.add(f"logs/{path.name}", collect.tail(path))
        except OSError as exc:
            parts.missing.append(f"logs/{path.name}: {exc.strerror or exc}")
    if compressed:
        names = ", ".join(path.name for path in compressed)
        parts.missing.append(f"logs: rotated and compressed files left out (older than the tails): {names}")


def _write(path: Path, top: str, files: list[tuple[str, bytes]], now: dt.datetime) -> None:
    """The archive, written beside its final name (owner-only from the start) and renamed into place."""
    partial = path.with_name(f".{path.name}.part")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as raw:
            with tarfile.open(fileobj=raw, mode="w:gz") as archive:
                for name, content in files:
                    member = tarfile.TarInfo(f"{top}/{name}")
                    member.size, member.mode, member.mtime = len(content), 0o600, int(now.timestamp())
                    archive.addfile(member, io.BytesIO(content))
            raw.flush()
            os.fsync(raw.fileno())
        os.replace(partial, path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
