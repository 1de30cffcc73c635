"""Targets files: named appliances, and a clear error naming the file, the target and the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from appliance.client.targets import LOCAL, Target, TargetError, choose, load_targets

LOCAL_TARGET = Target(LOCAL, "http://127.0.0.1:8080", Path("/run/control.sock"))


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "targets.toml"
    path.write_text(text)
    return path


def test_a_named_target_is_read_whole(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        '[targets.production]\napi_url = "https://forge.example.com/"\n'
        'control_socket = "~/run/control.sock"\naccent = "red"\nread_only = true\n',
    )
    target = choose("production", LOCAL_TARGET, path)
    assert target.api_url == "https://forge.example.com"
    assert target.control_socket == Path("~/run/control.sock").expanduser()
    assert (target.accent, target.read_only) == ("red", True)


def test_local_needs_no_file(tmp_path: Path) -> None:
    assert choose(LOCAL, LOCAL_TARGET, tmp_path / "missing.toml") is LOCAL_TARGET
    assert load_targets(tmp_path / "missing.toml") == {}


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ('[targets.prod]\napi_url = "ftp://x"\n', "'ftp://x' is not an http(s) URL"),
        ("[targets.prod]\naccent = 'red'\n", "[targets.prod] needs api_url"),
        ('[targets.prod]\napi_url = "http://x"\ncolour = "red"\n', "unknown key 'colour'"),
        ('[targets.prod]\napi_url = "http://x"\naccent = "pink"\n', "accent 'pink' is not one of"),
        ('[targets.prod]\napi_url = "http://x"\nread_only = "yes"\n', "read_only must be true or false"),
        ('[targets.local]\napi_url = "http://x"\n', "target name 'local'"),
        ('[target.prod]\napi_url = "http://x"\n', "unknown key 'target'"),
        ("[targets.prod\n", "not valid TOML"),
    ],
)
def test_mistakes_name_the_file_target_and_key(tmp_path: Path, text: str, fragment: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(TargetError) as raised:
        choose("prod", LOCAL_TARGET, path)
    assert fragment in str(raised.value)
    assert str(path) in str(raised.value)


def test_an_unknown_target_lists_the_known_ones(tmp_path: Path) -> None:
    path = write(tmp_path, '[targets.staging]\napi_url = "http://staging"\n')
    with pytest.raises(TargetError, match=r"no target named 'prod' .*\(known: local, staging\)"):
        choose("prod", LOCAL_TARGET, path)
