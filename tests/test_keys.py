"""The signing key: created owner-only by init, and refused when missing, placeholder or exposed."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from pydantic import SecretStr

from appliance.config import PLACEHOLDER_SECRET, Settings
from appliance.errors import ConfigError
from appliance.keys import create_signing_key, signing_key


def test_init_creates_an_owner_only_key_once(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    assert create_signing_key(settings.secret_key_file)
    first = settings.secret_key_file.read_text()
    assert stat.S_IMODE(settings.secret_key_file.stat().st_mode) == 0o600
    assert not create_signing_key(settings.secret_key_file)
    assert settings.secret_key_file.read_text() == first
    assert len(signing_key(settings)) >= 32


@pytest.mark.parametrize("mode", ["embedded", "production"])
def test_missing_key_is_refused_outside_development(tmp_path: Path, mode: str) -> None:
    with pytest.raises(ConfigError, match="does not exist: run `appliance init`"):
        signing_key(Settings(data_dir=tmp_path, mode=mode))


def test_development_runs_without_a_key(tmp_path: Path) -> None:
    assert len(signing_key(Settings(data_dir=tmp_path, mode="development"))) >= 32


@pytest.mark.parametrize("value", [PLACEHOLDER_SECRET, "short"])
def test_placeholder_or_weak_key_is_refused_in_production(tmp_path: Path, value: str) -> None:
    settings = Settings(data_dir=tmp_path, mode="production", security={"secret_key": SecretStr(value)})
    with pytest.raises(ConfigError, match="placeholder or shorter than 32"):
        signing_key(settings)


def test_key_readable_by_others_is_refused(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    create_signing_key(settings.secret_key_file)
    settings.secret_key_file.chmod(0o644)
    with pytest.raises(ConfigError, match=r"readable by others.*chmod 600"):
        signing_key(settings)
