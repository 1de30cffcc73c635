"""Throttling repeated failed sign-ins, per account and per address, on the rate limiter's buckets."""

from __future__ import annotations

import hashlib

from appliance.services.limits.gcra import Decision
from appliance.services.limits.limiter import RateLimiter, RateLimits

#: Failed logins are counted over this many seconds.
LOGIN_PERIOD = 15 * 60.0


def account_key(email: str) -> str:
    """The bucket of an account: the normalized email, hashed, so that no address is stored in Redis."""
    digest = hashlib.sha256(email.strip().lower().encode()).hexdigest()
    return f"login:account:{digest[:32]}"


def _login_buckets(limits: RateLimits, email: str, ip: str) -> list[tuple[str, int]]:
    return [
        (account_key(email), limits.login_failures_per_account),
        (f"login:ip:{ip}", limits.login_failures_per_ip),
    ]


def login_blocked(limiter: RateLimiter, limits: RateLimits, *, email: str, ip: str) -> Decision | None:
    """Before checking a password: the denying decision (account first, then IP), or None. Changes nothing."""
    for key, limit in _login_buckets(limits, email, ip):
        decision = limiter.hit(key, limit, LOGIN_PERIOD, cost=0)
        if not decision.allowed:
            return decision
    return None


def login_failed(limiter: RateLimiter, limits: RateLimits, *, email: str, ip: str) -> None:
    """Count a failed login against the account and the IP."""
    for key, limit in _login_buckets(limits, email, ip):
        limiter.hit(key, limit, LOGIN_PERIOD)


def login_succeeded(limiter: RateLimiter, *, email: str) -> None:
    """Forget the account's failures (the IP's stay: one IP guessing many accounts is still throttled)."""
    limiter.reset(account_key(email))
