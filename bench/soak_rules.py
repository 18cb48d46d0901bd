"""The soak's verdict rules (``bench/soak.py``), as pure functions: which failed requests the
injected register faults explain, and whether a process's memory or open files grew.

**Explained failures.** The soak injects register faults through the register's ``faults``
hook: ``503`` (the register answers HTTP 503) and ``reset`` (it drops the connection). The
platform retries both within its budget, so most injections cost nothing; when the retries
run out the caller gets exactly one fault code per kind (``EXPLAINING_CODES``). A failed
request is *explained* when its fault code is the one of an injection's kind, the request was
in flight during that injection's window (``[at, at + window]``), and that injection has not
yet explained ``count`` failures (each injected fault fails at most one platform call, and
the first, not the second, injection of two overlapping ones is charged). Anything else is
*unexplained*: another code, a fault with no injection around it, more failures than
injected faults, a non-SOAP answer, a broken connection to the platform.

**Growth.** A process's (or a group's) RSS and open files are sampled every few seconds. The
samples of the settle time after warm-up are left out (caches fill, pools open); the rest
are split in thirds by time, and the median of the last third is compared with the median
of the first. It grew when the difference exceeds both an absolute tolerance and a share of
the first median (``Tolerance``): a leak grows steadily, so the last third lies clearly above
the first, while noise and one-off allocations do not move the medians that far.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

#: The fault code the caller gets when the platform's retries of each injected kind run out.
EXPLAINING_CODES: Final[dict[str, frozenset[str]]] = {
    "503": frozenset({"SP-404"}),  # UpstreamUnavailable
    "reset": frozenset({"SP-401"}),  # UpstreamUnreachable
}


@dataclass(frozen=True)
class Injection:
    """A fault injected at ``at`` (seconds on the run's clock): ``count`` register requests."""

    at: float
    kind: str
    count: int


@dataclass(frozen=True)
class Failure:
    """A request that did not get the expected 200: when it was in flight, and its fault code
    (``SP-nnn``), or None when the answer was no platform fault at all."""

    sent: float
    done: float
    code: str | None
    what: str = ""


def explain(
    failures: Sequence[Failure], injections: Sequence[Injection], window: float
) -> tuple[list[Failure], list[Failure]]:
    """(explained, unexplained) failures, by the rule in the module docstring."""
    left = [injection.count for injection in injections]
    explained: list[Failure] = []
    unexplained: list[Failure] = []
    for failure in sorted(failures, key=lambda f: f.sent):
        for index, injection in enumerate(injections):
            if (
                left[index] > 0
                and failure.code is not None
                and failure.code in EXPLAINING_CODES.get(injection.kind, frozenset())
                and failure.sent <= injection.at + window
                and failure.done >= injection.at
            ):
                left[index] -= 1
                explained.append(failure)
                break
        else:
            unexplained.append(failure)
    return explained, unexplained


@dataclass(frozen=True)
class Tolerance:
    """Growth allowed between the first and the last third: more than ``absolute`` *and* more
    than ``share`` of the first third's median is growth."""

    absolute: float
    share: float


@dataclass(frozen=True)
class Growth:
    first: float
    last: float
    grew: bool
    #: Why there is no verdict (too few samples), else empty.
    problem: str = ""

    @property
    def change(self) -> float:
        return self.last - self.first


#: Samples needed after the settle time for a verdict (one per third at least).
MIN_SAMPLES: Final = 3


def growth(
    samples: Sequence[tuple[float, float]], *, settle_until: float, tolerance: Tolerance
) -> Growth:
    """Whether ``samples`` ((time, value), time-ordered) grew after ``settle_until``.

    Too few samples for thirds is no pass: the growth counts as unknown and fails.
    """
    kept = [value for at, value in samples if at >= settle_until]
    if len(kept) < MIN_SAMPLES:
        return Growth(0.0, 0.0, True, f"{len(kept)} samples after the settle time")
    third = len(kept) // 3
    first = statistics.median(kept[:third])
    last = statistics.median(kept[-third:])
    change = last - first
    grew = change > tolerance.absolute and change > tolerance.share * first
    return Growth(first, last, grew)


def settle_seconds(soak_seconds: float) -> float:
    """The settle time left out of the growth rule: a fifth of the soak, at most 5 minutes."""
    return min(300.0, soak_seconds / 5)
