"""The few calls of the Docker Engine API that a container program needs, over the engine's Unix socket.

Standard library only (http.client on an AF_UNIX socket), as the supervisor must stay: the `docker` package
would pull in requests and urllib3 for six HTTP calls. Paths carry no API version, so the engine answers in
its own; every body used here has meant the same since API 1.25 (Docker 1.13).
"""

from __future__ import annotations

import http.client
import json
import socket
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote, urlencode

STDOUT, STDERR = 1, 2  # the stream byte of a frame of a multiplexed (non-TTY) output stream
TIMEOUT = 60.0  # seconds for a call that does not last as long as the container


class EngineError(Exception):
    """The engine refused a request; the message is the engine's own."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class EngineUnreachable(EngineError):
    """Nothing answers on the socket (no engine, a stopped one, a wrong path) or it hung up."""

    def __init__(self, message: str) -> None:
        super().__init__(0, message)


class _UnixConnection(http.client.HTTPConnection):
    """HTTP/1.1 to a Unix socket; `timeout=None` for streams that last as long as a container."""

    def __init__(self, path: str, timeout: float | None) -> None:
        super().__init__("localhost", timeout=timeout)
        self.socket_path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(self.timeout)
            sock.connect(self.socket_path)
        except OSError:
            sock.close()
            raise
        self.sock = sock


class Engine:
    """A client of one engine; each call opens its own connection (a stream holds one for its whole life)."""

    def __init__(self, socket_path: str) -> None:
        self.socket_path = socket_path

    # Calls ------------------------------------------------------------------------------------------------
    def ping(self) -> None:
        """Raise `EngineUnreachable` unless the engine answers."""
        self._call("GET", "/_ping")

    def image_exists(self, image: str) -> bool:
        """The engine holds `image` (a tag or an id)."""
        try:
            self._call("GET", f"/images/{quote(image, safe='/:@')}/json")
        except EngineError as exc:
            if exc.status == 404:
                return False
            raise
        return True

    def create(self, name: str, body: dict[str, Any]) -> str:
        """Create a container called `name`; return its id."""
        answer = self._call("POST", f"/containers/create?{urlencode({'name': name})}", body)
        return str(answer["Id"])

    def start(self, container: str) -> None:
        self._call("POST", f"/containers/{quote(container)}/start")

    def stop(self, container: str, after: int) -> None:
        """Send the container its stop signal; the engine kills it `after` seconds later if it still runs."""
        self._call("POST", f"/containers/{quote(container)}/stop?t={after}", timeout=TIMEOUT + after)

    def remove(self, container: str) -> bool:
        """Remove the container (killed first if it runs) and its anonymous volumes; False if none was."""
        try:
            self._call("DELETE", f"/containers/{quote(container)}?force=true&v=true")
        except EngineError as exc:
            if exc.status == 404:
                return False
            raise
        return True

    def inspect(self, container: str) -> dict[str, Any]:
        answer = self._call("GET", f"/containers/{quote(container)}/json")
        assert isinstance(answer, dict)
        return answer

    def wait(self, container: str) -> int:
        """Block until the container is not running; its exit code."""
        answer = self._call("POST", f"/containers/{quote(container)}/wait", timeout=None)
        error = (answer.get("Error") or {}).get("Message")
        if error:
            raise EngineError(500, str(error))
        return int(answer["StatusCode"])

    def output(self, container: str) -> Iterator[tuple[int, bytes]]:
        """(STDOUT or STDERR, bytes) of everything the container writes, from its start until it stops."""
        conn = _UnixConnection(self.socket_path, None)
        try:
            path = f"/containers/{quote(container)}/logs?follow=true&stdout=true&stderr=true"
            response = self._send(conn, "GET", path, None)
            if response.status != 200:
                raise _error(response)
            while header := response.read(8):
                if len(header) < 8:
                    return
                size = int.from_bytes(header[4:8], "big")
                yield header[0], response.read(size)
        finally:
            conn.close()

    # HTTP -------------------------------------------------------------------------------------------------
    def _call(
        self, method: str, path: str, body: dict[str, Any] | None = None, *, timeout: float | None = TIMEOUT
    ) -> Any:
        conn = _UnixConnection(self.socket_path, timeout)
        try:
            response = self._send(conn, method, path, body)
            data = response.read()
        except (OSError, http.client.HTTPException) as exc:
            raise EngineUnreachable(_words(exc)) from exc
        finally:
            conn.close()
        if response.status >= 400:
            raise EngineError(response.status, _message(data) or f"HTTP {response.status} on {path}")
        if data and response.getheader("Content-Type", "").startswith("application/json"):
            return json.loads(data)
        return {}

    def _send(
        self, conn: _UnixConnection, method: str, path: str, body: dict[str, Any] | None
    ) -> http.client.HTTPResponse:
        headers = {"Host": "docker"}
        payload = None
        if body is not None:
            payload = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        try:
            conn.request(method, path, body=payload, headers=headers)
            return conn.getresponse()
        except (OSError, http.client.HTTPException) as exc:
            raise EngineUnreachable(_words(exc)) from exc


def _error(response: http.client.HTTPResponse) -> EngineError:
    return EngineError(response.status, _message(response.read()) or f"HTTP {response.status}")


def _message(data: bytes) -> str:
    try:
        return str(json.loads(data).get("message", "")).strip()
    except (ValueError, AttributeError):
        return data.decode(errors="replace").strip()


def _words(exc: BaseException) -> str:
    """`connection refused`, `no such file or directory`: the reason a socket failed, in lower case."""
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower()
    return str(exc) or type(exc).__name__
