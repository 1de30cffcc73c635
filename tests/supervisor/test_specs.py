"""Parsing the services file: good input becomes frozen specs, each mistake one clear SpecError."""

from __future__ import annotations

import dataclasses
import signal
import sys
from pathlib import Path

import pytest

from appliance.supervisor.specs import ProgramSpec, ReadySpec, SpecError, load_services

REPO = Path(__file__).resolve().parents[2]


def load(tmp_path: Path, text: str, environ: dict[str, str] | None = None) -> list[ProgramSpec]:
    path = tmp_path / "services.toml"
    path.write_text(text)
    return list(load_services(path, {} if environ is None else environ).programs)


def error_of(tmp_path: Path, text: str) -> str:
    with pytest.raises(SpecError) as info:
        load(tmp_path, text)
    return str(info.value)


def test_full_program(tmp_path: Path) -> None:
    (tmp_path / "extra.env").write_text("# comment\nA=1\nexport B='two words'\n")
    text = f"""
[programs.web]
command = "${{PY}} -m http.server '8000'"
cwd = "/srv"
env_files = ["{tmp_path}/extra.env"]
environment = {{ B = "override", C = 3, D = true }}
instances = 2
restart = "on-failure"
success_exit_codes = [0, 3]
stop_signal = "INT"
stop_timeout = 2
depends_on = []
[programs.web.ready]
tcp = "127.0.0.1:8000"
timeout = 5
"""
    (spec,) = load(tmp_path, text, {"PY": "/usr/bin/python3"})
    assert spec.command == ("/usr/bin/python3", "-m", "http.server", "8000")
    assert spec.cwd == "/srv"
    assert dict(spec.environment) == {"A": "1", "B": "override", "C": "3", "D": "true"}
    assert (spec.instances, spec.restart, spec.success_exit_codes) == (2, "on-failure", frozenset({0, 3}))
    assert (spec.stop_signal, spec.stop_timeout) == (signal.SIGINT, 2.0)
    assert spec.ready == ReadySpec("tcp", host="127.0.0.1", port=8000, timeout=5.0)
    assert spec.label(2) == "web-2"
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.name = "other"  # type: ignore[misc]


def test_defaults(tmp_path: Path) -> None:
    (spec,) = load(tmp_path, '[programs.a]\ncommand = ["/bin/true"]\n')
    assert (spec.instances, spec.restart, spec.stop_signal, spec.stop_timeout) == (
        1,
        "always",
        signal.SIGTERM,
        10.0,
    )
    assert spec.ready is None
    assert spec.label(1) == "a"


def test_programs_come_in_dependency_order(tmp_path: Path) -> None:
    text = """
[programs.api]
command = ["api"]
depends_on = ["db", "cache"]
[programs.cache]
command = ["cache"]
depends_on = ["db"]
[programs.db]
command = ["db"]
"""
    assert [p.name for p in load(tmp_path, text)] == ["db", "cache", "api"]


