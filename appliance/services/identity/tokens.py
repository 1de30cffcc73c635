"""Access tokens (signed JWTs), opaque refresh tokens and API keys: issued, verified and hashed, no storage.

The database code stores what these functions produce and asks them what to do with what it finds, so the
rules live here once:

- an access token is a short-lived HS256 JWT with ``iss``, ``aud``, ``exp``, ``iat``, ``jti``, ``sub`` and a
  tenant (``tid``) or the operator flag (``op``, with ``ro`` for a read-only operator), and ``pwc`` when the
  account had to change its password when it was issued; it is verified without the database, apart from a
  revocation check that the caller passes in (backed by `RevocationCache`);
- a refresh token is an opaque ``frt_...`` string stored as its SHA-256, rotated on every use;
  `decide_refresh` says whether a presented one rotates, is a reuse (revoke its family) or is refused;
- an API key is ``fak_<id8>_<secret>``: the ``fak_<id8>`` prefix finds the row, the SHA-256 of the whole key
  proves it.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import string
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import Enum
from typing import Any, Protocol

import jwt

from appliance.errors import Unauthenticated

#: The only algorithm ever accepted. Pinned: the header's ``alg`` is never trusted to pick one, so ``none``,
#: HS512 and the RS/ES family (the algorithm-confusion attacks) are refused.
ALGORITHM = "HS256"
#: The JWT ``typ`` header of our access tokens (RFC 9068), so no other JWT signed with the key passes as one.
TOKEN_TYPE = "at+jwt"  # noqa: S105  (a media type, not a secret)
#: Clock difference tolerated between the process that signs and the one that verifies. Small on purpose:
#: every process runs on the appliance's own clock (or on NTP-synchronized machines).
LEEWAY = timedelta(seconds=10)
#: Claims without which a token is refused even if its signature is good.
REQUIRED_CLAIMS = ("iss", "aud", "exp", "iat", "jti", "sub")

REFRESH_PREFIX = "frt_"
API_KEY_KIND = "fak"
_ALPHANUMERIC = string.ascii_letters + string.digits
_API_KEY_ID_ALPHABET = string.ascii_lowercase + string.digits
#: 43 characters of base 62 carry 256 bits; alphanumerics only, so a double click selects the whole key.
_API_KEY_SECRET_LENGTH = 43


def _epoch(moment: datetime) -> int:
    if moment.tzinfo is None:
        raise ValueError("a timezone-aware datetime is required")
    return int(moment.timestamp())


def _from_epoch(value: int) -> datetime:
    return datetime.fromtimestamp(value, UTC)


@dataclass(frozen=True)
class AccessClaims:
    """What a verified access token says: who, in which tenant, until when."""

    subject: uuid.UUID
    """The user's id (``sub``)."""
    tenant_id: uuid.UUID | None
    """The one tenant the token acts in (``tid``); None exactly when ``operator`` is set."""
    jti: str
    """The token's unique id: what a revocation names."""
    issued_at: datetime
    expires_at: datetime
    scopes: tuple[str, ...] = ()
    """Permission strings granted at sign-in (``scope``, space separated), checked without the database."""
    operator: bool = False
    """A platform operator's token (``op``): acts on platform routes, bound to no tenant."""
    session_id: uuid.UUID | None = None
    """The refresh-token family the token was issued from (``sid``): revoking it ends the session at once."""
    read_only: bool = False
    """A read-only operator's token (``ro``): the read platform permissions only (see
    appliance.services.access.platform_permissions). Only on operators' tokens."""
    password_change: bool = False
    """The account had to change its password when the token was issued (``pwc``): such a token is checked
    against the account on each use (appliance.services.identity.authenticator), the others never are."""

    def __post_init__(self) -> None:
        if self.operator == (self.tenant_id is not None):
            raise ValueError("an access token is bound to exactly one tenant, or is an operator's")
        if self.read_only and not self.operator:
            raise ValueError("only an operator's token is read-only")
        if self.expires_at <= self.issued_at:
            raise ValueError("an access token must expire after it is issued")

    @property
    def revocation_keys(self) -> tuple[str, ...]:
        """The keys under which a revocation of this token is recorded: its jti and its session's."""
        keys = (self.jti,)
        return keys if self.session_id is None else (*keys, session_revocation_key(self.session_id))


def session_revocation_key(session_id: uuid.UUID) -> str:
    """The revocation key of a whole session (refresh family); it cannot collide with a jti."""
    return f"sid:{session_id}"


def new_access_claims(
    *,
    subject: uuid.UUID,
    tenant_id: uuid.UUID | None,
    now: datetime,
    ttl: timedelta,
    scopes: Iterable[str] = (),
    operator: bool = False,
    session_id: uuid.UUID | None = None,
    read_only: bool = False,
    password_change: bool = False,
) -> AccessClaims:
    """Claims for a new token issued at ``now`` (whole seconds, as JWT carries them) with a fresh jti."""
    issued = _from_epoch(_epoch(now))
    return AccessClaims(
        subject=subject,
        tenant_id=tenant_id,
        jti=secrets.token_urlsafe(16),
        issued_at=issued,
        expires_at=issued + timedelta(seconds=int(ttl.total_seconds())),
        scopes=tuple(scopes),
        operator=operator,
        session_id=session_id,
        read_only=read_only,
        password_change=password_change,
    )


