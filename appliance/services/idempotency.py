"""Idempotency keys: a POST sent again with the same ``Idempotency-Key`` (within 24 hours, by the same
caller) gets the first response back and does not act twice; the same key with another request is a
conflict.

The first request claims the key (a row committed before it acts, so a concurrent duplicate sees it and is
refused as in progress); its response is stored when it completes. A request that fails with a server
error, or whose process dies, leaves the key free again: after ``PENDING_TIMEOUT`` a pending claim may be
taken over, so a client's retry is never stuck.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import uuid
from dataclasses import dataclass

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError

from appliance.db.session import Database
from appliance.errors import Conflict, InvalidInput
from appliance.models import IdempotencyKey

RETENTION = dt.timedelta(hours=24)
PENDING_TIMEOUT = dt.timedelta(seconds=60)
MAX_KEY_LENGTH = 255
#: Response headers replayed with the stored body.
REPLAYED_HEADERS = ("location", "content-type")


@dataclass(frozen=True)
class Replay:
    status: int
    headers: list[tuple[str, str]]
    body: bytes


@dataclass(frozen=True)
class Claim:
    """A key this request holds: `complete` stores the response, `release` frees the key."""

    database: Database
    id: uuid.UUID

    def complete(self, status: int, headers: list[tuple[str, str]], body: bytes, now: dt.datetime) -> None:
        kept = [(k, v) for k, v in headers if k.lower() in REPLAYED_HEADERS]
        with self.database.session_scope() as session:
            session.execute(
                update(IdempotencyKey)
                .where(IdempotencyKey.id == self.id)
                .values(
                    status=status, response_body=body, response_headers=json.dumps(kept), completed_at=now
                )
            )

    def release(self) -> None:
        with self.database.session_scope() as session:
            session.execute(delete(IdempotencyKey).where(IdempotencyKey.id == self.id))


def request_hash(method: str, path: str, body: bytes) -> str:
    digest = hashlib.sha256()
    for part in (method.encode(), b"\0", path.encode(), b"\0", body):
        digest.update(part)
    return digest.hexdigest()


def check_key(key: str) -> str:
    if not key or len(key) > MAX_KEY_LENGTH or not key.isascii() or not key.isprintable():
        raise InvalidInput(
            f"the Idempotency-Key header must be 1 to {MAX_KEY_LENGTH} printable ASCII characters",
            code="IDEMPOTENCY_KEY_INVALID",
            details={"header": "Idempotency-Key"},
        )
    return key


def begin(
    database: Database, *, principal: str, key: str, method: str, path: str, body: bytes, now: dt.datetime
) -> Claim | Replay:
    """Claim ``key`` for this request, or return the stored response of the first one."""
    check_key(key)
    digest = request_hash(method, path, body)
    for _ in range(3):
        with database.session_scope() as session:
            row = session.scalars(
                select(IdempotencyKey).where(IdempotencyKey.principal == principal, IdempotencyKey.key == key)
            ).first()
            if row is None:
                claim = IdempotencyKey(
                    principal=principal,
                    key=key,
                    method=method,
                    path=path[:500],
                    request_hash=digest,
                    created_at=now,
                )
                session.add(claim)
                try:
                    session.flush()
                except IntegrityError:
                    session.rollback()
                    continue  # a concurrent request claimed it first: look again
                return Claim(database, claim.id)
            expired = now - row.created_at >= RETENTION
            stale = row.status is None and now - row.created_at >= PENDING_TIMEOUT
            if expired or stale:
                session.delete(row)
                session.flush()
                continue
            if row.request_hash != digest:
                raise Conflict(
                    "this Idempotency-Key was used with a different request: use a new key",
                    code="IDEMPOTENCY_KEY_REUSED",
                    details={"idempotency_key": key},
                )
            if row.status is None:
                raise Conflict(
                    "a request with this Idempotency-Key is still being processed: retry in a moment",
                    code="IDEMPOTENCY_IN_PROGRESS",
                    details={"idempotency_key": key},
                )
            headers = [(str(k), str(v)) for k, v in json.loads(row.response_headers or "[]")]
            return Replay(status=row.status, headers=headers, body=row.response_body or b"")
    raise Conflict(
        "a request with this Idempotency-Key is still being processed: retry in a moment",
        code="IDEMPOTENCY_IN_PROGRESS",
        details={"idempotency_key": key},
    )


def purge_expired(database: Database, now: dt.datetime) -> int:
    with database.session_scope() as session:
        result = session.execute(delete(IdempotencyKey).where(IdempotencyKey.created_at < now - RETENTION))
        return int(getattr(result, "rowcount", 0))
