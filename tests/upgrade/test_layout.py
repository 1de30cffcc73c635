"""The venvs beside each other: the stable path adopted into a link without a moment's gap, switched in one
step, the older venvs pruned; the stage runs on the standard library alone and names what it cannot use."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from appliance import __version__
from appliance.errors import InvalidInput, OperationFailed
from appliance.upgrade.layout import Layout, read_marker, remove_venv, venv_version
from appliance.upgrade.stage import inspect_source
from tests.support import REPOSITORY
from tests.upgrade.release import make_venv


def test_the_stable_path_is_adopted_switched_and_the_older_venvs_pruned(tmp_path: Path) -> None:
    layout = Layout(make_venv(tmp_path / ".venv", REPOSITORY))
    (layout.venv / "in-use").write_text("the files of the venv in use")

    moved = layout.adopt()
    assert moved is not None
    assert moved.parent == tmp_path / ".venvs"
    assert moved.name.startswith(f"{__version__}-")
    assert os.readlink(layout.venv) == f".venvs/{moved.name}"  # relative: the install may move whole
    assert (layout.venv / "in-use").read_text() == "the files of the venv in use"
    assert venv_version(layout.venv) == __version__  # its Python still runs, through the link
    assert read_marker(moved)["version"] == __version__
    assert layout.adopt() is None  # a link already

    second = make_venv(layout.new_release("9.9.9"), REPOSITORY)
    third = make_venv(layout.new_release("9.9.10"), REPOSITORY)
    layout.switch(second)
    assert layout.current() == second.resolve()
    layout.switch(third)
    assert layout.current() == third.resolve()
    assert not (tmp_path / ".venv.switching").exists()

    assert layout.prune([third, second]) == [moved]
    assert layout.kept() == sorted([second, third])
    assert layout.current() == third.resolve()


def test_only_a_kept_venv_is_ever_removed(tmp_path: Path) -> None:
    elsewhere = make_venv(tmp_path / "somewhere" / "venv", REPOSITORY)
    with pytest.raises(OperationFailed, match=r"is not a venv of \.venvs/: not removed"):
        remove_venv(elsewhere)
    assert elsewhere.exists()
    with pytest.raises(OperationFailed, match="is not a Python venv"):
        Layout(tmp_path / "nothing").check()


def test_sources_are_read_for_their_version(tmp_path: Path) -> None:
    assert inspect_source(REPOSITORY).version == __version__
    wheel = tmp_path / "forge_appliance-0.3.1-py3-none-any.whl"
    wheel.write_bytes(b"")
    assert inspect_source(wheel).version == "0.3.1"
    assert inspect_source(wheel).requirement(["production"]) == f"{wheel}[production]"
    other = tmp_path / "requests-2.0-py3-none-any.whl"
    other.write_bytes(b"")
    with pytest.raises(InvalidInput, match="is not a wheel of forge-appliance"):
        inspect_source(other)
    with pytest.raises(InvalidInput, match="is not a checkout of forge-appliance"):
        inspect_source(tmp_path)


def test_the_stage_runs_on_the_standard_library_alone(tmp_path: Path) -> None:
    # What install.sh runs with an installed venv's Python before the new version is installed anywhere:
    # without site-packages (-S) it must still start, and it names a source it cannot use.
    done = subprocess.run(
        [sys.executable, "-S", "-m", "appliance.upgrade", str(tmp_path / "nothing"), "--venv", str(tmp_path)],
        cwd=REPOSITORY,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 1, done.stderr
    nothing = tmp_path / "nothing"
    assert (
        done.stderr
        == f"appliance: error: {nothing} is neither a forge-appliance wheel (.whl) nor a checkout of it\n"
    )