def issue_access_token(key: str, claims: AccessClaims, *, issuer: str, audience: str) -> str:
    """The signed JWT carrying ``claims``."""
    payload: dict[str, Any] = {
        "iss": issuer,
        "aud": audience,
        "sub": str(claims.subject),
        "iat": _epoch(claims.issued_at),
        "exp": _epoch(claims.expires_at),
        "jti": claims.jti,
    }
    if claims.tenant_id is not None:
        payload["tid"] = str(claims.tenant_id)
    if claims.operator:
        payload["op"] = True
    if claims.read_only:
        payload["ro"] = True
    if claims.scopes:
        payload["scope"] = " ".join(claims.scopes)
    if claims.session_id is not None:
        payload["sid"] = str(claims.session_id)
    if claims.password_change:
        payload["pwc"] = True
    return jwt.encode(payload, key, algorithm=ALGORITHM, headers={"typ": TOKEN_TYPE})


def _invalid(reason: str) -> Unauthenticated:
    # The message names the reason, never the token: error bodies and logs must not carry credentials.
    return Unauthenticated(f"the access token is invalid: {reason}", code="TOKEN_INVALID")


def verify_access_token(
    token: str,
    key: str,
    *,
    now: datetime,
    issuer: str,
    audience: str,
    leeway: timedelta = LEEWAY,
    is_revoked: Callable[[AccessClaims], bool] | None = None,
) -> AccessClaims:
    """The claims of a genuine, current, unrevoked token; else `Unauthenticated` (TOKEN_INVALID,
    TOKEN_EXPIRED or TOKEN_REVOKED).

    A token is valid from ``iat - leeway`` while ``now < exp + leeway``. Time is checked against ``now``
    here, not against PyJWT's own clock, so that callers and tests decide what time it is.
    """
    try:
        header = jwt.get_unverified_header(token)
        payload = jwt.decode(
            token,
            key,
            algorithms=[ALGORITHM],
            issuer=issuer,
            audience=audience,
            options={
                "require": list(REQUIRED_CLAIMS),
                "verify_exp": False,
                "verify_iat": False,
                "verify_nbf": False,
            },
        )
    except jwt.InvalidAudienceError:
        raise _invalid("wrong audience") from None
    except jwt.InvalidIssuerError:
        raise _invalid("wrong issuer") from None
    except jwt.InvalidAlgorithmError:
        raise _invalid(f"only {ALGORITHM} is accepted") from None
    except jwt.MissingRequiredClaimError as exc:
        raise _invalid(f"the claim {exc.claim!r} is missing") from None
    except jwt.InvalidSignatureError:
        raise _invalid("bad signature") from None
    except jwt.PyJWTError:
        raise _invalid("malformed") from None
    if header.get("typ") != TOKEN_TYPE:
        raise _invalid("not an access token")
    claims = _claims_from(payload)
    if now >= claims.expires_at + leeway:
        raise Unauthenticated("the access token has expired", code="TOKEN_EXPIRED")
    if now < claims.issued_at - leeway:
        raise _invalid("issued in the future")
    if is_revoked is not None and is_revoked(claims):
        raise Unauthenticated("the access token has been revoked", code="TOKEN_REVOKED")
    return claims


def _claims_from(payload: dict[str, Any]) -> AccessClaims:
    try:
        iat, exp = payload["iat"], payload["exp"]
        if type(iat) is not int or type(exp) is not int:  # not float, not bool (an int subclass)
            raise ValueError("iat and exp must be integers")
        scope = payload.get("scope", "")
        if not isinstance(scope, str) or not isinstance(payload["jti"], str):
            raise ValueError("scope and jti must be strings")
        tenant = payload.get("tid")
        session = payload.get("sid")
        read_only = payload.get("ro", False)
        if type(read_only) is not bool:
            raise ValueError("ro must be a boolean")
        password_change = payload.get("pwc", False)
        if type(password_change) is not bool:
            raise ValueError("pwc must be a boolean")
        return AccessClaims(
            subject=uuid.UUID(payload["sub"]),
            tenant_id=None if tenant is None else uuid.UUID(tenant),
            jti=payload["jti"],
            issued_at=_from_epoch(iat),
            expires_at=_from_epoch(exp),
            scopes=tuple(scope.split()),
            operator=payload.get("op") is True,
            session_id=None if session is None else uuid.UUID(session),
            read_only=read_only,
            password_change=password_change,
        )
    except (ValueError, TypeError, AttributeError, OverflowError, OSError):
        raise _invalid("malformed claims") from None


# -- Refresh tokens ------------------------------------------------------------------------------------------


