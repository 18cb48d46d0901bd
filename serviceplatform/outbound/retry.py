"""The retry arithmetic every outward client shares: doubling pauses within a time budget.

A client repeats a failed attempt only for the failures it deems worth it; how long it pauses
before attempt ``n + 1``, and whether enough of the call's budget would be left for that
attempt to finish, are the same for all of them.
"""

from __future__ import annotations

from typing import Final

#: Retrying makes no sense when less than this is left of the budget.
MIN_ATTEMPT_SECONDS: Final = 0.05


def backoff_pause(base_seconds: float, attempt: int) -> float:
    """The pause after failed attempt ``attempt`` (1 for the first): ``base_seconds`` doubled
    for each attempt before it."""
    return float(base_seconds * 2 ** (attempt - 1))


def time_for_another(base_seconds: float, attempt: int, deadline: float, now: float) -> bool:
    """Whether, after the pause that follows ``attempt``, at least :data:`MIN_ATTEMPT_SECONDS`
    is left before ``deadline`` (both on the same monotonic clock as ``now``)."""
    return deadline - now - backoff_pause(base_seconds, attempt) >= MIN_ATTEMPT_SECONDS


def attempt_seconds(deadline: float, now: float) -> float:
    """The time one attempt may take: what is left of the budget, but never less than
    :data:`MIN_ATTEMPT_SECONDS` (the attempt that finds the budget spent still gets to try)."""
    return max(deadline - now, MIN_ATTEMPT_SECONDS)
