"""The audit log: append records to a tenant's (or the platform's) hash chain, and query them.

Each record's ``hash`` is the SHA-256 of a canonical JSON document of its stored fields and ``prev_hash``,
the hash of the record before it in the same chain (appliance.services.audit.verify checks the chains).

Records are written in the caller's transaction (the session scope commits them with the change they
describe, or rolls both back), but linked into their chain only as that transaction commits: `record` keeps
the record on the session, and the session's commit takes the chain's lock, reads its head, and appends the
records it holds (`_append_pending`). The lock is held from there to the end of the commit, a few
milliseconds, never for the whole transaction, so a tenant's writes (or everyone's sign-ins, on the
platform chain) do not queue behind the slowest transaction that holds a chain.

Other domains hear of records as they are recorded, in the same transaction, through :func:`on_record`: the
webhooks domain publishes the records whose action is an event (appliance.services.webhooks.events
subscribes; the services package wires it, so no caller can record a change and miss its event).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVarTuple

from sqlalchemy import Select, event, insert, select, text, tuple_
from sqlalchemy.orm import Session, SessionTransaction

from appliance.db import tenancy
from appliance.db.base import utcnow
from appliance.errors import InvalidInput
from appliance.models import GENESIS_HASH, AuditLog
from appliance.services.access.actors import Actor, RequestInfo
from appliance.services.audit import scope
from appliance.services.audit.format import (
    compute_hash,
    redact,
    rfc3339,
    to_json,
    utc,
)

#: The largest page :func:`query` returns.
MAX_PAGE = 500

_Row = TypeVarTuple("_Row")

# Free text from the request is clipped to the columns, so that a long header cannot fail the change it
# comes with.
_IP_MAX, _USER_AGENT_MAX, _REQUEST_ID_MAX, _ACTOR_NAME_MAX = 45, 400, 64, 200
_ACTION_MAX, _RESOURCE_TYPE_MAX, _RESOURCE_ID_MAX = 100, 50, 100


# --------------------------------------------------------------------------- writing


def record(
    session: Session,
    *,
    action: str,
    tenant_id: uuid.UUID | None,
    actor: Actor | None = None,
    resource_type: str | None = None,
    resource_id: str | uuid.UUID | None = None,
    summary: Mapping[str, Any] | None = None,
    request: RequestInfo | None = None,
    now: dt.datetime | None = None,
) -> AuditLog:
    """Add a record to the chain of ``tenant_id`` (None: the platform chain) with the session's transaction.

    A tenant's record needs the session scoped to that tenant (or platform scope); a platform record may be
    written from any session. ``summary`` is redacted (:func:`redact`) and made JSON (UUIDs and times as
    strings); a value JSON cannot hold exactly is refused (TypeError, ValueError).

    The record returned gets its place in the chain (``seq``, ``prev_hash``, ``hash``) and, unless ``now``
    is given, its time when the transaction commits; until then it is not in the table."""
    scope.check_scope(session, tenant_id, writing=True)
    info = request or (actor.request if actor is not None else RequestInfo())
    entry = AuditLog(
        id=uuid.uuid4(),
        tenant_id=tenant_id,
        actor_user_id=actor.user_id if actor is not None else None,
        actor_api_key_id=actor.api_key_id if actor is not None else None,
        actor_name=_clip(actor.name, _ACTOR_NAME_MAX) if actor is not None else None,
        action=_bounded("action", action, _ACTION_MAX),
        resource_type=_optional("resource_type", resource_type, _RESOURCE_TYPE_MAX),
        resource_id=_optional("resource_id", resource_id, _RESOURCE_ID_MAX),
        summary=to_json(redact(summary or {})),
        ip=_clip(info.ip, _IP_MAX),
        user_agent=_clip(info.user_agent, _USER_AGENT_MAX),
        request_id=_clip(info.request_id, _REQUEST_ID_MAX),
        created_at=utcnow() if now is None else utc(now, "now"),
    )
    session.info.setdefault(_PENDING, []).append(_Pending(entry, fixed_time=now is not None))
    _hook_sessions()
    for listener in _LISTENERS.get(entry.action, ()):
        listener(session, entry)
    return entry


#: What is called, in the recording transaction, for a record of each action (:func:`on_record`).
_LISTENERS: dict[str, list[Callable[[Session, AuditLog], object]]] = {}


def on_record(actions: Iterable[str], listener: Callable[[Session, AuditLog], object]) -> None:
    """Call ``listener(session, record)`` whenever a record of one of ``actions`` is recorded, in the
    recording session's transaction (before the record has its place in the chain). Subscribing the same
    listener twice calls it once."""
    for action in actions:
        listeners = _LISTENERS.setdefault(action, [])
        if listener not in listeners:
            listeners.append(listener)


def listened_actions() -> frozenset[str]:
    """The actions some domain hears of (:func:`on_record`)."""
    return frozenset(action for action, listeners in _LISTENERS.items() if listeners)


_PENDING = "audit_pending"


@dataclass(frozen=True)
class _Pending:
    entry: AuditLog
    fixed_time: bool
    """The caller gave the record's time: keep it (else the time is read when the chain is ours)."""


