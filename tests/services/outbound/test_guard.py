"""Which addresses outbound calls may reach, and how a refusal reads: one sentence naming the address, what
kind it is, and the setting that would allow it."""

from __future__ import annotations

import asyncio
import ipaddress
import re

import pytest

from appliance.errors import InvalidInput
from appliance.services.outbound import guard as outbound

SETTING = "which the appliance calls only when the setting outbound.allow_networks includes it"


@pytest.mark.parametrize(
    ("url", "sentence"),
    [
        ("http://127.0.0.1:8080/hook", f"127.0.0.1 is a loopback address, {SETTING}"),
        ("http://[::ffff:10.1.2.3]/hook", f"10.1.2.3 is a private address, {SETTING}"),
        ("http://169.254.169.254/latest", f"169.254.169.254 is a link-local address, {SETTING}"),
    ],
)
def test_a_refused_address_is_one_sentence_naming_the_setting(url: str, sentence: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        outbound.check_url(url, outbound.AddressPolicy())
    assert refused.value.message == f"The URL {url!r} is not allowed: {sentence}."
    assert refused.value.details["fields"] == [{"loc": ["body", "url"], "msg": sentence}]

    target = outbound.parse(url)
    with pytest.raises(outbound.OutboundRefused) as at_call:
        asyncio.run(outbound.resolve(target, outbound.AddressPolicy()))
    assert str(at_call.value) == f"refused: {sentence}"


def test_a_name_is_refused_naming_the_address_it_resolves_to() -> None:
    with pytest.raises(InvalidInput) as refused:
        outbound.check_url("http://localhost:8080/hook", outbound.AddressPolicy())
    # 127.0.0.1 or ::1, whichever the resolver gives first
    assert re.fullmatch(
        rf"The URL 'http://localhost:8080/hook' is not allowed: localhost resolves to (127\.0\.0\.1|::1), "
        rf"a loopback address, {SETTING}\.",
        refused.value.message,
    ), refused.value.message


def test_an_allowed_network_is_reached() -> None:
    policy = outbound.AddressPolicy.of(["127.0.0.0/8"])
    assert outbound.check_url("http://127.0.0.1:8080/hook", policy).host == "127.0.0.1"
    target = outbound.parse("http://127.0.0.1:8080/hook")
    assert asyncio.run(outbound.resolve(target, policy)) == ipaddress.ip_address("127.0.0.1")
