"""Log rotation, quota and tails, with an injected clock: when to rotate, what to delete, what to read."""

from __future__ import annotations

import gzip
import os
from pathlib import Path

from appliance.supervisor.logpolicy import LogPolicy
from appliance.supervisor.logread import read_tail
from appliance.supervisor.output import MAX_LINE, LogFile, PipeReader, utc_stamp
from appliance.supervisor.rotation import (
    Housekeeper,
    LogDirEntry,
    compress,
    quota_victims,
    rotated_of,
    scan,
    should_rotate,
)

T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z
POLICY = LogPolicy(max_bytes=4096, max_age=3600.0, quota_bytes=1 << 20, compress=True)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


def test_rotation_decisions() -> None:
    assert not should_rotate(0, 10_000, T0 - 10**6, T0, POLICY)  # never an empty file
    assert not should_rotate(4000, 96, T0, T0, POLICY)  # exactly full is still fine
    assert should_rotate(4000, 97, T0, T0, POLICY)
    assert not should_rotate(10, 10, T0, T0 + 3599, POLICY)
    assert should_rotate(10, 0, T0, T0 + 3600, POLICY)


def entry(name: str, size: int, stamp: str | None) -> LogDirEntry:
    return LogDirEntry(Path(name), name.split(".", maxsplit=1)[0], size, stamp)


def test_quota_deletes_oldest_rotated_files_first_and_never_a_current_one() -> None:
    entries = [
        entry("api.log", 500, None),
        entry("supervisor.log", 100, None),
        entry("api.20260101T000000.000Z.log.gz", 100, "20260101T000000.000Z"),
        entry("web.20260102T000000.000Z.log.gz", 100, "20260102T000000.000Z"),
        entry("api.20260103T000000.000Z.log.gz", 100, "20260103T000000.000Z"),
    ]
    assert [v.path.name for v in quota_victims(entries, 1000)] == []
    assert [v.path.name for v in quota_victims(entries, 850)] == ["api.20260101T000000.000Z.log.gz"]
    assert [v.path.name for v in quota_victims(entries, 750)] == [
        "api.20260101T000000.000Z.log.gz",
        "web.20260102T000000.000Z.log.gz",
    ]
    assert len(quota_victims(entries, 10)) == 3  # current files stay even when still over


def test_size_rotation_happens_between_lines_and_loses_nothing(tmp_path: Path) -> None:
    clock, rotated = Clock(), list[Path]()
    log = LogFile(tmp_path / "api.log", POLICY, on_rotated=rotated.append, clock=clock)
    for n in range(500):
        clock.now += 0.01
        log.write_line("stdout", f"line {n:04d} ".encode() + b"x" * 40)
    log.close()
    assert len(rotated) >= 5
    assert [p.name for p in rotated] == sorted(p.name for p in rotated)  # names sort by age
    numbers = []
    for path in [*rotated, tmp_path / "api.log"]:
        assert path.stat().st_size <= POLICY.max_bytes
        for line in path.read_text().splitlines():
            assert line.endswith("x" * 40)  # whole lines only
            numbers.append(int(line.split()[3]))
    assert numbers == list(range(500))


def test_age_rotation_of_a_quiet_file_and_of_a_reopened_one(tmp_path: Path) -> None:
    clock, rotated = Clock(), list[Path]()
    log = LogFile(tmp_path / "api.log", POLICY, on_rotated=rotated.append, clock=clock)
    log.tick(T0 + 10**6)
    assert rotated == []  # nothing written, nothing to rotate
    log.write_line("stdout", b"first")
    log.close()
    clock.now += 3000
    log = LogFile(tmp_path / "api.log", POLICY, on_rotated=rotated.append, clock=clock)  # a restart
    log.tick(clock.now)
    assert rotated == []
    log.tick(T0 + 3600)  # the first line, written before the restart, is now an hour old
    assert [p.read_text() for p in rotated] == [f"{utc_stamp(T0)} stdout first\n"]
    assert (tmp_path / "api.log").read_bytes() == b""
    log.close()


