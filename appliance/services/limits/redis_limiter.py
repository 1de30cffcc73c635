"""The rate limiter shared by every API host: GCRA buckets in Redis, one atomic Lua script per request.

Each bucket is one string key, ``<prefix><bucket>`` (``appliance:rl:ip:203.0.113.9``), holding the TAT in
microseconds of Redis server time, so hosts with skewed clocks agree. The key expires when the bucket is
full again, so idle buckets cost nothing. The script is `gcra.gcra` in Lua; every number is a whole
number of microseconds below 2**53, which Lua's doubles hold exactly. It calls TIME before writing, which
needs script effects replication: the default since Redis 5. A request's buckets are one script call
(`hit_many`); on Redis Cluster they would need one hash slot (a ``{tenant}`` hash tag), which the keys do
not have yet.
"""

from __future__ import annotations

from collections.abc import Sequence

import redis
import redis.asyncio

from appliance.errors import Unavailable
from appliance.services.limits.gcra import Decision, emission_interval

DEFAULT_PREFIX = "appliance:rl:"

# KEYS[1]: the bucket. ARGV: interval (µs per request), limit, cost (0: peek).
# Returns {allowed (0/1), remaining, µs until full, µs until allowed}.
SCRIPT = """
local interval = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
local window = interval * limit
local base = tonumber(redis.call('GET', KEYS[1]) or now)
if base < now then base = now end
local charged = base + math.max(cost, 1) * interval
local allowed, tat, retry = 0, base, charged - window - now
if charged - now <= window then
  allowed, retry = 1, 0
  if cost > 0 then
    tat = charged
    redis.call('SET', KEYS[1], string.format('%.0f', tat), 'PX', math.ceil((tat - now) / 1000))
  end
end
local remaining = math.max(0, math.floor((now + window - tat) / interval))
return {allowed, remaining, tat - now, retry}
"""


# KEYS: the buckets, in order. ARGV[1]: cost; then interval and limit of each bucket.
# Returns the decisions (4 numbers each) up to and including the first refusal: later buckets are not
# charged for a refused request. One round trip for a request's buckets, atomic as a whole.
MANY_SCRIPT = """
local cost = tonumber(ARGV[1])
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
local out = {}
for i, key in ipairs(KEYS) do
  local interval = tonumber(ARGV[2 * i])
  local limit = tonumber(ARGV[2 * i + 1])
  local window = interval * limit
  local base = tonumber(redis.call('GET', key) or now)
  if base < now then base = now end
  local charged = base + math.max(cost, 1) * interval
  local allowed, tat, retry = 0, base, charged - window - now
  if charged - now <= window then
    allowed, retry = 1, 0
    if cost > 0 then
      tat = charged
      redis.call('SET', key, string.format('%.0f', tat), 'PX', math.ceil((tat - now) / 1000))
    end
  end
  local remaining = math.max(0, math.floor((now + window - tat) / interval))
  table.insert(out, allowed)
  table.insert(out, remaining)
  table.insert(out, tat - now)
  table.insert(out, retry)
  if allowed == 0 then break end
end
return out
"""


class RedisRateLimiter:
    """GCRA buckets in Redis. Any Redis error raises `Unavailable`: the caller fails open or closed."""

    def __init__(self, client: redis.Redis[bytes], prefix: str = DEFAULT_PREFIX) -> None:
        self._client = client
        self._prefix = prefix
        self._script = client.register_script(SCRIPT)
        self._many = client.register_script(MANY_SCRIPT)

    def hit(self, key: str, limit: int, period: float, cost: int = 1) -> Decision:
        interval = emission_interval(limit, period, cost)
        try:
            allowed, remaining, reset_us, retry_us = self._script(
                keys=[self._prefix + key], args=[interval, limit, cost]
            )
        except redis.RedisError as exc:
            raise _unavailable(exc) from exc
        return Decision(bool(allowed), limit, int(remaining), reset_us / 1_000_000, retry_us / 1_000_000)

    def hit_many(self, buckets: Sequence[tuple[str, int]], period: float, cost: int = 1) -> list[Decision]:
        args: list[int] = [cost]
        for _, limit in buckets:
            args += [emission_interval(limit, period, cost), limit]
        try:
            flat = self._many(keys=[self._prefix + key for key, _ in buckets], args=args)
        except redis.RedisError as exc:
            raise _unavailable(exc) from exc
        return _decisions(flat, buckets)

    def reset(self, key: str) -> None:
        try:
            self._client.delete(self._prefix + key)
        except redis.RedisError as exc:
            raise _unavailable(exc) from exc

    def close(self) -> None:
        self._client.close()


def _decisions(flat: Sequence[int], buckets: Sequence[tuple[str, int]]) -> list[Decision]:
    return [
        Decision(bool(flat[i]), buckets[i // 4][1], int(flat[i + 1]), flat[i + 2] / 1e6, flat[i + 3] / 1e6)
        for i in range(0, len(flat), 4)
    ]


def _unavailable(exc: redis.RedisError) -> Unavailable:
    return Unavailable(
        "the rate limiter's Redis is unavailable", reason=str(exc), details={"dependency": "rate_limiter"}
    )


class AsyncRedisRateLimiter:
    """`RedisRateLimiter.hit_many` on an asyncio client, for the API's event loop (no worker thread)."""

    def __init__(self, client: redis.asyncio.Redis[bytes], prefix: str = DEFAULT_PREFIX) -> None:
        self._client = client
        self._prefix = prefix
        self._many = client.register_script(MANY_SCRIPT)

    async def hit_many(
        self, buckets: Sequence[tuple[str, int]], period: float, cost: int = 1
    ) -> list[Decision]:
        args: list[int] = [cost]
        for _, limit in buckets:
            args += [emission_interval(limit, period, cost), limit]
        try:
            flat = await self._many(keys=[self._prefix + key for key, _ in buckets], args=args)
        except redis.RedisError as exc:
            raise _unavailable(exc) from exc
        return _decisions(flat, buckets)

    async def close(self) -> None:
        # types-redis predates aclose (redis 5); close() is deprecated since.
        await self._client.aclose()  # type: ignore[attr-defined]
