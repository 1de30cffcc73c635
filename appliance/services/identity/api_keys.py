"""API keys of a tenant: created with scopes no wider than their creator's, bounded by what that creator
holds now, listed, revoked.

The secret is returned once, by `create`, and never stored: the table keeps its public prefix (how a
presented key finds its row) and its SHA-256 (how it is proven). Authentication lives in
appliance.services.identity.authenticator.

A key never does more than its creator can do now. Its effective permissions are its scopes intersected
with the permissions of its creator's current role in the key's tenant (`standings`), read from the
database on every request that presents the key (the key's row is read there anyway; nothing is cached, so
a demotion narrows the key from the next request on). ``created_by`` is that creator: the member who made
the key, or, for a key made with another key, the member behind that key (the audit record names the
maker key), so that a chain of keys never escapes the person it started from.

When the creator can do nothing in the tenant any more, their keys there are revoked, with one
``api_key.revoke`` audit record per key whose summary names the reason:

- ``creator_removed``: the creator is no longer a member of the tenant (at once when the membership is
  removed: appliance.services.tenancy.memberships; at the key's next use when it went some other way);
- ``creator_disabled``: the creator's account is disabled (`revoke_all_of` for the code that disables it;
  at the key's next use in any case);
- ``creator_unknown``: the key names no creator (see below).

While its creator must change their password, a key is refused as its creator is (403
PASSWORD_CHANGE_REQUIRED) and shows no effective scopes: a key must not be a way around the change.

**Keys with no known creator** (``created_by`` NULL). Keys are made only by a tenant's members, through
/api/v1/api-keys; there is no operator or command-line path that makes one. NULL therefore means the
creator's account row was deleted (the foreign key sets NULL), or a key made with another key before keys
recorded the member behind their maker (migration 0012 fills those in from the audit trail where the trail
still has them). The rule: such a key is bounded by no member, so it holds nothing; it is revoked at its
next use (``creator_unknown``) and listed with no effective scopes. Not "bounded by the owner role": that
would turn the deletion of an account into a promotion of its keys to everything an owner holds, and leave
in service a credential no person answers for. An operator who needs a key in a tenant signs in to it as
a member (its owner, say) and makes one there, bounded by that member like any other.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, and_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from appliance.db import tenancy
from appliance.errors import Forbidden, InvalidInput, NotFound
from appliance.models import ALL_PERMISSIONS, ApiKey, Membership, User
from appliance.services.access import role_permissions
from appliance.services.access.actors import Actor, RequestInfo
from appliance.services.audit import log as audit
from appliance.services.common import pagination
from appliance.services.identity import tokens

#: Inserts tried before giving up: a prefix carries 41 bits, so a second collision in a row means
#: something other than chance.
ATTEMPTS = 2


#: Why a key was revoked without anyone revoking it (the audit record's ``reason``).
CREATOR_REMOVED = "creator_removed"
CREATOR_DISABLED = "creator_disabled"
CREATOR_UNKNOWN = "creator_unknown"
REASONS = {
    CREATOR_REMOVED: "its creator is no longer a member of this tenant",
    CREATOR_DISABLED: "its creator's account is disabled",
    CREATOR_UNKNOWN: "it has no known creator to answer for it",
}


@dataclass(frozen=True)
class Standing:
    """What a key's creator holds in the key's tenant now."""

    permissions: frozenset[str]
    """The permissions of the creator's current role there (empty when ``gone`` is set)."""
    must_change_password: bool = False
    gone: str | None = None
    """Set when the creator can do nothing there any more (one of `REASONS`): their keys are revoked."""

    def bound(self, scopes: Iterable[str]) -> frozenset[str]:
        """What a key with ``scopes`` may do now (nothing while its creator must change their password)."""
        if self.gone is not None or self.must_change_password:
            return frozenset()
        return frozenset(scopes) & self.permissions


UNKNOWN = Standing(frozenset(), gone=CREATOR_UNKNOWN)


