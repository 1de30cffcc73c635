"""An in-process, bounded cache of revoked access tokens, so verifying a token needs no database query.

Each API process keeps one. Revocations made here (logout) are added at once; those made by other processes
are loaded from the database every ``sync_interval`` (`sync_due` / `synced`). An entry lives only as long as
the token it names could still be accepted, so the cache holds at most one access-token lifetime of
revocations. When it is full the entry nearest its end is dropped, and from then on, until that token would
have expired anyway, a lookup answers "unknown" (None) rather than a wrong "not revoked": the caller then
asks the database. The cache never lets a revoked token through on its own.
"""

from __future__ import annotations

import heapq
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from appliance.services.identity.tokens import LEEWAY

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


class RevocationCache:
    """Revoked jti (and session keys: `tokens.session_revocation_key`) mapped to when they stop mattering."""

    def __init__(
        self,
        *,
        max_entries: int = 50_000,
        sync_interval: timedelta = timedelta(seconds=5),
        grace: timedelta = LEEWAY,
        clock: Clock = utc_now,
    ) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self._max = max_entries
        self._sync_interval = sync_interval
        self._grace = grace
        self._clock = clock
        self._until: dict[str, datetime] = {}
        self._heap: list[tuple[datetime, str]] = []
        # Until this moment some evicted revocation may still name a live token: answer "unknown".
        self._uncertain_until: datetime | None = None
        self._synced_at: datetime | None = None
        # Revocations arrive from request threads (logout) and the background sync; lookups only read.
        self._lock = threading.Lock()

    def __len__(self) -> int:
        with self._lock:
            self._purge(self._clock())
            return len(self._until)

    def revoke(self, key: str, expires_at: datetime) -> None:
        """Record that the token (or session) ``key`` is revoked; ``expires_at`` is when it would expire."""
        now = self._clock()
        until = expires_at + self._grace
        if until <= now:
            return  # already dead: nothing to remember
        with self._lock:
            self._purge(now)
            previous = self._until.get(key)
            if previous is not None and previous >= until:
                return
            if previous is None and len(self._until) >= self._max:
                self._evict_one()
            self._until[key] = until
            heapq.heappush(self._heap, (until, key))

    def is_revoked(self, *keys: str) -> bool | None:
        """True if any key is revoked; False if none is (as of the last sync); None when it cannot tell."""
        now = self._clock()
        for key in keys:
            until = self._until.get(key)
            if until is not None and now < until:
                return True
        if self._uncertain_until is not None and now < self._uncertain_until:
            return None
        return False

    def sync_due(self, ahead: float = 0.0) -> bool:
        """Whether revocations made by other processes should be loaded from the database now; with
        ``ahead`` (a fraction of the interval), whether that moment is that close."""
        due = self._sync_interval * (1 - ahead)
        return self._synced_at is None or self._clock() >= self._synced_at + due

    def synced(self, at: datetime | None = None) -> None:
        """Note that revocations up to ``at`` (default: now) have been loaded."""
        self._synced_at = at if at is not None else self._clock()

    def _purge(self, now: datetime) -> None:
        while self._heap and self._heap[0][0] <= now:
            until, key = heapq.heappop(self._heap)
            if self._until.get(key) == until:
                del self._until[key]

    def _evict_one(self) -> None:
        while self._heap:
            until, key = heapq.heappop(self._heap)
            if self._until.get(key) == until:  # skip heap entries superseded by a later revoke()
                del self._until[key]
                if self._uncertain_until is None or until > self._uncertain_until:
                    self._uncertain_until = until
                return
