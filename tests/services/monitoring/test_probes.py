"""One probe against real HTTP servers on loopback ports: the expected status, the keyword, a hanging
server, a redirect, a huge body, a name that does not resolve, nothing listening, and a refused address.
Every outcome is a result with its reason, never an exception."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from appliance.services.monitoring import probes
from appliance.services.outbound import guard as outbound
from tests.servers import free_port

LOOPBACK = outbound.AddressPolicy.of(["127.0.0.0/8"])
RELEASE = threading.Event()


class Site(BaseHTTPRequestHandler):
    """/ok answers a page with a keyword; /down 503; /hang never answers; /moved redirects; /huge streams."""

    def do_GET(self) -> None:
        if self.path == "/hang":
            RELEASE.wait(30)
            return
        status, body = {
            "/ok": (200, b"<html>all systems nominal</html>"),
            "/down": (503, b"maintenance"),
            "/moved": (301, b""),
        }.get(self.path, (404, b"no such page"))
        if self.path == "/huge":
            status, body = 200, b"x" * 5_000_000 + b"needle"
        self.send_response(status)
        if status == 301:
            self.send_header("Location", "/ok")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            self.wfile.write(body)  # the probe may hang up once it read what it needed

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def site() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Site)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        RELEASE.set()
        server.shutdown()
        server.server_close()


def run(
    url: str, *, policy: outbound.AddressPolicy = LOOPBACK, timeout: float = 5.0, **spec: object
) -> probes.ProbeResult:
    async def once() -> probes.ProbeResult:
        async with probes.make_clients(10) as clients:
            return await probes.probe(clients, probes.ProbeSpec(url, timeout, **spec), policy)  # type: ignore[arg-type]

    return asyncio.run(once())


def test_the_expected_status_is_a_success_with_its_latency(site: str) -> None:
    result = run(f"{site}/ok")
    assert result.ok, result
    assert result.status_code == 200
    assert result.latency_ms is not None
    assert result.latency_ms > 0
    assert result.error is None


def test_another_status_fails_naming_both(site: str) -> None:
    result = run(f"{site}/down")
    assert not result.ok
    assert result.status_code == 503
    assert result.error == "answered 503, expected 200"
    assert run(f"{site}/down", expected_status=503).ok


def test_a_redirect_is_not_followed(site: str) -> None:
    result = run(f"{site}/moved")
    assert (result.ok, result.status_code) == (False, 301)
    assert run(f"{site}/moved", expected_status=301).ok


def test_the_keyword_must_be_in_the_body(site: str) -> None:
    assert run(f"{site}/ok", keyword="nominal").ok
    missing = run(f"{site}/ok", keyword="degraded")
    assert not missing.ok
    assert missing.error is not None
    assert "'degraded'" in missing.error


def test_a_huge_body_is_read_only_up_to_the_limit(site: str) -> None:
    """The keyword sits after 5 MB: not found, and the probe does not read (or wait for) the rest."""
    result = run(f"{site}/huge", keyword="needle")
    assert not result.ok
    assert result.error is not None
    assert f"first {probes.MAX_BODY_BYTES} bytes" in result.error


def test_a_hanging_server_times_out(site: str) -> None:
    result = run(f"{site}/hang", timeout=0.3)
    assert not result.ok
    assert result.error == "timed out after 0.3 s"


def test_nothing_listening_fails_with_the_reason() -> None:
    result = run(f"http://127.0.0.1:{free_port()}/")
    assert not result.ok
    assert result.error is not None
    assert result.error.startswith("cannot connect")
    assert "refused" in result.error.lower()


def test_a_name_that_does_not_resolve_fails_with_the_reason() -> None:
    result = run("http://no-such-host.invalid/health")
    assert not result.ok
    assert result.error is not None
    assert result.error.startswith("no-such-host.invalid does not resolve")


def test_a_refused_address_is_not_called(site: str) -> None:
    """Without the operator's allow-list, loopback is refused before any connection is made."""
    result = run(f"{site}/ok", policy=outbound.AddressPolicy())
    assert not result.ok
    assert result.error == (
        "refused: 127.0.0.1 is a loopback address, which the appliance calls only when the setting "
        "outbound.allow_networks includes it"
    )
    assert result.status_code is None
