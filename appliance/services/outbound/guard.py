"""Calls out to addresses tenants give us (webhook endpoints, monitored applications), made safe.

A tenant must not be able to make the appliance reach into its own network (server-side request forgery):
the appliance's database, Redis, the cloud metadata address, a router's admin page. So a URL is checked
twice: when it is registered (:func:`check_url`: scheme, length, and a literal or resolved address that is
refused gives a 422 naming the reason), and when it is called (:func:`resolve`: the name is resolved once,
every address checked, and the connection made to the checked address, with the original host name in the
``Host`` header and for TLS's SNI and certificate check: :func:`pinned`). Checking at registration alone
would be undone by a DNS answer that changes later (rebinding).

Refused unless allowed by ``outbound.allow_networks``: loopback, private (RFC 1918, unique local),
link-local (169.254/16 holds cloud metadata), shared (100.64/10), multicast, reserved and unspecified
addresses, and IPv4-mapped IPv6 forms of them.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from urllib.parse import SplitResult, urlsplit, urlunsplit

from appliance.errors import InvalidInput

MAX_URL_LENGTH = 2048

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class OutboundRefused(Exception):
    """A call that must not be made, or that cannot be: the reason is for the delivery log or the check."""


@dataclass(frozen=True)
class AddressPolicy:
    """Which addresses calls may reach: every public one, plus the networks an operator allowed."""

    allow_networks: tuple[IPNetwork, ...] = field(default_factory=tuple)

    @classmethod
    def of(cls, networks: Iterable[str]) -> AddressPolicy:
        return cls(tuple(ipaddress.ip_network(n, strict=False) for n in networks))

    def refusal(self, address: IPAddress, host: str | None = None) -> str | None:
        """Why ``address`` (that ``host`` resolves to, when it is a name) may not be reached, as a sentence
        that names the setting allowing it, or None when it may."""
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        if any(address in network for network in self.allow_networks):
            return None
        kind = _refused_kind(address)
        if kind is None:
            return None
        what = (
            f"{address} is a {kind} address"
            if host is None
            else f"{host} resolves to {address}, a {kind} address"
        )
        return f"{what}, which the appliance calls only when the setting outbound.allow_networks includes it"


_SHARED = ipaddress.ip_network("100.64.0.0/10")


def _refused_kind(address: IPAddress) -> str | None:
    kinds = (
        ("loopback", address.is_loopback),
        ("link-local", address.is_link_local),
        ("multicast", address.is_multicast),
        ("unspecified", address.is_unspecified),
        ("shared (carrier-grade NAT)", isinstance(address, ipaddress.IPv4Address) and address in _SHARED),
        ("private", address.is_private),
        ("reserved", address.is_reserved or not address.is_global),
    )
    return next((kind for kind, applies in kinds if applies), None)


@dataclass(frozen=True)
class Target:
    """A checked URL: its parts, and the port it connects to."""

    url: str
    parts: SplitResult
    host: str
    port: int


def check_url(
    url: str, policy: AddressPolicy, *, field_name: str = "url", resolve_names: bool = True
) -> Target:
    """The URL as a :class:`Target`, or InvalidInput (code INVALID_URL) naming what is wrong with it.

    A host name is resolved here when ``resolve_names``: a name whose addresses include a refused one is
    refused now (a name that does not resolve yet is accepted; the call will say so)."""
    target = parse(url, field_name=field_name)
    literal = _literal(target.host)
    addresses: list[IPAddress] = [literal] if literal is not None else []
    if literal is None and resolve_names:
        try:
            addresses = _addresses(socket.getaddrinfo(target.host, target.port, type=socket.SOCK_STREAM))
        except (OSError, UnicodeError):
            addresses = []
    for address in addresses:
        reason = policy.refusal(address, None if literal is not None else target.host)
        if reason is not None:
            raise _invalid(field_name, url, reason)
    return target


def parse(url: str, *, field_name: str = "url") -> Target:
    """The URL's parts, or InvalidInput naming what is wrong (scheme, length, host, port, credentials)."""
    if len(url) > MAX_URL_LENGTH:
        raise _invalid(field_name, url[:80] + "...", f"it is longer than {MAX_URL_LENGTH} characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise _invalid(field_name, url, str(exc)) from None
    if parts.scheme not in ("http", "https"):
        raise _invalid(field_name, url, "only http and https URLs are allowed")
    host = parts.hostname
    if not host:
        raise _invalid(field_name, url, "it has no host")
    if parts.username is not None or parts.password is not None:
        raise _invalid(field_name, url, "credentials in the URL are not allowed")
    if any(ch.isspace() for ch in url):
        raise _invalid(field_name, url, "it contains white space")
    return Target(url, parts, host, port or (443 if parts.scheme == "https" else 80))


async def resolve(target: Target, policy: AddressPolicy) -> IPAddress:
    """The address to connect to: the first of the host's addresses, all of which must be allowed.

    OutboundRefused when the name does not resolve or any address is refused (a name that answers with both
    a public and a private address is refused: which one a client would use is not ours to guess)."""
    literal = _literal(target.host)
    if literal is not None:
        addresses = [literal]
    else:
        loop = asyncio.get_running_loop()
        try:
            infos = await loop.getaddrinfo(target.host, target.port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError) as exc:
            raise OutboundRefused(f"{target.host} does not resolve ({_reason(exc)})") from None
        addresses = _addresses(infos)
        if not addresses:
            raise OutboundRefused(f"{target.host} does not resolve")
    for address in addresses:
        reason = policy.refusal(address, None if literal is not None else target.host)
        if reason is not None:
            raise OutboundRefused(f"refused: {reason}")
    return addresses[0]


def pinned(target: Target, address: IPAddress) -> tuple[str, dict[str, str], dict[str, str]]:
    """The URL to request (with the checked address in place of the name), the headers and the httpx
    extensions that keep the original name for the Host header, SNI and the certificate check."""
    ip = f"[{address}]" if isinstance(address, ipaddress.IPv6Address) else str(address)
    netloc = ip if target.parts.port is None else f"{ip}:{target.port}"
    url = urlunsplit((target.parts.scheme, netloc, target.parts.path or "/", target.parts.query, ""))
    host_header = target.parts.netloc.rsplit("@", 1)[-1]
    extensions = {"sni_hostname": target.host} if target.parts.scheme == "https" else {}
    return url, {"Host": host_header}, extensions


def _literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def _addresses(infos: Sequence[tuple[object, ...]]) -> list[IPAddress]:
    found: list[IPAddress] = []
    for info in infos:
        sockaddr = info[4]
        assert isinstance(sockaddr, tuple)
        address = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        if address not in found:
            found.append(address)
    return found


def _reason(exc: BaseException) -> str:
    return getattr(exc, "strerror", None) or str(exc) or type(exc).__name__


def _invalid(field_name: str, url: str, reason: str) -> InvalidInput:
    return InvalidInput(
        f"The URL {url!r} is not allowed: {reason}.",
        code="INVALID_URL",
        details={"fields": [{"loc": ["body", field_name], "msg": reason}], "url": url},
    )
