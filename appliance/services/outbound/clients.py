"""The outbound HTTP clients of one event loop (webhook deliveries, application probes).

Every outbound request goes to an address checked at call time (appliance.services.outbound.guard) with the
target's name as its Host, SNI and certificate check. A connection pool is keyed on the address, so two
https names that share an address would share a TLS connection made for the first name: hence one client
for plain http, and one per host name for https, kept for the ``keep`` most recently used names.
Redirects are never followed and proxies from the environment never used (either would reach an address
that was not checked).

Each of those may be ``lanes`` clients taken in turn. httpcore looks at every connection of a client's pool
twice a request (an idle one with a system call, to see whether its server closed it), so one client
holding the 50 connections of 50 requests in flight to one receiver spends more CPU on that walk than on
the request itself; spread over lanes of a few connections each, the walk is short (webhook deliveries:
tests/bench/RESULTS.md, issue 15). Requests in flight are bounded by the caller (``webhooks.concurrency``),
not by the lanes: a lane opens a connection when its own are busy.
"""

from __future__ import annotations

import asyncio
import ssl
from collections import OrderedDict

import httpx

from appliance.services.outbound import guard as outbound


class Clients:
    """``clients.for_target(target)`` is the client to send a request for ``target`` with."""

    def __init__(
        self,
        transport: httpx.AsyncBaseTransport | None = None,
        *,
        keep: int = 100,
        max_connections: int | None = None,
        keepalive: int = 200,
        headers: dict[str, str] | None = None,
        lanes: int = 1,
    ):
        self._transport = transport
        self._keep = keep
        self._limits = httpx.Limits(max_connections=max_connections, max_keepalive_connections=keepalive)
        self._headers = headers or {}
        self._lanes = max(1, lanes)
        self._turn = 0
        self._plain: list[httpx.AsyncClient] = []
        self._tls: OrderedDict[str, list[httpx.AsyncClient]] = OrderedDict()
        self._closing: set[asyncio.Task[None]] = set()
        self._tls_context: ssl.SSLContext | None = None

    def _new(self) -> httpx.AsyncClient:
        if self._tls_context is None:
            # One for every client: making one loads the CA bundle (35 ms of CPU, on the event loop).
            self._tls_context = httpx.create_ssl_context(trust_env=False)
        return httpx.AsyncClient(
            transport=self._transport,
            verify=self._tls_context,
            follow_redirects=False,
            trust_env=False,
            limits=self._limits,
            headers=self._headers,
        )

    def _next_of(self, lanes: list[httpx.AsyncClient]) -> httpx.AsyncClient:
        """The next lane in turn (made when first needed)."""
        index = self._turn % self._lanes
        self._turn += 1
        while len(lanes) <= index:
            lanes.append(self._new())
        return lanes[index]

    def for_target(self, target: outbound.Target) -> httpx.AsyncClient:
        if target.parts.scheme == "http":
            return self._next_of(self._plain)
        lanes = self._tls.pop(target.host, None) or []
        self._tls[target.host] = lanes
        if len(self._tls) > self._keep:
            _, oldest = self._tls.popitem(last=False)
            for client in oldest:
                task = asyncio.get_running_loop().create_task(client.aclose())
                self._closing.add(task)
                task.add_done_callback(self._closing.discard)
        return self._next_of(lanes)

    @property
    def tls_names(self) -> list[str]:
        """The https host names that have a client, least recently used first."""
        return list(self._tls)

    async def aclose(self) -> None:
        for client in [*self._plain, *(c for lanes in self._tls.values() for c in lanes)]:
            await client.aclose()
        await asyncio.gather(*self._closing, return_exceptions=True)
        self._plain, self._tls = [], OrderedDict()

    async def __aenter__(self) -> Clients:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()
