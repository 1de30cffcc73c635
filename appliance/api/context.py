"""What the API's routes share: settings, database, queue, authentication and rate limits, built once by
create_app."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import timedelta

from huey import Huey

from appliance.api.client_address import Network, parse_networks
from appliance.api.offload import Offloader
from appliance.config import Settings
from appliance.db.async_pool import AsyncDatabase
from appliance.db.session import Database
from appliance.services.common.refresher import Refresher
from appliance.services.identity.auth import LoginGuard
from appliance.services.identity.authenticator import Authenticator
from appliance.services.limits import limiter as ratelimit
from appliance.services.limits import settings as rate_limit_settings
from appliance.services.limits.redis_limiter import AsyncRedisRateLimiter

log = logging.getLogger("appliance.api")


@dataclass(frozen=True)
class AppContext:
    settings: Settings
    database: Database
    queue: Huey
    auth: Authenticator
    offload: Offloader
    """Where every blocking call of a request runs (appliance.api.offload)."""
    refresher: Refresher
    """Refreshes the caches on the request path in the background (revocations, tenants, limits)."""
    limiter: ratelimit.RateLimiter | None
    """None when rate limits are off (``rate_limits.enabled = false``)."""
    base_limits: ratelimit.RateLimits
    limits: ratelimit.LimitsHolder
    login_limiter: ratelimit.RateLimiter
    """Counts failed sign-ins: the shared limiter, or an in-process one when rate limits are off."""
    trusted_proxies: tuple[Network, ...] = ()
    async_database: AsyncDatabase | None = None
    """PostgreSQL on the event loop, for the hot read paths (None on SQLite)."""
    async_limiter: AsyncRedisRateLimiter | None = None
    """The Redis limiter's asyncio twin, so the event loop charges requests without a thread."""
    _limiter_warned: list[float] = field(default_factory=lambda: [0.0])

    @property
    def limiter_in_process(self) -> bool:
        """Whether the limiter answers from memory (no I/O: it may run on the event loop)."""
        return isinstance(self.limiter, ratelimit.MemoryRateLimiter)

    @property
    def refresh_ttl(self) -> timedelta:
        return timedelta(seconds=self.settings.security.refresh_token_ttl)

    @property
    def login_guard(self) -> LoginGuard:
        return LoginGuard(self.login_limiter, self.limits)

    def current_limits(self) -> ratelimit.RateLimits:
        """The limits in force, re-read from the operators' overrides every few seconds."""
        now = time.monotonic()
        if self.limits.refresh_due(now):
            try:
                with self.database.session_scope(write=False) as session:
                    self.limits.replace(rate_limit_settings.effective(session, self.base_limits))
                self.limits.refreshed(now)
            except Exception as exc:
                log.warning("could not re-read the rate limits: %s", exc)
        return self.limits.current()

    def limiter_failed(self, exc: Exception) -> None:
        """The limiter's store is down: requests are let through (fail open), with a warning a minute."""
        now = time.monotonic()
        if now - self._limiter_warned[0] > 60:
            self._limiter_warned[0] = now
            log.warning("rate limiter unavailable, requests are not limited: %s", exc)


def build_context(settings: Settings, database: Database, queue: Huey, signing_key: str) -> AppContext:
    section = settings.rate_limits
    base = ratelimit.limits_from_settings(section)
    # Appliances sharing one Redis under different queue names keep their buckets apart.
    prefix = f"appliance:{settings.queue.name}:rl:"
    limiter = ratelimit.build_limiter(settings.rate_limit_url, prefix=prefix) if section.enabled else None
    sec = settings.security
    refresher = Refresher()
    auth = Authenticator(
        database,
        signing_key=signing_key,
        issuer=sec.token_issuer,
        audience=sec.token_audience,
        access_ttl=timedelta(seconds=sec.access_token_ttl),
        refresher=refresher,
    )
    return AppContext(
        settings=settings,
        database=database,
        queue=queue,
        auth=auth,
        refresher=refresher,
        offload=Offloader(
            api_threads(settings),
            queue_limit=settings.api.queue_limit,
            queue_timeout=settings.api.queue_timeout,
            queue_target=settings.api.queue_target,
        ),
        limiter=limiter,
        base_limits=base,
        limits=ratelimit.LimitsHolder(base),
        login_limiter=limiter or ratelimit.MemoryRateLimiter(),
        trusted_proxies=tuple(parse_networks(settings.api.trusted_proxies)),
        async_database=None if settings.is_sqlite else AsyncDatabase(settings),
        async_limiter=(
            ratelimit.build_async_limiter(settings.rate_limit_url, prefix=prefix) if section.enabled else None
        ),
    )


def api_threads(settings: Settings) -> int:
    """`api.threads`, or one less than the pool holds (a connection stays free for the health checks)."""
    return settings.api.threads or max(1, settings.database.pool_size - 1)
