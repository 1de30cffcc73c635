"""Access tokens, refresh tokens and API keys: tampering, boundaries, rotation decisions, key format."""

from __future__ import annotations

import base64
import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from appliance.config import SecuritySettings
from appliance.errors import Unauthenticated
from appliance.services.identity import tokens
from appliance.services.identity.tokens import AccessClaims, RefreshOutcome

KEY = "k" * 48
NOW = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
USER = uuid.UUID("11111111-1111-4111-8111-111111111111")
TENANT = uuid.UUID("22222222-2222-4222-8222-222222222222")
SETTINGS = SecuritySettings()
ISS, AUD = SETTINGS.token_issuer, SETTINGS.token_audience
TTL = timedelta(seconds=SETTINGS.access_token_ttl)


def issue(**overrides: Any) -> tuple[str, AccessClaims]:
    args: dict[str, Any] = {"subject": USER, "tenant_id": TENANT, "now": NOW, "ttl": TTL} | overrides
    claims = tokens.new_access_claims(**args)
    return tokens.issue_access_token(KEY, claims, issuer=ISS, audience=AUD), claims


def verify(token: str, *, now: datetime = NOW, key: str = KEY, **kwargs: Any) -> AccessClaims:
    options: dict[str, Any] = {"issuer": ISS, "audience": AUD} | kwargs
    return tokens.verify_access_token(token, key, now=now, **options)


def code_of(token: str, **kwargs: Any) -> str:
    with pytest.raises(Unauthenticated) as info:
        verify(token, **kwargs)
    assert not token or token not in info.value.message
    return info.value.code


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64(part: str) -> dict[str, Any]:
    value: dict[str, Any] = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    return value


def segments(token: str) -> tuple[dict[str, Any], dict[str, Any], str]:
    head, body, signature = token.split(".")
    return unb64(head), unb64(body), signature


def test_settings_defaults() -> None:
    assert (ISS, AUD) == ("forge-appliance", "forge-appliance-api")
    assert SETTINGS.access_token_ttl == 900
    assert SETTINGS.refresh_token_ttl == 30 * 86_400


def test_round_trip_carries_every_claim() -> None:
    session = uuid.uuid4()
    token, claims = issue(scopes=("projects:read", "projects:write"), session_id=session)
    header, payload, _ = segments(token)
    assert header == {"alg": "HS256", "typ": "at+jwt"}
    assert payload["iss"] == ISS
    assert payload["aud"] == AUD
    assert payload["sub"] == str(USER)
    assert payload["tid"] == str(TENANT)
    assert payload["iat"] == int(NOW.timestamp())
    assert payload["exp"] == int(NOW.timestamp()) + 900
    got = verify(token)
    assert got == claims
    assert got.expires_at == NOW + TTL
    assert got.scopes == ("projects:read", "projects:write")
    assert got.revocation_keys == (claims.jti, f"sid:{session}")


def test_operator_token_has_no_tenant() -> None:
    token, _ = issue(tenant_id=None, operator=True)
    claims = verify(token)
    assert claims.operator
    assert claims.tenant_id is None
    assert "tid" not in segments(token)[1]


def test_a_read_only_operators_token_says_so_in_one_small_claim() -> None:
    token, _ = issue(tenant_id=None, operator=True, read_only=True)
    claims = verify(token)
    assert (claims.operator, claims.read_only, claims.scopes) == (True, True, ())
    payload = segments(token)[1]
    assert payload["ro"] is True
    assert "scope" not in payload
    full, _ = issue(tenant_id=None, operator=True)
    assert "ro" not in segments(full)[1]
    assert verify(full).read_only is False
    with pytest.raises(ValueError, match="only an operator"):
        issue(read_only=True)  # a tenant's token is never read-only: its scope says what it may do


def test_a_forged_or_malformed_read_only_claim_is_refused() -> None:
    token, _ = issue(tenant_id=None, operator=True, read_only=True)
    head, _, signature = token.split(".")
    dropped = {k: v for k, v in segments(token)[1].items() if k != "ro"}  # read-only widened to full
    assert code_of(f"{head}.{b64(json.dumps(dropped).encode())}.{signature}") == "TOKEN_INVALID"
    for bad in ("yes", 1):
        payload = segments(token)[1] | {"ro": bad}
        assert (
            code_of(jwt.encode(payload, KEY, algorithm="HS256", headers={"typ": "at+jwt"})) == "TOKEN_INVALID"
        )
    tenant_payload = segments(issue()[0])[1] | {"ro": True}
    forged = jwt.encode(tenant_payload, KEY, algorithm="HS256", headers={"typ": "at+jwt"})
    assert code_of(forged) == "TOKEN_INVALID"


