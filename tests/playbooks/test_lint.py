"""ansible-lint's production profile passes on the playbooks, and fails on a copy with a defect planted."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from tests.playbooks.support import BIN, PLAYBOOKS, ansible_env


def lint(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "ansible-lint"), "--offline", "--profile", "production", "--nocolor", str(path)],
        cwd=path,
        env=ansible_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_the_playbooks_pass_the_production_profile() -> None:
    run = lint(PLAYBOOKS)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "Profile 'production' was required, and it passed" in run.stdout + run.stderr


def test_a_raw_command_without_a_guard_fails_the_profile(tmp_path: Path) -> None:
    """The check can fail: a command with no changed_when (not idempotent to Ansible's eyes) is refused."""
    copy = tmp_path / "playbooks"
    shutil.copytree(PLAYBOOKS, copy, ignore=shutil.ignore_patterns("credentials"))
    tasks = copy / "roles/common/tasks/configure.yml"
    tasks.write_text(
        tasks.read_text()
        + "\n- name: Touch a file\n  ansible.builtin.command:\n    argv: [touch, /tmp/forge-lint-probe]\n"
    )
    run = lint(copy)
    assert run.returncode != 0
    assert "no-changed-when" in run.stdout + run.stderr
