"""Children's stdout and stderr: read from pipes without blocking, written as timestamped log lines."""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path

MAX_LINE = 64 * 1024  # a longer line without a newline is written in pieces of this size


def utc_stamp(now: float | None = None) -> str:
    """ISO-8601 UTC with milliseconds: `2026-01-31T12:00:00.123Z`."""
    now = time.time() if now is None else now
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1000):03d}Z"


class LogFile:
    """One append-only log file, opened once and shared by every process of one instance."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o640)

    def write_line(self, stream: str, line: bytes) -> None:
        """Write one line as `<timestamp> <stream> <line>`."""
        prefix = f"{utc_stamp()} {stream} ".encode()
        with contextlib.suppress(OSError):  # a full disk must not take the supervisor down
            os.write(self._fd, prefix + line.rstrip(b"\r") + b"\n")

    def close(self) -> None:
        """Close the file."""
        os.close(self._fd)


class PipeReader:
    """Drains one pipe into a `LogFile`, line by line; a partial last line waits for the rest."""

    def __init__(self, fd: int, stream: str, sink: LogFile) -> None:
        self.fd, self.stream, self.sink = fd, stream, sink
        self._partial = b""
        os.set_blocking(fd, False)

    def read(self) -> bool:
        """Read what is available; return False at end of file (the caller then closes the pipe)."""
        try:
            data = os.read(self.fd, 65536)
        except BlockingIOError:
            return True
        except OSError:
            data = b""
        if not data:
            if self._partial:
                self.sink.write_line(self.stream, self._partial)
                self._partial = b""
            return False
        *lines, rest = (self._partial + data).split(b"\n")
        for line in lines:
            self.sink.write_line(self.stream, line)
        while len(rest) >= MAX_LINE:
            self.sink.write_line(self.stream, rest[:MAX_LINE])
            rest = rest[MAX_LINE:]
        self._partial = rest
        return True
