"""The archives in the backup directory, read from the plain summary beside each one (no key needed).

Each archive ``forge-<stamp>-<kind>[-<tenant>].age`` has a summary ``<archive>.json`` written after the
archive is complete and synced, so an archive without a summary is an interrupted one. The summary holds
what the manifest inside the archive holds (version, schema revision, row counts, checksums per part) and
the archive's own size and SHA-256; never a secret.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from appliance.errors import InvalidInput

SUFFIX = ".age"
SUMMARY_SUFFIX = ".json"
#: The archive format this version writes and reads; an archive of a higher format is refused.
FORMAT = 1

Kind = Literal["full", "tenant"]


@dataclass(frozen=True)
class Summary:
    """What an archive holds, as the plain file beside it says."""

    path: Path
    kind: Kind
    created_at: dt.datetime
    appliance_version: str
    schema_revision: str | None
    database: str
    tenant: str | None
    scheduled: bool
    size: int
    sha256: str
    rows: dict[str, int]

    @property
    def name(self) -> str:
        return self.path.name

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "path": str(self.path),
            "kind": self.kind,
            "created_at": self.created_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "appliance_version": self.appliance_version,
            "schema_revision": self.schema_revision,
            "database": self.database,
            "tenant": self.tenant,
            "scheduled": self.scheduled,
            "size": self.size,
            "sha256": self.sha256,
            "rows": dict(self.rows),
        }


def archive_name(kind: Kind, moment: dt.datetime, tenant: str | None = None) -> str:
    stamp = moment.astimezone(dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")
    return f"forge-{stamp}-{kind}{'-' + tenant if tenant else ''}{SUFFIX}"


def summary_path(archive: Path) -> Path:
    return archive.with_name(archive.name + SUMMARY_SUFFIX)


def write_summary(archive: Path, document: dict[str, Any]) -> None:
    """Write the summary atomically (a temporary file, synced, renamed): it marks the archive good."""
    target = summary_path(archive)
    temporary = target.with_name(target.name + ".part")
    with temporary.open("w") as fh:
        json.dump(document, fh, indent=2, sort_keys=True)
        fh.write("\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(temporary, target)


def read_summary(archive: Path) -> Summary:
    """The summary of ``archive``; an archive without one (interrupted) or with a damaged one is refused."""
    path = summary_path(archive)
    try:
        document = json.loads(path.read_text())
        return _parse(archive, document)
    except FileNotFoundError:
        raise InvalidInput(
            f"{archive} has no summary {path.name}: it is not a complete archive of this appliance",
            details={"file": str(archive)},
        ) from None
    except (ValueError, KeyError, TypeError) as exc:
        raise InvalidInput(f"the summary {path} is damaged: {exc}", details={"file": str(path)}) from None


def listing(directory: Path) -> list[Summary]:
    """Every complete archive of ``directory``, newest first (an empty list when there is no directory)."""
    found = []
    for archive in _archives(directory):
        try:
            found.append(read_summary(archive))
        except InvalidInput:
            continue
    return sorted(found, key=lambda item: (item.created_at, item.name), reverse=True)


def newest_good(directory: Path, kind: Kind = "full") -> Summary | None:
    """The newest complete archive of ``kind`` whose file is still there at its recorded size."""
    for summary in listing(directory):
        if summary.kind != kind:
            continue
        try:
            if summary.path.stat().st_size == summary.size:
                return summary
        except FileNotFoundError:
            continue
    return None


def _archives(directory: Path) -> Iterator[Path]:
    try:
        entries = list(directory.iterdir())
    except FileNotFoundError:
        return
    for entry in entries:
        if entry.name.startswith("forge-") and entry.name.endswith(SUFFIX) and entry.is_file():
            yield entry


def _parse(archive: Path, document: dict[str, Any]) -> Summary:
    if int(document["format"]) > FORMAT:
        raise ValueError(f"format {document['format']} is newer than this appliance reads ({FORMAT})")
    created = dt.datetime.strptime(document["created_at"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)
    return Summary(
        path=archive,
        kind=document["kind"],
        created_at=created,
        appliance_version=str(document["appliance_version"]),
        schema_revision=document.get("schema_revision"),
        database=str(document["database"]),
        tenant=document.get("tenant"),
        scheduled=bool(document.get("scheduled", False)),
        size=int(document["size"]),
        sha256=str(document["sha256"]),
        rows={str(k): int(v) for k, v in document.get("rows", {}).items()},
    )
