"""Readiness checks (tcp connect, http GET, command) run without blocking the supervisor's loop."""

from __future__ import annotations

import contextlib
import errno
import os
import selectors
import socket
import subprocess
from collections.abc import Callable
from urllib.parse import urlsplit

from appliance.supervisor.specs import ReadySpec

ATTEMPT_TIMEOUT = 2.0  # seconds one check may take before it counts as failed


class _SocketCheck:
    """Connect (and for http, send a GET and read the status line) on a non-blocking socket."""

    def __init__(self, probes: Probes, pid: int, host: str, port: int, request: bytes | None) -> None:
        self.probes, self.pid, self.request = probes, pid, request
        self.connected, self.buffer = False, b""
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        self.sock = socket.socket(family, kind, proto)
        self.sock.setblocking(False)
        err = self.sock.connect_ex(address)
        if err not in (0, errno.EINPROGRESS):
            self.sock.close()
            raise OSError(err, os.strerror(err))
        probes.selector.register(self.sock, selectors.EVENT_WRITE, self.on_event)

    def on_event(self, _mask: int) -> None:
        try:
            if not self.connected:
                if self.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR):
                    self.probes.finish(self, False)
                    return
                self.connected = True
                if self.request is None:
                    self.probes.finish(self, True)
                    return
                self.sock.send(self.request)
                self.probes.selector.modify(self.sock, selectors.EVENT_READ, self.on_event)
                return
            data = self.sock.recv(4096)
        except OSError:
            self.probes.finish(self, False)
            return
        self.buffer += data
        if b"\n" in self.buffer or not data or len(self.buffer) > 8192:
            words = self.buffer.split(b"\n", 1)[0].split()
            ok = len(words) >= 2 and words[0].startswith(b"HTTP/") and words[1][:1] in (b"2", b"3")
            self.probes.finish(self, ok)

    def close(self) -> None:
        self.probes.selector.unregister(self.sock)
        self.sock.close()


class _CommandCheck:
    """Run a command; exit code 0 means ready. Reaped by the loop like any child."""

    def __init__(self, pid: int, argv: tuple[str, ...]) -> None:
        self.pid = pid
        self.proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )

    def close(self) -> None:
        if self.proc.returncode is None:
            with contextlib.suppress(OSError):
                os.killpg(self.proc.pid, 9)


class Probes:
    """Checks in flight; each ends in `report(pid, ok)`, at the latest after ATTEMPT_TIMEOUT."""

    def __init__(self, selector: selectors.BaseSelector, report: Callable[[int, bool], None]) -> None:
        self.selector, self.report = selector, report
        self._deadlines: dict[_SocketCheck | _CommandCheck, float] = {}

    def start(self, ready: ReadySpec, pid: int, now: float) -> None:
        """Begin one check of process `pid`."""
        check: _SocketCheck | _CommandCheck
        try:
            if ready.kind == "command":
                check = _CommandCheck(pid, ready.argv)
            elif ready.kind == "tcp":
                check = _SocketCheck(self, pid, ready.host, ready.port, None)
            else:
                url = urlsplit(ready.url)
                path = (url.path or "/") + (f"?{url.query}" if url.query else "")
                request = f"GET {path} HTTP/1.0\r\nHost: {url.netloc}\r\nConnection: close\r\n\r\n".encode()
                check = _SocketCheck(self, pid, url.hostname or "127.0.0.1", url.port or 80, request)
        except (OSError, ValueError, subprocess.SubprocessError):
            self.report(pid, False)
            return
        self._deadlines[check] = now + ATTEMPT_TIMEOUT

    def finish(self, check: _SocketCheck | _CommandCheck, ok: bool) -> None:
        """End `check` and report its outcome."""
        if self._deadlines.pop(check, None) is not None:
            check.close()
            self.report(check.pid, ok)

    def reaped(self, pid: int, returncode: int) -> bool:
        """The loop reaped `pid`; if it was a command check, report it and return True."""
        for check in self._deadlines:
            if isinstance(check, _CommandCheck) and check.proc.pid == pid:
                check.proc.returncode = returncode
                self.finish(check, returncode == 0)
                return True
        return False

    def expire(self, now: float) -> None:
        """Fail the checks that took too long."""
        for check, deadline in list(self._deadlines.items()):
            if now >= deadline:
                self.finish(check, False)

    def next_deadline(self) -> float | None:
        """When the oldest check in flight times out."""
        return min(self._deadlines.values(), default=None)

    def close(self) -> None:
        """Abandon every check in flight."""
        for check in list(self._deadlines):
            self._deadlines.pop(check)
            check.close()
