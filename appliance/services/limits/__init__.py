"""Limits: rate limits per client address, per user or API key and per tenant plan (GCRA).

Owns the algorithm (gcra), the in-process and Redis limiters (limiter, redis_limiter) and the operators'
run-time overrides kept in the database (settings).

Offers to the other domains: limiter (RateLimits, RateLimiter, Decision), settings.
May call: audit, access, common.
"""
