"""HOST:PORT, read and written in one place."""

from __future__ import annotations

import pytest

from appliance import hostport


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("127.0.0.1:8080", ("127.0.0.1", 8080)),
        ("localhost:1", ("localhost", 1)),
        ("api.internal:65535", ("api.internal", 65535)),
        ("[::1]:9101", ("::1", 9101)),
        ("[fe80::1%eth0]:80", ("fe80::1%eth0", 80)),
        ("0.0.0.0:8000", ("0.0.0.0", 8000)),
    ],
)
def test_parse_reads_host_and_port(text: str, expected: tuple[str, int]) -> None:
    assert hostport.parse(text) == expected
    assert hostport.parse(hostport.join(*expected)) == expected


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("127.0.0.1", "is not HOST:PORT"),
        (":8080", "is not HOST:PORT"),
        ("host:", "port must be a number from 1 to 65535"),
        ("host:0", "port must be a number from 1 to 65535"),
        ("host:65536", "port must be a number from 1 to 65535"),
        ("host:80a", "port must be a number from 1 to 65535"),
        ("host:\uff18\uff10", "port must be a number from 1 to 65535"),
        ("::1:8080", "ambiguous: write an IPv6 host in brackets, e.g. [::1]:8080"),
        ("[::1]8080", "an IPv6 host goes in brackets"),
        ("[::1:8080", "an IPv6 host goes in brackets"),
        ("[example.com]:80", "an IPv6 host goes in brackets"),
        (" host:80", "is not HOST:PORT"),
    ],
)
def test_parse_refuses_what_is_not_host_port_naming_it(text: str, says: str) -> None:
    with pytest.raises(ValueError, match=r".*") as refused:
        hostport.parse(text)
    assert repr(text) in str(refused.value)
    assert says in str(refused.value)


def test_join_brackets_ipv6_and_reachable_turns_a_wildcard_into_loopback() -> None:
    assert hostport.join("::1", 80) == "[::1]:80"
    assert hostport.join("127.0.0.1", 80) == "127.0.0.1:80"
    assert hostport.reachable("0.0.0.0") == "127.0.0.1"
    assert hostport.reachable("::") == "127.0.0.1"
    assert hostport.reachable("10.0.0.5") == "10.0.0.5"
