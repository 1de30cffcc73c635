"""`HOST:PORT`: the one reader and writer of a network address, for the services file, the supervisor's
metrics endpoint, the settings and the client. Standard library only: the supervisor imports it.

An IPv6 host is written in brackets (`[::1]:8080`), as in a URL; without them `::1:8080` would be ambiguous,
so it is refused rather than guessed at."""

from __future__ import annotations

import ipaddress

#: Hosts that mean "every interface" when listening; a client on the same machine reaches them on loopback.
WILDCARDS = frozenset({"0.0.0.0", "::", ""})  # noqa: S104  (names the wildcard, binds nothing)


def parse(text: str) -> tuple[str, int]:
    """``(host, port)`` from ``HOST:PORT`` (an IPv6 host in brackets, which are dropped); ValueError naming
    ``text`` if it is not one, or if the port is not 1 to 65535."""
    if text.startswith("["):
        host, closed, rest = text[1:].partition("]")
        sep, port = rest[:1], rest[1:]
        if not closed or sep != ":" or not _is_ipv6(host):
            raise ValueError(f"{text!r} is not HOST:PORT (an IPv6 host goes in brackets: [::1]:8080)")
    else:
        host, sep, port = text.rpartition(":")
        if ":" in host:
            raise ValueError(f"{text!r} is ambiguous: write an IPv6 host in brackets, e.g. [{host}]:{port}")
    if not sep or not host or host != host.strip():
        raise ValueError(f"{text!r} is not HOST:PORT (e.g. 127.0.0.1:8080)")
    if not port.isascii() or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ValueError(f"{text!r}: the port must be a number from 1 to 65535")
    return host, int(port)


def join(host: str, port: int) -> str:
    """``HOST:PORT`` again, with an IPv6 host in brackets."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def reachable(host: str) -> str:
    """The host a client on this machine connects to for a server listening on ``host``: loopback for a
    wildcard, the host itself otherwise."""
    return "127.0.0.1" if host in WILDCARDS else host


def _is_ipv6(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).version == 6
    except ValueError:
        return False
