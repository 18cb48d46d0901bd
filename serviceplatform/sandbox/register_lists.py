"""The simulated register's subscription lists at national scale: stored or generated, in parts.

The ``subscriptions/{sysid}`` hook sets a list in one of two forms:

* **stored**: ``{"cpr": [...], "cvr": [...]}``, bodies of 100 MiB and more (7 million entries);
* **generated**: ``{"generate": {"count": N, "seed": S, "changed_per_mille": C}}``: N entries
  derived from S, and on each later list date (by the register's clock) C per mille of them
  changed, half unsubscribed and half newly subscribed, so a second night has ``N * C / 1000``
  changes to report. Nothing is held per entry: entry ``i`` is a CPR (or, one in a hundred, a
  CVR) number computed from ``i`` by a bijection, and list date ``k`` days after the PUT holds
  the entries ``[0, N - k*h)`` and ``[N, N + k*h)`` with ``h = N * C / 2000``.

A list is served in random order by default, as a real register that keeps no sort order
would (entry positions go through an affine permutation, so no copy is made); ``"sorted":
true`` in the body serves it sorted by kind and number instead, for comparison.

A :class:`ListView` is what one list reference serves: the entries of one list date, fixed
when it was taken, read part by part. The register writes a part from :meth:`ListView.codes`,
the entries coded as integers (CPR as itself, CVR as ``CVR_OFFSET`` plus itself): a generated
list computes a whole part's codes in a few list operations, which keeps the register's CPU
per part (it shares the machine with the platform in the benchmarks) well below the client's.
"""

from __future__ import annotations

import hashlib
import math
from array import array
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Final

__all__ = [
    "CVR_OFFSET",
    "GeneratedList",
    "ListView",
    "StoredList",
    "SubscriptionList",
    "parse_list_body",
]

#: Subject = (kind, number); kept here as plain tuples to avoid an import cycle.
_Subject = tuple[str, str]

_CPR_SPACE: Final = 10**10
_CVR_SPACE: Final = 10**8
#: Encoded entries sort by (kind, number): CPR numbers below this, CVR numbers above.
CVR_OFFSET: Final = _CPR_SPACE
#: One generated entry in this many is a CVR number (companies subscribe too).
_CVR_EVERY: Final = 100
#: Entries a generated list may hold: every entry index stays below the CVR space.
_MAX_GENERATED: Final = _CVR_SPACE // 2


def _coprime_to_ten(value: int) -> int:
    value |= 1
    return value + 2 if value % 5 == 0 else value


