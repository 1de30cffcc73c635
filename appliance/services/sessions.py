"""Sign-in sessions: the refresh-token families behind access tokens, stored hashed and rotated on use.

A family is one sign-in. Each refresh exchanges the presented token for a child in the same family; a
token presented again after it was exchanged means someone holds a copy, so the whole family is revoked
(and every access token issued from it, through the revocation cache: `tokens.session_revocation_key`).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from appliance.errors import Unauthenticated
from appliance.models import RefreshToken
from appliance.services import tokens
from appliance.services.actors import RequestInfo


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
    record = session.scalars(
        select(RefreshToken).where(RefreshToken.token_hash == tokens.hash_refresh_token(token))
    ).first()
    decision = tokens.decide_refresh(record, now)
    if decision.outcome is tokens.RefreshOutcome.REUSE_DETECTED:
        assert record is not None
        revoke_family(session, record.family_id, now)
        raise RefreshReused(record)
    if decision.outcome is not tokens.RefreshOutcome.ROTATE:
        raise decision.error()
    assert record is not None
    # Atomic: of two requests racing with the same token, exactly one finds rotated_at still NULL.
    claimed = session.execute(
        update(RefreshToken)
        .where(RefreshToken.id == record.id, RefreshToken.rotated_at.is_(None))
        .values(rotated_at=now)
        .execution_options(synchronize_session=False)
    )
    if getattr(claimed, "rowcount", 0) != 1:
        revoke_family(session, record.family_id, now)
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


def revoke_family(session: Session, family_id: uuid.UUID, now: datetime) -> int:
    """End one session: every token of the family stops refreshing; returns how many were live."""
    result = session.execute(
        update(RefreshToken)
        .where(RefreshToken.family_id == family_id, RefreshToken.revoked_at.is_(None))
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
    families = [family for family in set(session.scalars(query)) if family != keep]
    for family in families:
        revoke_family(session, family, now)
    return families


def revoked_since(
    session: Session, since: datetime | None, now: datetime, access_ttl: timedelta
) -> list[tuple[uuid.UUID, datetime]]:
    """Families revoked after ``since`` whose access tokens may still be alive: (family, revoked_at)."""
    floor = now - access_ttl - tokens.LEEWAY
    start = floor if since is None or since < floor else since
    rows = session.execute(
        select(RefreshToken.family_id, func.max(RefreshToken.revoked_at))
        .where(RefreshToken.revoked_at >= start)
        .group_by(RefreshToken.family_id)
    ).all()
    return [(family, revoked_at) for family, revoked_at in rows if revoked_at is not None]


def family_revoked(session: Session, family_id: uuid.UUID) -> bool:
    return (
        session.scalars(
            select(RefreshToken.id).where(
                RefreshToken.family_id == family_id, RefreshToken.revoked_at.is_not(None)
            )
        ).first()
        is not None
    )
