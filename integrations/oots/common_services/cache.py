"""The expiring, bounded, thread-safe cache of common-services answers.

``cachetools``: a ``TTLCache`` (least recently used entry evicted when full, every entry
expiring ``ttl_seconds`` after it was stored, time read from the injected ``clock``) behind
``cachetools.cached`` with a lock. The lock guards the cache only, never the fetch: threads
missing the same key at the same moment each ask (the answers are identical, and the last one
stored wins). Waiting for the fetch in flight instead (``cached``'s ``condition``) would
serialise the callers behind a failing one, each waiting out its own timeout during an outage.
A fetch that raises stores nothing (``cached`` only stores returned values), so failures are
never cached and the next call asks again.

The key is the ``Query`` itself (service, query id, parameters in a fixed order): answers to
different parameters never share an entry. What is stored is the parsed answer, including
empty results and ``AttributeNeeded``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, TypeVar, cast

from cachetools import TTLCache, cached

from integrations.oots.common_services.queries import Query

T = TypeVar("T")


class QueryCache:
    """Parsed answers by ``Query`` for ``ttl_seconds``, at most ``max_entries`` of them."""

    def __init__(self, *, ttl_seconds: float, max_entries: int, clock: Callable[[], float]) -> None:
        self._cache: TTLCache[Query, Any] = TTLCache(
            maxsize=max_entries, ttl=ttl_seconds, timer=clock
        )
        self._lock = threading.Lock()
        self._lookup = cached(
            self._cache, key=lambda query, fetch: query, lock=self._lock, info=True
        )(_call)

    def get_or_fetch(self, query: Query, fetch: Callable[[], T]) -> T:
        """The cached answer to ``query``, else ``fetch()``'s, stored only if it returns."""
        return cast(T, self._lookup(query, fetch))

    def clear(self) -> None:
        self._lookup.cache_clear()

    def __len__(self) -> int:
        with self._lock:
            # ``expire`` first: ``len`` of a TTLCache counts expired entries until touched.
            self._cache.expire()
            return len(self._cache)

    @property
    def hits(self) -> int:
        return int(self._lookup.cache_info().hits)

    @property
    def misses(self) -> int:
        return int(self._lookup.cache_info().misses)


def _call(query: Query, fetch: Callable[[], Any]) -> Any:
    return fetch()
