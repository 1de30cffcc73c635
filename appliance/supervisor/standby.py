"""Answers on a `listen` socket while none of its program's instances is up: an HTTP 503 at once.

The supervisor holds the listening socket of a `listen` program for as long as it runs, so while every
instance is stopped, backing off or crash-looping the kernel still completes the connections and queues them
in the backlog: clients would hang until their own timeout. For a program with `when_down = "http-503"` the
supervisor accepts them itself meanwhile and answers each with a 503 (the API's error envelope, with
Retry-After) and `Connection: close`. As soon as an instance is up again, or starting other than after a
crash (a first start, an operator's start or restart), it stops accepting, and the connections go to the
program's processes as before (Supervisor.unattended decides).

A connection is answered after its request has arrived (or after `REQUEST_WAIT` seconds of silence), then
closed once the client has closed its side or `LINGER` seconds later: closing with unread bytes would send a
reset, which can destroy the answer before the client reads it. At most `MAX_CONNECTIONS` are kept; beyond
that a connection is answered and closed at once. Nothing here blocks: the sockets are non-blocking (the
listening socket too; it is shared with the program's processes, which must accept without blocking, as
asyncio servers such as uvicorn do).
"""

from __future__ import annotations

import contextlib
import json
import selectors
import socket
import time
from collections.abc import Callable

REQUEST_WAIT = 1.0  # seconds to wait for the request before answering anyway
LINGER = 2.0  # seconds to wait for the client to close after the answer
MAX_CONNECTIONS = 256
ACCEPTS_PER_WAKE = 64  # connections accepted per readiness event, so that a flood cannot starve the loop
RETRY_AFTER = 5  # seconds, as the API itself says when it is unavailable


def response(program: str) -> bytes:
    """The whole HTTP answer: 503, the JSON error envelope of API.md, Retry-After, Connection: close."""
    body = json.dumps(
        {
            "error": {
                "code": "SERVICE_UNAVAILABLE",
                "message": f"The service is not running at the moment ({program} is restarting or stopped); "
                f"try again in {RETRY_AFTER} seconds.",
                "details": {},
                "request_id": None,
            }
        },
        separators=(",", ":"),
    ).encode()
    head = (
        "HTTP/1.1 503 Service Unavailable\r\n"
        "Content-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n"
        f"Retry-After: {RETRY_AFTER}\r\n"
        "Cache-Control: no-store\r\n"
        "Connection: close\r\n\r\n"
    )
    return head.encode() + body


class _Connection:
    """One accepted client: waiting for its request, then lingering until it closes."""

    def __init__(self, standby: Standby, sock: socket.socket, answer: bytes, now: float) -> None:
        self.standby, self.sock, self.answer = standby, sock, answer
        self.answered = False
        self.deadline = now + REQUEST_WAIT
        sock.setblocking(False)
        standby.selector.register(sock, selectors.EVENT_READ, self.on_readable)

    def on_readable(self, _mask: int) -> None:
        try:
            data = self.sock.recv(65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if data and not self.answered:
            self.reply(self.standby.clock())
        elif not data:
            if not self.answered:
                self.reply(self.standby.clock())
            self.close()

    def reply(self, now: float) -> None:
        self.answered, self.deadline = True, now + LINGER
        with contextlib.suppress(OSError):  # the answer fits any send buffer; a dead peer is no matter
            self.sock.send(self.answer)
            self.sock.shutdown(socket.SHUT_WR)

    def expire(self, now: float) -> None:
        if now < self.deadline:
            return
        if self.answered:
            self.close()
        else:
            self.reply(now)  # a client that says nothing (a TCP probe) gets the answer too

    def close(self) -> None:
        if self in self.standby.connections:
            self.standby.connections.discard(self)
            self.standby.selector.unregister(self.sock)
            self.sock.close()


class Standby:
    """Accepts and answers on the listening sockets it is given by `update`, and on no other."""

    def __init__(self, selector: selectors.BaseSelector, clock: Callable[[], float] = time.monotonic) -> None:
        self.selector, self.clock = selector, clock
        self.listening: dict[int, tuple[socket.socket, str, bytes]] = {}  # by file descriptor
        self.connections: set[_Connection] = set()

    def update(self, sockets: dict[socket.socket, str]) -> list[str]:
        """Answer on exactly these listening sockets (each for the program named); return the programs whose
        sockets were taken or given back just now, as "api: answering 503" / "api: handed back"."""
        changes = []
        wanted = {sock.fileno(): (sock, program) for sock, program in sockets.items()}
        for fd in [fd for fd in self.listening if fd not in wanted]:
            sock, program, _ = self.listening.pop(fd)
            self.selector.unregister(sock)
            changes.append(f"{program}: an instance is up or starting, its processes take the connections")
        for fd, (sock, program) in wanted.items():
            if fd not in self.listening:
                sock.setblocking(False)
                self.listening[fd] = (sock, program, response(program))
                self.selector.register(sock, selectors.EVENT_READ, self._acceptor(sock))
                changes.append(f"{program}: no instance is up, answering its connections with 503")
        return changes

    def next_deadline(self) -> float | None:
        """When a connection next needs attention."""
        return min((c.deadline for c in self.connections), default=None)

    def expire(self, now: float) -> None:
        """Answer silent clients and close lingering connections whose time is up."""
        for conn in list(self.connections):
            conn.expire(now)

    def close(self) -> None:
        """Stop answering and drop every connection (the listening sockets stay open: not ours)."""
        self.update({})
        for conn in list(self.connections):
            conn.close()

    def _acceptor(self, listener: socket.socket) -> Callable[[int], None]:
        def on_readable(_mask: int) -> None:
            fd = listener.fileno()
            for _ in range(ACCEPTS_PER_WAKE):
                try:
                    sock, _ = listener.accept()
                except (BlockingIOError, InterruptedError):
                    return  # taken by a process of the program, or none left
                except OSError:
                    return
                answer = self.listening[fd][2]
                if len(self.connections) >= MAX_CONNECTIONS:
                    with contextlib.suppress(OSError):
                        sock.send(answer)
                    sock.close()
                    continue
                self.connections.add(_Connection(self, sock, answer, self.clock()))

        return on_readable
