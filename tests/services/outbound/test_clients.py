"""The outbound clients (appliance.services.outbound.clients) against a real loopback receiver: requests go
out over the lanes in turn, each lane keeping its connection alive; lanes do not bound the requests in flight;
https names get lanes of their own, and the least recently used name's are closed past ``keep``."""

from __future__ import annotations

import asyncio

from appliance.services.outbound import guard as outbound
from appliance.services.outbound.clients import Clients
from tests.receivers import Receiver, Reply


async def _post(clients: Clients, url: str) -> int:
    target = outbound.parse(url)
    response = await clients.for_target(target).post(url, content=b"{}")
    return response.status_code


def test_requests_take_the_lanes_in_turn_each_over_its_kept_connection() -> None:
    async def sequential(lanes: int) -> list[int]:
        async with Clients(lanes=lanes) as clients:
            return [await _post(clients, receiver.url) for _ in range(9)]

    with Receiver() as receiver:
        assert asyncio.run(sequential(1)) == [204] * 9
        one = {got.peer for got in receiver.received}
        receiver.received.clear()
        assert asyncio.run(sequential(3)) == [204] * 9
        three = [got.peer for got in receiver.received]
    assert len(one) == 1
    assert len(set(three)) == 3
    assert three[:3] * 3 == three  # in turn, each lane reusing its own connection


def test_lanes_do_not_bound_the_requests_in_flight() -> None:
    async def burst() -> list[int]:
        async with Clients(lanes=3) as clients:
            return await asyncio.gather(*(_post(clients, receiver.url) for _ in range(12)))

    with Receiver(lambda _g, _n: Reply(204, delay=0.3)) as receiver:
        assert asyncio.run(burst()) == [204] * 12
        peers = {got.peer for got in receiver.received}
    assert len(peers) == 12  # twelve at once: a lane opens a connection when its own are busy


def test_https_names_get_lanes_of_their_own_and_the_oldest_are_closed() -> None:
    async def scenario() -> None:
        clients = Clients(lanes=2, keep=2)
        a = outbound.parse("https://a.example/hook")
        b = outbound.parse("https://b.example/hook")
        c = outbound.parse("https://c.example/hook")
        a1, a2, a3 = (clients.for_target(a) for _ in range(3))
        assert a1 is not a2
        assert a3 in (a1, a2)
        b1 = clients.for_target(b)
        assert b1 not in (a1, a2)
        clients.for_target(c)
        assert clients.tls_names == ["b.example", "c.example"]
        await asyncio.sleep(0)  # the closing of a's lanes runs
        await clients.aclose()
        assert a1.is_closed
        assert a2.is_closed
        assert b1.is_closed

    asyncio.run(scenario())
