"""The pure-ASGI middleware every request passes: request id, body limit, metrics, access log, last resort.

Pure ASGI on purpose: Starlette's BaseHTTPMiddleware keeps only 0.22-0.30 of a bare app's throughput, a
pure-ASGI middleware about 0.9. Everything per-request lives here, in one pass, so the hot path pays once.
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Callable
from typing import Any

import orjson
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from appliance.api import metrics
from appliance.api.errors import envelope
from appliance.logs import request_id_var

AccessWriter = Callable[[str, str, int, float, str], None]
error_log = logging.getLogger("appliance.api")

_VALID_REQUEST_ID = re.compile(rb"^[A-Za-z0-9._:\-]{1,128}$")
_UNMATCHED = "<unmatched>"


class Drain:
    """Set when the process is shutting down: every response then asks its client to close the connection,
    so that keep-alive clients reconnect (to another process on the shared socket) instead of sending their
    next request into a connection that is about to close."""

    def __init__(self) -> None:
        self.draining = False


_CLOSE = (b"connection", b"close")


def new_request_id() -> str:
    return "req_" + os.urandom(16).hex()  # 128 random bits, like uuid4's hex without building a UUID


class RequestContextMiddleware:
    """Gives each request an id, bounds its body, measures it, logs it, and answers 500 if all else fails."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_body_bytes: int,
        access_log: AccessWriter | None = None,
        fixed_paths: frozenset[str] = frozenset(),
        drain: Drain | None = None,
        max_in_flight: int = 0,
        overloaded: Callable[[int], bool] | None = None,
    ):
        self.app = app
        # Requests this process works on at once (0: no bound), and whether its threads can take more: past
        # either a request is refused here, for a few microseconds, instead of costing the event loop a full
        # pass through the framework only to be refused by the offloader. Under a burst the loop would
        # otherwise be saturated by requests refused in the end, and new connections would wait in the
        # kernel's queues (SYN retries of 1, 3, 7, 15 s), outside any bound of ours.
        self.max_in_flight = max_in_flight
        self.in_flight = 0
        #: Whether the threads behind the routes are too busy to take more (appliance.api.offload).
        self.overloaded = overloaded or (lambda _: False)
        self.drain = drain or Drain()
        self.fixed_paths = fixed_paths
        self.max_body_bytes = max_body_bytes
        self.access_log = access_log
        # Labelled metric children by (method, route template, status): labels() takes a lock and hashes
        # the labels on every call. Bounded, because route templates are.
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        request_id = None
        content_length = -1
        for name, value in scope["headers"]:
            if name == b"x-request-id" and _VALID_REQUEST_ID.match(value):
                request_id = value.decode()
            elif name == b"content-length" and value.isdigit():
                content_length = int(value)
        if request_id is None:
            request_id = new_request_id()
        token = request_id_var.set(request_id)
        id_header = (b"x-request-id", request_id.encode())
        started = time.perf_counter()
        status = 500
        response_started = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                status = message["status"]
                response_started = True
                message["headers"] = self._headers(scope, message, id_header)
            await send(message)

        limit = self.max_body_bytes
        received = 0

        async def bounded_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise HTTPException(413, _too_large(limit))
            return message

        self.in_flight += 1
        metrics.IN_FLIGHT.inc()
        try:
            if busy := self._busy(scope):
                await _send_error(
                    send_with_id,
                    503,
                    "OVERLOADED",
                    f"The appliance is busy ({busy}); retry in 1 s.",
                    {"in_flight": self.in_flight - 1},
                    headers=[(b"retry-after", b"1")],
                )
            elif content_length > limit:
                await _send_error(send_with_id, 413, "PAYLOAD_TOO_LARGE", _too_large(limit), {"limit": limit})
            else:
                await self.app(scope, bounded_receive, send_with_id)
        except Exception:
            error_log.exception("unhandled error while serving %s %s", scope["method"], scope["path"])
            if not response_started:
                await _send_error(
                    send_with_id, 500, "INTERNAL_ERROR", "The appliance could not complete the request."
                )
        finally:
            self.in_flight -= 1
            metrics.IN_FLIGHT.dec()
            self._record(scope, status, time.perf_counter() - started)
            request_id_var.reset(token)

    def _busy(self, scope: Scope) -> str | None:
        """Why the request is refused at the door, if it is (never a health check)."""
        if scope["path"].startswith("/health"):
            return None
        if self.max_in_flight and self.in_flight > self.max_in_flight:
            metrics.API_SHED.labels("in_flight").inc()
            return f"{self.in_flight - 1} requests in progress"
        if self.overloaded(self.in_flight - 1):
            metrics.API_SHED.labels("at_the_door").inc()
            return "every thread is taken and the queue is full or congested"
        return None

    def _headers(self, scope: Scope, message: Message, id_header: tuple[bytes, bytes]) -> list[Any]:
        headers = [*message.get("headers", ()), id_header]
        # Rate-limit headers, set by appliance.api.auth on every limited route (refusals included).
        limited = scope.get("state", {}).get("ratelimit_headers")
        if limited:
            headers.extend(limited)
        if self.drain.draining:
            headers.append(_CLOSE)
        return headers

    def _record(self, scope: Scope, status: int, elapsed: float) -> None:
        template = route_template(scope)
        if template == _UNMATCHED and scope["path"] in self.fixed_paths:
            template = scope["path"]  # the documentation pages, which FastAPI serves without a route
        method = scope["method"]
        key = (method, template, status)
        children = self._children.get(key)
        if children is None:
            children = self._children[key] = (
                metrics.REQUESTS.labels(method, template, str(status)),
                metrics.LATENCY.labels(method, template),
            )
        children[0].inc()
        children[1].observe(elapsed)
        if self.access_log is not None:
            self.access_log(method, scope["path"], status, round(elapsed * 1000, 3), template)


def route_template(scope: Scope) -> str:
    """The path template that served the request (``/api/v1/projects/{id}``), never the raw path, so that
    metric labels stay bounded whatever clients send."""
    # FastAPI keeps included routers lazily: the matched route knows only its own part of the path, and the
    # full template is on the effective route context (a test asserts this, so an upgrade cannot break it).
    effective = scope.get("fastapi", {}).get("effective_route_context")
    template = getattr(effective, "path", None) or getattr(scope.get("route"), "path", None)
    return str(template) if template else _UNMATCHED


def _too_large(limit: int) -> str:
    return f"The request body is larger than the limit of {limit} bytes."


async def _send_error(
    send: Send,
    status: int,
    code: str,
    message: str,
    details: Any = None,
    *,
    headers: list[tuple[bytes, bytes]] | None = None,
) -> None:
    body = orjson.dumps(envelope(code, message, details))
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *(headers or ()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
