"""The outbound HTTP clients of one event loop (webhook deliveries, application probes).

Every outbound request goes to an address checked at call time (appliance.services.outbound) with the
target's name as its Host, SNI and certificate check. A connection pool is keyed on the address, so two
https names that share an address would share a TLS connection made for the first name: hence one client
for plain http, and one per host name for https, kept for the ``keep`` most recently used names.
Redirects are never followed and proxies from the environment never used (either would reach an address
that was not checked).
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict

import httpx

from appliance.services import outbound


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
    ):
        self._transport = transport
        self._keep = keep
        self._limits = httpx.Limits(max_connections=max_connections, max_keepalive_connections=keepalive)
        self._headers = headers or {}
        self._plain: httpx.AsyncClient | None = None
        self._tls: OrderedDict[str, httpx.AsyncClient] = OrderedDict()
        self._closing: set[asyncio.Task[None]] = set()

    def _new(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            transport=self._transport,
            follow_redirects=False,
            trust_env=False,
            limits=self._limits,
            headers=self._headers,
        )

    def for_target(self, target: outbound.Target) -> httpx.AsyncClient:
        if target.parts.scheme == "http":
            if self._plain is None:
                self._plain = self._new()
            return self._plain
        client = self._tls.pop(target.host, None) or self._new()
        self._tls[target.host] = client
        if len(self._tls) > self._keep:
            _, oldest = self._tls.popitem(last=False)
            task = asyncio.get_running_loop().create_task(oldest.aclose())
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)
        return client

    @property
    def tls_names(self) -> list[str]:
        """The https host names that have a client, least recently used first."""
        return list(self._tls)

    async def aclose(self) -> None:
        for client in [*([self._plain] if self._plain else []), *self._tls.values()]:
            await client.aclose()
        await asyncio.gather(*self._closing, return_exceptions=True)
        self._plain, self._tls = None, OrderedDict()

    async def __aenter__(self) -> Clients:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()
