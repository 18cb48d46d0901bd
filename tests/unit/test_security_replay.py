"""The in-memory replay cache: refused while live, free again at expiry, pruned when large."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from serviceplatform.security.replay import MemoryReplayCache

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
WINDOW = timedelta(minutes=5)


def test_a_message_id_is_refused_while_live_and_free_at_its_expiry_instant() -> None:
    cache = MemoryReplayCache()
    assert cache.remember("m", NOW + WINDOW, NOW)
    assert not cache.remember("m", NOW + 2 * WINDOW, NOW + WINDOW - timedelta(microseconds=1))
    assert cache.remember("m", NOW + 2 * WINDOW, NOW + WINDOW)
    assert not cache.remember("m", NOW + 3 * WINDOW, NOW + WINDOW)


def test_a_large_cache_drops_expired_ids_and_still_refuses_live_ones() -> None:
    cache = MemoryReplayCache()
    assert cache.remember("live", NOW + 2 * WINDOW, NOW)
    for number in range(10_001):
        assert cache.remember(f"old-{number}", NOW + WINDOW, NOW)
    later = NOW + WINDOW + timedelta(seconds=1)
    # This call prunes the 10,001 expired ids; the live one is still refused.
    assert not cache.remember("live", later + WINDOW, later)
    assert cache.remember("old-1", later + WINDOW, later)
    assert not cache.remember("old-1", later + WINDOW, later)


def _filled(count: int, expiring: datetime) -> MemoryReplayCache:
    cache = MemoryReplayCache()
    for number in range(count):
        cache.remember(f"old-{number}", expiring, NOW)
    return cache


def test_expired_ids_are_pruned_only_past_10000_held() -> None:
    later = NOW + WINDOW
    at_bound = _filled(10_000, later)
    assert at_bound.remember("new", later + WINDOW, later)
    assert len(at_bound) == 10_001  # 10,000 held: nothing pruned yet
    past_bound = _filled(10_001, later)
    assert past_bound.remember("new", later + WINDOW, later)
    # 10,001 held: the ids expiring at this very instant go too; only the new one is left.
    assert len(past_bound) == 1
