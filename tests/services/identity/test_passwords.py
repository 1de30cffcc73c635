"""Password hashing: argon2id, and a rehash when the stored hash was made with other parameters."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from passlib.hash import argon2

from appliance.config import SecuritySettings
from appliance.services.identity import passwords


@pytest.fixture(autouse=True)
def _default_parameters() -> Iterator[None]:
    """These tests check the shipped parameters (the rest of the suite hashes with light ones)."""
    before = passwords.parameters()
    defaults = SecuritySettings()
    passwords.configure(defaults.password_hash_memory_kib, defaults.password_hash_passes)
    yield
    passwords.configure(before[0], before[1])


def test_hash_is_argon2id_with_the_pinned_parameters() -> None:
    digest = passwords.hash_password("blue-Kettle-92-north")
    assert digest.startswith("$argon2id$v=19$m=65536,t=3,p=4$")
    assert "blue-Kettle" not in digest
    assert passwords.verify("blue-Kettle-92-north", digest) == (True, None)
    assert passwords.verify("blue-kettle-92-north", digest) == (False, None)
    assert not passwords.needs_rehash(digest)


def test_weaker_hash_verifies_and_is_flagged_for_rehash() -> None:
    weak = argon2.using(type="ID", memory_cost=1024, rounds=1, parallelism=1).hash("blue-Kettle-92-north")
    assert passwords.needs_rehash(weak)
    ok, new_digest = passwords.verify("blue-Kettle-92-north", weak)
    assert ok
    assert new_digest is not None
    assert new_digest.startswith("$argon2id$v=19$m=65536,t=3,p=4$")
    assert passwords.verify("blue-Kettle-92-north", new_digest) == (True, None)


def test_wrong_password_against_a_weak_hash_gives_no_new_digest() -> None:
    weak = argon2.using(type="ID", memory_cost=1024, rounds=1, parallelism=1).hash("blue-Kettle-92-north")
    assert passwords.verify("something-else-42", weak) == (False, None)


def test_argon2i_hash_is_flagged_for_rehash() -> None:
    assert passwords.needs_rehash(argon2.using(type="I").hash("blue-Kettle-92-north"))


def test_dummy_verification_runs() -> None:
    passwords.verify_dummy("anything")


def test_configured_parameters_make_new_hashes_and_flag_the_old_ones() -> None:
    strong = passwords.hash_password("blue-Kettle-92-north")
    passwords.configure(memory_kib=2048, passes=2)
    light = passwords.hash_password("blue-Kettle-92-north")
    assert light.startswith("$argon2id$v=19$m=2048,t=2,p=4$")
    assert passwords.needs_rehash(strong)
    ok, remade = passwords.verify("blue-Kettle-92-north", strong)
    assert ok
    assert remade is not None
    assert remade.startswith("$argon2id$v=19$m=2048,t=2,p=4$")
    passwords.verify_dummy("anything")  # the dummy digest follows the parameters too


def test_the_settings_refuse_a_hash_below_one_mebibyte() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="password_hash_memory_kib"):
        SecuritySettings(password_hash_memory_kib=512)
