"""Readiness notifications (the sd_notify protocol): children say READY=1 on a datagram socket.

A process that runs with ``NOTIFY_SOCKET=<run_dir>/notify.sock`` sends ``READY=1`` (newline-separated
``KEY=VALUE`` lines, as systemd's sd_notify) once it serves. The kernel attaches the sender's pid to each
datagram (SO_PASSCRED), so the supervisor knows which instance is ready even when several share one
listening socket, where an http or tcp probe may be answered by any of them.

Every program gets the socket, and may later say how it is doing: ``STATUS=<words>`` (systemd's free-form
status line, shown by `appliance status`) and ``X_READY=0`` or ``X_READY=1`` (an application variable, named
with the ``X_`` prefix systemd reserves for those): whether it can do its work now. A process that runs but
cannot work (its database refuses the password) sends ``X_READY=0`` with ``STATUS=not ready: database
unavailable: ...``, and ``X_READY=1`` once it can again; the supervisor keeps it running (it retries by
itself), shows it as not ready, and writes each change to its log, stderr and events.

The supervisor speaks the same protocol upward: started by systemd with ``Type=notify``, it sends READY=1
to systemd once its first starts are settled, and STOPPING=1 when it shuts down.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import socket
import struct
from collections.abc import Callable
from pathlib import Path

_CREDENTIALS = struct.Struct("3i")  # struct ucred: pid, uid, gid
_MAX_DATAGRAM = 4096


Fields = dict[str, str]
"""One notification's ``KEY=VALUE`` lines (``{"READY": "1", "STATUS": "warming up"}``)."""


def parse(data: bytes) -> Fields:
    """The ``KEY=VALUE`` lines of one datagram; lines without ``=`` are ignored, the last value wins."""
    fields: Fields = {}
    for line in data.decode(errors="replace").split("\n"):
        key, sep, value = line.partition("=")
        if sep and key:
            fields[key] = value
    return fields


class NotifySocket:
    """The supervisor's receiving end; calls ``on_message(pid, fields)`` for each notification."""

    def __init__(
        self, path: Path, selector: selectors.BaseSelector, on_message: Callable[[int, Fields], None]
    ) -> None:
        self.path, self.selector, self.on_message = path, selector, on_message
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        self.sock.bind(str(path))
        os.chmod(path, 0o600)  # only the supervisor's user (and so its children) may claim readiness
        self.sock.setblocking(False)
        selector.register(self.sock, selectors.EVENT_READ, self._readable)

    def _readable(self, _mask: int) -> None:
        while True:
            try:
                data, ancillary, _flags, _addr = self.sock.recvmsg(
                    _MAX_DATAGRAM, socket.CMSG_SPACE(_CREDENTIALS.size)
                )
            except (BlockingIOError, InterruptedError):
                return
            pid = sender_pid(ancillary)
            if pid is not None:
                self.on_message(pid, parse(data))

    def close(self) -> None:
        self.selector.unregister(self.sock)
        self.sock.close()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


def sender_pid(ancillary: list[tuple[int, int, bytes]]) -> int | None:
    for level, kind, payload in ancillary:
        if (
            level == socket.SOL_SOCKET
            and kind == socket.SCM_CREDENTIALS
            and len(payload) >= _CREDENTIALS.size
        ):
            pid, _uid, _gid = _CREDENTIALS.unpack(payload[: _CREDENTIALS.size])
            return int(pid)
    return None


def notify(message: str, path: str | None) -> bool:
    """Send ``message`` to the notify socket at ``path`` (``@`` for the abstract namespace); False when
    there is none or it does not answer. Never raises: readiness is advisory for the sender."""
    if not path:
        return False
    address = "\0" + path[1:] if path.startswith("@") else path
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.sendto(message.encode(), address)
    except OSError:
        return False
    return True


class NotifyReadiness:
    """Readiness by notification for the programs whose ``ready`` is ``notify = true``, the status lines of
    every program (``on_status(pid, words, can_work)``, each None when not sent), and the supervisor's own
    notifications to systemd."""

    def __init__(
        self,
        path: Path,
        selector: selectors.BaseSelector,
        report: Callable[[int, bool], None],
        upstream: str | None,
        on_status: Callable[[int, str | None, bool | None], None] | None = None,
    ) -> None:
        self.report, self.upstream, self.on_status = report, upstream, on_status
        self.ready_pids: set[int] = set()
        self.socket = NotifySocket(path, selector, self._message)
        self._told_upstream = False

    def env_for(self, base_env: dict[str, str]) -> dict[str, str]:
        return {**base_env, "NOTIFY_SOCKET": str(self.socket.path)}

    def probe(self, pid: int) -> None:
        """A readiness check is due: answer at once if the process already said READY=1, else wait for
        it (the instance's ready.timeout bounds the wait)."""
        if pid in self.ready_pids:
            self.report(pid, True)

    def forget(self, pid: int) -> None:
        self.ready_pids.discard(pid)

    def started(self) -> None:
        """The first starts are settled: tell systemd once (Type=notify), so `systemctl start` returns
        when the programs that can run do."""
        if not self._told_upstream:
            self._told_upstream = notify("READY=1", self.upstream) or self.upstream is None

    def stopping(self) -> None:
        notify("STOPPING=1", self.upstream)

    def close(self) -> None:
        self.socket.close()

    def _message(self, pid: int, fields: Fields) -> None:
        if fields.get("READY") == "1" and pid not in self.ready_pids:
            self.ready_pids.add(pid)
            self.report(pid, True)
        can_work = {"0": False, "1": True}.get(fields.get("X_READY", ""))
        if self.on_status is not None and ("STATUS" in fields or can_work is not None):
            self.on_status(pid, fields.get("STATUS"), can_work)
