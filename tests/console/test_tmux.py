"""The console in a real terminal (tmux, 80x24): `appliance console` starts, draws the dashboard from the
running appliance, switches views on a key, and quits on `q`."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from tests.console.conftest import RunningAppliance, signed_in_store

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed"),
]


def screen(session: str) -> str:
    return subprocess.run(
        ["tmux", "capture-pane", "-p", "-t", session], capture_output=True, text=True
    ).stdout


def wait_for_screen(session: str, *texts: str, timeout: float = 30) -> str:
    deadline = time.monotonic() + timeout
    shown = ""
    while time.monotonic() < deadline:
        shown = screen(session)
        if all(text in shown for text in texts):
            return shown
        time.sleep(0.1)
    raise AssertionError(f"the terminal did not show {texts} in {timeout:g}s; it shows:\n{shown}")


def test_console_in_a_real_terminal(appliance: RunningAppliance, tmp_path: Path) -> None:
    config = tmp_path / "config"
    signed_in_store(config / "forge-appliance" / "credentials.json", appliance)
    env = appliance.env | {"XDG_CONFIG_HOME": str(config), "TERM": "xterm-256color"}
    session = f"console-{uuid.uuid4().hex[:8]}"
    command = ["env", *[f"{k}={v}" for k, v in env.items()], sys.executable, "-m", "appliance", "console"]
    subprocess.run(["tmux", "new-session", "-d", "-s", session, "-x", "80", "-y", "24", *command], check=True)
    try:
        shown = wait_for_screen(session, "Dashboard", "API up", "supervisor up", "running")
        assert appliance.operator_email in shown
        assert "worker" in shown
        subprocess.run(["tmux", "send-keys", "-t", session, "3"], check=True)
        wait_for_screen(session, "Services", "Restart")
        subprocess.run(["tmux", "send-keys", "-t", session, "q"], check=True)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            alive = subprocess.run(["tmux", "has-session", "-t", session], capture_output=True)
            if alive.returncode != 0:
                break
            time.sleep(0.1)
        else:
            raise AssertionError(f"the console did not quit on q; the screen:\n{screen(session)}")
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)
