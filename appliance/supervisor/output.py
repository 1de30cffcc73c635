"""Children's stdout and stderr: read from pipes without blocking, written as timestamped log lines."""

from __future__ import annotations

import calendar
import contextlib
import os
import selectors
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path

from appliance.supervisor.logpolicy import LogPolicy
from appliance.supervisor.rotation import rotated_path, should_rotate

MAX_LINE = 64 * 1024  # a longer line without a newline is written in pieces of this size
TAIL_CHARS = 400  # of a line kept in a tail (a status answer stays small)


def utc_stamp(now: float | None = None) -> str:
    """ISO-8601 UTC with milliseconds: `2026-01-31T12:00:00.123Z`."""
    now = time.time() if now is None else now
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1000):03d}Z"


class LogFile:
    """One append-only log file, shared by every process of one instance; rotates itself between lines.

    Without a policy it never rotates (the supervisor's `/dev/null` fallback, simple callers).
    """

    def __init__(
        self,
        path: Path,
        policy: LogPolicy | None = None,
        *,
        on_rotated: Callable[[Path], object] | None = None,
        on_line: Callable[[str], None] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.path, self.policy, self.clock = path, policy, clock
        self.on_rotated, self.on_line = on_rotated, on_line
        self._size = 0
        self._first_at: float | None = None  # when the first line of the current file was written
        self._rotated_at = 0.0  # the time named by the last rotated file
        self._fd = self._open()

    def write_line(self, stream: str, line: bytes) -> None:
        """Write one line as `<timestamp> <stream> <line>`, rotating first if the policy says so."""
        now = self.clock()
        text = f"{utc_stamp(now)} {stream} ".encode() + line.rstrip(b"\r")
        data = text + b"\n"
        if self.policy is not None and should_rotate(self._size, len(data), self._first_at, now, self.policy):
            self.rotate(now)
        with contextlib.suppress(OSError):  # a full disk must not take the supervisor down
            os.write(self._fd, data)
            self._size += len(data)
            if self._first_at is None:
                self._first_at = now
        if self.on_line is not None:
            self.on_line(text.decode(errors="replace"))

    def tick(self, now: float) -> None:
        """Rotate by age even when the program is quiet (called now and then by the loop)."""
        if self.policy is not None and should_rotate(self._size, 0, self._first_at, now, self.policy):
            self.rotate(now)

    def rotate(self, now: float) -> None:
        """Close the file, rename it `<label>.<stamp>.log`, open a fresh one; only ever between lines."""
        # Names must keep rising even when rotations come faster than one per millisecond.
        target, self._rotated_at = rotated_path(self.path, max(now, self._rotated_at + 0.001))
        os.close(self._fd)
        try:
            os.rename(self.path, target)
        except OSError:  # cannot rename: keep appending to the same file rather than lose lines
            self._fd = self._open()
            return
        self._fd = self._open()
        if self.on_rotated is not None:
            self.on_rotated(target)

    def close(self) -> None:
        """Close the file."""
        os.close(self._fd)

    def _open(self) -> int:
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o640)
        self._size = os.fstat(fd).st_size
        self._first_at = first_line_time(self.path) if self._size else None
        return fd


def first_line_time(path: Path) -> float | None:
    """The time stamped on the first line of `path` (its modification time if unreadable)."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(24).decode("ascii")
        return calendar.timegm(time.strptime(head[:19], "%Y-%m-%dT%H:%M:%S")) + int(head[20:23]) / 1000
    except (OSError, ValueError):
        with contextlib.suppress(OSError):
            return os.stat(path).st_mtime
        return None


class PipeReader:
    """Drains one pipe into a `LogFile`, line by line; a partial last line waits for the rest.

    With a `tail`, the last lines read are also kept there (decoded): the supervisor shows the last lines
    a crashed process wrote to stderr in its status, its events and its own log."""

    def __init__(self, fd: int, stream: str, sink: LogFile, tail: deque[str] | None = None) -> None:
        self.fd, self.stream, self.sink, self.tail = fd, stream, sink, tail
        self._partial = b""
        os.set_blocking(fd, False)

    def read(self) -> bool:
        """Read what is available; return False at end of file (the caller then closes the pipe)."""
        return self._chunk() is not False

    def drain(self) -> bool:
        """Read until the pipe is empty (a process that just exited has written its last words); return
        False at end of file."""
        while (more := self._chunk()) is True:
            pass
        return more is not False

    def _chunk(self) -> bool | None:
        """One read: True when data came, None when there was none yet, False at end of file."""
        try:
            data = os.read(self.fd, 65536)
        except BlockingIOError:
            return None
        except OSError:
            data = b""
        if not data:
            if self._partial:
                self._line(self._partial)
                self._partial = b""
            return False
        *lines, rest = (self._partial + data).split(b"\n")
        for line in lines:
            self._line(line)
        while len(rest) >= MAX_LINE:
            self._line(rest[:MAX_LINE])
            rest = rest[MAX_LINE:]
        self._partial = rest
        return True

    def _line(self, line: bytes) -> None:
        self.sink.write_line(self.stream, line)
        if self.tail is not None and line.strip():
            self.tail.append(line.rstrip(b"\r")[:TAIL_CHARS].decode(errors="replace"))


TAIL_LINES = 5  # stderr lines of each process kept for the status, events and log lines about its exit


class ChildOutputs:
    """The stdout and stderr pipes of every child, each drained into its instance's log file by the loop's
    selector, and the last stderr lines of each process (`tail(pid)` once it has exited)."""

    def __init__(
        self,
        selector: selectors.BaseSelector,
        open_log: Callable[[str], LogFile],
    ) -> None:
        self.selector, self.open_log = selector, open_log
        self._logs: dict[str, LogFile] = {}
        self._readers: dict[int, list[PipeReader]] = {}
        self._tails: dict[int, deque[str]] = {}

    def attach(self, pid: int, label: str, stdout: int, stderr: int) -> None:
        """Read `pid`'s pipes (descriptors this object now owns) into `<label>.log`."""
        if label not in self._logs:
            self._logs[label] = self.open_log(label)
        tail: deque[str] = deque(maxlen=TAIL_LINES)
        readers = [
            PipeReader(stdout, "stdout", self._logs[label]),
            PipeReader(stderr, "stderr", self._logs[label], tail),
        ]
        for reader in readers:
            self.selector.register(reader.fd, selectors.EVENT_READ, self._handler(reader))
        self._readers[pid], self._tails[pid] = readers, tail

    def exited(self, pid: int) -> tuple[str, ...]:
        """`pid` was reaped: read what it wrote last (still in its pipes); return its last stderr lines."""
        for reader in self._readers.pop(pid, []):
            if not reader.drain():
                self._close(reader)
        return tuple(self._tails.pop(pid, ()))

    def close(self) -> None:
        """Close every log file (the pipes close with the selector's owner)."""
        for log in self._logs.values():
            log.close()

    def _handler(self, reader: PipeReader) -> Callable[[int], None]:
        def on_readable(_mask: int) -> None:
            if not reader.read():
                self._close(reader)

        return on_readable

    def _close(self, reader: PipeReader) -> None:
        if reader.fd >= 0:
            self.selector.unregister(reader.fd)
            os.close(reader.fd)
            reader.fd = -1
