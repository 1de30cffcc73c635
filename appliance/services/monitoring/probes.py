"""One probe of a monitored application's URL: request it once, judge the answer, never raise.

Every outcome is a :class:`ProbeResult`, so a target that does not resolve, refuses, hangs, redirects or
sends a huge body is a failed check with its reason and never an exception in the monitor. The name is
resolved and checked at each probe (appliance.services.outbound.guard), and the connection goes to the checked
address. Redirects are not followed (a 301 is the status the app answered); at most :data:`MAX_BODY_BYTES`
of the body are searched for the keyword. A body no longer than that is then read to its end (within the
probe's timeout, its outcome already judged) so that the keep-alive connection serves the next probe: a
response closed part-read closes its connection, and every probe would pay a new connection (and TLS
handshake).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import httpx

from appliance.errors import InvalidInput
from appliance.services.outbound import guard as outbound
from appliance.services.outbound.clients import Clients

#: How much of a body is searched for the keyword; the rest is neither read nor waited for.
MAX_BODY_BYTES = 65_536
USER_AGENT = "ForgeAppliance-Monitor/1"


@dataclass(frozen=True)
class ProbeSpec:
    url: str
    timeout: float
    expected_status: int = 200
    keyword: str | None = None


@dataclass(frozen=True)
class ProbeResult:
    ok: bool
    status_code: int | None = None
    latency_ms: float | None = None
    error: str | None = None
    """Why it failed; None when it succeeded."""


def make_clients(concurrency: int, transport: httpx.AsyncBaseTransport | None = None) -> Clients:
    """The clients every probe of a monitor shares (appliance.services.outbound.clients: keep-alive pools, one
    per https name, no redirects, no environment proxies), at most ``concurrency`` connections each."""
    return Clients(
        transport,
        max_connections=concurrency,
        keepalive=concurrency,
        headers={"User-Agent": USER_AGENT},
    )


async def probe(
    clients: Clients,
    spec: ProbeSpec,
    policy: outbound.AddressPolicy,
    clock: Callable[[], float] = time.perf_counter,
) -> ProbeResult:
    """Request ``spec.url`` once through ``clients`` and judge the answer (never raises, but for
    cancellation)."""
    started = clock()
    try:
        target = outbound.parse(spec.url)
        address = await outbound.resolve(target, policy)
    except InvalidInput as exc:
        return ProbeResult(False, error=exc.message)
    except outbound.OutboundRefused as exc:
        return ProbeResult(False, error=str(exc))
    client = clients.for_target(target)
    return await _exchange(client, spec, outbound.pinned(target, address), clock, started)


async def _exchange(
    client: httpx.AsyncClient,
    spec: ProbeSpec,
    pinned: tuple[str, dict[str, str], dict[str, str]],
    clock: Callable[[], float],
    started: float,
) -> ProbeResult:
    """Send the request to the checked address and judge the answer."""
    url, headers, extensions = pinned
    timeout = httpx.Timeout(spec.timeout)
    try:
        request = client.build_request("GET", url, headers=headers, extensions=extensions, timeout=timeout)
        response = await client.send(request, stream=True)
        try:
            # One iterator: the drain goes on where the search stopped (decoded for the search, raw else).
            chunks = response.aiter_bytes() if spec.keyword else response.aiter_raw()
            found = await _find(chunks, spec.keyword) if spec.keyword else True
            latency = _ms(clock() - started)
            if _short(response):
                await _drain(chunks, spec.timeout - (clock() - started))
        finally:
            await response.aclose()
    except httpx.TimeoutException:
        return ProbeResult(
            False, latency_ms=_ms(clock() - started), error=f"timed out after {spec.timeout:g} s"
        )
    except httpx.HTTPError as exc:
        return ProbeResult(False, latency_ms=_ms(clock() - started), error=_reason(exc))
    status = response.status_code
    if status != spec.expected_status:
        return ProbeResult(False, status, latency, f"answered {status}, expected {spec.expected_status}")
    if not found:
        return ProbeResult(
            False, status, latency, f"the keyword {spec.keyword!r} is not in the first {MAX_BODY_BYTES} bytes"
        )
    return ProbeResult(True, status, latency)


async def _find(chunks: AsyncIterator[bytes], keyword: str | None) -> bool:
    """Whether ``keyword`` is in the body's first MAX_BODY_BYTES (after content decoding)."""
    assert keyword is not None
    needle = keyword.encode()
    seen = b""
    async for chunk in chunks:
        seen += chunk
        if needle in seen:
            return True
        if len(seen) >= MAX_BODY_BYTES:
            return needle in seen[:MAX_BODY_BYTES]
    return False


def _short(response: httpx.Response) -> bool:
    """Whether the body may be read to its end: no longer than MAX_BODY_BYTES, or of no stated length."""
    length = response.headers.get("content-length", "")
    return not length or (length.isdigit() and int(length) <= MAX_BODY_BYTES)


async def _drain(chunks: AsyncIterator[bytes], budget: float) -> None:
    """Read what is left of the body, up to MAX_BODY_BYTES and ``budget`` seconds; past either, or on an
    error, stop (the response's close then closes its connection). The outcome is already judged."""
    read = 0
    with contextlib.suppress(httpx.HTTPError, TimeoutError):
        async with asyncio.timeout(max(budget, 0.0)):
            async for chunk in chunks:
                read += len(chunk)
                if read > MAX_BODY_BYTES:
                    return


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 3)


def _reason(exc: httpx.HTTPError) -> str:
    """The failure in a few words: the innermost cause names it best (connection refused, reset, ...)."""
    cause: BaseException = exc
    while cause.__cause__ is not None or cause.__context__ is not None:
        cause = cause.__cause__ or cause.__context__  # type: ignore[assignment]
    if isinstance(cause, OSError) and cause.errno:
        text = os.strerror(cause.errno)  # "Connection refused", not asyncio's "Connect call failed (...)"
    else:
        text = str(cause) or str(exc) or type(exc).__name__
    kind = {httpx.ConnectError: "cannot connect", httpx.RemoteProtocolError: "protocol error"}
    prefix = next((label for cls, label in kind.items() if isinstance(exc, cls)), "request failed")
    return f"{prefix}: {text}"[:500]
