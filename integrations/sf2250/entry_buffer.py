"""A fetched subscription list held compactly, then handed out sorted and without repeats.

The register serves a list in an order of its own (the sandbox's is random). Storing it in
that order rewrites index pages all over the table with every part: about 55 GB written for
one national night of 6 million entries. Stored in key order instead, every page is written
about once. So the night keeps the list until it is complete, 8 bytes an entry (48 MiB at 6
million) in buckets by the number's leading digits, and sorts one bucket at a time.

An entry is held as its code (``integrations.sf2250.entry_codes``), one integer that sorts as
(kind, number) does, which is also how the snapshot store keeps it. The list client hands over
each part already coded, so no per-entry tuple or string is made on the way in.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterator, Sequence
from itertools import chain
from typing import Final

from integrations.sf2250.entry_codes import entry_of

#: Bucket width: a bucket holds the numbers sharing their leading three (CPR) digits.
_WIDTH: Final = 10**7


class EntryBuffer:
    """Collects entry codes; :meth:`runs` hands them out in key order, once each."""

    def __init__(self) -> None:
        self._buckets: dict[int, array[int]] = {}
        self.received = 0

    def extend(self, codes: Sequence[int]) -> None:
        """Add entry codes (``entry_codes.code_of``): a part of the list, in any order."""
        buckets = self._buckets
        # The one per-entry loop of a fetched list: kept to a look-up and an append.
        for code in codes:
            try:
                buckets[code // _WIDTH].append(code)
            except KeyError:
                buckets[code // _WIDTH] = array("q", (code,))
        self.received += len(codes)

    def runs(self) -> Iterator[array[int]]:
        """Every entry's code once, ascending, in runs (one per bucket); empties the buffer."""
        for key in sorted(self._buckets):
            yield array("q", sorted(set(self._buckets.pop(key))))

    def sorted(self) -> Iterator[tuple[str, str]]:
        """Every entry once, by (kind, number); empties the buffer as it goes."""
        return map(entry_of, chain.from_iterable(self.runs()))
