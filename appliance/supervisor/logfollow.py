"""One `logs` follower: JSON lines sent without blocking the loop; a client too slow is dropped."""

from __future__ import annotations

import json
import selectors
import socket
import time
from collections.abc import Callable
from typing import Any

FOLLOW_BUFFER = 1 << 20  # bytes waiting for one slow client before it is dropped
DROP_GRACE = 5.0  # seconds a dropped client gets to read its final notice


class Follower:
    """Owns a control connection handed over by the control socket; `send` never blocks."""

    def __init__(
        self,
        sock: socket.socket,
        selector: selectors.BaseSelector,
        on_close: Callable[[Follower], None],
        limit: int = FOLLOW_BUFFER,
    ) -> None:
        self.sock, self.selector, self.on_close, self.limit = sock, selector, on_close, limit
        self.closed = False
        self.dropped_at: float | None = None
        self._out = bytearray()
        self._mid_line = False  # the first line of `_out` was partly sent already
        self._mask = selectors.EVENT_READ
        sock.setblocking(False)
        selector.register(sock, self._mask, self._on_event)

    def send(self, message: dict[str, Any]) -> bool:
        """Queue one JSON line; False once the client is gone or dropped (the caller forgets it then)."""
        if self.closed or self.dropped_at is not None:
            return False
        data = json.dumps(message).encode() + b"\n"
        if len(self._out) + len(data) > self.limit:
            self._drop(f"dropped: this client read too slowly ({self.limit} bytes were waiting)")
            return False
        self._out += data
        self._flush()
        return not self.closed

    def expire(self, now: float) -> None:
        """Close a dropped client that did not read its notice within DROP_GRACE (monotonic `now`)."""
        if self.dropped_at is not None and now - self.dropped_at > DROP_GRACE:
            self.close()

    def close(self) -> None:
        """Close the connection and tell the owner."""
        if not self.closed:
            self.closed = True
            self.selector.unregister(self.sock)
            self.sock.close()
            self.on_close(self)

    def _drop(self, why: str) -> None:
        # Keep the rest of a half-sent line so the client still reads whole JSON lines, then the notice.
        keep = self._out[: self._out.find(b"\n") + 1] if self._mid_line else b""
        self._out = bytearray(keep) + json.dumps({"ok": False, "error": why}).encode() + b"\n"
        self.dropped_at = time.monotonic()
        self._flush()

    def _flush(self) -> None:
        if self._out:
            try:
                sent = self.sock.send(self._out)
            except BlockingIOError:
                sent = 0
            except OSError:
                self.close()
                return
            if sent:
                self._mid_line = self._out[sent - 1 : sent] != b"\n"
                del self._out[:sent]
        if not self._out and self.dropped_at is not None:
            self.close()
            return
        mask = selectors.EVENT_READ | (selectors.EVENT_WRITE if self._out else 0)
        if mask != self._mask:
            self._mask = mask
            self.selector.modify(self.sock, mask, self._on_event)

    def _on_event(self, mask: int) -> None:
        if mask & selectors.EVENT_READ:
            try:
                data = self.sock.recv(4096)  # a follower has nothing more to say: only EOF matters
            except BlockingIOError:
                data = b"-"
            except OSError:
                data = b""
            if not data:
                self.close()
                return
        if mask & selectors.EVENT_WRITE:
            self._flush()
