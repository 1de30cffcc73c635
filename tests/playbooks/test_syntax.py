"""site.yml parses with each example inventory (every role, task file and template path resolves)."""

from __future__ import annotations

import json
import subprocess

import pytest

from tests.playbooks.support import BIN, PLAYBOOKS, ansible_env, run_playbook


@pytest.mark.parametrize("inventory", ["single", "multi"])
def test_site_passes_the_syntax_check(inventory: str) -> None:
    run = run_playbook(
        PLAYBOOKS / "site.yml", PLAYBOOKS / "inventories/example" / inventory, "--syntax-check"
    )
    assert run.returncode == 0, run.stdout + run.stderr


@pytest.mark.parametrize(("inventory", "hosts"), [("single", 1), ("multi", 4)])
def test_every_host_of_the_example_names_its_python(inventory: str, hosts: int) -> None:
    run = subprocess.run(
        [str(BIN / "ansible-inventory"), "-i", str(PLAYBOOKS / "inventories/example" / inventory), "--list"],
        cwd=PLAYBOOKS,
        env=ansible_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    hostvars = json.loads(run.stdout)["_meta"]["hostvars"]
    assert len(hostvars) == hosts
    for name, variables in hostvars.items():
        assert variables.get("ansible_python_interpreter") == "/usr/bin/python3", name
