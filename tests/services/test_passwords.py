"""Password hashing: argon2id, and a rehash when the stored hash was made with other parameters."""

from __future__ import annotations

from passlib.hash import argon2

from appliance.services import passwords


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