def test_compress_leaves_only_the_gzip(tmp_path: Path) -> None:
    path = tmp_path / "api.20260101T000000.000Z.log"
    path.write_bytes(b"hello\n" * 1000)
    target = compress(path)
    assert not path.exists()
    assert target.name == "api.20260101T000000.000Z.log.gz"
    assert gzip.decompress(target.read_bytes()) == b"hello\n" * 1000


def test_housekeeper_compresses_and_deletes_the_oldest_for_the_quota(tmp_path: Path) -> None:
    events: list[str] = []
    (tmp_path / "api.log").write_bytes(b"x" * 3000)
    (tmp_path / "supervisor.log").write_bytes(b"y" * 1000)
    old = tmp_path / "api.20260101T000000.000Z.log.gz"
    old.write_bytes(os.urandom(2000))
    keeper = Housekeeper(tmp_path, LogPolicy(max_bytes=4096, quota_bytes=8192), events.append)
    fresh = tmp_path / "api.20260102T000000.000Z.log"
    fresh.write_bytes(os.urandom(3000))  # random: compression cannot shrink it under the quota
    keeper.rotated(fresh)
    keeper.close()  # waits for the queued work
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["api.20260102T000000.000Z.log.gz", "api.log", "supervisor.log"]
    assert any("deleted api.20260101T000000.000Z.log.gz" in e for e in events), events


def test_tail_reaches_into_rotated_and_gzip_files_and_honours_since(tmp_path: Path) -> None:
    clock = Clock()
    log = LogFile(tmp_path / "api.log", POLICY, on_rotated=compress, clock=clock)
    for n in range(300):
        clock.now = T0 + n
        log.write_line("stdout", f"n={n} ".encode() + b"z" * 60)
    log.close()
    assert any(e.path.name.endswith(".gz") for e in rotated_of(tmp_path, "api"))
    tail = read_tail(tmp_path, ["api"], 250)
    assert [int(t.split()[2][2:]) for t in tail] == list(range(50, 300))
    since = read_tail(tmp_path, ["api"], 10_000, since=T0 + 120)
    assert [int(t.split()[2][2:]) for t in since] == list(range(120, 300))
    assert read_tail(tmp_path, ["api"], 3) == tail[-3:]
    assert read_tail(tmp_path, ["nobody"], 3) == []


def test_tail_of_several_instances_is_merged_by_time(tmp_path: Path) -> None:
    clock = Clock()
    one, two = (LogFile(tmp_path / f"api-{i}.log", POLICY, clock=clock) for i in (1, 2))
    for n in range(6):
        clock.now = T0 + n
        (one if n % 2 else two).write_line("stdout", f"{n}".encode())
    assert [t.split()[-1] for t in read_tail(tmp_path, ["api-1", "api-2"], 4)] == ["2", "3", "4", "5"]
    assert {e.label for e in scan(tmp_path)} == {"api-1", "api-2"}


def test_pipe_splits_long_lines_and_keeps_a_partial_last_line(tmp_path: Path) -> None:
    log = LogFile(tmp_path / "app.log")
    r, w = os.pipe()
    reader = PipeReader(r, "stderr", log)
    data = b"a" * (MAX_LINE + 10) + b"\nno newline at the end"
    os.set_blocking(w, False)
    while data:  # more than a pipe holds: write what fits, drain, repeat
        try:
            data = data[os.write(w, data) :]
        except BlockingIOError:
            reader.read()
    os.close(w)
    while reader.read():
        pass
    os.close(r)
    log.close()
    lines = (tmp_path / "app.log").read_text().splitlines()
    assert [len(line.split(" ", 2)[2]) for line in lines[:2]] == [MAX_LINE, 10]
    assert lines[2].endswith(" stderr no newline at the end")


def test_names_keep_rising_when_the_quota_frees_an_older_one(tmp_path: Path) -> None:
    clock, rotated = Clock(), list[Path]()
    log = LogFile(tmp_path / "api.log", POLICY, on_rotated=rotated.append, clock=clock)
    for n in range(200):  # many rotations within one millisecond of the clock
        log.write_line("stdout", f"{n} ".encode() + b"y" * 200)
        if len(rotated) == 2 and rotated[0].exists():
            rotated[0].unlink()  # what the quota does
    log.close()
    names = [p.name for p in rotated]
    assert names == sorted(set(names))
    assert len(names) >= 5
