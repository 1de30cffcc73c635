"""The command line: spec errors exit 2 with one line, a busy run dir is refused, --check validates."""

from __future__ import annotations

from pathlib import Path

import pytest

from appliance.supervisor.main import main
from tests.supervisor.realproc import Sandbox, wait_for


def test_spec_error_is_one_line_and_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    services = tmp_path / "services.toml"
    services.write_text('[programs.a]\ncommand = ["x"]\ndepends_on = ["b"]\n')
    code = main(["--services", str(services), "--run-dir", str(tmp_path / "run"), "--log-dir", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1
    assert "Traceback" not in err
    assert err.startswith(f"supervisor: {services}: program 'a': unknown dependency 'b'")
    assert not (tmp_path / "run").exists()


def test_check_only_validates(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    services = tmp_path / "services.toml"
    services.write_text('[programs.a]\ncommand = ["x"]\n')
    assert (
        main(["--services", str(services), "--run-dir", str(tmp_path / "r"), "--log-dir", "l", "--check"])
        == 0
    )
    assert "1 programs, OK" in capsys.readouterr().out


def test_second_supervisor_on_the_same_run_dir_is_refused(sandbox: Sandbox) -> None:
    sandbox.write(sandbox.program("a", mode="sleep"))
    first = sandbox.start()
    wait_for(lambda: sandbox.one("a")["state"] == "running")
    second = sandbox.start()
    assert second.wait(timeout=30) == 1
    assert second.stderr is not None
    err = second.stderr.read().decode()
    assert f"another supervisor (pid {first.pid}) is already running with run dir {sandbox.run_dir}" in err
    assert first.poll() is None


def test_spec_error_from_the_real_process(sandbox: Sandbox) -> None:
    sandbox.write('[programs.a]\ncommand = ["${UNDEFINED_FOR_TEST}"]\n')
    proc = sandbox.start()
    assert proc.wait(timeout=30) == 2
    assert proc.stderr is not None
    err = proc.stderr.read().decode()
    assert "undefined variable ${UNDEFINED_FOR_TEST}" in err
    assert "Traceback" not in err