def hash_refresh_token(token: str) -> str:
    """The SHA-256 (hex) under which a refresh token is stored and looked up.

    A plain fast hash is right here, unlike for passwords: the token is 256 random bits, so there is nothing
    to guess and no dictionary to slow down, and a deterministic digest lets the database find it by index.
    """
    return hashlib.sha256(token.encode()).hexdigest()


def new_refresh_token() -> tuple[str, str]:
    """A new opaque refresh token (``frt_`` + 256 random bits, URL-safe) and its hash to store."""
    token = REFRESH_PREFIX + secrets.token_urlsafe(32)
    return token, hash_refresh_token(token)


class RefreshRecord(Protocol):
    """What `decide_refresh` reads of a stored refresh token (the model's columns)."""

    @property
    def expires_at(self) -> datetime: ...
    @property
    def rotated_at(self) -> datetime | None: ...
    @property
    def revoked_at(self) -> datetime | None: ...


class RefreshOutcome(Enum):
    ROTATE = "rotate"
    """Genuine and current: mark it rotated, issue a child in the same family (one atomic UPDATE ... WHERE
    rotated_at IS NULL, so two racing requests cannot both rotate it)."""
    REUSE_DETECTED = "reuse_detected"
    """Already exchanged once: someone holds a copy. Revoke the whole family, then refuse."""
    REJECT = "reject"
    """Unknown, revoked or expired: refuse, change nothing."""


@dataclass(frozen=True)
class RefreshDecision:
    outcome: RefreshOutcome
    code: str | None = None
    """The error code when the outcome is not ROTATE."""

    def error(self) -> Unauthenticated:
        """The error to raise for a decision other than ROTATE."""
        messages = {
            "TOKEN_INVALID": "the refresh token is not valid",
            "TOKEN_REVOKED": "the refresh token has been revoked",
            "TOKEN_EXPIRED": "the refresh token has expired",
            "TOKEN_REUSED": "the refresh token was already used; the session has been ended",
        }
        code = self.code or "TOKEN_INVALID"
        return Unauthenticated(messages.get(code, messages["TOKEN_INVALID"]), code=code)


def decide_refresh(record: RefreshRecord | None, now: datetime) -> RefreshDecision:
    """What to do with a presented refresh token, given its stored record (None: no row has its hash)."""
    if record is None:
        return RefreshDecision(RefreshOutcome.REJECT, "TOKEN_INVALID")
    if record.revoked_at is not None:
        # Revoked (logout, or its family was already ended): nothing more to revoke.
        return RefreshDecision(RefreshOutcome.REJECT, "TOKEN_REVOKED")
    if record.rotated_at is not None:
        # Checked before expiry: an old token coming back is a theft signal even after it expired.
        return RefreshDecision(RefreshOutcome.REUSE_DETECTED, "TOKEN_REUSED")
    if now >= record.expires_at:
        return RefreshDecision(RefreshOutcome.REJECT, "TOKEN_EXPIRED")
    return RefreshDecision(RefreshOutcome.ROTATE)


# -- API keys ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NewApiKey:
    secret: str
    """The whole key, ``fak_<id8>_<secret>``: shown once to its creator, never stored."""
    prefix: str
    """``fak_<id8>``: stored in clear, unique, how a presented key finds its row."""
    key_hash: str
    """SHA-256 (hex) of the whole key: what is stored to prove it."""


def hash_api_key(key: str) -> str:
    """The SHA-256 (hex) of an API key; a fast hash suffices for 256 random bits (see hash_refresh_token)."""
    return hashlib.sha256(key.encode()).hexdigest()


def new_api_key(kind: str = API_KEY_KIND) -> NewApiKey:
    """A new API key. The 8-character id is random: on the rare prefix collision, insert again."""
    if not kind.isalnum():
        raise ValueError("an API key kind is alphanumeric, so the key splits on '_'")
    prefix = f"{kind}_" + "".join(secrets.choice(_API_KEY_ID_ALPHABET) for _ in range(8))
    secret = f"{prefix}_" + "".join(secrets.choice(_ALPHANUMERIC) for _ in range(_API_KEY_SECRET_LENGTH))
    return NewApiKey(secret=secret, prefix=prefix, key_hash=hash_api_key(secret))


def api_key_prefix(key: str, kind: str = API_KEY_KIND) -> str | None:
    """The lookup prefix of a presented key, or None when it does not have the shape of one of ours."""
    parts = key.split("_")
    if (
        len(parts) != 3
        or parts[0] != kind
        or len(parts[1]) != 8
        or not all(c in _API_KEY_ID_ALPHABET for c in parts[1])
        or len(parts[2]) != _API_KEY_SECRET_LENGTH
        or not all(c in _ALPHANUMERIC for c in parts[2])
    ):
        return None
    return f"{parts[0]}_{parts[1]}"


def constant_time_equals(a: str, b: str) -> bool:
    """Compare secrets or their hashes without leaking, through timing, how much of them matched."""
    return hmac.compare_digest(a.encode(), b.encode())


def verify_api_key(key: str, stored_hash: str) -> bool:
    """Whether a presented key is the one whose hash was stored."""
    return constant_time_equals(hash_api_key(key), stored_hash)
