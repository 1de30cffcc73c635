"""One HTTP attempt of a webhook, bounded every way a receiver could hold it up, and what came back.

- The whole attempt (resolving, connecting, sending, reading) has one deadline, ``timeout`` seconds.
- The name is resolved and every address checked at call time (appliance.services.outbound.guard), and the
  connection made to the checked address, so a DNS answer that changed since registration cannot point us
  into the appliance's own network.
- Redirects are not followed: a 3xx is a failed attempt (following one would reach an unchecked address).
- At most ``max_response_bytes`` of the answer are read, undecoded (``accept-encoding: identity``; a
  compressed body could expand without bound); the rest is not waited for.
- Success is the status alone: a 2xx whose body was cut short still counts as received.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import email.utils
import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx

from appliance import __version__
from appliance.db.base import utcnow
from appliance.errors import InvalidInput
from appliance.services.outbound import guard as outbound
from appliance.services.outbound.clients import Clients

#: Characters of an answer kept in the delivery log.
EXCERPT_CHARS = 2000
USER_AGENT = f"ForgeAppliance-Webhooks/{__version__}"


@dataclass(frozen=True)
class Limits:
    timeout: float
    """Seconds for the whole attempt."""
    max_response_bytes: int
    policy: outbound.AddressPolicy


@dataclass(frozen=True)
class Answer:
    """What one attempt got: a status (None when no answer came), or why not."""

    status_code: int | None
    latency_ms: float
    error: str | None
    excerpt: str = ""
    retry_after: float | None = None
    """Seconds the receiver asked us to wait (Retry-After on a 429 or 503)."""

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


async def send(
    clients: Clients,
    url: str,
    headers: dict[str, str],
    body: bytes,
    limits: Limits,
    *,
    clock: Callable[[], float] = time.monotonic,
    now: Callable[[], dt.datetime] = utcnow,
) -> Answer:
    """POST ``body`` to ``url``; never raises for anything the receiver or the network does."""
    started = clock()
    error: str | None
    status: int | None
    try:
        target = outbound.parse(url)
    except InvalidInput as exc:
        status, got, data, error = None, httpx.Headers(), b"", exc.message
    else:
        status, got, data, error = await _exchange(clients, target, headers, body, limits)
    retry: float | None = None
    if error is None and status is not None:
        if 300 <= status < 400:
            location = got.get("location", "")[:200]
            error = f"redirects are not followed (Location: {location or 'none'})"
        elif not 200 <= status < 300:
            error = f"the receiver answered {status}"
            if status in (429, 503):
                retry = retry_after(got.get("retry-after"), now())
    # Text columns refuse NUL (PostgreSQL): a receiver's NUL must not make its attempt unrecordable.
    excerpt = data.decode("utf-8", errors="replace").replace("\x00", "\ufffd")[:EXCERPT_CHARS]
    return Answer(status, round((clock() - started) * 1000, 3), error, excerpt, retry)


async def _exchange(
    clients: Clients, target: outbound.Target, headers: dict[str, str], body: bytes, limits: Limits
) -> tuple[int | None, httpx.Headers, bytes, str | None]:
    """The status, headers and start of the body of the answer, or why there is none (or why the body
    broke off)."""
    response: httpx.Response | None = None
    data = b""
    try:
        async with asyncio.timeout(limits.timeout):
            address = await outbound.resolve(target, limits.policy)
            pinned_url, host, extensions = outbound.pinned(target, address)
            client = clients.for_target(target)
            request = client.build_request(
                "POST",
                pinned_url,
                content=body,
                headers={**headers, **host, "user-agent": USER_AGENT, "accept-encoding": "identity"},
                extensions=extensions,
                timeout=limits.timeout,
            )
            response = await client.send(request, stream=True)
            try:
                data = await _read(response, limits.max_response_bytes)
            finally:
                await response.aclose()
    except TimeoutError:
        if response is None:
            return None, httpx.Headers(), b"", f"no answer within {limits.timeout:g} s"
        # The status came: it decides (a 2xx was received), the cut is noted in the excerpt's place.
        return response.status_code, response.headers, data, None
    except outbound.OutboundRefused as exc:
        return None, httpx.Headers(), b"", str(exc)
    except httpx.HTTPError as exc:
        if response is None:
            return (
                None,
                httpx.Headers(),
                b"",
                f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__,
            )
        return response.status_code, response.headers, data, None
    return response.status_code, response.headers, data, None


async def _read(response: httpx.Response, limit: int) -> bytes:
    """Up to ``limit`` bytes of the body, as sent (not decompressed)."""
    if limit <= 0:
        return b""
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_raw():
        chunks.append(chunk)
        size += len(chunk)
        if size >= limit:
            break
    return b"".join(chunks)[:limit]


def retry_after(value: str | None, now: dt.datetime) -> float | None:
    """Seconds to wait from a Retry-After header (delay-seconds or an HTTP date); None if absent or bad."""
    if not value:
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return max(0.0, (when - now).total_seconds())
