"""The [logs] table and `--since` values: accepted forms, defaults, and errors that name the file and key."""

from __future__ import annotations

from pathlib import Path

import pytest

from appliance.client.since import parse_since
from appliance.supervisor.logpolicy import LogPolicy, load_log_policy, parse_duration, parse_size
from appliance.supervisor.specs import SpecError, load_services


def test_defaults_without_a_logs_table() -> None:
    policy = load_log_policy({}, "s.toml")
    assert policy == LogPolicy(max_bytes=10 << 20, max_age=86400.0, quota_bytes=500 << 20, compress=True)


def test_sizes_and_durations_as_numbers_or_strings() -> None:
    policy = load_log_policy(
        {"max_bytes": "10M", "max_age": "12h", "quota_bytes": "1G", "compress": False}, "s.toml"
    )
    assert policy == LogPolicy(max_bytes=10 << 20, max_age=43200.0, quota_bytes=1 << 30, compress=False)
    assert parse_size(4096) == 4096
    assert parse_size("64k") == 65536
    assert parse_size("500MiB") == 500 << 20
    assert parse_duration(90) == 90.0
    assert parse_duration("1d") == 86400.0
    assert parse_duration("10m") == 600.0


@pytest.mark.parametrize(
    ("table", "words"),
    [
        ({"max_bytes": "lots"}, "'max_bytes'"),
        ({"max_age": "soon"}, "'max_age'"),
        ({"quota_bytes": True}, "'quota_bytes'"),
        ({"compress": "yes"}, "'compress'"),
        ({"max_bytes": 10}, "'max_bytes' must be at least"),
        ({"max_bytes": "10M", "quota_bytes": "1M"}, "'quota_bytes'"),
        ({"max_age": 0}, "'max_age' must be positive"),
        ({"rotate": 3}, "unknown key 'rotate'"),
    ],
)
def test_bad_values_name_the_file_and_the_key(table: dict[str, object], words: str) -> None:
    with pytest.raises(SpecError) as caught:
        load_log_policy(table, "/etc/services.toml")
    assert "/etc/services.toml: [logs]" in str(caught.value)
    assert words in str(caught.value)


def test_the_services_file_accepts_and_checks_a_logs_table(tmp_path: Path) -> None:
    path = tmp_path / "services.toml"
    program = '[programs.app]\ncommand = ["true"]\n'
    path.write_text(f'[logs]\nmax_bytes = "1M"\nmax_age = "1h"\n{program}')
    assert [p.name for p in load_services(path).programs] == ["app"]
    path.write_text(f'[logs]\nmax_age = "forever"\n{program}')
    with pytest.raises(SpecError, match="max_age"):
        load_services(path)


NOW = 1_800_000_000.0


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("10m", NOW - 600),
        ("2h", NOW - 7200),
        ("1d", NOW - 86400),
        ("30s", NOW - 30),
        ("1767225600", 1767225600.0),
        ("1767225600.5", 1767225600.5),
        ("2026-01-01T00:00:00Z", 1767225600.0),
        ("2026-01-01T00:00:00", 1767225600.0),
        ("2026-01-01T01:00:00+01:00", 1767225600.0),
    ],
)
def test_since_values(value: str, expected: float) -> None:
    assert parse_since(value, NOW) == expected


def test_since_rejects_nonsense_and_says_what_works() -> None:
    with pytest.raises(ValueError, match="ISO-8601"):
        parse_since("yesterday", NOW)
