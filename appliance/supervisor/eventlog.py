"""The supervisor's own log: one timestamped line per event, to `<log_dir>/supervisor.log` and stderr."""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path

from appliance.supervisor.output import utc_stamp


class EventLog:
    """Appends events; never raises (a full disk must not stop supervision)."""

    def __init__(self, path: Path | None, echo: bool = True) -> None:
        self.echo = echo
        self._fd: int | None = None
        if path is not None:
            self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o640)

    def __call__(self, message: str) -> None:
        line = f"{utc_stamp()} supervisor[{os.getpid()}] {message}\n"
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.write(self._fd, line.encode())
        if self.echo:
            try:
                sys.stderr.write(line)
                sys.stderr.flush()
            except (OSError, ValueError):
                pass

    def close(self) -> None:
        """Close the log file."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
