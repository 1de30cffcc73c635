"""Real receivers on loopback ports (of webhooks, of the monitor's probes): a threaded HTTP server whose
answers a test chooses."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError


@dataclass(frozen=True)
class Received:
    headers: dict[str, str]
    body: bytes
    at: float
    """time.time() when it arrived (the benchmark's delay)."""
    peer: tuple[str, int] = ("", 0)
    """The sender's address and port: requests over one kept-alive connection share it."""


@dataclass(frozen=True)
class Reply:
    status: int = 204
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    hang: bool = False
    """Never answer (until the receiver closes)."""
    endless: bool = False
    """Answer 200 and send body bytes without end."""
    delay: float = 0.0


Respond = Callable[[Received, int], Reply]


class _Server(ThreadingHTTPServer):
    request_queue_size = 256  # the default 5 resets connections under a burst


class Receiver:
    """``with Receiver(respond) as r:`` serves at ``r.url``; ``r.received`` holds every request."""

    def __init__(self, respond: Respond | None = None, path: str = "/hook"):
        self.respond: Respond = respond or (lambda _r, _n: Reply())
        self.received: list[Received] = []
        self.lock = threading.Lock()
        self.closing = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *_: Any) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", "0"))
                body = self.rfile.read(length)
                if len(body) < length:  # the sender died mid-request: nothing arrived
                    self.close_connection = True
                    return
                got = Received(dict(self.headers.items()), body, time.time(), self.client_address[:2])
                with receiver.lock:
                    receiver.received.append(got)
                    number = len(receiver.received)
                reply = receiver.respond(got, number)
                if reply.delay:
                    receiver.closing.wait(reply.delay)
                if reply.hang:
                    receiver.closing.wait(120)
                    return
                self.send_response(reply.status)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                if reply.endless:
                    self.send_header("connection", "close")
                    self.end_headers()
                    chunk = b"x" * 65536
                    try:
                        while not receiver.closing.is_set():
                            self.wfile.write(chunk)
                    except OSError:
                        pass
                    self.close_connection = True
                    return
                self.send_header("content-length", str(len(reply.body)))
                try:
                    self.end_headers()
                    self.wfile.write(reply.body)
                except OSError:  # the sender gave up (its timeout) or died: nothing to answer
                    self.close_connection = True

            do_GET = do_POST  # the application monitor's probes

        self.server = _Server(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}{path}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.closing.set()
        self.server.shutdown()
        self.server.server_close()

    def count(self) -> int:
        with self.lock:
            return len(self.received)


def verifying(secret: Callable[[], str], seen: list[dict[str, Any]]) -> Respond:
    """Answer 204 to a request that verifies with the reference library (its parsed body in ``seen``),
    400 to any other."""

    def respond(got: Received, _n: int) -> Reply:
        try:
            payload = Webhook(secret()).verify(got.body, got.headers)
        except WebhookVerificationError as exc:
            return Reply(400, body=str(exc).encode())
        seen.append({"id": got.headers.get("webhook-id"), "payload": payload})
        return Reply(204)

    return respond
