"""The console holds the garbage collector off while big tables load: overlapping loads keep it off until
the last one ends, and a load that fails turns it back on all the same."""

from __future__ import annotations

import gc

import pytest

from console import collector


def test_overlapping_holds_release_the_collector_when_the_last_ends() -> None:
    assert gc.isenabled()
    with collector.held():
        assert not gc.isenabled()
        with collector.held():
            assert not gc.isenabled()
        assert not gc.isenabled()  # the outer load still streams
    assert gc.isenabled()


def test_a_failed_load_releases_the_collector() -> None:
    with pytest.raises(RuntimeError, match="the API went away"), collector.held():
        raise RuntimeError("the API went away")
    assert gc.isenabled()