def standings(
    session: Session, tenant_id: uuid.UUID, creators: Iterable[uuid.UUID | None]
) -> dict[uuid.UUID | None, Standing]:
    """The standing of each creator in ``tenant_id`` (the session scoped to it): one query for the
    accounts and memberships, one more only when a custom role is held. None (no creator) stands for
    nothing."""
    ids = {c for c in creators if c is not None}
    found: dict[uuid.UUID | None, Standing] = {None: UNKNOWN}
    if not ids:
        return found
    rows = session.execute(
        select(User.id, User.is_active, User.must_change_password, Membership.role)
        .outerjoin(Membership, and_(Membership.user_id == User.id, Membership.tenant_id == tenant_id))
        .where(User.id.in_(ids))
    ).all()
    granted: dict[str, frozenset[str]] = {}
    for user_id, active, must_change, role in rows:
        if not active:
            found[user_id] = Standing(frozenset(), gone=CREATOR_DISABLED)
        elif role is None:
            found[user_id] = Standing(frozenset(), gone=CREATOR_REMOVED)
        else:
            if role not in granted:
                granted[role] = role_permissions.permissions_for(session, role)
            found[user_id] = Standing(granted[role], must_change_password=bool(must_change))
    for missing in ids - found.keys():
        found[missing] = UNKNOWN  # the account row is gone
    return found


def effective_scopes(
    session: Session, keys: Iterable[ApiKey], now: dt.datetime
) -> dict[uuid.UUID, list[str]]:
    """What each key may do now, sorted: nothing once revoked or expired; else its scopes as far as its
    creator still holds them. The keys belong to one tenant, the session's."""
    rows = list(keys)
    if not rows:
        return {}
    standing = standings(session, rows[0].tenant_id, (k.created_by for k in rows))
    shown: dict[uuid.UUID, list[str]] = {}
    for key in rows:
        usable = key.revoked_at is None and (key.expires_at is None or key.expires_at > now)
        shown[key.id] = sorted(standing[key.created_by].bound(key.scopes)) if usable else []
    return shown


def revoke_for_creator(
    session: Session,
    *,
    tenant_id: uuid.UUID,
    creator: uuid.UUID | None,
    reason: str,
    now: dt.datetime,
    actor: Actor | None = None,
    request: RequestInfo | None = None,
    key_id: uuid.UUID | None = None,
) -> list[uuid.UUID]:
    """Revoke the unrevoked keys ``creator`` made in ``tenant_id`` (the session scoped to it), one audit
    record each naming ``reason``; with ``creator`` None, only the key ``key_id``. ``actor`` None: the
    appliance revoked them itself, at the key's use (``request``). Returns the keys revoked; a key already
    revoked (by a concurrent request too) is left alone and not recorded again."""
    if reason not in REASONS:
        raise ValueError(f"unknown reason {reason!r}")
    statement = update(ApiKey).where(ApiKey.tenant_id == tenant_id, ApiKey.revoked_at.is_(None))
    if creator is None:
        if key_id is None:
            raise ValueError("a key with no creator is revoked by its id")
        statement = statement.where(ApiKey.id == key_id, ApiKey.created_by.is_(None))
    else:
        statement = statement.where(ApiKey.created_by == creator)
    revoked = session.execute(
        statement.values(revoked_at=now)
        .returning(ApiKey.id, ApiKey.name, ApiKey.prefix)
        .execution_options(synchronize_session=False)
    ).all()
    for key_id_, name, prefix in sorted(revoked, key=lambda r: r.prefix):
        audit.record(
            session,
            action="api_key.revoke",
            tenant_id=tenant_id,
            actor=actor,
            resource_type="api_key",
            resource_id=key_id_,
            summary={"name": name, "prefix": prefix, "reason": reason, "created_by": creator},
            request=request,
        )
    return [r.id for r in revoked]


def revoke_all_of(
    session: Session, actor: Actor | None, user_id: uuid.UUID, reason: str, now: dt.datetime
) -> list[uuid.UUID]:
    """Revoke ``user_id``'s keys in every tenant they are a member of (their account was disabled, say),
    one audit record each in that tenant's trail naming ``reason``. The session's scope is restored."""
    tenancy.set_user(session, user_id)
    tenants = list(session.scalars(select(Membership.tenant_id).where(Membership.user_id == user_id)))
    revoked: list[uuid.UUID] = []
    for tenant_id in tenants:
        with tenancy.inside(session, tenant_id):
            revoked += revoke_for_creator(
                session, tenant_id=tenant_id, creator=user_id, reason=reason, now=now, actor=actor
            )
    return revoked


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
            # The member the key acts for: its maker, or the member behind the key that made it.
            created_by=actor.user_id if actor.api_key_id is None else actor.key_creator_id,
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
