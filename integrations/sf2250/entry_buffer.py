"""A fetched subscription list held compactly, then handed out sorted and without repeats.

The register serves a list in an order of its own (the sandbox's is random). Storing it in
that order rewrites index pages all over the table with every part: about 55 GB written for
one national night of 6 million entries. Stored in key order instead, every page is written
about once. So the night keeps the list until it is complete, 8 bytes an entry (48 MiB at 6
million) in buckets by the number's leading digits, and sorts one bucket at a time.

An entry is coded as one integer that sorts as (kind, number) does: a CPR number (10 digits)
as itself, a CVR number (8 digits) as 10**10 plus itself.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable, Iterator
from typing import Final

_CVR_OFFSET: Final = 10**10
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
            code = int(number) + (_CVR_OFFSET if kind == "cvr" else 0)
            bucket = buckets.get(code // _WIDTH)
            if bucket is None:
                bucket = buckets[code // _WIDTH] = array("q")
            bucket.append(code)
            self.received += 1

    def sorted(self) -> Iterator[tuple[str, str]]:
        """Every entry once, by (kind, number); empties the buffer as it goes."""
        for key in sorted(self._buckets):
            codes = sorted(set(self._buckets.pop(key)))
            for code in codes:
                if code >= _CVR_OFFSET:
                    yield "cvr", f"{code - _CVR_OFFSET:08d}"
                else:
                    yield "cpr", f"{code:010d}"