def _seeded(seed: int, label: str, modulus: int) -> int:
    digest = hashlib.sha256(f"{seed}:{label}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % modulus


class _Permutation:
    """``p -> (a*p + b) mod n``: a fixed random-looking order of ``n`` positions, no copy."""

    def __init__(self, n: int, key: str) -> None:
        self.n = n
        digest = hashlib.sha256(key.encode()).digest()
        a = int.from_bytes(digest[:8], "big") % max(n, 1) or 1
        while math.gcd(a, n) != 1 and n > 1:
            a += 1
        self.a, self.b = a, int.from_bytes(digest[8:16], "big") % max(n, 1)

    def __call__(self, position: int) -> int:
        return (self.a * position + self.b) % self.n


@dataclass(frozen=True)
class ListView:
    """The entries one list reference serves, in serving order; ``part`` reads a slice."""

    count: int
    entry: Callable[[int], _Subject]
    #: The coded entries of the positions ``[start, stop)`` (within the list), when the list
    #: has a faster way to produce them than one ``entry`` call per position.
    coded: Callable[[int, int], list[int]] | None = None

    def part(self, start: int, stop: int) -> list[_Subject]:
        return [self.entry(i) for i in range(start, min(stop, self.count))]

    def codes(self, start: int, stop: int) -> list[int]:
        """The slice of ``part`` coded: CPR as itself, CVR as ``CVR_OFFSET`` plus itself."""
        stop = min(stop, self.count)
        if self.coded is not None:
            return self.coded(start, stop) if start < stop else []
        return [_encode(self.entry(i)) for i in range(start, stop)]


class SubscriptionList:
    """A list set through the hook; subclasses say who is on it on a given list date."""

    ordered: bool = False

    def view(self, day: date, key: str) -> ListView:
        """The list of ``day`` in serving order; ``key`` seeds the random order."""
        raise NotImplementedError

    def contains(self, subject: _Subject, day: date) -> bool:
        raise NotImplementedError

    def describe(self) -> dict[str, Any]:
        """What the hook answers about this list."""
        raise NotImplementedError


@dataclass
class StoredList(SubscriptionList):
    """A list given entry by entry (CVR without colon); the same on every list date."""

    cprs: list[str]
    cvrs: list[str]
    ordered: bool = False
    _lookup: dict[str, frozenset[str]] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.ordered:
            self.cprs.sort()
            self.cvrs.sort()

    def _at(self, index: int) -> _Subject:
        split = len(self.cprs)
        return ("cpr", self.cprs[index]) if index < split else ("cvr", self.cvrs[index - split])

    def view(self, day: date, key: str) -> ListView:
        count = len(self.cprs) + len(self.cvrs)
        if self.ordered or count < 2:
            return ListView(count, self._at)
        order = _Permutation(count, key)
        return ListView(count, lambda position: self._at(order(position)))

    def contains(self, subject: _Subject, day: date) -> bool:
        if self._lookup is None:
            # Built on the first look-up only: most large lists are never asked one by one.
            self._lookup = {"cpr": frozenset(self.cprs), "cvr": frozenset(self.cvrs)}
        return subject[1] in self._lookup.get(subject[0], frozenset())

    def describe(self) -> dict[str, Any]:
        return {"cpr": list(self.cprs), "cvr": list(self.cvrs)}


@dataclass
class GeneratedList(SubscriptionList):
    """``count`` entries from ``seed``, ``changed_per_mille`` of them changed per later day."""

    count: int
    seed: int
    changed_per_mille: int
    #: The list date on which the list was set: it holds exactly the first ``count`` entries.
    start: date
    ordered: bool = False
    _sorted: dict[date, array[int]] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self._cpr_a = _coprime_to_ten(_seeded(self.seed, "cpr-a", _CPR_SPACE))
        self._cpr_b = _seeded(self.seed, "cpr-b", _CPR_SPACE)
        self._cvr_a = _coprime_to_ten(_seeded(self.seed, "cvr-a", _CVR_SPACE))
        self._cvr_b = _seeded(self.seed, "cvr-b", _CVR_SPACE)
        self._cpr_inverse = pow(self._cpr_a, -1, _CPR_SPACE)
        self._cvr_inverse = pow(self._cvr_a, -1, _CVR_SPACE)
        #: Entries unsubscribed (and as many subscribed) per day.
        self.step = self.count * self.changed_per_mille // 2000

    def _days(self, day: date) -> int:
        days = max((day - self.start).days, 0)
        return min(days, self.count // self.step) if self.step else 0

    def _index(self, position: int, kept: int) -> int:
        """The entry index at ``position`` of a day's list keeping ``kept`` first entries."""
        return position if position < kept else self.count + (position - kept)

    def _subject(self, index: int) -> _Subject:
        if index % _CVR_EVERY == _CVR_EVERY - 1:
            return ("cvr", f"{(self._cvr_a * index + self._cvr_b) % _CVR_SPACE:08d}")
        return ("cpr", f"{(self._cpr_a * index + self._cpr_b) % _CPR_SPACE:010d}")

    def view(self, day: date, key: str) -> ListView:
        kept = self.count - self._days(day) * self.step
        if not self.ordered:
            # The bijection already scatters the numbers: index order is random order.
            return ListView(
                self.count,
                lambda position: self._subject(self._index(position, kept)),
                lambda start, stop: self._codes(start, stop, kept),
            )
        encoded = self._sorted.get(day)
        if encoded is None:
            encoded = array(
                "q", sorted(self._encoded(self._index(p, kept)) for p in range(self.count))
            )
            self._sorted = {day: encoded}  # one list date at a time: the memory is the list's
        return ListView(
            self.count,
            lambda position: _decode(encoded[position]),
            lambda start, stop: encoded[start:stop].tolist(),
        )

    def _encoded(self, index: int) -> int:
        return _encode(self._subject(index))

    def _codes(self, start: int, stop: int, kept: int) -> list[int]:
        """``_encoded`` of the positions ``[start, stop)`` of a list keeping ``kept`` entries:
        each run of consecutive indices as one list of CPR codes, then its CVR indices (one
        in a hundred) overwritten, instead of formatting and parsing a string per entry."""
        codes: list[int] = []
        for first, last in ((start, min(stop, kept)), (max(start, kept), stop)):
            if first >= last:
                continue
            low, high = self._index(first, kept), self._index(last - 1, kept) + 1
            a, b = self._cpr_a, self._cpr_b
            run = [(a * index + b) % _CPR_SPACE for index in range(low, high)]
            first_cvr = low + (_CVR_EVERY - 1 - low) % _CVR_EVERY
            for index in range(first_cvr, high, _CVR_EVERY):
                run[index - low] = CVR_OFFSET + (self._cvr_a * index + self._cvr_b) % _CVR_SPACE
            codes += run
        return codes

    def contains(self, subject: _Subject, day: date) -> bool:
        kind, number = subject
        if kind == "cvr":
            index = ((int(number) - self._cvr_b) * self._cvr_inverse) % _CVR_SPACE
            if index % _CVR_EVERY != _CVR_EVERY - 1:
                return False
        else:
            index = ((int(number) - self._cpr_b) * self._cpr_inverse) % _CPR_SPACE
            if index % _CVR_EVERY == _CVR_EVERY - 1:
                return False
        changed = self._days(day) * self.step
        return index < self.count - changed or self.count <= index < self.count + changed

    def describe(self) -> dict[str, Any]:
        return {
            "generate": {
                "count": self.count,
                "seed": self.seed,
                "changed_per_mille": self.changed_per_mille,
            },
            "start": self.start.isoformat(),
            "sorted": self.ordered,
        }


def _encode(subject: _Subject) -> int:
    return int(subject[1]) + (CVR_OFFSET if subject[0] == "cvr" else 0)


def _decode(value: int) -> _Subject:
    if value >= CVR_OFFSET:
        return ("cvr", f"{value - CVR_OFFSET:08d}")
    return ("cpr", f"{value:010d}")


def parse_list_body(
    data: Any, today: date, valid_cpr: Callable[[str], bool], valid_cvr: Callable[[str], bool]
) -> SubscriptionList:
    """The list a ``PUT subscriptions/{sysid}`` body describes; ValueError when it is wrong."""
    if not isinstance(data, dict):
        raise ValueError('expected {"cpr": [...], "cvr": [...]} or {"generate": {...}}')
    ordered = data.get("sorted", False)
    if not isinstance(ordered, bool):
        raise ValueError("sorted must be true or false")
    if "generate" in data:
        if set(data) - {"generate", "sorted"}:
            raise ValueError('a "generate" body has only "generate" and "sorted"')
        return _generated(data["generate"], today, ordered)
    if set(data) - {"cpr", "cvr", "sorted"}:
        raise ValueError('expected {"cpr": [...], "cvr": [...]}')
    cprs, cvrs = data.get("cpr", []), data.get("cvr", [])
    if not isinstance(cprs, list) or not isinstance(cvrs, list):
        raise ValueError("cpr and cvr must be lists")
    if not all(isinstance(v, str) and valid_cpr(v) for v in cprs):
        raise ValueError("every cpr must be 10 digits")
    if not all(isinstance(v, str) and valid_cvr(v) for v in cvrs):
        raise ValueError("every cvr must be 8 digits")
    return StoredList(cprs, [v.removeprefix(":") for v in cvrs], ordered)


def _whole(spec: dict[str, Any], name: str, default: int | None, upper: int) -> int:
    value = spec.get(name, default)
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= upper:
        raise ValueError(f"generate.{name} must be a whole number from 0 to {upper}")
    return value


def _generated(spec: Any, today: date, ordered: bool) -> GeneratedList:
    if not isinstance(spec, dict) or set(spec) - {"count", "seed", "changed_per_mille"}:
        raise ValueError('expected "generate": {"count": N, "seed": S, "changed_per_mille": C}')
    count = _whole(spec, "count", None, _MAX_GENERATED)
    seed = _whole(spec, "seed", 0, 2**63 - 1)
    per_mille = _whole(spec, "changed_per_mille", 10, 1000)
    return GeneratedList(count, seed, per_mille, today, ordered)


def entries_of(view: ListView) -> Sequence[_Subject]:
    """Every entry of ``view`` (tests and small lists only)."""
    return view.part(0, view.count)
