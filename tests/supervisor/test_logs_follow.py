"""A log follower over a real socket pair: lines arrive whole and in order; a client too slow is dropped."""

from __future__ import annotations

import contextlib
import json
import selectors
import socket

from appliance.supervisor.logfollow import Follower


def pump(selector: selectors.BaseSelector) -> None:
    for key, mask in selector.select(0.05):
        key.data(mask)


def test_a_slow_follower_is_dropped_with_a_final_notice_after_whole_lines() -> None:
    ours, theirs = socket.socketpair()
    closed: list[Follower] = []
    with selectors.DefaultSelector() as selector, theirs:
        follower = Follower(ours, selector, closed.append, limit=64 * 1024)
        sent = 0
        while follower.send({"line": f"{sent:08d} " + "z" * 200}):  # the client reads nothing meanwhile
            sent += 1
        received = b""
        theirs.setblocking(False)
        while not closed:
            pump(selector)
            with contextlib.suppress(BlockingIOError):
                received += theirs.recv(1 << 16)
        theirs.setblocking(True)
        while chunk := theirs.recv(1 << 16):
            received += chunk
    *lines, notice = [json.loads(line) for line in received.splitlines()]
    assert [int(m["line"][:8]) for m in lines] == list(range(len(lines)))  # whole lines, in order
    assert 0 < len(lines) <= sent
    assert notice["ok"] is False
    assert notice["error"].startswith("dropped")


def test_a_follower_that_hangs_up_is_closed() -> None:
    ours, theirs = socket.socketpair()
    closed: list[Follower] = []
    with selectors.DefaultSelector() as selector:
        follower = Follower(ours, selector, closed.append)
        assert follower.send({"line": "one"})
        theirs.close()
        while not closed:
            pump(selector)
        assert not follower.send({"line": "two"})
