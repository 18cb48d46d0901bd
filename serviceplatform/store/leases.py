"""Job leases: one process runs a named job (one night's run) at a time, crashes recover.

:meth:`LeaseStore.acquire` takes the lease when nobody holds it, when the holder's lease
ran out (the holder crashed: its run is resumed), or when the caller holds it already. A
finished lease stays finished: the job for that name is done. The holder renews while it
works; a run that stops early without finishing releases the lease so the next run resumes.

Races are decided by the database: ``INSERT ... ON CONFLICT DO NOTHING``, then the row
read ``FOR UPDATE``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite

from serviceplatform.store.db import Database
from serviceplatform.store.models import HOLDER_LEN, job_leases

Outcome = Literal["acquired", "resumed", "held", "finished"]


@dataclass(frozen=True)
class Lease:
    name: str
    holder: str
    acquired_at: datetime
    lease_until: datetime
    finished_at: datetime | None


class LeaseStore:
    def __init__(self, db: Database) -> None:
        self._db = db
        self._insert = postgresql.insert if db.dialect == "postgresql" else sqlite.insert

    def acquire(self, name: str, holder: str, now: datetime, ttl: timedelta) -> Outcome:
        """``acquired`` (new), ``resumed`` (taken over), ``held`` (someone else) or ``finished``."""
        holder = holder[:HOLDER_LEN]
        with self._db.transaction(write_first=True) as connection:
            inserted = connection.execute(
                self._insert(job_leases)
                .values(name=name, holder=holder, acquired_at=now, lease_until=now + ttl)
                .on_conflict_do_nothing(index_elements=[job_leases.c.name])
                .returning(job_leases.c.name)
            ).first()
            if inserted is not None:
                return "acquired"
            row = connection.execute(
                select(job_leases).where(job_leases.c.name == name).with_for_update()
            ).one()
            if row.finished_at is not None:
                return "finished"
            if row.holder != holder and row.lease_until > now:
                return "held"
            connection.execute(
                update(job_leases)
                .where(job_leases.c.name == name)
                .values(holder=holder, acquired_at=now, lease_until=now + ttl)
            )
            return "resumed"

    def renew(self, name: str, holder: str, now: datetime, ttl: timedelta) -> bool:
        """Extend the lease; False when the caller no longer holds it."""
        with self._db.transaction(write_first=True) as connection:
            result = connection.execute(
                update(job_leases)
                .where(
                    job_leases.c.name == name,
                    job_leases.c.holder == holder[:HOLDER_LEN],
                    job_leases.c.finished_at.is_(None),
                )
                .values(lease_until=now + ttl)
            )
            return bool(result.rowcount)

    def finish(self, name: str, holder: str, now: datetime) -> None:
        self._end(name, holder, finished_at=now, lease_until=now)

    def release(self, name: str, holder: str, now: datetime) -> None:
        """Give the lease up unfinished: the next run may take it at once."""
        self._end(name, holder, lease_until=now)

    def get(self, name: str) -> Lease | None:
        with self._db.transaction() as connection:
            row = connection.execute(select(job_leases).where(job_leases.c.name == name)).first()
        if row is None:
            return None
        return Lease(row.name, row.holder, row.acquired_at, row.lease_until, row.finished_at)

    def _end(self, name: str, holder: str, **values: datetime) -> None:
        with self._db.transaction(write_first=True) as connection:
            connection.execute(
                update(job_leases)
                .where(job_leases.c.name == name, job_leases.c.holder == holder[:HOLDER_LEN])
                .values(**values)
            )
