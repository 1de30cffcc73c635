"""Rate limits per client IP, per user or API key and per tenant plan, plus failed-login throttling.

The algorithm is GCRA (the generic cell rate algorithm of redis-cell and throttled): each bucket is one
number, its "theoretical arrival time" (TAT). A bucket of ``limit`` requests per ``period`` seconds admits
one request every ``interval = period / limit`` seconds and tolerates a burst of ``limit``: a request is
allowed when, after charging it, the TAT is at most ``period`` ahead of now. A fresh bucket therefore allows
``limit`` requests at once and then refills smoothly, with no burst at a window boundary. A denied request
changes nothing. Because the TAT is "how many seconds of budget are spent", a limit changed at run time
applies at once to the existing buckets.

Times are whole microseconds, so Python and the Redis Lua script (doubles, exact below 2**53) compute the
same numbers. Two backends implement :class:`RateLimiter`: :class:`MemoryRateLimiter` (one process, the
embedded appliance) and ``ratelimit_redis.RedisRateLimiter`` (shared by every API host; Redis server time).

A Redis failure raises :class:`appliance.errors.Unavailable`; the limiter never decides to fail open or
closed. The API fails open (it logs a warning and serves the request); login throttling may choose either.
"""

from __future__ import annotations

import heapq
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Protocol

from appliance.errors import InvalidInput
from appliance.services.limits.gcra import MICROS, Decision, emission_interval, gcra

if TYPE_CHECKING:
    from appliance.config import RateLimitSettings
    from appliance.services.limits.redis_limiter import AsyncRedisRateLimiter

#: Plan tiers and their default requests per minute per tenant.
DEFAULT_TIERS: Mapping[str, int] = MappingProxyType(
    {"free": 60, "team": 300, "business": 1000, "enterprise": 5000}
)
#: The tier of a tenant whose plan is unknown or unset.
FALLBACK_TIER = "free"
REDIS_SCHEMES = ("redis://", "rediss://", "unix://")


class RateLimiter(Protocol):
    """A store of GCRA buckets. ``cost=0`` is a peek: it answers for one more request and changes nothing."""

    def hit(self, key: str, limit: int, period: float, cost: int = 1) -> Decision: ...

    def hit_many(self, buckets: Sequence[tuple[str, int]], period: float, cost: int = 1) -> list[Decision]:
        """Hit ``(key, limit)`` buckets in order, up to and including the first refusal (the buckets after
        it are not charged): one round trip for a request's buckets."""

    def reset(self, key: str) -> None:
        """Forget the bucket: it is full again."""

    def close(self) -> None:
        """Release the connection pool, if any (at shutdown)."""


class MemoryRateLimiter:
    """Buckets in this process: thread-safe and bounded to ``max_keys`` buckets.

    A bucket whose TAT has passed is full, the same as no bucket, so it is dropped whenever the limiter is
    full; if that frees too little, the buckets nearest to full go first (a tenth at a time, so the sweep is
    rare). Evicting a bucket forgives what it had spent: the cap only matters under a flood of distinct keys.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic, *, max_keys: int = 100_000) -> None:
        if max_keys < 1:
            raise ValueError("max_keys must be at least 1")
        self._clock = clock
        self._max = max_keys
        self._tat: dict[str, int] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._tat)

    def hit(self, key: str, limit: int, period: float, cost: int = 1) -> Decision:
        interval = emission_interval(limit, period, cost)
        with self._lock:
            now = int(self._clock() * MICROS)
            stored, decision = gcra(self._tat.get(key), now, interval, limit, cost)
            if stored is not None:
                if key not in self._tat and len(self._tat) >= self._max:
                    self._make_room(now)
                self._tat[key] = stored
            return decision

    def hit_many(self, buckets: Sequence[tuple[str, int]], period: float, cost: int = 1) -> list[Decision]:
        decisions = []
        for key, limit in buckets:
            decisions.append(self.hit(key, limit, period, cost))
            if not decisions[-1].allowed:
                break
        return decisions

    def reset(self, key: str) -> None:
        with self._lock:
            self._tat.pop(key, None)

    def close(self) -> None:
        with self._lock:
            self._tat.clear()

    def _make_room(self, now: int) -> None:
        self._tat = {key: tat for key, tat in self._tat.items() if tat > now}
        excess = len(self._tat) - self._max + max(1, self._max // 10)
        if excess > 0:
            for key, _ in heapq.nsmallest(excess, self._tat.items(), key=lambda item: item[1]):
                del self._tat[key]


def build_limiter(url: str | None, *, prefix: str | None = None) -> RateLimiter:
    """A Redis limiter for a redis://, rediss:// or unix:// URL; an in-process one otherwise."""
    if url is None or not url.startswith(REDIS_SCHEMES):
        return MemoryRateLimiter()
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    from appliance.services.limits.redis_limiter import DEFAULT_PREFIX, RedisRateLimiter

    client = redis.Redis.from_url(
        url,
        socket_timeout=0.5,
        socket_connect_timeout=0.5,
        health_check_interval=30,
        # One quick retry covers a stale pooled connection; redis-py's default (10, with backoff) would hold
        # every request for seconds while Redis is down, before the API could fail open.
        retry=Retry(NoBackoff(), 1),
    )
    return RedisRateLimiter(client, prefix=DEFAULT_PREFIX if prefix is None else prefix)


