"""Password hashing with argon2id (libpass), and the generation of one-time passwords."""

from __future__ import annotations

import secrets
import string
from functools import cache

from passlib.context import CryptContext

ONE_TIME_ALPHABET = string.ascii_letters + string.digits


#: argon2id parameters (RFC 9106's second recommended option: 64 MiB, 3 passes, 4 lanes), the defaults of
#: security.password_hash_memory_kib and security.password_hash_passes. Written out rather than left to
#: libpass's defaults so that raising them is a visible change; a stored hash made with other parameters
#: verifies as before and is flagged for rehash at its next successful login.
ARGON2_MEMORY_KIB = 65_536
ARGON2_TIME_COST = 3
ARGON2_PARALLELISM = 4

_parameters = {"memory_kib": ARGON2_MEMORY_KIB, "passes": ARGON2_TIME_COST}


def configure(memory_kib: int, passes: int) -> None:
    """Hash new passwords of this process with these argon2id parameters (the API and the CLI call it with
    the security settings at start)."""
    if _parameters == {"memory_kib": memory_kib, "passes": passes}:
        return
    _parameters.update(memory_kib=memory_kib, passes=passes)
    context.cache_clear()
    _dummy_digest.cache_clear()


def parameters() -> tuple[int, int, int]:
    """(memory in KiB, passes, lanes) new hashes are made with."""
    return _parameters["memory_kib"], _parameters["passes"], ARGON2_PARALLELISM


@cache
def context() -> CryptContext:
    # `deprecated="auto"` plus pinned parameters: `verify_and_update` returns a new digest for any hash that
    # differs in type (argon2i, argon2d), memory, passes or lanes.
    return CryptContext(
        schemes=["argon2"],
        deprecated="auto",
        argon2__type="ID",
        argon2__memory_cost=_parameters["memory_kib"],
        argon2__rounds=_parameters["passes"],
        argon2__parallelism=ARGON2_PARALLELISM,
    )


def hash_password(password: str) -> str:
    digest: str = context().hash(password)
    return digest


def verify(password: str, digest: str) -> tuple[bool, str | None]:
    """Whether ``password`` matches, and a new digest when the stored one uses outdated parameters.

    The caller stores the new digest (when not None) in the same transaction as the login.
    """
    ok, new_hash = context().verify_and_update(password, digest)
    return bool(ok), new_hash


def needs_rehash(digest: str) -> bool:
    """Whether a stored digest was made with other parameters than today's."""
    return bool(context().needs_update(digest))


@cache
def _dummy_digest() -> str:
    return hash_password(secrets.token_urlsafe(16))


def verify_dummy(password: str) -> None:
    """Spend the time of one verification, for a login whose user does not exist: answering faster would
    tell an attacker which email addresses have accounts."""
    context().verify(password, _dummy_digest())


def one_time_password(length: int = 20) -> str:
    """A random password for a first login, to be changed at once."""
    return "".join(secrets.choice(ONE_TIME_ALPHABET) for _ in range(length))
