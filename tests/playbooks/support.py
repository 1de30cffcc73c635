"""Running ansible-playbook and ansible-lint on the bundled playbooks, as subprocesses (never imported here:
pytest turns Ansible's own warnings into errors)."""

from __future__ import annotations

import json
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


ROLE_TASKS_PLAY = """\
- name: One role's tasks alone
  hosts: all
  gather_facts: false
  tasks:
    - name: The role's {tasks_from} tasks
      ansible.builtin.include_role:
        name: {role}
        tasks_from: {tasks_from}
"""


def run_role_tasks(
    tmp_path: Path, role: str, tasks_from: str, variables: dict[str, object], groups: tuple[str, ...] = ()
) -> subprocess.CompletedProcess[str]:
    """One task file of a role (with the role's defaults and handlers) on this machine as "testhost", a member
    of `groups`, with `variables` as its host variables."""
    host = {
        "ansible_connection": "local",
        "ansible_python_interpreter": "/usr/bin/python3",
        "ansible_become": False,
    } | variables
    inventory = tmp_path / "inventory.json"
    inventory.write_text(
        json.dumps(
            {
                "all": {
                    "hosts": {"testhost": host},
                    "children": {group: {"hosts": {"testhost": {}}} for group in groups},
                }
            }
        )
    )
    play = tmp_path / "play.yml"
    play.write_text(ROLE_TASKS_PLAY.format(role=role, tasks_from=tasks_from))
    return run_playbook(play, inventory, timeout=600)


def failure_lines(run: subprocess.CompletedProcess[str]) -> list[str]:
    """Ansible's one line per failed task: its message, under the task's name."""
    output = run.stdout + run.stderr
    return [line for line in output.splitlines() if line.startswith("[ERROR]: Task failed")]


def failed_task(run: subprocess.CompletedProcess[str], line: str) -> str:
    """The name of the task the line was printed under."""
    output = run.stdout + run.stderr
    return output[: output.index(line)].rsplit("TASK [", 1)[1].split("]", 1)[0]