def test_appliance_python_defaults_to_this_interpreter(tmp_path: Path) -> None:
    path = tmp_path / "s.toml"
    path.write_text('[programs.a]\ncommand = ["${APPLIANCE_PYTHON}", "-V"]\n')
    (spec,) = load_services(path).programs
    assert spec.command[0] in (sys.executable, __import__("os").environ.get("APPLIANCE_PYTHON"))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('[programs.a]\ncomand = ["x"]\n', "program 'a': unknown key 'comand' (allowed: command, cwd,"),
        ("[programs.a]\ncwd = '/'\n", "program 'a': missing 'command'"),
        (
            "[programs.a]\ncommand = 3\n",
            "program 'a': 'command' must be a list of strings or a string, not int",
        ),
        ("[programs.a]\ncommand = []\n", "program 'a': 'command' is empty"),
        ('[programs.a]\ncommand = ["x", 1]\n', "program 'a': 'command[1]' must be a string, not int"),
        ('[programs.a]\ncommand = ["x"]\ninstances = "two"\n', "'instances' must be a whole number >= 1"),
        ('[programs.a]\ncommand = ["x"]\ninstances = 0\n', "'instances' must be a whole number >= 1"),
        (
            '[programs.a]\ncommand = ["x"]\nrestart = "sometimes"\n',
            "'restart' must be one of always, on-failure",
        ),
        ('[programs.a]\ncommand = ["x"]\nstop_signal = "STOP"\n', "'stop_signal' must be one of TERM, INT"),
        ('[programs.a]\ncommand = ["x"]\nstop_timeout = -1\n', "'stop_timeout' must be a positive number"),
        (
            '[programs.a]\ncommand = ["x"]\nsuccess_exit_codes = [300]\n',
            "'success_exit_codes' must be a list",
        ),
        ('[programs.a]\ncommand = ["x"]\ndepends_on = ["b"]\n', "program 'a': unknown dependency 'b'"),
        ('[programs.a]\ncommand = ["${NOPE}"]\n', "program 'a': 'command[0]': undefined variable ${NOPE}"),
        ('[programs.a]\ncommand = ["x"]\nenvironment = ["A=1"]\n', "'environment' must be a table"),
        ('[programs.a]\ncommand = ["x"]\nenv_files = ["/nonexistent/env"]\n', "cannot read env file"),
        ('[programs.a]\ncommand = ["x"]\n[programs.a.ready]\nhttp = "x"\ntcp = "y"\n', "exactly one of"),
        (
            '[programs.a]\ncommand = ["x"]\n[programs.a.ready]\ntcp = "localhost"\n',
            "'ready.tcp' must be HOST:PORT",
        ),
        ('[programs.a]\ncommand = ["x"]\n[programs.a.ready]\nhttp = "ftp://x"\n', "must be an http:// URL"),
        (
            '[programs.a]\ncommand = ["x"]\n[programs.a.ready]\ntcp = "h:1"\nwait = 1\n',
            "unknown key 'ready.wait'",
        ),
        ('[programs."a b"]\ncommand = ["x"]\n', "program 'a b': the name may hold only"),
        (
            '[programs.a]\ncommand = ["x"]\nlisten = "127.0.0.1:1"\nwhen_down = "503"\n',
            "'when_down' must be one of hold, http-503, not '503'",
        ),
        (
            '[programs.a]\ncommand = ["x"]\nwhen_down = "http-503"\n',
            "'when_down = \"http-503\"' needs 'listen'",
        ),
        (
            '[program.a]\ncommand = ["x"]\n',
            "unknown top-level key 'program' (allowed: programs, metrics, logs)",
        ),
    ],
)
def test_each_mistake_is_named(tmp_path: Path, text: str, expected: str) -> None:
    message = error_of(tmp_path, text)
    assert message.startswith(f"{tmp_path / 'services.toml'}: ")
    assert expected in message


def test_dependency_cycle_is_named(tmp_path: Path) -> None:
    text = """
[programs.a]
command = ["x"]
depends_on = ["b"]
[programs.b]
command = ["x"]
depends_on = ["c"]
[programs.c]
command = ["x"]
depends_on = ["a"]
"""
    assert "dependency cycle: a -> b -> c -> a" in error_of(tmp_path, text)


def test_toml_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    message = error_of(tmp_path, '[programs.a]\ncommand = = ["x"]\n')
    assert "services.toml: invalid TOML" in message
    assert "line 2" in message


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="cannot read the services file"):
        load_services(tmp_path / "absent.toml", {})


def test_embedded_default_is_identical_to_config_copy() -> None:
    environ = {"APPLIANCE_PYTHON": "/opt/appliance/bin/python"}
    shipped = load_services(REPO / "config" / "services.toml", environ)
    embedded = load_services(REPO / "appliance" / "supervisor" / "default_services.toml", environ)
    assert shipped.programs == embedded.programs
    api, worker = embedded.get("api"), embedded.get("worker")
    assert api is not None
    assert worker is not None
    assert api.command == ("/opt/appliance/bin/python", "-P", "-m", "appliance", "api")
    assert api.ready is not None
    assert api.ready.kind == "notify"  # per process: any instance may answer on the shared socket
    assert api.listen == ("127.0.0.1", 8080)
    assert api.instances == 1
    assert api.health is not None
    assert api.health.check.url == "http://127.0.0.1:8080/health/live"
    assert (worker.stop_signal, worker.stop_timeout) == (signal.SIGINT, 30.0)


def test_default_api_address_follows_the_api_settings() -> None:
    environ = {
        "APPLIANCE_PYTHON": "py",
        "APPLIANCE_API__HOST": "0.0.0.0",
        "APPLIANCE_API__PORT": "9000",
        "APPLIANCE_API__INSTANCES": "3",
    }
    api = load_services(REPO / "config" / "services.toml", environ).get("api")
    assert api is not None
    assert api.listen == ("0.0.0.0", 9000)
    assert api.instances == 3
    assert api.health is not None
    assert api.health.check.url == "http://0.0.0.0:9000/health/live"
