"""Validator details the round-trip tests leave open: the default clock, the replay expiry."""

from __future__ import annotations

from datetime import datetime, timedelta

from lxml import etree

from serviceplatform.security.replay import MemoryReplayCache
from serviceplatform.security.validator import SecurityPolicy, TokenValidator, utc_now
from tests.unit.test_security_roundtrip import AUDIENCE, NOW, Pki
from tests.unit.test_security_roundtrip import pki as pki


class RecordingCache(MemoryReplayCache):
    def __init__(self) -> None:
        super().__init__()
        self.expiries: list[datetime] = []

    def remember(self, message_id: str, expires_at: datetime, now: datetime) -> bool:
        self.expiries.append(expires_at)
        return super().remember(message_id, expires_at, now)


def test_the_default_clock_is_aware() -> None:
    assert utc_now().utcoffset() == timedelta(0)


def test_a_message_id_is_remembered_while_its_timestamp_could_be_accepted(pki: Pki) -> None:
    # A replay window shorter than the timestamp's life: the MessageID must still be kept
    # until Expires plus the clock skew, or the message could be replayed before it expires.
    skew = timedelta(seconds=60)
    policy = SecurityPolicy(
        trusted_sts_certs=(pki.sts[1],),
        trusted_issuers=frozenset(),
        clock_skew=skew,
        replay_window=timedelta(seconds=1),
    )
    cache = RecordingCache()
    at = NOW + timedelta(minutes=1)
    TokenValidator(policy, cache, clock=lambda: at).validate(
        etree.fromstring(pki.message()), AUDIENCE
    )
    assert cache.expiries == [NOW + timedelta(minutes=5) + skew]
