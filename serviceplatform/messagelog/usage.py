"""The usage overview: calls per day, authority and service, with error rate and p95 latency.

Read from the audit table (the administrators' own records, service ``admin``, are left
out); days are UTC days. PostgreSQL aggregates in SQL (``percentile_cont``); SQLite, which
has no percentile function, hands the rows of the period to Python, which computes the same
interpolated percentile, so both answer alike.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Final

from sqlalchemy import Date, case, cast, func, select

from serviceplatform.store.db import Database
from serviceplatform.store.models import audit_records

#: The administrators' changes are audited as calls of this service; they are not usage.
ADMIN_SERVICE: Final = "admin"
PERCENTILE: Final = 0.95


@dataclass(frozen=True)
class UsageRow:
    day: date
    authority_cvr: str | None
    service: str
    calls: int
    faults: int
    p95_ms: float

    @property
    def error_rate(self) -> float:
        return self.faults / self.calls if self.calls else 0.0


def percentile(values: Sequence[float], fraction: float) -> float:
    """The interpolated percentile of sorted ``values``, as PostgreSQL's ``percentile_cont``."""
    if not values:
        return 0.0
    position = fraction * (len(values) - 1)
    low, high = math.floor(position), math.ceil(position)
    return values[low] + (values[high] - values[low]) * (position - low)


def usage(
    db: Database, *, now: datetime, days: int = 30, authority_cvr: str | None = None
) -> list[UsageRow]:
    """The last ``days`` days up to ``now`` (today included), newest day first."""
    first = (now - timedelta(days=days - 1)).date()
    since = datetime.combine(first, datetime.min.time(), tzinfo=now.tzinfo)
    c = audit_records.c
    where = [c.at >= since, c.service != ADMIN_SERVICE]
    if authority_cvr is not None:
        where.append(c.authority_cvr == authority_cvr)
    aggregate = _postgres if db.dialect == "postgresql" else _in_python
    rows = aggregate(db, where)
    return sorted(rows, key=lambda r: (r.day, r.authority_cvr or "", r.service), reverse=True)


def _postgres(db: Database, where: list[Any]) -> list[UsageRow]:
    c = audit_records.c
    day = cast(func.timezone("UTC", c.at), Date).label("day")
    statement = (
        select(
            day,
            c.authority_cvr,
            c.service,
            func.count().label("calls"),
            func.sum(case((c.outcome == "fault", 1), else_=0)).label("faults"),
            func.percentile_cont(PERCENTILE).within_group(c.latency_ms).label("p95"),
        )
        .where(*where)
        .group_by(day, c.authority_cvr, c.service)
    )
    with db.transaction() as connection:
        return [
            UsageRow(r.day, r.authority_cvr, r.service, r.calls, int(r.faults), float(r.p95))
            for r in connection.execute(statement)
        ]


def _in_python(db: Database, where: list[Any]) -> list[UsageRow]:
    c = audit_records.c
    statement = select(c.at, c.authority_cvr, c.service, c.outcome, c.latency_ms).where(*where)
    groups: dict[tuple[date, str | None, str], list[tuple[str, float]]] = defaultdict(list)
    with db.transaction() as connection:
        for at, authority, service, outcome, latency in connection.execute(statement):
            groups[(at.date(), authority, service)].append((outcome, latency))
    found = []
    for (day, authority, service), calls in groups.items():
        latencies = sorted(latency for _, latency in calls)
        faults = sum(1 for outcome, _ in calls if outcome == "fault")
        found.append(
            UsageRow(day, authority, service, len(calls), faults, percentile(latencies, PERCENTILE))
        )
    return found


def usage_json(rows: Sequence[UsageRow], *, first: date, last: date) -> dict[str, Any]:
    """The API's answer: the rows, and per day the totals the page's chart draws."""
    per_day: dict[date, list[int]] = {}
    day = first
    while day <= last:
        per_day[day] = [0, 0]
        day += timedelta(days=1)
    for row in rows:
        totals = per_day.setdefault(row.day, [0, 0])
        totals[0] += row.calls
        totals[1] += row.faults
    return {
        "from": first.isoformat(),
        "to": last.isoformat(),
        "rows": [
            {
                "day": r.day.isoformat(),
                "authority_cvr": r.authority_cvr,
                "service": r.service,
                "calls": r.calls,
                "faults": r.faults,
                "error_rate": round(r.error_rate, 4),
                "p95_ms": round(r.p95_ms, 1),
            }
            for r in rows
        ],
        "days": [
            {"day": d.isoformat(), "calls": calls, "faults": faults}
            for d, (calls, faults) in sorted(per_day.items())
        ],
    }