def _hook_sessions() -> None:
    if not event.contains(Session, "before_commit", _append_pending):
        event.listen(Session, "before_commit", _append_pending)
        event.listen(Session, "after_soft_rollback", _forget_pending)


def _append_pending(session: Session) -> None:
    """Append the session's records to their chains, as its transaction commits: each chain's lock is taken
    here (in one order, so two commits never wait on each other's chains) and held to the commit's end."""
    pending: list[_Pending] = session.info.pop(_PENDING, [])
    if not pending:
        return
    session.flush()  # the rows the records name (a new tenant) go first
    by_chain: dict[str, list[_Pending]] = {}
    for item in pending:
        by_chain.setdefault(str(item.entry.tenant_id or "platform"), []).append(item)
    for chain in sorted(by_chain):
        items = by_chain[chain]
        tenant_id = items[0].entry.tenant_id
        if tenant_id is None or tenancy.current_tenant(session) == tenant_id:
            _append(session, tenant_id, items)
        else:  # a record made inside another tenant's scope (tenancy.inside): append it in that scope
            with tenancy.inside(session, tenant_id):
                _append(session, tenant_id, items)


def _append(session: Session, tenant_id: uuid.UUID | None, items: list[_Pending]) -> None:
    """Append ``items`` to one chain, holding its lock to the end of the transaction."""
    _lock_chain(session, tenant_id)
    head = session.execute(
        scope.in_chain(select(AuditLog.seq, AuditLog.hash), tenant_id).order_by(AuditLog.seq.desc()).limit(1)
    ).one_or_none()
    seq, prev_hash = (head.seq, head.hash) if head else (0, GENESIS_HASH)
    rows = []
    for item in items:
        entry = item.entry
        seq += 1
        entry.seq, entry.prev_hash = seq, prev_hash
        if not item.fixed_time:
            # Read the clock once the chain is ours, so that times follow seq within one host.
            entry.created_at = utcnow()
        values = {column: getattr(entry, column) for column in _COLUMNS if column != "hash"}
        entry.hash = prev_hash = compute_hash(values)
        rows.append(values | {"hash": entry.hash})
    # A Core insert rather than session.add: the flush check refuses a platform row (tenant_id None)
    # from a session scoped to a tenant, which is where sign-ins and operator actions are often
    # recorded. record()'s _check_scope is this write's ORM guard; row-level security is still the floor.
    session.execute(insert(AuditLog), rows)


def _forget_pending(session: Session, previous_transaction: SessionTransaction) -> None:
    if previous_transaction.parent is None:  # the whole transaction, not a savepoint
        session.info.pop(_PENDING, None)


_COLUMNS: tuple[str, ...] = tuple(column.key for column in AuditLog.__table__.columns)


