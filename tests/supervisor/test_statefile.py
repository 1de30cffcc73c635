"""Leftovers of a dead supervisor are stopped before starting anew; recycled pids are left alone."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from appliance.supervisor.statefile import start_ticks
from tests.supervisor.realproc import Sandbox, alive, wait_for

SLEEPER = "import time, sys\nwhile True: time.sleep(1)\n"


def test_stale_children_are_stopped_and_unrelated_pids_spared(sandbox: Sandbox) -> None:
    # An orphan left by a "dead supervisor" (in its own group, as our children are), plus a grandchild.
    script = sandbox.tmp / "orphan.py"
    script.write_text(
        "import subprocess, sys, time\n"
        f"subprocess.Popen([sys.executable, {str(sandbox.tmp / 'grandchild.py')!r}])\n"
        "while True: time.sleep(1)\n"
    )
    (sandbox.tmp / "grandchild.py").write_text(SLEEPER)
    orphan = subprocess.Popen([sys.executable, str(script)], start_new_session=True)
    bystander = subprocess.Popen([sys.executable, "-c", SLEEPER, str(sandbox.tmp)], start_new_session=True)
    try:
        grandchild = wait_for(lambda: _children_of(orphan.pid), what="the grandchild")[0]
        sandbox.run_dir.mkdir()
        children = [
            {"program": "old", "instance": 1, "pid": orphan.pid, "start_ticks": start_ticks(orphan.pid)},
            # Same pid as a live process, but another start time: a recycled pid, not ours.
            {"program": "old", "instance": 2, "pid": bystander.pid, "start_ticks": 1},
        ]
        dead = {"pid": 999_999_999, "start_ticks": 1}
        (sandbox.run_dir / "state.json").write_text(json.dumps({"supervisor": dead, "children": children}))
        sandbox.write(sandbox.program("new", mode="sleep"))
        sandbox.start()
        wait_for(lambda: sandbox.one("new")["state"] == "running")
        assert orphan.wait(timeout=30) == -15
        wait_for(lambda: not alive(grandchild), what="the grandchild to be stopped with its group")
        assert bystander.poll() is None
        assert "left by a dead supervisor" in (sandbox.log_dir / "supervisor.log").read_text()
    finally:
        for proc in (orphan, bystander):
            proc.kill()
            proc.wait()


def _children_of(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", "rb") as f:
                    fields = f.read().rsplit(b")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry))
    return found
