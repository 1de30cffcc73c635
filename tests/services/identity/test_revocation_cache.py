"""The in-process revocation cache: entries live as long as their token, and overflow never hides one."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from appliance.services.identity.revocation_cache import RevocationCache

NOW = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
GRACE = timedelta(seconds=10)


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


def test_revoked_until_the_token_would_have_expired(clock: Clock) -> None:
    cache = RevocationCache(clock=clock, grace=GRACE)
    cache.revoke("jti-1", NOW + timedelta(minutes=15))
    assert cache.is_revoked("jti-1") is True
    assert cache.is_revoked("jti-2") is False
    assert cache.is_revoked("jti-2", "jti-1") is True
    clock.now = NOW + timedelta(minutes=15) + GRACE - timedelta(microseconds=1)
    assert cache.is_revoked("jti-1") is True
    clock.now = NOW + timedelta(minutes=15) + GRACE
    assert cache.is_revoked("jti-1") is False
    assert len(cache) == 0


def test_an_already_expired_token_is_not_stored(clock: Clock) -> None:
    cache = RevocationCache(clock=clock, grace=GRACE)
    cache.revoke("old", NOW - GRACE)
    assert len(cache) == 0


def test_revoking_again_keeps_the_later_end(clock: Clock) -> None:
    cache = RevocationCache(clock=clock, grace=GRACE)
    cache.revoke("sid:1", NOW + timedelta(minutes=5))
    cache.revoke("sid:1", NOW + timedelta(minutes=15))
    cache.revoke("sid:1", NOW + timedelta(minutes=1))
    clock.now = NOW + timedelta(minutes=10)
    assert cache.is_revoked("sid:1") is True
    assert len(cache) == 1


def test_full_cache_drops_the_nearest_end_and_then_says_unknown(clock: Clock) -> None:
    cache = RevocationCache(max_entries=2, clock=clock, grace=timedelta(0))
    cache.revoke("a", NOW + timedelta(minutes=1))
    cache.revoke("b", NOW + timedelta(minutes=10))
    cache.revoke("c", NOW + timedelta(minutes=5))
    assert len(cache) == 2
    assert cache.is_revoked("b") is True
    assert cache.is_revoked("c") is True
    assert cache.is_revoked("a") is None  # evicted: the caller must ask the database
    assert cache.is_revoked("unrelated") is None
    clock.now = NOW + timedelta(minutes=1)
    assert cache.is_revoked("a") is False  # "a" has expired by now: certain again


def test_expired_entries_make_room_before_anything_is_evicted(clock: Clock) -> None:
    cache = RevocationCache(max_entries=1, clock=clock, grace=timedelta(0))
    cache.revoke("a", NOW + timedelta(minutes=1))
    clock.now = NOW + timedelta(minutes=2)
    cache.revoke("b", NOW + timedelta(minutes=10))
    assert cache.is_revoked("x") is False


def test_sync_is_due_every_interval(clock: Clock) -> None:
    cache = RevocationCache(clock=clock, sync_interval=timedelta(seconds=5))
    assert cache.sync_due()
    cache.synced()
    assert not cache.sync_due()
    clock.now = NOW + timedelta(seconds=5)
    assert cache.sync_due()


def test_max_entries_must_be_positive() -> None:
    with pytest.raises(ValueError):
        RevocationCache(max_entries=0)
