"""Sign-in sessions: the refresh-token families behind access tokens, stored hashed and rotated on use.

A family is one sign-in. Each refresh exchanges the presented token for a child in the same family; a
token presented again after it was exchanged means someone holds a copy, so the whole family is revoked
(and every access token issued from it, through the revocation cache: `tokens.session_revocation_key`).

On PostgreSQL, refresh tokens are under row-level security: each function here names the rows it acts on to
the database itself, as one user's own sessions (`tenancy.as_user`) or, for a refresh, the one token whose
hash it holds (`tenancy.refresh_token_lookup`), so that it works in any scope: a tenant's, an operator's,
none. The sessions ended lately are read across every tenant through the owner's function
``refresh_tokens_revoked_since`` (family ids and times only).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Uuid, func, select, text, update
from sqlalchemy.orm import Session

from appliance.db import tenancy
from appliance.db.base import UTCDateTime
from appliance.errors import Unauthenticated
from appliance.models import RefreshToken
from appliance.services.access.actors import RequestInfo
from appliance.services.identity import tokens


@dataclass(frozen=True)
class Issued:
    token: str
    """The opaque refresh token, given to the client once."""
    family_id: uuid.UUID
    expires_at: datetime


def open_session(
    session: Session,
    *,
    user_id: uuid.UUID,
    tenant_id: uuid.UUID | None,
    now: datetime,
    ttl: timedelta,
    request: RequestInfo,
    family_id: uuid.UUID | None = None,
    parent_id: uuid.UUID | None = None,
) -> Issued:
    """A new refresh token: the first of a new family, or (``family_id``) the child of a rotated one."""
    token, digest = tokens.new_refresh_token()
    family = family_id or uuid.uuid4()
    row = RefreshToken(
        user_id=user_id,
        tenant_id=tenant_id,
        family_id=family,
        token_hash=digest,
        parent_id=parent_id,
        issued_at=now,
        expires_at=now + ttl,
        user_agent=(request.user_agent or "")[:400] or None,
        ip=request.ip,
    )
    with tenancy.as_user(session, user_id):
        session.add(row)
        session.flush()
    return Issued(token=token, family_id=family, expires_at=row.expires_at)


class RefreshReused(Unauthenticated):
    """A refresh token came back after it was exchanged: someone holds a copy. Its family is revoked (kept
    although the request is refused); the caller tells its revocation cache and audits the theft signal."""

    def __init__(self, record: RefreshToken):
        super().__init__(
            "the refresh token was already used; the session has been ended",
            code="TOKEN_REUSED",
            keep_changes=True,
        )
        self.family_id = record.family_id
        self.user_id = record.user_id
        self.tenant_id = record.tenant_id


@dataclass(frozen=True)
class Rotation:
    user_id: uuid.UUID
    tenant_id: uuid.UUID | None
    issued: Issued


def rotate(session: Session, token: str, *, now: datetime, ttl: timedelta, request: RequestInfo) -> Rotation:
    """Exchange a refresh token for its child; refuse (and on reuse, revoke the family) otherwise."""
    digest = tokens.hash_refresh_token(token)
    with tenancy.refresh_token_lookup(session, digest):
        record = session.scalars(select(RefreshToken).where(RefreshToken.token_hash == digest)).first()
    decision = tokens.decide_refresh(record, now)
    if decision.outcome is tokens.RefreshOutcome.REUSE_DETECTED:
        assert record is not None
        revoke_family(session, record.family_id, now, user_id=record.user_id)
        raise RefreshReused(record)
    if decision.outcome is not tokens.RefreshOutcome.ROTATE:
        raise decision.error()
    assert record is not None
    # Atomic: of two requests racing with the same token, exactly one finds rotated_at still NULL.
    with tenancy.as_user(session, record.user_id):
        claimed = session.execute(
            update(RefreshToken)
            .where(RefreshToken.id == record.id, RefreshToken.rotated_at.is_(None))
            .values(rotated_at=now)
            .execution_options(synchronize_session=False)
        )
    if getattr(claimed, "rowcount", 0) != 1:
        revoke_family(session, record.family_id, now, user_id=record.user_id)
        raise RefreshReused(record)
    child = open_session(
        session,
        user_id=record.user_id,
        tenant_id=record.tenant_id,
        now=now,
        ttl=ttl,
        request=request,
        family_id=record.family_id,
        parent_id=record.id,
    )
    return Rotation(user_id=record.user_id, tenant_id=record.tenant_id, issued=child)


def revoke_family(session: Session, family_id: uuid.UUID, now: datetime, *, user_id: uuid.UUID) -> int:
    """End one session of ``user_id``: every token of the family stops refreshing; returns how many were
    live. (The user is named so that the database shows the session in any scope: see the module.)"""
    with tenancy.as_user(session, user_id):
        result = session.execute(
            update(RefreshToken)
            .where(
                RefreshToken.family_id == family_id,
                RefreshToken.user_id == user_id,
                RefreshToken.revoked_at.is_(None),
            )
            .values(revoked_at=now)
            .execution_options(synchronize_session=False)
        )
    return int(getattr(result, "rowcount", 0))


def revoke_user(
    session: Session,
    user_id: uuid.UUID,
    now: datetime,
    tenant_id: uuid.UUID | None = None,
    keep: uuid.UUID | None = None,
) -> list[uuid.UUID]:
    """End every session of a user (in one tenant, when given; all but ``keep``): after a role change, a
    removal, or a new password. Returns the families ended, so the caller can tell its revocation cache."""
    query = select(RefreshToken.family_id).where(
        RefreshToken.user_id == user_id, RefreshToken.revoked_at.is_(None), RefreshToken.expires_at > now
    )
    if tenant_id is not None:
        query = query.where(RefreshToken.tenant_id == tenant_id)
    with tenancy.as_user(session, user_id):
        families = [family for family in set(session.scalars(query)) if family != keep]
    for family in families:
        revoke_family(session, family, now, user_id=user_id)
    return families


def revoked_since(
    session: Session, since: datetime | None, now: datetime, access_ttl: timedelta
) -> list[tuple[uuid.UUID, datetime]]:
    """Families revoked after ``since`` whose access tokens may still be alive: (family, revoked_at)."""
    floor = now - access_ttl - tokens.LEEWAY
    start = floor if since is None or since < floor else since
    if session.get_bind().dialect.name == "postgresql":
        # Every tenant's sessions: the owner's function, which returns family ids and times only.
        rows: list[Any] = list(session.execute(_REVOKED_SINCE, {"start": start}))
    else:
        rows = list(
            session.execute(
                select(RefreshToken.family_id, func.max(RefreshToken.revoked_at))
                .where(RefreshToken.revoked_at >= start)
                .group_by(RefreshToken.family_id)
            )
        )
    return [(family, revoked_at) for family, revoked_at in rows if revoked_at is not None]


_REVOKED_SINCE = text("SELECT family_id, revoked_at FROM refresh_tokens_revoked_since(:start)").columns(
    family_id=Uuid(), revoked_at=UTCDateTime(timezone=True)
)


def family_revoked(session: Session, family_id: uuid.UUID, *, user_id: uuid.UUID) -> bool:
    """Whether ``user_id``'s session ``family_id`` was ended."""
    with tenancy.as_user(session, user_id):
        found = session.scalars(
            select(RefreshToken.id).where(
                RefreshToken.family_id == family_id,
                RefreshToken.user_id == user_id,
                RefreshToken.revoked_at.is_not(None),
            )
        ).first()
    return found is not None
