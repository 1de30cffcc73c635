"""The authenticator's operator tokens: what they carry and the platform permissions they give back."""

from __future__ import annotations

import uuid
from datetime import timedelta
from pathlib import Path

import pytest

from appliance.db.session import Database
from appliance.services.access import platform_permissions
from appliance.services.access.actors import RequestInfo
from appliance.services.identity.authenticator import Authenticator
from tests.support import make_settings

READ, ALL = platform_permissions.READ, platform_permissions.ALL


@pytest.mark.parametrize(
    ("granted", "held"),
    [
        (ALL, ALL),
        (READ, READ),
        # Anything short of every platform permission comes back read-only: the token fails closed.
        (frozenset(), READ),
        (frozenset({platform_permissions.TENANTS_MANAGE}), READ),
    ],
)
def test_an_operators_token_is_full_or_read_only(
    tmp_path: Path, granted: frozenset[str], held: frozenset[str]
) -> None:
    database = Database(make_settings(tmp_path))
    try:
        authn = Authenticator(
            database, signing_key="k" * 48, issuer="iss", audience="aud", access_ttl=timedelta(minutes=15)
        )
        token, claims = authn.issue(
            user_id=uuid.uuid4(), tenant_id=None, permissions=granted, session_id=uuid.uuid4(), operator=True
        )
        assert claims.scopes == ()  # the permissions are not listed in the token
        assert claims.read_only is (held != ALL)
        actor = authn.bearer(token, RequestInfo())
        assert actor.operator
        assert actor.permissions == held
    finally:
        database.dispose()
