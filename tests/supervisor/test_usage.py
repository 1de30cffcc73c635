"""`{"cmd": "status", "usage": true}`: real CPU and memory of each program's process group, else null."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path
from typing import Any

from appliance.client.supervisor import ProgramStatus
from appliance.supervisor.usage import ProcReader, with_usage
from tests.supervisor.realproc import Sandbox, wait_for

LOAD = textwrap.dedent(
    """
    import os, signal, sys, time
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    if sys.argv[1] == "burn":
        while True:
            pass
    if sys.argv[1] == "fork":  # a child in the same process group holds 64 MiB, the leader little
        if os.fork() == 0:
            data = b"x" * (64 << 20)
            signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    while True:
        time.sleep(60)
    """
)
BASE_KEYS = {"name", "instance", "state", "pid", "started_at", "restarts", "crash_looping", "exit_status"}
BASE_KEYS |= {"ready", "status", "stderr_tail", "container"}


def section(box: Sandbox, name: str, mode: str) -> str:
    script = box.tmp / "load.py"
    script.write_text(LOAD)
    return f"[programs.{name}]\ncommand = {[sys.executable, str(script), mode]!r}\n".replace("'", '"')


def rows(box: Sandbox) -> dict[str, ProgramStatus]:
    return {row["name"]: row for row in box.client.status(usage=True)["programs"]}


def test_usage_reports_real_cpu_and_memory_and_null_without_a_process(sandbox: Sandbox) -> None:
    sandbox.write(
        section(sandbox, "burner", "burn"),
        section(sandbox, "family", "fork"),
        section(sandbox, "off", "sleep"),
    )
    sandbox.start()
    wait_for(lambda: all(sandbox.running_pid(n) for n in ("burner", "family", "off")), what="all running")
    sandbox.client.stop(["off"])

    def burned() -> float:
        value = rows(sandbox)["burner"].get("cpu_seconds")
        assert isinstance(value, float)
        return value

    first = wait_for(lambda: burned() >= 0.1 and burned(), what="the burner to use CPU")
    wait_for(lambda: burned() >= first + 0.3, what="the burner's CPU seconds to rise")

    def family_rss() -> int:
        value = rows(sandbox)["family"].get("rss_bytes")
        assert isinstance(value, int)
        return value

    # The 64 MiB are the forked child's: only a sum over the process group reaches them.
    wait_for(lambda: family_rss() > 64 << 20, what="the family's memory to count its child")
    now = rows(sandbox)
    burner_rss = now["burner"].get("rss_bytes")
    assert isinstance(burner_rss, int)
    assert burner_rss > 1 << 20  # a Python interpreter's resident pages
    assert now["off"]["state"] == "stopped"
    assert now["off"].get("cpu_seconds", "absent") is None
    assert now["off"].get("rss_bytes", "absent") is None


def test_without_usage_the_status_answer_is_unchanged(sandbox: Sandbox) -> None:
    sandbox.write(section(sandbox, "idle", "sleep"))
    sandbox.start()
    wait_for(lambda: sandbox.running_pid("idle"))
    (row,) = sandbox.client.status()["programs"]
    assert set(row) == {*BASE_KEYS, "reason"}
    (with_it,) = sandbox.client.status(usage=True)["programs"]
    assert set(with_it) == {*BASE_KEYS, "reason", "cpu_seconds", "rss_bytes"}


def test_a_row_without_a_pid_is_null_and_other_fields_are_kept(tmp_path: Path) -> None:
    row: dict[str, Any] = {"name": "a", "instance": 1, "state": "exited", "pid": None, "exit_status": 1}
    answer = with_usage({"programs": [row], "supervisor": {"pid": 1}}, ProcReader(tmp_path))
    assert answer["supervisor"] == {"pid": 1}
    assert answer["programs"] == [{**row, "cpu_seconds": None, "rss_bytes": None}]
