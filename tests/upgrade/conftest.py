"""The previous release, extracted once per run, and this tree's wheel, built in the background from the end
of the collection while the tests before the upgrade tests run."""

from __future__ import annotations

import contextlib
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tests import background
from tests.support import copy_checkout
from tests.upgrade.release import previous_release


def _build_wheel(stack: contextlib.ExitStack) -> Path:
    scratch = Path(tempfile.mkdtemp(prefix="fa-wheel-"))
    stack.callback(shutil.rmtree, scratch, ignore_errors=True)
    checkout = copy_checkout(scratch / "checkout", tests=False)
    command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "--disable-pip-version-check"]
    subprocess.run([*command, "--wheel-dir", str(scratch / "wheels"), str(checkout)], check=True)
    return next((scratch / "wheels").glob("forge_appliance-*.whl"))


NEW_WHEEL = background.Preparation("new_wheel", _build_wheel)


@pytest.fixture
def new_wheel() -> Path:
    """This tree as a wheel (pip wheel, the appliance alone)."""
    return NEW_WHEEL.result()


@pytest.fixture(scope="session")
def old_source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The previous release's source tree (its git tag, else the commit in PREVIOUS_RELEASE)."""
    return previous_release(tmp_path_factory.mktemp("previous") / "src")[1]


@pytest.fixture(scope="session")
def old_version(old_source: Path) -> str:
    found = re.search(r'__version__ = "([^"]+)"', (old_source / "appliance" / "__init__.py").read_text())
    assert found is not None
    return found.group(1)
