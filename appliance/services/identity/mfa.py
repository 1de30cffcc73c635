"""Two-factor authentication of a user: TOTP enrollment and activation, recovery codes, removal."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from appliance.errors import Conflict, InvalidInput, NotFound, Unauthenticated
from appliance.models import MfaFactor, RecoveryCode, User
from appliance.services.access.actors import Actor
from appliance.services.audit import log as audit
from appliance.services.identity import totp


@dataclass(frozen=True)
class Enrollment:
    secret: str
    """Base32 secret for an authenticator app, shown once."""
    provisioning_uri: str
    """otpauth:// URI (the QR code's content)."""


def _factor(session: Session, user_id: uuid.UUID) -> MfaFactor | None:
    return session.scalars(select(MfaFactor).where(MfaFactor.user_id == user_id)).first()


def status(session: Session, user_id: uuid.UUID) -> tuple[bool, int]:
    """Whether two-factor is on, and how many unused recovery codes are left."""
    factor = _factor(session, user_id)
    left = len(_unused(session, user_id))
    return (factor is not None and factor.enabled_at is not None), left


def _record(session: Session, actor: Actor, action: str) -> None:
    audit.record(
        session,
        action=action,
        tenant_id=actor.tenant_id,
        actor=actor,
        resource_type="user",
        resource_id=actor.user_id,
    )


def enroll(session: Session, user: User, issuer: str) -> Enrollment:
    """Start (or restart) enrollment: a new secret, not in force until a first code is verified."""
    factor = _factor(session, user.id)
    if factor is not None and factor.enabled_at is not None:
        raise Conflict(
            "two-factor authentication is already on: disable it first", code="MFA_ALREADY_ENABLED"
        )
    secret = totp.new_secret()
    if factor is None:
        session.add(MfaFactor(user_id=user.id, totp_secret=secret))
    else:
        factor.totp_secret = secret
        factor.last_used_step = None
    session.flush()
    return Enrollment(secret=secret, provisioning_uri=totp.provisioning_uri(secret, user.email, issuer))


def activate(session: Session, actor: Actor, user: User, code: str, now: datetime) -> list[str]:
    """Turn two-factor on with a first valid code; returns the recovery codes, shown once."""
    factor = _factor(session, user.id)
    if factor is None:
        raise NotFound(
            "no two-factor enrollment was started: POST /api/v1/auth/mfa/enroll first",
            code="MFA_NOT_ENROLLED",
        )
    if factor.enabled_at is not None:
        raise Conflict("two-factor authentication is already on", code="MFA_ALREADY_ENABLED")
    step = totp.verify(factor.totp_secret, code, now, factor.last_used_step)
    if step is None:
        raise InvalidInput(
            "the code is not correct for this secret (check the device's clock)", code="MFA_INVALID"
        )
    factor.enabled_at = now
    factor.last_used_step = step
    _record(session, actor, "mfa.enable")
    return regenerate_codes(session, user.id)


def regenerate_codes(session: Session, user_id: uuid.UUID) -> list[str]:
    """A new set of recovery codes; the old ones stop working."""
    session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user_id))
    codes, hashes = totp.new_recovery_codes()
    session.add_all(RecoveryCode(user_id=user_id, code_hash=digest) for digest in hashes)
    session.flush()
    return codes


def _unused(session: Session, user_id: uuid.UUID) -> list[RecoveryCode]:
    return list(
        session.scalars(
            select(RecoveryCode).where(RecoveryCode.user_id == user_id, RecoveryCode.used_at.is_(None))
        )
    )


def check_code(session: Session, factor: MfaFactor, code: str, now: datetime) -> bool:
    """Whether ``code`` is a current TOTP code (not replayed) or an unused recovery code; spends it."""
    step = totp.verify(factor.totp_secret, code, now, factor.last_used_step)
    if step is not None:
        factor.last_used_step = step
        return True
    unused = _unused(session, factor.user_id)
    index = totp.find_recovery_code(code, [c.code_hash for c in unused])
    if index is None:
        return False
    unused[index].used_at = now
    return True


#: The code of a refused two-factor code that was right once: a TOTP code of a time step already used, or a
#: spent recovery code (it was overheard, or sent twice). Anything else refused is MFA_INVALID.
CODE_USED = "MFA_CODE_USED"


def refusal(session: Session, factor: MfaFactor, code: str, now: datetime) -> Unauthenticated:
    """The error for a code :func:`check_code` refused, saying why: already used (:data:`CODE_USED`), or not
    correct (MFA_INVALID)."""
    step = totp.matching_step(factor.totp_secret, code, now)
    if step is not None and factor.last_used_step is not None and step <= factor.last_used_step:
        return Unauthenticated(
            "this two-factor code was already used: wait for the next code of your authenticator app",
            code=CODE_USED,
        )
    spent = session.scalars(
        select(RecoveryCode.code_hash).where(
            RecoveryCode.user_id == factor.user_id, RecoveryCode.used_at.is_not(None)
        )
    )
    if totp.find_recovery_code(code, list(spent)) is not None:
        return Unauthenticated(
            "this recovery code was already used: each recovery code works once", code=CODE_USED
        )
    return Unauthenticated("the two-factor code is not correct", code="MFA_INVALID")


def disable(session: Session, actor: Actor, user: User, code: str, now: datetime) -> None:
    """Turn two-factor off; a current code (or a recovery code) proves the device is in hand."""
    factor = _factor(session, user.id)
    if factor is None or factor.enabled_at is None:
        raise NotFound("two-factor authentication is not on", code="MFA_NOT_ENABLED")
    if not check_code(session, factor, code, now):
        raise refusal(session, factor, code, now)
    session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
    session.delete(factor)
    session.flush()
    _record(session, actor, "mfa.disable")


def new_codes(session: Session, actor: Actor, user: User, code: str, now: datetime) -> list[str]:
    """Replace the recovery codes, after a current code (or a recovery code) proves the device is in hand."""
    factor = _factor(session, user.id)
    if factor is None or factor.enabled_at is None:
        raise NotFound("two-factor authentication is not on", code="MFA_NOT_ENABLED")
    if not check_code(session, factor, code, now):
        raise refusal(session, factor, code, now)
    _record(session, actor, "mfa.recovery_codes")
    return regenerate_codes(session, user.id)


def reset(session: Session, user_id: uuid.UUID) -> bool:
    """Remove a user's factor and recovery codes with no code, for someone who lost the device (an
    operator's reset: appliance.services.tenancy.operators); the user can enrol again. Whether two-factor was
    on; the caller audits it."""
    factor = _factor(session, user_id)
    if factor is None:
        return False
    session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user_id))
    session.delete(factor)
    session.flush()
    return factor.enabled_at is not None
