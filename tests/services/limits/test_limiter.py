"""The rate limiter: GCRA buckets behave alike in memory and in a real Redis; the policy picks the bucket."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pydantic
import pytest
import redis

from appliance.config import Settings
from appliance.errors import InvalidInput, Unavailable
from appliance.services.identity.login_throttle import (
    LOGIN_PERIOD,
    account_key,
    login_blocked,
    login_failed,
    login_succeeded,
)
from appliance.services.limits.limiter import (
    LimitsHolder,
    MemoryRateLimiter,
    RateLimiter,
    RateLimits,
    build_limiter,
    check_request,
    limits_from_settings,
)
from appliance.services.limits.redis_limiter import RedisRateLimiter
from tests.servers import RedisServer


class FakeClock:
    def __init__(self) -> None:
        self.now = 10_000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Backend:
    limiter: RateLimiter
    advance: Callable[[float], None]
    """Let this many seconds pass: a fake clock in memory, a real sleep against Redis."""
    client: redis.Redis[bytes] | None = None


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
def backend(request: pytest.FixtureRequest) -> Iterator[Backend]:
    if request.param == "memory":
        clock = FakeClock()

        def advance(seconds: float) -> None:
            clock.now += seconds

        yield Backend(MemoryRateLimiter(clock), advance)
        return
    url: str = request.getfixturevalue("redis_url")
    client = redis.Redis.from_url(url)
    try:
        yield Backend(RedisRateLimiter(client), time.sleep, client)
    finally:
        client.close()


# --------------------------------------------------------------------------- the algorithm, both backends


def test_a_fresh_bucket_allows_a_burst_of_limit_then_denies(backend: Backend) -> None:
    limiter = backend.limiter
    remaining = [limiter.hit("k", 5, 60).remaining for _ in range(5)]
    assert remaining == [4, 3, 2, 1, 0]
    denied = limiter.hit("k", 5, 60)
    assert not denied.allowed
    assert denied.limit == 5
    assert denied.remaining == 0
    assert 0 < denied.retry_after <= 12  # one request refills every 60/5 seconds
    assert 55 < denied.reset_after <= 60


@pytest.mark.parametrize("limit", [7, 9, 13])
def test_the_burst_is_exact_when_period_over_limit_is_not_whole(backend: Backend, limit: int) -> None:
    allowed = sum(backend.limiter.hit("k", limit, 60).allowed for _ in range(limit + 3))
    assert allowed == limit


def test_the_bucket_refills_smoothly(backend: Backend) -> None:
    limiter = backend.limiter
    for _ in range(4):
        assert limiter.hit("k", 4, 2).allowed
    denied = limiter.hit("k", 4, 2)
    assert not denied.allowed
    backend.advance(denied.retry_after + 0.05)
    assert limiter.hit("k", 4, 2).allowed  # Retry-After told the truth
    assert not limiter.hit("k", 4, 2).allowed  # one request refilled, not the whole window
    full_in = limiter.hit("k", 4, 2, cost=0).reset_after
    backend.advance(full_in + 0.05)
    assert sum(limiter.hit("k", 4, 2).allowed for _ in range(6)) == 4


def test_a_denied_request_costs_nothing(backend: Backend) -> None:
    limiter = backend.limiter
    for _ in range(3):
        limiter.hit("k", 3, 2)
    first = limiter.hit("k", 3, 2)
    for _ in range(20):
        limiter.hit("k", 3, 2)
    backend.advance(first.retry_after + 0.05)
    assert limiter.hit("k", 3, 2).allowed  # hammering while denied did not push the wait out


def test_a_peek_changes_nothing(backend: Backend) -> None:
    limiter = backend.limiter
    fresh = limiter.hit("k", 5, 60, cost=0)
    assert (fresh.allowed, fresh.remaining, fresh.reset_after, fresh.retry_after) == (True, 5, 0, 0)
    for _ in range(10):
        limiter.hit("k", 5, 60, cost=0)
    for _ in range(3):
        limiter.hit("k", 5, 60)
    assert [limiter.hit("k", 5, 60, cost=0).remaining for _ in range(3)] == [2, 2, 2]
    assert limiter.hit("k", 5, 60).remaining == 1
    limiter.hit("k", 5, 60)
    empty = limiter.hit("k", 5, 60, cost=0)
    assert not empty.allowed  # a peek answers for one more request
    assert empty.retry_after > 0
    if backend.client is not None:
        limiter.hit("never-hit", 5, 60, cost=0)
        assert backend.client.exists("appliance:rl:never-hit") == 0


def test_a_request_may_cost_more_than_one(backend: Backend) -> None:
    limiter = backend.limiter
    assert limiter.hit("k", 10, 60, cost=7).remaining == 3
    big = limiter.hit("k", 10, 60, cost=4)
    assert not big.allowed
    assert big.remaining == 3  # the smaller requests still fit
    with pytest.raises(ValueError, match="cost must be between 0 and the limit 10"):
        limiter.hit("k", 10, 60, cost=11)


def test_keys_are_independent_and_reset_forgets_one(backend: Backend) -> None:
    limiter = backend.limiter
    for _ in range(2):
        limiter.hit("a", 2, 60)
    assert not limiter.hit("a", 2, 60).allowed
    assert limiter.hit("b", 2, 60).remaining == 1
    limiter.reset("a")
    limiter.reset("no-such-bucket")
    assert limiter.hit("a", 2, 60).remaining == 1
    assert limiter.hit("b", 2, 60).remaining == 0


def test_a_limit_changed_at_run_time_applies_to_the_existing_bucket(backend: Backend) -> None:
    limiter = backend.limiter
    for _ in range(5):
        limiter.hit("k", 10, 60)  # half the minute's budget spent
    assert limiter.hit("k", 20, 60).remaining == 9  # half of the new budget, less this request
    lowered = limiter.hit("k", 1, 60)  # more than a single request's share is already spent
    assert (lowered.allowed, lowered.remaining) == (False, 0)


def test_concurrent_hits_never_overshoot(backend: Backend) -> None:
    limiter = backend.limiter
    allowed: list[bool] = []
    lock = threading.Lock()
    start = threading.Barrier(20)

    def client() -> None:
        start.wait()
        results = [limiter.hit("shared", 50, 60).allowed for _ in range(10)]
        with lock:
            allowed.extend(results)

    threads = [threading.Thread(target=client) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(allowed) == 200
    assert sum(allowed) == 50


def test_redis_keys_expire_when_the_bucket_is_full_again(redis_url: str) -> None:
    with redis.Redis.from_url(redis_url) as client:
        limiter = RedisRateLimiter(client, prefix="t:")
        limiter.hit("k", 10, 60)
        assert 5_900 <= client.pttl("t:k") <= 6_000  # one request's worth of the minute
        for _ in range(9):
            limiter.hit("k", 10, 60)
        assert 59_000 <= client.pttl("t:k") <= 60_000
        assert client.keys("*") == [b"t:k"]


# --------------------------------------------------------------------------- the policy


def test_check_request_picks_the_bucket_and_the_plan_tier(backend: Backend) -> None:
    limits = RateLimits(tiers={"free": 3, "enterprise": 50}, per_ip=1000)
    limiter = backend.limiter
    anonymous = check_request(limiter, limits, ip="192.0.2.1", principal=None, tenant_id=None, plan=None)
    assert (anonymous.limit, anonymous.remaining) == (1000, 999)
    free = check_request(limiter, limits, ip="192.0.2.1", principal="u1", tenant_id="t1", plan="free")
    assert (free.limit, free.remaining) == (3, 2)
    big = check_request(limiter, limits, ip="192.0.2.2", principal="u2", tenant_id="t2", plan="enterprise")
    assert (big.limit, big.remaining) == (50, 49)
    for plan in ("platinum", None):
        unknown = check_request(
            limiter, limits, ip="192.0.2.3", principal=None, tenant_id=f"t-{plan}", plan=plan
        )
        assert unknown.limit == 3
    team = check_request(limiter, limits, ip="192.0.2.4", principal=None, tenant_id="t3", plan="team")
    assert team.limit == 300  # a tier not overridden keeps its default


def test_a_denial_stops_before_the_later_buckets(backend: Backend) -> None:
    limits = RateLimits(tiers={"free": 10}, per_principal=2, per_ip=100)
    limiter = backend.limiter

    def request(principal: str) -> Any:
        return check_request(limiter, limits, ip="192.0.2.9", principal=principal, tenant_id="t", plan="free")

    assert [request("alice").allowed for _ in range(3)] == [True, True, False]
    denied = request("alice")
    assert (denied.limit, denied.remaining) == (2, 0)  # the principal's bucket said no
    assert limiter.hit("ip:192.0.2.9", 100, 60, cost=0).remaining == 96  # the IP paid for all four
    assert limiter.hit("tenant:t", 10, 60, cost=0).remaining == 8  # the tenant only for the two allowed
    assert request("bob").allowed  # another key of the same tenant has its own budget


def test_the_tenant_budget_is_shared_by_its_principals(backend: Backend) -> None:
    limits = RateLimits(tiers={"team": 3}, per_principal=100)
    limiter = backend.limiter

    def request(principal: str) -> Any:
        return check_request(limiter, limits, ip="192.0.2.7", principal=principal, tenant_id="t", plan="team")

    assert request("alice").remaining == 2
    assert request("key-1").remaining == 1
    assert request("bob").remaining == 0
    denied = request("carol")
    assert (denied.allowed, denied.limit) == (False, 3)
    assert denied.retry_after > 0


def test_failed_logins_block_the_account_then_the_ip(backend: Backend) -> None:
    limits = RateLimits(login_failures_per_account=3, login_failures_per_ip=5)
    limiter = backend.limiter
    assert login_blocked(limiter, limits, email="alice@example.com", ip="198.51.100.1") is None
    for _ in range(3):
        login_failed(limiter, limits, email="Alice@Example.com", ip="198.51.100.1")
    blocked = login_blocked(limiter, limits, email=" alice@example.COM", ip="198.51.100.2")
    assert blocked is not None
    assert blocked.limit == 3
    assert 0 < blocked.retry_after <= LOGIN_PERIOD / 3
    for _ in range(2):
        login_failed(limiter, limits, email="bob@example.com", ip="198.51.100.1")
    by_ip = login_blocked(limiter, limits, email="carol@example.com", ip="198.51.100.1")
    assert by_ip is not None
    assert by_ip.limit == 5
    assert login_blocked(limiter, limits, email="carol@example.com", ip="198.51.100.3") is None
    login_succeeded(limiter, email="ALICE@example.com")
    assert login_blocked(limiter, limits, email="alice@example.com", ip="198.51.100.2") is None
    assert login_blocked(limiter, limits, email="alice@example.com", ip="198.51.100.1") is not None
    if backend.client is not None:
        keys = b" ".join(backend.client.keys("*"))
        assert b"alice" not in keys.lower()
        assert b"example" not in keys.lower()


def test_account_keys_are_normalized_hashes() -> None:
    key = account_key("Alice@Example.com ")
    assert key == account_key("alice@example.com")
    assert key != account_key("alice@example.org")
    assert "alice" not in key
    assert len(key.removeprefix("login:account:")) == 32


# --------------------------------------------------------------------------- validation and settings


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (
            {"tiers": {"platinum": 5}},
            r"'tiers\.platinum': no such plan tier \(known: free, team, business, enterprise\)",
        ),
        ({"tiers": {"free": 0}}, r"'tiers\.free' must be a positive integer, got 0"),
        ({"tiers": {"team": "many"}}, r"'tiers\.team' must be a positive integer, got 'many'"),
        ({"tiers": 60}, r"'tiers' must map plan names to limits, got 60"),
        ({"per_ip": -1}, r"'per_ip' must be a positive integer, got -1"),
        ({"per_ip": 1.5}, r"'per_ip' must be a positive integer, got 1\.5"),
        ({"per_principal": True}, r"'per_principal' must be a positive integer, got True"),
        ({"login_failures_per_account": 0}, r"'login_failures_per_account' must be a positive integer"),
        ({"period": 0}, r"'period' must be a positive number of seconds, got 0"),
        ({"colour": 1}, r"unknown rate limit setting 'colour' \(allowed: tiers, per_principal, per_ip"),
    ],
)
def test_bad_limits_name_the_key_and_value(data: dict[str, Any], expected: str) -> None:
    with pytest.raises(InvalidInput, match=expected) as info:
        RateLimits.from_mapping(data)
    assert info.value.details["key"] in str(info.value)


def test_limits_round_trip_and_merge_overrides() -> None:
    limits = RateLimits.from_mapping({"tiers": {"team": 400}, "per_ip": 10})
    assert dict(limits.tiers) == {"free": 60, "team": 400, "business": 1000, "enterprise": 5000}
    assert RateLimits.from_mapping(limits.to_mapping()) == limits
    merged = limits.merge({"tiers": {"free": 5}, "per_principal": 20})
    assert dict(merged.tiers) == {"free": 5, "team": 400, "business": 1000, "enterprise": 5000}
    assert (merged.per_principal, merged.per_ip) == (20, 10)
    assert merged.merge({"per_principal": None}).per_principal is None
    with pytest.raises(InvalidInput, match=r"'tiers\.business'"):
        merged.merge({"tiers": {"business": 0}})
    assert limits.tiers["free"] == 60  # the original is untouched
    with pytest.raises(TypeError):
        limits.tiers["free"] = 1  # type: ignore[index]


def test_limits_come_from_the_settings_section(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, rate_limits={"team": 400, "per_principal": 50, "per_ip": 7})
    limits = limits_from_settings(settings.rate_limits)
    assert limits.tiers["team"] == 400
    assert limits.tiers["free"] == 60
    assert (limits.per_principal, limits.per_ip, limits.period) == (50, 7, 60)
    assert limits.login_failures_per_account == 10
    with pytest.raises(pydantic.ValidationError, match="greater than or equal to 1"):
        Settings(data_dir=tmp_path, rate_limits={"free": 0})
    with pytest.raises(pydantic.ValidationError, match="not a Redis URL"):
        Settings(data_dir=tmp_path, rate_limits={"url": "sqlite:///x"})


def test_the_limiter_follows_the_queue_redis_unless_told(tmp_path: Path) -> None:
    assert Settings(data_dir=tmp_path).rate_limit_url is None
    on_redis = Settings(data_dir=tmp_path, queue={"url": "redis://cache:6379/0"})
    assert on_redis.rate_limit_url == "redis://cache:6379/0"
    own = Settings(
        data_dir=tmp_path, queue={"url": "redis://cache:6379/0"}, rate_limits={"url": "redis://rl:6379/2"}
    )
    assert own.rate_limit_url == "redis://rl:6379/2"


# --------------------------------------------------------------------------- building, failure, bounds


def test_build_limiter_picks_the_backend(redis_server: RedisServer) -> None:
    assert isinstance(build_limiter(None), MemoryRateLimiter)
    assert isinstance(build_limiter("sqlite:///tmp/queue.db"), MemoryRateLimiter)
    for url in (redis_server.url, redis_server.unix_url):
        limiter = build_limiter(url, prefix="build:")
        try:
            assert isinstance(limiter, RedisRateLimiter)
            assert limiter.hit(url, 2, 60).remaining == 1
        finally:
            limiter.close()


def test_a_redis_that_is_down_raises_unavailable(own_redis_server: RedisServer) -> None:
    limiter = build_limiter(own_redis_server.url)
    try:
        assert limiter.hit("k", 5, 60).allowed
        own_redis_server.stop()
        with pytest.raises(Unavailable, match=r"the rate limiter's Redis is unavailable \(.*\)") as info:
            limiter.hit("k", 5, 60)
        assert isinstance(info.value.__cause__, redis.ConnectionError)
        with pytest.raises(Unavailable, match="rate limiter's Redis"):
            limiter.reset("k")
        own_redis_server.start()
        assert limiter.hit("k", 5, 60).remaining == 4  # back, with nothing remembered (no persistence)
    finally:
        limiter.close()


def test_the_memory_limiter_stays_bounded_and_evicts_the_nearly_full_first() -> None:
    clock = FakeClock()
    limiter = MemoryRateLimiter(clock, max_keys=100)
    for _ in range(2):
        limiter.hit("abuser", 2, 60)
    for n in range(1_000):
        limiter.hit(f"ip:{n}", 1000, 60)
        assert len(limiter) <= 100
    assert not limiter.hit("abuser", 2, 60).allowed  # the throttled bucket survived the flood
    n = 0
    while len(limiter) < 100:
        n += 1
        limiter.hit(f"more:{n}", 1000, 60)
    clock.now += 61
    limiter.hit("late", 1000, 60)
    assert len(limiter) == 1  # once full, every expired bucket goes at once


def test_the_holder_swaps_limits_and_paces_refreshes() -> None:
    holder = LimitsHolder(RateLimits(), refresh_interval=5)
    new = RateLimits(per_ip=10)
    holder.replace(new)
    assert holder.current() is new
    assert holder.refresh_due(100.0)
    assert not holder.refresh_due(101.0)  # someone else is refreshing
    holder.refreshed(102.0)
    assert not holder.refresh_due(106.9)
    assert holder.refresh_due(107.0)
    assert holder.refresh_due(112.0)  # a refresh that never reported is retried an interval later


def test_a_requests_buckets_are_hit_together_and_never_overshoot(backend: Backend) -> None:
    limiter = backend.limiter
    outcomes: list[list[bool]] = []
    lock = threading.Lock()
    start = threading.Barrier(10)

    def client() -> None:
        start.wait()
        for _ in range(10):
            decisions = limiter.hit_many([("many:ip", 1000), ("many:tenant", 30)], 60)
            with lock:
                outcomes.append([d.allowed for d in decisions])

    threads = [threading.Thread(target=client) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(outcomes) == 100
    assert sum(1 for o in outcomes if o == [True, True]) == 30
    assert all(o in ([True, True], [True, False]) for o in outcomes)
    assert limiter.hit("many:ip", 1000, 60, cost=0).remaining == 900  # charged once per request
    refused = limiter.hit_many([("many:tenant", 30), ("many:after", 5)], 60)
    assert [d.allowed for d in refused] == [False]  # stops at the refusal: "many:after" is not charged
    assert limiter.hit("many:after", 5, 60, cost=0).remaining == 5
