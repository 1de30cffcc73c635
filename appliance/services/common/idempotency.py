"""Idempotency keys: a POST sent again with the same ``Idempotency-Key`` (within 24 hours, by the same
caller in the same tenant) gets the first response back and does not act twice; the same key with another
request is a conflict.

A key is claimed in the transaction of the change it guards, and its response is written in that same
transaction (`claim`, then `Claim.complete` before the commit): the change and its answer are committed
together or not at all, so a retry always gets the first answer, even when the connection to the database
drops right after the commit. A concurrent duplicate waits for the first one's transaction (on the key's
unique index on PostgreSQL, on the write lock on SQLite) and then gets its answer. A request the route
refused (a 4xx after it began) keeps that refusal as the key's answer (`keep`); a request that failed
validation before the route began, or failed with a server error, leaves the key unused.

Keys are scoped by the caller (`scope`: the tenant and the principal), and the request hash covers the
method and the path, so nothing is ever replayed to another tenant or another caller: the same person with
the same key in another tenant (or with an API key of the same tenant) is another caller, whose request
acts; the same key for another method or path is a conflict, never a replay.

A key's row is the tenant's data (its stored answer may hold a credential: a new app's heartbeat URL, a new
member's one-time password), so it carries its tenant (None for operators) and is read and written inside
that tenant's scope, whatever scope the caller's session is in: on PostgreSQL, row-level security shows a
tenant's transaction its own keys only, and operators' keys to none of them. Expired keys are removed by
:func:`purge_expired` (the owner's function ``idempotency_keys_purge`` on PostgreSQL, which crosses
tenants and returns a count) or when the same key comes back.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, delete, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from appliance.db import tenancy
from appliance.db.session import Database
from appliance.errors import Conflict, InvalidInput
from appliance.models import IdempotencyKey

RETENTION = dt.timedelta(hours=24)
#: A pending key left by an earlier release (which committed its claim before acting) is free after this.
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
class Request:
    """What identifies one idempotent request: who sent it (in which tenant: None for an operator), the
    key, and the hash of what was sent."""

    tenant_id: uuid.UUID | None
    scope: str
    key: str
    method: str
    path: str
    digest: str


@dataclass(frozen=True)
class Claim:
    """A key claimed in ``session``'s transaction: `complete` writes the answer in that transaction."""

    session: Session
    id: uuid.UUID
    tenant_id: uuid.UUID | None

    def complete(self, status: int, headers: list[tuple[str, str]], body: bytes, now: dt.datetime) -> None:
        # Inside the key's tenant, whatever the route left the session scoped to.
        with tenancy.inside(self.session, self.tenant_id):
            self.session.execute(
                update(IdempotencyKey)
                .where(IdempotencyKey.id == self.id)
                .values(status=status, response_body=body, response_headers=_kept(headers), completed_at=now)
            )


def scope(tenant_id: uuid.UUID | None, principal: str) -> str:
    """The caller a key belongs to: ``<tenant id>/<principal>``, or ``platform/<principal>`` for operators."""
    return f"{tenant_id or 'platform'}/{principal}"


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


def claim(session: Session, request: Request, now: dt.datetime) -> Claim | Replay:
    """Claim ``request``'s key in the session's transaction, or return the stored answer of the first
    request with this key; Conflict when the key was used for another request."""
    with tenancy.inside(session, request.tenant_id):
        found = _answer(session, request, now)
        if found is not None:
            return found
        inserted = session.execute(
            _insert_ignoring_duplicate(session, _values(request, now)).returning(IdempotencyKey.id)
        ).scalar_one_or_none()
        if inserted is not None:
            return Claim(session, inserted, request.tenant_id)
        # Another request with this key committed while this one waited for it: its answer is this one's.
        found = _answer(session, request, now)
    if found is None:
        raise _in_progress(request.key)
    return found


def keep(database: Database, request: Request, answer: Replay, now: dt.datetime) -> None:
    """Store ``answer`` for a request that changed nothing (a refusal), in a transaction of its own."""
    values = _values(request, now) | {
        "status": answer.status,
        "response_body": answer.body,
        "response_headers": _kept(answer.headers),
        "completed_at": now,
    }
    with database.session_scope() as session, tenancy.inside(session, request.tenant_id):
        session.execute(_insert_ignoring_duplicate(session, values))


def purge_expired(database: Database, now: dt.datetime) -> int:
    """Remove every tenant's keys older than RETENTION (their answers are not replayed any more); returns
    how many."""
    before = now - RETENTION
    with database.session_scope() as session:
        if session.get_bind().dialect.name == "postgresql":
            return int(session.execute(_PURGE, {"before": before}).scalar_one())
        result = session.execute(delete(IdempotencyKey).where(IdempotencyKey.created_at < before))
        return int(getattr(result, "rowcount", 0))


_PURGE = text("SELECT removed FROM idempotency_keys_purge(:before)").bindparams(
    bindparam("before", type_=IdempotencyKey.__table__.c.created_at.type)
)


def _answer(session: Session, request: Request, now: dt.datetime) -> Replay | None:
    """The stored answer for the key, None when the key is free (never used, or expired and removed)."""
    row = session.scalars(
        select(IdempotencyKey).where(
            IdempotencyKey.principal == request.scope, IdempotencyKey.key == request.key
        )
    ).first()
    if row is None:
        return None
    expired = now - row.created_at >= RETENTION
    stale = row.status is None and now - row.created_at >= PENDING_TIMEOUT
    if expired or stale:
        session.delete(row)
        session.flush()
        return None
    if row.request_hash != request.digest:
        raise Conflict(
            "this Idempotency-Key was used with a different request: use a new key",
            code="IDEMPOTENCY_KEY_REUSED",
            details={"idempotency_key": request.key},
        )
    if row.status is None:
        raise _in_progress(request.key)
    headers = [(str(k), str(v)) for k, v in json.loads(row.response_headers or "[]")]
    return Replay(status=row.status, headers=headers, body=row.response_body or b"")


def _values(request: Request, now: dt.datetime) -> dict[str, Any]:
    return {
        "id": uuid.uuid4(),
        "tenant_id": request.tenant_id,
        "principal": request.scope,
        "key": request.key,
        "method": request.method,
        "path": request.path[:500],
        "request_hash": request.digest,
        "created_at": now,
    }


def _insert_ignoring_duplicate(session: Session, values: dict[str, Any]) -> Any:
    """INSERT ... ON CONFLICT (principal, key) DO NOTHING, in the session's dialect."""
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    return (
        dialect.insert(IdempotencyKey)
        .values(**values)
        .on_conflict_do_nothing(index_elements=[IdempotencyKey.principal, IdempotencyKey.key])
    )


def _kept(headers: list[tuple[str, str]]) -> str:
    return json.dumps([(k, v) for k, v in headers if k.lower() in REPLAYED_HEADERS])


def _in_progress(key: str) -> Conflict:
    return Conflict(
        "a request with this Idempotency-Key is still being processed: retry in a moment",
        code="IDEMPOTENCY_IN_PROGRESS",
        details={"idempotency_key": key},
    )