def test_a_token_issued_while_the_password_must_change_says_so() -> None:
    """``pwc``: the API checks such a token's account on each use; dropping the claim breaks the signature."""
    token, _ = issue(password_change=True)
    assert segments(token)[1]["pwc"] is True
    assert verify(token).password_change is True
    plain, _ = issue()
    assert "pwc" not in segments(plain)[1]
    assert verify(plain).password_change is False
    head, _, signature = token.split(".")
    dropped = {k: v for k, v in segments(token)[1].items() if k != "pwc"}
    assert code_of(f"{head}.{b64(json.dumps(dropped).encode())}.{signature}") == "TOKEN_INVALID"
    for bad in ("yes", 1):
        payload = segments(token)[1] | {"pwc": bad}
        assert (
            code_of(jwt.encode(payload, KEY, algorithm="HS256", headers={"typ": "at+jwt"})) == "TOKEN_INVALID"
        )


def test_a_token_is_bound_to_a_tenant_or_is_an_operators() -> None:
    with pytest.raises(ValueError):
        issue(tenant_id=None)
    with pytest.raises(ValueError):
        issue(operator=True)


def test_jti_is_unique() -> None:
    assert issue()[1].jti != issue()[1].jti


def test_expiry_boundaries_with_the_leeway() -> None:
    token, claims = issue()
    last_valid = claims.expires_at + tokens.LEEWAY - timedelta(microseconds=1)
    assert verify(token, now=last_valid) == claims
    assert code_of(token, now=claims.expires_at + tokens.LEEWAY) == "TOKEN_EXPIRED"
    assert code_of(token, now=NOW + timedelta(days=1)) == "TOKEN_EXPIRED"


def test_leeway_is_explicit() -> None:
    token, claims = issue()
    assert verify(token, now=claims.expires_at - timedelta(seconds=1), leeway=timedelta(0)) == claims
    assert code_of(token, now=claims.expires_at, leeway=timedelta(0)) == "TOKEN_EXPIRED"


def test_token_from_the_future_is_refused() -> None:
    token, _ = issue()
    assert verify(token, now=NOW - tokens.LEEWAY) is not None
    assert code_of(token, now=NOW - tokens.LEEWAY - timedelta(seconds=1)) == "TOKEN_INVALID"


@pytest.mark.parametrize(
    ("field", "value"), [("sub", str(uuid.uuid4())), ("tid", str(uuid.uuid4())), ("exp", 4e9)]
)
def test_changed_claim_is_refused(field: str, value: object) -> None:
    token, _ = issue()
    head, _, signature = token.split(".")
    payload = segments(token)[1] | {field: value}
    forged = f"{head}.{b64(json.dumps(payload).encode())}.{signature}"
    assert code_of(forged) == "TOKEN_INVALID"


def test_changed_signature_is_refused() -> None:
    token, _ = issue()
    head, body, signature = token.split(".")
    flipped = ("A" if signature[0] != "A" else "B") + signature[1:]
    assert code_of(f"{head}.{body}.{flipped}") == "TOKEN_INVALID"


def test_other_key_is_refused() -> None:
    token, _ = issue()
    assert code_of(token, key="x" * 48) == "TOKEN_INVALID"


def test_alg_none_is_refused() -> None:
    token, _ = issue()
    payload = segments(token)[1]
    header = b64(json.dumps({"alg": "none", "typ": "at+jwt"}).encode())
    unsigned = f"{header}.{b64(json.dumps(payload).encode())}."
    assert code_of(unsigned) == "TOKEN_INVALID"


def test_hs512_with_the_right_key_is_refused() -> None:
    payload = segments(issue()[0])[1]
    other = jwt.encode(payload, KEY + KEY, algorithm="HS512", headers={"typ": "at+jwt"})
    assert code_of(other, key=KEY + KEY) == "TOKEN_INVALID"


def test_asymmetric_algorithms_are_refused() -> None:
    payload = segments(issue()[0])[1]
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ec_key = ec.generate_private_key(ec.SECP256R1())
    for algorithm, private in (("RS256", rsa_key), ("ES256", ec_key)):
        forged = jwt.encode(payload, private, algorithm=algorithm, headers={"typ": "at+jwt"})
        assert code_of(forged) == "TOKEN_INVALID"


