"""TOTP: the ±1 step window, replay refusal, enrollment URI, and single-use recovery codes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlparse

import pyotp
import pytest

from appliance.errors import Unauthenticated
from appliance.services.identity import totp

SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
NOW = datetime(2026, 3, 1, 12, 0, 15, tzinfo=UTC)  # 15 s into its 30 s step
STEP = int(NOW.timestamp()) // 30


def code_at(step: int) -> str:
    return pyotp.TOTP(SECRET).generate_otp(step)


def test_new_secret_is_base32_and_random() -> None:
    secret = totp.new_secret()
    assert len(secret) == 32
    assert secret != totp.new_secret()
    pyotp.TOTP(secret).now()  # a valid base32 secret


def test_provisioning_uri() -> None:
    uri = urlparse(totp.provisioning_uri(SECRET, "alice@example.com", "Forge Appliance"))
    assert (uri.scheme, uri.netloc) == ("otpauth", "totp")
    assert uri.path == "/Forge%20Appliance:alice%40example.com"
    query = parse_qs(uri.query)
    assert query["secret"] == [SECRET]
    assert query["issuer"] == ["Forge Appliance"]


def test_current_and_adjacent_steps_are_accepted() -> None:
    assert totp.verify(SECRET, code_at(STEP), NOW) == STEP
    assert totp.verify(SECRET, code_at(STEP - 1), NOW) == STEP - 1
    assert totp.verify(SECRET, code_at(STEP + 1), NOW) == STEP + 1


def test_steps_outside_the_window_are_refused() -> None:
    assert totp.verify(SECRET, code_at(STEP - 2), NOW) is None
    assert totp.verify(SECRET, code_at(STEP + 2), NOW) is None


def test_window_follows_the_clock_at_step_boundaries() -> None:
    start = datetime.fromtimestamp((STEP + 1) * 30, UTC)  # first instant of the next step
    assert totp.verify(SECRET, code_at(STEP - 1), start - timedelta(microseconds=1)) == STEP - 1
    assert totp.verify(SECRET, code_at(STEP - 1), start) is None


def test_wrong_and_malformed_codes_are_refused() -> None:
    wrong = f"{(int(code_at(STEP)) + 1) % 1_000_000:06d}"
    assert totp.verify(SECRET, wrong, NOW) is None
    for malformed in ("", "12345", "1234567", "abcdef", "١٢٣٤٥٦"):
        assert totp.verify(SECRET, malformed, NOW) is None
    spaced = code_at(STEP)[:3] + " " + code_at(STEP)[3:]
    assert totp.verify(SECRET, spaced, NOW) == STEP


def test_a_used_step_and_older_ones_are_refused() -> None:
    assert totp.verify(SECRET, code_at(STEP), NOW, last_used_step=STEP) is None
    assert totp.verify(SECRET, code_at(STEP - 1), NOW, last_used_step=STEP) is None
    assert totp.verify(SECRET, code_at(STEP + 1), NOW, last_used_step=STEP) == STEP + 1
    assert totp.verify(SECRET, code_at(STEP), NOW, last_used_step=STEP - 1) == STEP
    # A used code still matches its step, so that the refusal can say it was used rather than wrong.
    assert totp.matching_step(SECRET, code_at(STEP - 1), NOW) == STEP - 1
    assert totp.matching_step(SECRET, code_at(STEP - 2), NOW) is None


def test_naive_time_is_refused() -> None:
    with pytest.raises(ValueError):
        totp.verify(SECRET, code_at(STEP), NOW.replace(tzinfo=None))


def test_recovery_codes_are_shown_once_and_stored_hashed() -> None:
    codes, hashes = totp.new_recovery_codes()
    assert len(codes) == len(set(codes)) == len(hashes) == 10
    for code, digest in zip(codes, hashes, strict=True):
        assert len(code) == 11
        assert code[5] == "-"
        assert code not in digest
        assert digest == totp.hash_recovery_code(code)
    assert len(totp.new_recovery_codes(3)[0]) == 3


def test_a_recovery_code_works_once() -> None:
    codes, hashes = totp.new_recovery_codes()
    remaining = totp.use_recovery_code(codes[3], hashes)
    assert remaining == hashes[:3] + hashes[4:]
    with pytest.raises(Unauthenticated) as info:
        totp.use_recovery_code(codes[3], remaining)
    assert info.value.code == "RECOVERY_CODE_INVALID"
    assert codes[3] not in info.value.message
    assert totp.use_recovery_code(codes[0], remaining) == remaining[1:]


def test_recovery_codes_are_normalized() -> None:
    codes, hashes = totp.new_recovery_codes(2)
    typed = codes[1].upper().replace("-", " ")
    assert totp.find_recovery_code(typed, hashes) == 1
    assert totp.find_recovery_code(codes[1].replace("-", ""), hashes) == 1


def test_unknown_recovery_code_is_refused() -> None:
    _, hashes = totp.new_recovery_codes()
    with pytest.raises(Unauthenticated):
        totp.use_recovery_code("aaaaa-aaaaa", hashes)
    with pytest.raises(Unauthenticated):
        totp.use_recovery_code("anything", [])
