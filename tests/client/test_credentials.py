"""Saved sign-ins: a file only the owner can read, replaced whole, refused when others can read it."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from appliance.client.credentials import Credential, CredentialsError, CredentialStore

SESSION = Credential("ops@example.com", "access", "refresh", 1_900_000_000.0)


def test_saved_owner_only_and_read_back(tmp_path: Path) -> None:
    path = tmp_path / "config" / "credentials.json"
    store = CredentialStore(path)
    store.put("local", SESSION)
    store.put("production", SESSION)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert CredentialStore(path).get("local") == SESSION
    store.put("local", None)
    assert store.get("local") is None
    assert store.get("production") == SESSION
    assert [p.name for p in path.parent.iterdir()] == ["credentials.json"], "no temporary file is left"


def test_a_file_others_can_read_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "credentials.json"
    CredentialStore(path).put("local", SESSION)
    path.chmod(0o644)
    with pytest.raises(CredentialsError, match="readable by others"):
        CredentialStore(path).get("local")


def test_a_damaged_file_means_signing_in_again(tmp_path: Path) -> None:
    path = tmp_path / "credentials.json"
    path.write_text("{not json")
    path.chmod(0o600)
    assert CredentialStore(path).get("local") is None
