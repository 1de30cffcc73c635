"""The real supervisor with chatty children: rotation to gzip losing no line, quota, `logs` and follow."""

from __future__ import annotations

import gzip
import re
import sys
import textwrap
from pathlib import Path

import pytest

from appliance.client.supervisor import SupervisorError
from tests.supervisor.realproc import Sandbox, wait_for

CHATTY = textwrap.dedent(
    """
    import sys, time
    mode, count = sys.argv[1], int(sys.argv[2])
    n = 0
    while mode == "forever" or n < count:
        print(f"line {n:06d} " + "x" * 50, flush=True)
        n += 1
        if mode == "forever":
            time.sleep(0.005)
    while True:
        time.sleep(60)
    """
)


def chatty(box: Sandbox, mode: str, count: int, logs: str) -> None:
    script = box.tmp / "chatty.py"
    script.write_text(CHATTY)
    argv = [sys.executable, str(script), mode, str(count)]
    box.write(f"[logs]\n{logs}\n", f"[programs.chat]\ncommand = {argv!r}\n".replace("'", '"'))
    box.start("--quiet")


def numbers(lines: list[str]) -> list[int]:
    return [int(m.group(1)) for line in lines if (m := re.search(r" stdout line (\d+) x+$", line))]


def all_lines(log_dir: Path) -> list[str]:
    """Every line of chat's files, rotated (oldest first) then current."""
    out: list[str] = []
    for path in sorted(log_dir.glob("chat.*.log.gz")):
        out += gzip.decompress(path.read_bytes()).decode().splitlines()
    return out + (log_dir / "chat.log").read_text().splitlines()


def test_rotates_by_size_into_gzip_files_and_loses_no_line(sandbox: Sandbox) -> None:
    chatty(sandbox, "count", 3000, 'max_bytes = "4k"\nquota_bytes = "100M"')
    tail = wait_for(
        lambda: (
            (t := sandbox.client.logs("chat", lines=1)) and t[0].endswith("line 002999 " + "x" * 50) and t
        ),
        what="the last line",
    )
    assert len(tail) == 1
    # The housekeeper compresses off the loop; wait until no rotated file is left uncompressed.
    wait_for(lambda: not list(sandbox.log_dir.glob("chat.*Z.log")), what="compression")
    rotated = sorted(sandbox.log_dir.glob("chat.*.log.gz"))
    assert len(rotated) >= 50
    assert all(p.stat().st_size < 4096 for p in rotated)
    assert numbers(all_lines(sandbox.log_dir)) == list(range(3000))  # each once, in order
    assert numbers(sandbox.client.logs("chat", lines=10_000, since=0)) == list(range(3000))
    assert numbers(sandbox.client.logs("chat", lines=5)) == list(range(2995, 3000))


def test_quota_deletes_the_oldest_rotated_files(sandbox: Sandbox) -> None:
    chatty(sandbox, "count", 3000, 'max_bytes = "4k"\nquota_bytes = "32k"\ncompress = false')
    wait_for(lambda: numbers(sandbox.client.logs("chat", lines=1)) == [2999], what="the last line")
    # Settled once the rotated files and supervisor.log fit (the current file may grow past, until a check).
    wait_for(
        lambda: sum(p.stat().st_size for p in sandbox.log_dir.iterdir() if p.name != "chat.log") <= 32 * 1024,
        what="the quota enforced",
    )
    events = wait_for(
        lambda: "deleted chat." in (t := (sandbox.log_dir / "supervisor.log").read_text()) and t,
        what="a deletion in the event log",
    )
    deleted = re.findall(r"deleted (chat\.\S+\.log)", events)
    kept = sorted(p.name for p in sandbox.log_dir.glob("chat.*Z.log"))
    assert kept
    assert (sandbox.log_dir / "chat.log").exists()
    assert not any((sandbox.log_dir / name).exists() for name in deleted)
    assert max(deleted) < min(kept)  # names sort by age: the oldest went first
    total = sum(p.stat().st_size for p in sandbox.log_dir.iterdir())
    assert total <= 32 * 1024 + 4096  # the current file may grow past the quota until the next check
    lines = numbers(all_lines_plain(sandbox.log_dir))
    assert lines == list(range(lines[0], 3000))  # what is left is the newest, without a gap


def all_lines_plain(log_dir: Path) -> list[str]:
    out: list[str] = []
    for path in sorted(log_dir.glob("chat.*Z.log")):
        out += path.read_text().splitlines()
    return out + (log_dir / "chat.log").read_text().splitlines()


def test_follow_receives_new_lines_across_rotations(sandbox: Sandbox) -> None:
    chatty(sandbox, "forever", 0, 'max_bytes = "4k"')
    wait_for(lambda: numbers(sandbox.client.logs("chat", lines=1)), what="a first line")
    rotated_before = len(list(sandbox.log_dir.glob("chat.*.log*")))
    stream = sandbox.client.follow_logs("chat", lines=5)
    got = []
    for line in stream:
        got.append(line)
        if len(got) >= 300:  # about 4 rotations' worth of lines
            break
    stream.close()  # type: ignore[attr-defined]
    seen = numbers(got)
    assert seen == list(range(seen[0], seen[0] + 300))  # nothing missed, nothing twice
    assert len(list(sandbox.log_dir.glob("chat.*.log*"))) >= rotated_before + 2


def test_unknown_name_is_refused_with_the_known_ones(sandbox: Sandbox) -> None:
    chatty(sandbox, "count", 10, "")
    wait_for(lambda: numbers(sandbox.client.logs("chat", lines=1)) == [9], what="the last line")
    with pytest.raises(SupervisorError, match=r"unknown program 'nope' \(logs: chat, supervisor\)"):
        sandbox.client.logs("nope")
    assert any("supervising chat" in line for line in sandbox.client.logs("supervisor"))
