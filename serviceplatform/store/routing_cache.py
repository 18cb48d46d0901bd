"""Route calls from an in-memory copy of the routing data, checked against the database per call.

Routing one call used to read its consumer system, agreements and SysIDs from the database
(three indexed SELECTs in one transaction, ~0.3 ms of CPU through SQLAlchemy). These tables
change a few times a day, so each process now keeps all of them in memory, indexed for the
lookups a call makes (:class:`RoutingSnapshot`), and per call reads only the routing version:
one row that triggers bump in the transaction of every write to ``consumer_systems``,
``system_certificates``, ``agreements`` or ``routes`` (migrations 0006 and 0008).
A version other than the copy's means reload.

Why this keeps "a change takes effect on the next call in every process": the version and the
change commit together, and every call reads the version before it routes, so a call that
starts after the commit sees the new number and reloads. No time-to-live, no notification
that could be missed: a process that missed nothing pays one single-row SELECT per call.

That SELECT rides on the call's replay-cache insert (:class:`VersionHandoff`): the insert's
``RETURNING`` also reads the version, in the same statement and transaction, and routing takes
that number instead of asking again. The insert runs during the call, after its request
arrived, so a change committed before the call began is still seen; the call saves a
database round trip and a pool checkout.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable

from serviceplatform.errors import StorageError
from serviceplatform.routing.model import Agreement, RouteRow
from serviceplatform.store.db import Database
from serviceplatform.store.repository import (
    VERSION_QUERY,
    VERSION_ROW,
    CallFacts,
    RoutingData,
    RoutingRepository,
)


class VersionHandoff:
    """The routing version read by a call's replay insert, handed to that call's routing.

    Per thread and tied to the MessageID the insert accepted: routing takes it only for the
    same MessageID (an accepted MessageID is unique), and only once, so a number left behind
    by a call that never routed can never stand in for another call's read.
    """

    def __init__(self) -> None:
        self._local = threading.local()

    def offer(self, message_id: str, version: int | None) -> None:
        self._local.offered = (message_id, version)

    def take(self, message_id: str | None) -> int | None:
        """The version offered for ``message_id`` in this thread, once; else None."""
        offered: tuple[str, int | None] | None = getattr(self._local, "offered", None)
        self._local.offered = None
        if offered is None or message_id is None or offered[0] != message_id:
            return None
        return offered[1]


_AgreementKey = tuple[str, str, str]  # authority, service, consumer system
_RouteKey = tuple[str, str, str]  # authority, service, subject ('' for authority-wide)


class RoutingSnapshot:
    """The routing data of one version, indexed for ``facts``; immutable once built."""

    def __init__(self, data: RoutingData) -> None:
        self.version = data.version
        systems = {system.uuid: system for system in data.consumer_systems}
        self._certificates = {
            certificate.fingerprint: (certificate, systems[certificate.consumer_system])
            for certificate in data.certificates
        }
        self._agreements = _group_agreements(data.agreements)
        self._sysids = _group_routes(data.routes)

    def facts(
        self, *, holder_fingerprint: str, authority_cvr: str, service: str, subject: str | None
    ) -> CallFacts:
        """What ``RoutingRepository.call_facts`` would read from the database at this version.

        Fresh lists and dicts every time: callers may change what they get.
        """
        found = self._certificates.get(holder_fingerprint)
        if found is None:
            return CallFacts(None, None, [], {})
        certificate, system = found
        agreements = list(self._agreements.get((authority_cvr, service, system.uuid), ()))
        # Authority-wide SysIDs first, then the subject's own rows override them.
        sysids = dict(self._sysids.get((authority_cvr, service, ""), {}))
        if subject:
            sysids.update(self._sysids.get((authority_cvr, service, subject), {}))
        return CallFacts(system, certificate, agreements, sysids)


def _group_agreements(items: Iterable[Agreement]) -> dict[_AgreementKey, tuple[Agreement, ...]]:
    grouped: dict[_AgreementKey, list[Agreement]] = {}
    for agreement in items:
        key = (agreement.authority_cvr, agreement.service, agreement.consumer_system)
        grouped.setdefault(key, []).append(agreement)
    return {key: tuple(found) for key, found in grouped.items()}


def _group_routes(rows: Iterable[RouteRow]) -> dict[_RouteKey, dict[str, str]]:
    grouped: dict[_RouteKey, dict[str, str]] = {}
    for row in rows:
        grouped.setdefault((row.authority_cvr, row.service, row.subject or ""), {})[row.role] = (
            row.sysid
        )
    return grouped


class RoutingCache:
    """Per-process routing data, reloaded when the database's routing version moves."""

    def __init__(
        self,
        db: Database,
        repository: RoutingRepository,
        handoff: VersionHandoff | None = None,
    ) -> None:
        self._db = db
        self._repository = repository
        self._handoff = handoff
        self._version_query = db.prepare(VERSION_QUERY)
        self._snapshot: RoutingSnapshot | None = None
        self._lock = threading.Lock()

    def version(self) -> int:
        """The database's routing version now (one single-row SELECT)."""
        rows = self._db.run(self._version_query, VERSION_ROW)
        if not rows or rows[0][0] is None:
            raise StorageError("the routing version row is missing: migrate the database")
        return int(rows[0][0])

    def call_facts(
        self,
        *,
        holder_fingerprint: str,
        authority_cvr: str,
        service: str,
        subject: str | None,
        message_id: str | None = None,
    ) -> CallFacts:
        """The facts one call is routed by, as the database holds them now.

        ``message_id``: the call's accepted MessageID, whose replay insert may have read the
        version already (``VersionHandoff``); else the version is read here.
        """
        seen = self._handoff.take(message_id) if self._handoff is not None else None
        if seen is None:
            seen = self.version()
        snapshot = self._snapshot
        if snapshot is None or snapshot.version != seen:
            snapshot = self._reload(seen)
        return snapshot.facts(
            holder_fingerprint=holder_fingerprint,
            authority_cvr=authority_cvr,
            service=service,
            subject=subject,
        )

    def _reload(self, seen: int) -> RoutingSnapshot:
        # One thread reloads; the others wait and take its copy. The copy may be newer than
        # ``seen`` (a change committed meanwhile), never older: it is read after ``seen``.
        with self._lock:
            current = self._snapshot
            if current is not None and current.version == seen:
                return current
            snapshot = RoutingSnapshot(self._repository.routing_data())
            self._snapshot = snapshot
            return snapshot
