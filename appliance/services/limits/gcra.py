"""GCRA, the generic cell rate algorithm both limiters run (the in-process one here in Python, the Redis one
in Lua): what one request costs and what one step of a bucket decides."""

from __future__ import annotations

from dataclasses import dataclass

MICROS = 1_000_000


@dataclass(frozen=True)
class Decision:
    """The answer for one request against one bucket: what the X-RateLimit-* headers and a 429 say."""

    allowed: bool
    limit: int
    remaining: int
    """Requests that could still be made now, after this one."""
    reset_after: float
    """Seconds until the bucket is full again (X-RateLimit-Reset)."""
    retry_after: float
    """Seconds until this request would be allowed (Retry-After); 0 when allowed."""


def emission_interval(limit: int, period: float, cost: int) -> int:
    """Microseconds each request costs; validates the arguments both backends receive."""
    if isinstance(limit, bool) or limit < 1:
        raise ValueError(f"limit must be a positive integer, got {limit!r}")
    if not period > 0:
        raise ValueError(f"period must be positive, got {period!r}")
    if not 0 <= cost <= limit:
        raise ValueError(f"cost must be between 0 and the limit {limit}, got {cost!r}")
    return max(1, round(period * MICROS / limit))


def gcra(tat: int | None, now: int, interval: int, limit: int, cost: int) -> tuple[int | None, Decision]:
    """One GCRA step in microseconds: the TAT to store (None: store nothing) and the decision.

    ``redis_limiter.SCRIPT`` is the same computation in Lua; the tests run both backends alike.
    """
    window = interval * limit
    base = now if tat is None or tat < now else tat
    charged = base + max(cost, 1) * interval  # a peek asks about one more request
    allowed = charged - now <= window
    stored = charged if allowed and cost > 0 else None
    spent = base if stored is None else stored
    retry = 0 if allowed else charged - window - now
    # max(0, ...): a limit lowered at run time can leave a TAT a few microseconds past the new window.
    remaining = max(0, (now + window - spent) // interval)
    return stored, Decision(allowed, limit, remaining, (spent - now) / MICROS, retry / MICROS)