def test_wrong_issuer_or_audience_is_refused() -> None:
    token, _ = issue()
    assert code_of(token, issuer="someone-else") == "TOKEN_INVALID"
    assert code_of(token, audience="another-api") == "TOKEN_INVALID"


def test_missing_claim_and_wrong_type_are_refused() -> None:
    payload = segments(issue()[0])[1]
    del payload["jti"]
    assert code_of(jwt.encode(payload, KEY, algorithm="HS256", headers={"typ": "at+jwt"})) == "TOKEN_INVALID"
    plain = jwt.encode(segments(issue()[0])[1], KEY, algorithm="HS256")  # typ "JWT", not an access token
    assert code_of(plain) == "TOKEN_INVALID"


def test_garbage_is_refused_without_echo() -> None:
    for garbage in ("", "abc", "a.b.c", "frt_" + "x" * 40):
        assert code_of(garbage) == "TOKEN_INVALID"


def test_revocation_check_is_consulted() -> None:
    token, claims = issue()
    assert code_of(token, is_revoked=lambda c: c.jti == claims.jti) == "TOKEN_REVOKED"
    assert verify(token, is_revoked=lambda c: False) == claims


def test_refresh_tokens_are_opaque_and_stored_hashed() -> None:
    token, digest = tokens.new_refresh_token()
    other, _ = tokens.new_refresh_token()
    assert token.startswith("frt_")
    assert token != other
    assert len(base64.urlsafe_b64decode(token[4:] + "=")) == 32
    assert digest == tokens.hash_refresh_token(token)
    assert len(digest) == 64
    assert token not in digest


@dataclass
class Stored:
    expires_at: datetime
    rotated_at: datetime | None = None
    revoked_at: datetime | None = None


@pytest.mark.parametrize(
    ("record", "outcome", "code"),
    [
        (None, RefreshOutcome.REJECT, "TOKEN_INVALID"),
        (Stored(NOW + timedelta(days=1)), RefreshOutcome.ROTATE, None),
        (Stored(NOW + timedelta(microseconds=1)), RefreshOutcome.ROTATE, None),
        (Stored(NOW), RefreshOutcome.REJECT, "TOKEN_EXPIRED"),
        (Stored(NOW + timedelta(days=1), rotated_at=NOW), RefreshOutcome.REUSE_DETECTED, "TOKEN_REUSED"),
        (Stored(NOW - timedelta(days=1), rotated_at=NOW), RefreshOutcome.REUSE_DETECTED, "TOKEN_REUSED"),
        (Stored(NOW + timedelta(days=1), revoked_at=NOW), RefreshOutcome.REJECT, "TOKEN_REVOKED"),
        (Stored(NOW + timedelta(days=1), NOW, NOW), RefreshOutcome.REJECT, "TOKEN_REVOKED"),
    ],
)
def test_refresh_decisions(record: Stored | None, outcome: RefreshOutcome, code: str | None) -> None:
    decision = tokens.decide_refresh(record, NOW)
    assert (decision.outcome, decision.code) == (outcome, code)
    if outcome is not RefreshOutcome.ROTATE:
        error = decision.error()
        assert isinstance(error, Unauthenticated)
        assert error.code == code


def test_api_key_format_and_verification() -> None:
    key = tokens.new_api_key()
    kind, ident, secret = key.secret.split("_")
    assert kind == "fak"
    assert len(ident) == 8
    assert len(secret) == 43
    assert secret.isalnum()
    assert key.prefix == f"fak_{ident}"
    assert tokens.api_key_prefix(key.secret) == key.prefix
    assert key.secret not in key.key_hash
    assert len(key.key_hash) == 64
    assert tokens.verify_api_key(key.secret, key.key_hash)
    assert not tokens.verify_api_key(key.secret[:-1] + ("a" if key.secret[-1] != "a" else "b"), key.key_hash)
    assert tokens.new_api_key().prefix != key.prefix


@pytest.mark.parametrize(
    "presented",
    [
        "",
        "fak_abc",
        "xyz_abcdefgh_" + "a" * 43,
        "fak_ABCDEFGH_" + "a" * 43,
        "fak_abcdefgh_" + "a" * 42,
        "fak_abcdefgh_" + "a" * 42 + "-",
    ],
)
def test_api_key_prefix_refuses_malformed_keys(presented: str) -> None:
    assert tokens.api_key_prefix(presented) is None


def test_constant_time_equals() -> None:
    assert tokens.constant_time_equals("abc", "abc")
    assert not tokens.constant_time_equals("abc", "abd")
    assert not tokens.constant_time_equals("abc", "abcd")
