"""Versions compare as numbers, and an upgrade may end on a required stop but never jump over one."""

from __future__ import annotations

import itertools

from appliance.upgrade.stops import REQUIRED_STOPS, problem, skipped_stops, version_key


def test_versions_compare_as_numbers() -> None:
    assert version_key("0.10.0") > version_key("0.9.3")
    assert version_key("1.0") == version_key("1.0.0")
    assert version_key("0.3.0rc1") == version_key("0.3")


def test_a_required_stop_may_be_reached_but_not_skipped() -> None:
    stops = ("0.3.0", "0.5.0")
    assert skipped_stops("0.2.0", "0.3.0", stops) == []
    assert skipped_stops("0.3.0", "0.4.2", stops) == []
    assert skipped_stops("0.2.0", "0.6.0", stops) == ["0.3.0", "0.5.0"]
    assert (
        problem("0.2.0", "0.4.0", stops)
        == "0.2.0 -> 0.4.0 would skip the required stop 0.3.0: upgrade to 0.3.0 first"
    )
    assert problem("0.2.0", "0.2.0", stops) is None  # the same version again: a changed checkout
    assert problem("0.4.0", "0.3.9", stops) == (
        "0.3.9 is older than 0.4.0, the version installed: a downgrade is a restore of a backup"
    )
    assert all(version_key(a) < version_key(b) for a, b in itertools.pairwise(REQUIRED_STOPS))
