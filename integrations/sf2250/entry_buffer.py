"""A fetched subscription list held compactly, then handed out sorted and without repeats.

The register serves a list in an order of its own (the sandbox's is random). Storing it in
that order rewrites index pages all over the table with every part: about 55 GB written for
one national night of 6 million entries. Stored in key order instead, every page is written
about once. So the night keeps the list until it is complete, 8 bytes an entry (48 MiB at 6
million) in buckets by the number's leading digits, and sorts one bucket at a time.

An entry is held as its code (``integrations.sf2250.entry_codes``), one integer that sorts as
(kind, number) does, which is also how the snapshot store keeps it.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable, Iterator
from itertools import chain
from typing import Final

from integrations.sf2250.entry_codes import CVR_OFFSET, entry_of

#: Bucket width: a bucket holds the numbers sharing their leading three (CPR) digits.
_WIDTH: Final = 10**7


class EntryBuffer:
    """Collects ``(kind, number)`` entries; :meth:`sorted` yields them in key order, once each."""

    def __init__(self) -> None:
        self._buckets: dict[int, array[int]] = {}
        self.received = 0

    def extend(self, entries: Iterable[tuple[str, str]]) -> None:
        buckets = self._buckets
        for kind, number in entries:
            code = int(number) + (CVR_OFFSET if kind == "cvr" else 0)
            bucket = buckets.get(code // _WIDTH)
            if bucket is None:
                bucket = buckets[code // _WIDTH] = array("q")
            bucket.append(code)
            self.received += 1

    def runs(self) -> Iterator[array[int]]:
        """Every entry's code once, ascending, in runs (one per bucket); empties the buffer."""
        for key in sorted(self._buckets):
            yield array("q", sorted(set(self._buckets.pop(key))))

    def sorted(self) -> Iterator[tuple[str, str]]:
        """Every entry once, by (kind, number); empties the buffer as it goes."""
        return map(entry_of, chain.from_iterable(self.runs()))