def _lock_chain(session: Session, tenant_id: uuid.UUID | None) -> None:
    """Hold the chain until the transaction ends, so that two writers never read the same head."""
    connection = session.connection()
    backend = connection.dialect.name
    if backend == "postgresql":
        key = f"audit:{tenant_id or 'platform'}"
        session.execute(text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"), {"key": key})
    elif backend == "sqlite":
        # One writer at a time. A writing scope (BEGIN IMMEDIATE) holds the lock already; a read scope's
        # deferred transaction takes it only at its first write, after two such could have read the same
        # head. A write that changes nothing takes it now (waiting up to busy_timeout) until the end.
        session.execute(text("UPDATE audit_logs SET seq = seq WHERE 0 = 1"))
    else:  # pragma: no cover - the appliance runs on these two only
        raise RuntimeError(f"no chain lock for the {backend} database")


# --------------------------------------------------------------------------- reading


def query(
    session: Session,
    *,
    tenant_id: uuid.UUID | None,
    actor_user_id: uuid.UUID | None = None,
    actor_api_key_id: uuid.UUID | None = None,
    action: str | None = None,
    resource_type: str | None = None,
    resource_id: str | uuid.UUID | None = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    limit: int = 50,
    after: tuple[dt.datetime, uuid.UUID] | None = None,
    descending: bool = True,
) -> list[AuditLog]:
    """One page of a chain's records, newest first (oldest first with ``descending=False``).

    ``action`` is exact, or a prefix when it ends with ``.*`` (``project.*``); ``since`` is inclusive,
    ``until`` exclusive. Pages follow each other by keyset: pass the last record's ``(created_at, id)`` as
    ``after``. A session scoped to a tenant reads that tenant's chain only; the platform chain is read with
    no tenant set (or in platform scope)."""
    scope.check_scope(session, tenant_id, writing=False)
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidInput(f"limit must be between 1 and {MAX_PAGE}, not {limit}", details={"limit": limit})
    statement = scope.in_chain(select(AuditLog), tenant_id)
    if actor_user_id is not None:
        statement = statement.where(AuditLog.actor_user_id == actor_user_id)
    if actor_api_key_id is not None:
        statement = statement.where(AuditLog.actor_api_key_id == actor_api_key_id)
    if action is not None:
        if action.endswith(".*"):
            statement = statement.where(AuditLog.action.startswith(action[:-1], autoescape=True))
        else:
            statement = statement.where(AuditLog.action == action)
    if resource_type is not None:
        statement = statement.where(AuditLog.resource_type == resource_type)
    if resource_id is not None:
        statement = statement.where(AuditLog.resource_id == str(resource_id))
    if since is not None:
        statement = statement.where(AuditLog.created_at >= _checked_utc(since, "since"))
    if until is not None:
        statement = statement.where(AuditLog.created_at < _checked_utc(until, "until"))
    return list(session.scalars(_page(statement, after, descending).limit(limit)))


def as_dict(record: AuditLog) -> dict[str, Any]:
    """A record as plain JSON values (the command line's --json, the support bundle)."""

    def text(value: object) -> str | None:
        return None if value is None else str(value)

    return {
        "id": str(record.id),
        "seq": record.seq,
        "created_at": rfc3339(record.created_at),
        "action": record.action,
        "actor_user_id": text(record.actor_user_id),
        "actor_api_key_id": text(record.actor_api_key_id),
        "actor_name": record.actor_name,
        "resource_type": record.resource_type,
        "resource_id": record.resource_id,
        "summary": record.summary,
        "ip": record.ip,
        "user_agent": record.user_agent,
        "request_id": record.request_id,
    }


def _page(
    statement: Select[AuditLog], after: tuple[dt.datetime, uuid.UUID] | None, descending: bool
) -> Select[AuditLog]:
    """Order by (created_at, id), the index's order after tenant_id, and start past ``after``."""
    key = tuple_(AuditLog.created_at, AuditLog.id)
    if after is not None:
        bound = (_checked_utc(after[0], "after"), after[1])
        statement = statement.where(key < bound if descending else key > bound)
    if descending:
        return statement.order_by(AuditLog.created_at.desc(), AuditLog.id.desc())
    return statement.order_by(AuditLog.created_at, AuditLog.id)


# --------------------------------------------------------------------------- values


def _bounded(name: str, value: str, limit: int) -> str:
    if not value or len(value) > limit:
        raise ValueError(f"{name} must be 1 to {limit} characters, not {value!r}")
    return value


def _optional(name: str, value: str | uuid.UUID | None, limit: int) -> str | None:
    return None if value is None else _bounded(name, str(value), limit)


def _clip(value: str | None, limit: int) -> str | None:
    return None if value is None else value[:limit]


def _checked_utc(moment: dt.datetime, name: str) -> dt.datetime:
    """A time given by a caller of query (an API parameter): a naive one is the caller's mistake."""
    try:
        return utc(moment, name)
    except ValueError as exc:
        raise InvalidInput(str(exc), details={name: moment.isoformat()}) from exc
