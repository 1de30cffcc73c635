"""The password policy: what is refused, and that every reason is named."""

from __future__ import annotations

import pytest

from appliance.config import SecuritySettings
from appliance.errors import InvalidInput
from appliance.services.identity.password_policy import COMMON_PASSWORDS, MAX_LENGTH, check_password


def rules(password: str, email: str | None = None, min_length: int = 12) -> list[str]:
    with pytest.raises(InvalidInput) as info:
        check_password(password, email, min_length=min_length)
    error = info.value
    assert error.code == "WEAK_PASSWORD"
    assert len(error.details["reasons"]) == len(error.details["rules"]) > 0
    assert all(isinstance(reason, str) and reason for reason in error.details["reasons"])
    assert password not in error.message or len(password) < 3
    return list(error.details["rules"])


@pytest.mark.parametrize(
    "password",
    ["Tr0ub4dor&3x!", "blue-Kettle-92-north", "correct horse battery staple on Mars", "Ünïcødé-Pässwörd-7"],
)
def test_strong_passwords_pass(password: str) -> None:
    check_password(password, "alice@example.com")


def test_minimum_length_is_configurable() -> None:
    assert SecuritySettings().password_min_length == 12
    assert rules("Xy7!abcdefg") == ["TOO_SHORT"]  # 11 characters
    check_password("Xy7!abcdefgh")  # 12
    check_password("Xy7!abcd", min_length=8)
    assert rules("Xy7!abcdefgh", min_length=14) == ["TOO_SHORT"]


def test_maximum_length() -> None:
    check_password("Ab1-xyz!" * (MAX_LENGTH // 8))
    assert rules("Ab1-xyz!" * (MAX_LENGTH // 8) + "x") == ["TOO_LONG"]


def test_one_character_class_is_refused_unless_a_passphrase() -> None:
    assert rules("kettleorchard") == ["ONE_CHARACTER_CLASS"]
    assert rules("KETTLEORCHARD") == ["ONE_CHARACTER_CLASS"]
    assert rules("4096281735092") == ["ONE_CHARACTER_CLASS"]
    check_password("kettleorchardmarmalade")  # 22 characters: a passphrase


def test_repetitive_passwords_are_refused() -> None:
    assert rules("aaaaaaaaaaaaaaaaaaaaaaaa") == ["TOO_REPETITIVE"]
    assert "TOO_REPETITIVE" in rules("abAB" * 4)


@pytest.mark.parametrize("password", ["password1234", "Password1234!", "Qwertyuiop12!", "Sunshine2024!!"])
def test_common_passwords_are_refused(password: str) -> None:
    assert "COMMON_PASSWORD" in rules(password)


def test_the_list_is_built_in_and_sizable() -> None:
    assert len(COMMON_PASSWORDS) >= 100
    assert all(word == word.lower() for word in COMMON_PASSWORDS)


def test_email_local_part_is_refused_in_any_case() -> None:
    assert rules("Xy7!john.smith", "John.Smith+work@example.com") == ["CONTAINS_EMAIL"]
    check_password("Xy7!john.smith", None)
    check_password("Xy7!bob-garden-al", "al@example.com")  # a 2-letter local part is not looked for


def test_every_broken_rule_is_reported() -> None:
    assert rules("aaaa") == ["TOO_SHORT", "ONE_CHARACTER_CLASS", "TOO_REPETITIVE"]
