"""The rate limiter shared by every API host: GCRA buckets in Redis, one atomic Lua script per hit.

Each bucket is one string key, ``<prefix><bucket>`` (``appliance:rl:ip:203.0.113.9``), holding the TAT in
microseconds of Redis server time, so hosts with skewed clocks agree. The key expires when the bucket is
full again, so idle buckets cost nothing. The script is `ratelimit.gcra` in Lua; every number is a whole
number of microseconds below 2**53, which Lua's doubles hold exactly. It calls TIME before writing, which
needs script effects replication: the default since Redis 5.
"""

from __future__ import annotations

import redis

from appliance.errors import Unavailable
from appliance.services.ratelimit import Decision, emission_interval

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


class RedisRateLimiter:
    """GCRA buckets in Redis. Any Redis error raises `Unavailable`: the caller fails open or closed."""

    def __init__(self, client: redis.Redis[bytes], prefix: str = DEFAULT_PREFIX) -> None:
        self._client = client
        self._prefix = prefix
        self._script = client.register_script(SCRIPT)

    def hit(self, key: str, limit: int, period: float, cost: int = 1) -> Decision:
        interval = emission_interval(limit, period, cost)
        try:
            allowed, remaining, reset_us, retry_us = self._script(
                keys=[self._prefix + key], args=[interval, limit, cost]
            )
        except redis.RedisError as exc:
            raise _unavailable(exc) from exc
        return Decision(bool(allowed), limit, int(remaining), reset_us / 1_000_000, retry_us / 1_000_000)

    def reset(self, key: str) -> None:
        try:
            self._client.delete(self._prefix + key)
        except redis.RedisError as exc:
            raise _unavailable(exc) from exc

    def close(self) -> None:
        self._client.close()


def _unavailable(exc: redis.RedisError) -> Unavailable:
    return Unavailable(
        f"the rate limiter's Redis is unavailable: {exc}", details={"dependency": "rate_limiter"}
    )
