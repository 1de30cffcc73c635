"""The address of the client behind a request, believing X-Forwarded-For only from trusted proxies."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from starlette.types import Scope

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(items: Sequence[str]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(item, strict=False) for item in items)


def in_networks(address: str, networks: Sequence[Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in net for net in networks)


def client_address(scope: Scope, trusted: Sequence[Network]) -> str:
    """The peer address, or the right-most untrusted hop of X-Forwarded-For when the peer is a proxy."""
    client = scope.get("client")
    peer: str = client[0] if client else ""
    if not trusted or not in_networks(peer, trusted):
        return peer
    for name, value in scope.get("headers", ()):
        if name == b"x-forwarded-for":
            header: str = value.decode("latin-1")
            hops = [h.strip() for h in header.split(",") if h.strip()]
            for hop in reversed(hops):
                if not in_networks(hop, trusted):
                    return hop
    return peer