def build_async_limiter(url: str | None, *, prefix: str | None = None) -> AsyncRedisRateLimiter | None:
    """The asyncio twin of a Redis limiter (same buckets, same script), for the API's event loop; None for
    an in-process limiter, which needs no I/O."""
    if url is None or not url.startswith(REDIS_SCHEMES):
        return None
    import redis.asyncio
    from redis.asyncio.retry import Retry
    from redis.backoff import NoBackoff

    from appliance.services.limits.redis_limiter import DEFAULT_PREFIX, AsyncRedisRateLimiter

    client = redis.asyncio.Redis.from_url(
        url,
        socket_timeout=0.5,
        socket_connect_timeout=0.5,
        health_check_interval=30,
        retry=Retry(NoBackoff(), 1),
    )
    return AsyncRedisRateLimiter(client, prefix=DEFAULT_PREFIX if prefix is None else prefix)


# --------------------------------------------------------------------------- policy


def _positive_int(key: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidInput(
            f"rate limit {key!r} must be a positive integer, got {value!r}",
            details={"key": key, "value": repr(value)},
        )
    return value


@dataclass(frozen=True)
class RateLimits:
    """Requests allowed per ``period`` seconds (60: per minute), and failed logins per 15 minutes."""

    tiers: Mapping[str, int] = field(default_factory=lambda: DEFAULT_TIERS)
    """Per tenant, by plan name; tiers left out keep their defaults."""
    per_principal: int | None = None
    """Per user or API key; None: the tenant's tier limit."""
    per_ip: int = 1200
    login_failures_per_account: int = 10
    login_failures_per_ip: int = 50
    period: float = 60.0

    def __post_init__(self) -> None:
        tiers = dict(DEFAULT_TIERS)
        for name, value in self.tiers.items():
            if name not in DEFAULT_TIERS:
                raise InvalidInput(
                    f"rate limit 'tiers.{name}': no such plan tier (known: {', '.join(DEFAULT_TIERS)})",
                    details={"key": f"tiers.{name}", "value": repr(value)},
                )
            tiers[name] = _positive_int(f"tiers.{name}", value)
        object.__setattr__(self, "tiers", MappingProxyType(tiers))
        if self.per_principal is not None:
            _positive_int("per_principal", self.per_principal)
        for key in ("per_ip", "login_failures_per_account", "login_failures_per_ip"):
            _positive_int(key, getattr(self, key))
        period = self.period
        if isinstance(period, bool) or not isinstance(period, int | float) or not period > 0:
            raise InvalidInput(
                f"rate limit 'period' must be a positive number of seconds, got {period!r}",
                details={"key": "period", "value": repr(period)},
            )

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> RateLimits:
        """Validated limits from plain data (an operator's JSON, a settings file); names the bad key."""
        allowed = [f.name for f in cls.__dataclass_fields__.values()]
        for key in data:
            if key not in allowed:
                raise InvalidInput(
                    f"unknown rate limit setting {key!r} (allowed: {', '.join(allowed)})",
                    details={"key": str(key)},
                )
        tiers = data.get("tiers", {})
        if not isinstance(tiers, Mapping):
            raise InvalidInput(
                f"rate limit 'tiers' must map plan names to limits, got {tiers!r}",
                details={"key": "tiers", "value": repr(tiers)},
            )
        return cls(**{**data, "tiers": tiers})

    def to_mapping(self) -> dict[str, Any]:
        """Plain data that :meth:`from_mapping` reads back."""
        return {
            "tiers": dict(self.tiers),
            "per_principal": self.per_principal,
            "per_ip": self.per_ip,
            "login_failures_per_account": self.login_failures_per_account,
            "login_failures_per_ip": self.login_failures_per_ip,
            "period": self.period,
        }

    def merge(self, overrides: Mapping[str, Any]) -> RateLimits:
        """New limits with an operator's partial overrides applied (``tiers`` merged plan by plan)."""
        data = self.to_mapping()
        for key, value in overrides.items():
            if key == "tiers" and isinstance(value, Mapping):
                data["tiers"] = {**data["tiers"], **value}
            else:
                data[key] = value
        return self.from_mapping(data)

    def tier_limit(self, plan: str | None) -> int:
        """The tenant limit of a plan; an unknown or missing plan gets the free tier's."""
        return self.tiers.get(plan or FALLBACK_TIER, self.tiers[FALLBACK_TIER])


def limits_from_settings(section: RateLimitSettings) -> RateLimits:
    """The limits configured in ``[rate_limits]``, before any operator override."""
    return RateLimits(
        tiers={name: getattr(section, name) for name in DEFAULT_TIERS},
        per_principal=section.per_principal,
        per_ip=section.per_ip,
        login_failures_per_account=section.login_failures_per_account,
        login_failures_per_ip=section.login_failures_per_ip,
    )


def check_request(
    limiter: RateLimiter,
    limits: RateLimits,
    *,
    ip: str,
    principal: str | None,
    tenant_id: str | None,
    plan: str | None,
) -> Decision:
    """Charge one request to its buckets and return the most constraining decision.

    Order: ``ip:<ip>``, then ``principal:<principal>`` (a user or API key id, never the secret), then
    ``tenant:<tenant_id>`` at the plan's tier. The first denial stops the walk: the buckets after it are not
    charged, those before it keep the charge (a client that ignores 429 still spends its IP budget). With
    all allowed, the decision with the fewest remaining requests wins (the one resetting later on a tie).
    """
    buckets = request_buckets(limits, ip=ip, principal=principal, tenant_id=tenant_id, plan=plan)
    return most_constraining(limiter.hit_many(buckets, limits.period))


def request_buckets(
    limits: RateLimits, *, ip: str, principal: str | None, tenant_id: str | None, plan: str | None
) -> list[tuple[str, int]]:
    """The buckets a request is charged to, in order (see check_request)."""
    tier = limits.tier_limit(plan)
    buckets = [(f"ip:{ip}", limits.per_ip)]
    if principal is not None:
        buckets.append((f"principal:{principal}", limits.per_principal or tier))
    if tenant_id is not None:
        buckets.append((f"tenant:{tenant_id}", tier))
    return buckets


def most_constraining(decisions: Sequence[Decision]) -> Decision:
    """The refusal, if the walk ended on one; else the decision with the fewest requests left."""
    if not decisions[-1].allowed:
        return decisions[-1]
    return min(decisions, key=lambda d: (d.remaining, -d.reset_after))


# --------------------------------------------------------------------------- run-time changes


class LimitsHolder:
    """The limits in force in this process, swapped whole when operators' overrides are re-read."""

    def __init__(self, limits: RateLimits, *, refresh_interval: float = 5.0) -> None:
        self._limits = limits
        self._interval = refresh_interval
        self._next_refresh: float | None = None
        self._lock = threading.Lock()

    def current(self) -> RateLimits:
        return self._limits  # one reference read: atomic, no lock on the hot path

    def replace(self, limits: RateLimits) -> None:
        self._limits = limits

    def stale(self, now: float) -> bool:
        """Whether a refresh is due, without claiming it (the caller decides where to run it)."""
        return self._next_refresh is None or now >= self._next_refresh

    def refresh_due(self, now: float) -> bool:
        """True for one caller per interval (others carry on meanwhile); it should re-read, then `refreshed`.

        A refresh that fails without calling `refreshed` is tried again an interval later.
        """
        with self._lock:
            if self._next_refresh is not None and now < self._next_refresh:
                return False
            self._next_refresh = now + self._interval
            return True

    def refreshed(self, now: float) -> None:
        with self._lock:
            self._next_refresh = now + self._interval
