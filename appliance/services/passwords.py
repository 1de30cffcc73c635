"""Password hashing with argon2id (libpass), and the generation of one-time passwords."""

from __future__ import annotations

import secrets
import string
from functools import cache

from passlib.context import CryptContext

ONE_TIME_ALPHABET = string.ascii_letters + string.digits


@cache
def context() -> CryptContext:
    # argon2id with libpass's defaults; `deprecated="auto"` lets a login rehash when parameters change.
    return CryptContext(schemes=["argon2"], deprecated="auto", argon2__type="ID")


def hash_password(password: str) -> str:
    digest: str = context().hash(password)
    return digest


def verify(password: str, digest: str) -> tuple[bool, str | None]:
    """Whether ``password`` matches, and a new digest when the stored one uses outdated parameters."""
    ok, new_hash = context().verify_and_update(password, digest)
    return bool(ok), new_hash


def one_time_password(length: int = 20) -> str:
    """A random password for a first login, to be changed at once."""
    return "".join(secrets.choice(ONE_TIME_ALPHABET) for _ in range(length))
