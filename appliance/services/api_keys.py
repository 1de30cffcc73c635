"""API keys of a tenant: created with scopes no wider than their creator's, listed, revoked.

The secret is returned once, by `create`, and never stored: the table keeps its public prefix (how a
presented key finds its row) and its SHA-256 (how it is proven). Authentication lives in
appliance.services.authenticator."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from appliance.errors import Forbidden, InvalidInput, NotFound
from appliance.models import ALL_PERMISSIONS, ApiKey
from appliance.services import audit, pagination, tokens
from appliance.services.actors import Actor

#: Inserts tried before giving up: a prefix carries 41 bits, so a second collision in a row means
#: something other than chance.
ATTEMPTS = 2


@dataclass(frozen=True)
class NewKey:
    key: ApiKey
    secret: str
    """The whole key (``fak_<id8>_<secret>``): shown to its creator once, never stored."""


def check_scopes(actor: Actor, scopes: Iterable[str]) -> list[str]:
    """The scopes, sorted and unique; each a known permission that the creator holds."""
    values = sorted(set(scopes))
    unknown = [s for s in values if s not in ALL_PERMISSIONS]
    if unknown:
        raise InvalidInput(
            f"unknown scope {unknown[0]!r} (known: {', '.join(sorted(ALL_PERMISSIONS))})",
            code="SCOPE_UNKNOWN",
            details={"scopes": unknown},
        )
    if not values:
        raise InvalidInput("an API key needs at least one scope", code="SCOPE_REQUIRED")
    broader = [s for s in values if s not in actor.permissions]
    if broader:
        raise Forbidden(
            f"a key cannot hold what its creator does not: you lack {', '.join(broader)}",
            code="SCOPE_TOO_BROAD",
            details={"scopes": broader},
        )
    return values


def create(
    session: Session,
    actor: Actor,
    *,
    name: str,
    scopes: Iterable[str],
    expires_at: dt.datetime | None,
    now: dt.datetime,
) -> NewKey:
    """A new key in the actor's tenant, expiring at ``expires_at`` (never, when None)."""
    assert actor.tenant_id is not None, "API keys belong to a tenant"
    label = name.strip()
    if not label:
        raise InvalidInput("an API key needs a name", code="NAME_REQUIRED", details={"name": name})
    values = check_scopes(actor, scopes)
    if expires_at is not None:
        if expires_at.tzinfo is None:
            raise InvalidInput(
                "expires_at needs a time zone (such as Z)", details={"expires_at": expires_at.isoformat()}
            )
        if expires_at <= now:
            raise InvalidInput(
                f"expires_at {expires_at.isoformat()} is not in the future",
                code="EXPIRES_IN_PAST",
                details={"expires_at": expires_at.isoformat()},
            )
    for attempt in range(1, ATTEMPTS + 1):
        new = tokens.new_api_key()
        row = ApiKey(
            tenant_id=actor.tenant_id,
            name=label,
            prefix=new.prefix,
            key_hash=new.key_hash,
            scopes=values,
            expires_at=expires_at,
            created_by=actor.user_id,
        )
        try:
            # A savepoint: a prefix taken by any tenant's key (unique across tenants, and invisible under
            # row-level security) fails this insert only, not the request's transaction.
            with session.begin_nested():
                session.add(row)
        except IntegrityError:
            if attempt == ATTEMPTS:
                raise
            continue
        break
    audit.record(
        session,
        action="api_key.create",
        tenant_id=actor.tenant_id,
        actor=actor,
        resource_type="api_key",
        resource_id=row.id,
        summary={"name": label, "prefix": row.prefix, "scopes": values, "expires_at": expires_at},
    )
    return NewKey(key=row, secret=new.secret)


def get(session: Session, key_id: uuid.UUID) -> ApiKey:
    key = session.get(ApiKey, key_id)
    if key is None:
        raise NotFound(
            f"API key {key_id} was not found", code="API_KEY_NOT_FOUND", details={"id": str(key_id)}
        )
    return key


CURSORS = pagination.Keyset("api_keys", dt.datetime, uuid.UUID)


def list_page(
    session: Session, *, revoked: bool | None, limit: int, cursor: str | None
) -> tuple[list[ApiKey], str | None]:
    """The tenant's keys, oldest first (the order of its index); ``revoked`` keeps only (un)revoked ones."""
    query: Select[Any] = select(ApiKey)
    if revoked is not None:
        query = query.where(ApiKey.revoked_at.is_not(None) if revoked else ApiKey.revoked_at.is_(None))
    columns = [ApiKey.created_at, ApiKey.id]
    if cursor is not None:
        query = pagination.after(query, columns, CURSORS.decode(cursor, "created_at"), descending=False)
    rows = list(session.scalars(pagination.ordered(query, columns, False).limit(limit + 1)))
    last = rows[limit - 1] if len(rows) > limit else None
    next_cursor = CURSORS.encode([last.created_at, last.id], "created_at") if last else None
    return rows[:limit], next_cursor


def revoke(session: Session, actor: Actor, key_id: uuid.UUID, now: dt.datetime) -> ApiKey:
    """Stop a key from working (at once: keys are checked against the database on every request).
    Revoking a revoked key changes nothing."""
    key = get(session, key_id)
    if key.revoked_at is not None:
        return key
    key.revoked_at = now
    session.flush()
    audit.record(
        session,
        action="api_key.revoke",
        tenant_id=key.tenant_id,
        actor=actor,
        resource_type="api_key",
        resource_id=key.id,
        summary={"name": key.name, "prefix": key.prefix},
    )
    return key
