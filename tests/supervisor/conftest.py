"""Fixtures of the supervisor tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.supervisor.realproc import Sandbox


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[Sandbox]:
    """A place to run the real supervisor; every process started in it is gone after the test."""
    box = Sandbox(tmp_path)
    try:
        yield box
    finally:
        box.cleanup()
