"""Running ansible-playbook and ansible-lint on the bundled playbooks, as subprocesses (never imported here:
pytest turns Ansible's own warnings into errors)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from tests.support import clean_environ

REPO = Path(__file__).resolve().parents[2]
PLAYBOOKS = REPO / "playbooks"
BIN = Path(sys.executable).parent
RECAP = re.compile(
    r"^(?P<host>\S+)\s*:\s*ok=(?P<ok>\d+)\s+changed=(?P<changed>\d+)\s+unreachable=(?P<unreachable>\d+)"
    r"\s+failed=(?P<failed>\d+)",
    re.MULTILINE,
)


def ansible_env() -> dict[str, str]:
    """The environment of a run: this venv's Ansible first, the system's sbin (runuser, nginx) after it, and
    the playbooks' ansible.cfg; no APPLIANCE_* variable of the test run leaks into the appliance's."""
    env = clean_environ()
    env["PATH"] = f"{BIN}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    env["ANSIBLE_CONFIG"] = str(PLAYBOOKS / "ansible.cfg")
    env["ANSIBLE_NOCOLOR"] = "1"
    env["ANSIBLE_FORCE_COLOR"] = "0"
    env.pop("PYTHONPATH", None)
    return env


def run_playbook(
    playbook: Path, inventory: Path, *args: str, timeout: float = 1200
) -> subprocess.CompletedProcess[str]:
    """ansible-playbook from the playbooks' directory, output captured as text."""
    return subprocess.run(
        [str(BIN / "ansible-playbook"), "-i", str(inventory), str(playbook), *args],
        cwd=PLAYBOOKS,
        env=ansible_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def recap(output: str) -> dict[str, dict[str, int]]:
    """The PLAY RECAP's counts, by host."""
    return {
        match["host"]: {key: int(match[key]) for key in ("ok", "changed", "unreachable", "failed")}
        for match in RECAP.finditer(output)
    }
