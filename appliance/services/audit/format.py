"""How an audit record is written down: secrets redacted, values reduced to plain JSON, and the canonical
document whose SHA-256 is the record's hash. Changing any of this changes every hash."""

from __future__ import annotations

import datetime as dt
import enum
import hashlib
import json
import math
import re
import uuid
from collections.abc import Callable, Mapping
from typing import Any

#: The stored fields the hash covers, in no particular order (the document's keys are sorted): every
#: column but ``id`` (a random key that says nothing) and ``hash`` itself.
HASHED_FIELDS: tuple[str, ...] = (
    "tenant_id",
    "seq",
    "actor_user_id",
    "actor_api_key_id",
    "actor_name",
    "action",
    "resource_type",
    "resource_id",
    "summary",
    "ip",
    "user_agent",
    "request_id",
    "created_at",
    "prev_hash",
)

#: Fields added after chains were first written: left out of the hashed document while None, so that the
#: records written before them keep their hashes.
_OPTIONAL_FIELDS = frozenset({"actor_name"})

#: What a secret's value is replaced with in a summary.
REDACTED = "[redacted]"

#: Summary keys whose values are never stored (matched anywhere in the key, case-insensitively).
SECRET_KEY = re.compile(r"password|passwd|secret|token|key_hash|private_key|authorization", re.IGNORECASE)


def redact(summary: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``summary`` with the value of every key named like a secret (:data:`SECRET_KEY`) masked,
    at any depth (inside nested mappings and lists)."""
    return {
        key: REDACTED if isinstance(key, str) and SECRET_KEY.search(key) else _redact_value(value)
        for key, value in summary.items()
    }


def _redact_value(value: Any) -> Any:
    if isinstance(value, Mapping):
        return redact(value)
    if isinstance(value, list | tuple):
        return [_redact_value(item) for item in value]
    return value


def to_json(value: Any, where: str = "summary") -> Any:
    """``value`` as plain JSON types that come back unchanged from either database: UUIDs, times and enums
    become strings (times RFC 3339 UTC), tuples lists. Refuses what JSON cannot hold exactly: NaN and
    infinities (ValueError), mapping keys that are not strings and other types (TypeError)."""
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"{where}: the key {key!r} is not a string")
            out[str.__str__(key)] = to_json(item, f"{where}.{key}")
        return out
    if isinstance(value, list | tuple):
        return [to_json(item, f"{where}[{i}]") for i, item in enumerate(value)]
    if isinstance(value, enum.Enum):
        return to_json(value.value, where)
    return _json_scalar(value, where)


def _json_scalar(value: Any, where: str) -> Any:
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{where}: {value} cannot be stored as JSON")
    for kind, convert in _SCALARS:
        if isinstance(value, kind):
            return convert(value, where)
    raise TypeError(
        f"{where}: a {type(value).__name__} is not JSON "
        "(give str, int, float, bool, None, lists, mappings, UUIDs, dates or enums)"
    )


# Exact built-in types (a str or int subclass would serialize in its own way); datetime before its base, date.
_SCALARS: tuple[tuple[type, Callable[[Any, str], Any]], ...] = (
    (str, lambda v, _: str.__str__(v)),
    (int, lambda v, _: int(v)),
    (float, lambda v, _: float(v)),
    (uuid.UUID, lambda v, _: str(v)),
    (dt.datetime, lambda v, where: rfc3339(utc(v, where))),
    (dt.date, lambda v, _: v.isoformat()),
)


# --------------------------------------------------------------------------- the hash


def compute_hash(fields: Mapping[str, Any]) -> str:
    """SHA-256 (hex) of the canonical JSON of the :data:`HASHED_FIELDS` of ``fields``: sorted keys, no
    whitespace, ASCII, UUIDs as strings, ``created_at`` as ``YYYY-MM-DDTHH:MM:SS.ffffffZ``; a field added
    later (``actor_name``) only when it is set.

    Changing this changes every hash: existing chains would all fail verification."""
    missing = [name for name in HASHED_FIELDS if name not in fields and name not in _OPTIONAL_FIELDS]
    if missing:
        raise KeyError(f"fields missing from the record: {', '.join(missing)}")
    document = {
        name: _canonical(fields[name])
        for name in HASHED_FIELDS
        if name not in _OPTIONAL_FIELDS or fields.get(name) is not None
    }
    encoded = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)
    return hashlib.sha256(encoded.encode("ascii")).hexdigest()


def _canonical(value: Any) -> Any:
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, dt.datetime):
        return rfc3339(utc(value, "created_at"))
    return value


def rfc3339(moment: dt.datetime) -> str:
    """``2024-05-01T12:00:00.000000Z``: UTC, always with microseconds."""
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def utc(moment: dt.datetime, name: str) -> dt.datetime:
    if moment.tzinfo is None:
        raise ValueError(f"{name}: a naive datetime ({moment.isoformat()}); give a timezone-aware one")
    return moment.astimezone(dt.UTC)
