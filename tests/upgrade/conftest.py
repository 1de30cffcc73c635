"""The previous release, extracted once per run for the upgrade tests."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.upgrade.release import previous_release


@pytest.fixture(scope="session")
def old_source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The previous release's source tree (its git tag, else the commit in PREVIOUS_RELEASE)."""
    return previous_release(tmp_path_factory.mktemp("previous") / "src")[1]


@pytest.fixture(scope="session")
def old_version(old_source: Path) -> str:
    found = re.search(r'__version__ = "([^"]+)"', (old_source / "appliance" / "__init__.py").read_text())
    assert found is not None
    return found.group(1)
