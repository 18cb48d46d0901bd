"""The replay cache seam: remember each MessageID until its window closes.

The platform uses the database-backed cache (``serviceplatform.store.replay``) so that every
process and machine sharing a database sees the same MessageIDs; ``MemoryReplayCache`` is the
in-memory reference used in unit tests.
"""

from __future__ import annotations

import threading
from datetime import datetime
from typing import Protocol


class ReplayCache(Protocol):
    def remember(self, message_id: str, expires_at: datetime, now: datetime) -> bool:
        """Record ``message_id``; return False if it was already recorded and not expired."""
        ...


class MemoryReplayCache:
    """A process-local replay cache; fine for tests, wrong for several processes."""

    def __init__(self) -> None:
        self._seen: dict[str, datetime] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        """MessageIDs held, expired ones not yet pruned included (the memory bound)."""
        return len(self._seen)

    def remember(self, message_id: str, expires_at: datetime, now: datetime) -> bool:
        with self._lock:
            # Past 10,000 held ids, the expired ones are dropped: memory stays bounded by
            # the live ones.
            if len(self._seen) > 10_000:
                self._seen = {k: v for k, v in self._seen.items() if v > now}
            previous = self._seen.get(message_id)
            if previous is not None and previous > now:
                return False
            self._seen[message_id] = expires_at
            return True
