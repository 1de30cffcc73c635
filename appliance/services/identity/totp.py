"""TOTP multi-factor (RFC 6238 with pyotp): secrets, provisioning URIs, replay-safe codes, recovery codes.

Enrollment: `new_secret`, show `provisioning_uri` as a QR code, then enable the factor once `verify` accepts
a first code. Each accepted code returns its time step, which the caller stores (``last_used_step``) and
passes back: a code of that step or an earlier one is refused, so an overheard code cannot be replayed.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime

import pyotp

from appliance.errors import Unauthenticated

DIGITS = 6
#: Seconds per step (the value every authenticator app assumes).
INTERVAL = 30
#: Steps accepted either side of the current one, for clock drift and typing time.
WINDOW = 1
#: Recovery codes use an alphabet without look-alikes (no 0/o, 1/l/i) and are shown as xxxxx-xxxxx.
_RECOVERY_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"
_RECOVERY_LENGTH = 10


def new_secret() -> str:
    """A new base32 secret of 160 bits (the RFC 4226 recommendation)."""
    return pyotp.random_base32(length=32)


def provisioning_uri(secret: str, email: str, issuer: str) -> str:
    """The ``otpauth://`` URI an authenticator app reads from a QR code."""
    return pyotp.TOTP(secret, digits=DIGITS, interval=INTERVAL).provisioning_uri(
        name=email, issuer_name=issuer
    )


def time_step(now: datetime) -> int:
    if now.tzinfo is None:
        raise ValueError("a timezone-aware datetime is required")
    return int(now.timestamp()) // INTERVAL


def verify(secret: str, code: str, now: datetime, last_used_step: int | None = None) -> int | None:
    """The time step ``code`` belongs to (within ±`WINDOW` of ``now``), or None if it is wrong or replayed
    (its step is ``last_used_step`` or earlier)."""
    matched = matching_step(secret, code, now)
    if matched is None or (last_used_step is not None and matched <= last_used_step):
        return None
    return matched


def matching_step(secret: str, code: str, now: datetime) -> int | None:
    """The time step ``code`` belongs to (within ±`WINDOW` of ``now``), or None if it is wrong; whether it
    was used already is :func:`verify`'s question.

    Every step of the window is compared (in constant time), so the answer's timing says nothing of which
    step, if any, matched.
    """
    code = code.replace(" ", "").strip()
    if len(code) != DIGITS or not code.isascii() or not code.isdigit():
        return None
    totp = pyotp.TOTP(secret, digits=DIGITS, interval=INTERVAL)
    current = time_step(now)
    matched: int | None = None
    for step in range(current - WINDOW, current + WINDOW + 1):
        if hmac.compare_digest(totp.generate_otp(step), code) and matched is None:
            matched = step
    return matched


def normalize_recovery_code(code: str) -> str:
    """A recovery code as typed ("ABCDE-FGHJK", "abcde fghjk") reduced to its characters."""
    return "".join(c for c in code.lower() if c.isalnum())


def hash_recovery_code(code: str) -> str:
    """SHA-256 (hex) of the normalized code. A fast hash suffices: 50 random bits per code, single use,
    and attempts are rate limited, unlike a password that a person chose."""
    return hashlib.sha256(normalize_recovery_code(code).encode()).hexdigest()


def new_recovery_codes(n: int = 10) -> tuple[list[str], list[str]]:
    """``n`` recovery codes to show once (``xxxxx-xxxxx``) and their hashes to store, in the same order."""
    codes = []
    for _ in range(n):
        raw = "".join(secrets.choice(_RECOVERY_ALPHABET) for _ in range(_RECOVERY_LENGTH))
        codes.append(f"{raw[:5]}-{raw[5:]}")
    return codes, [hash_recovery_code(code) for code in codes]


def find_recovery_code(code: str, hashes: list[str]) -> int | None:
    """The index in ``hashes`` of the one ``code`` matches, or None. Compares with all, in constant time."""
    digest = hash_recovery_code(code)
    found: int | None = None
    for index, stored in enumerate(hashes):
        if hmac.compare_digest(digest, stored) and found is None:
            found = index
    return found


def use_recovery_code(code: str, hashes: list[str]) -> list[str]:
    """The hashes left once ``code`` is spent; `Unauthenticated` (RECOVERY_CODE_INVALID) if none matches."""
    index = find_recovery_code(code, hashes)
    if index is None:
        raise Unauthenticated(
            "the recovery code is not valid or was already used", code="RECOVERY_CODE_INVALID"
        )
    return hashes[:index] + hashes[index + 1 :]
