"""Keep the sandbox's routes in step with the routing table files while it runs.

In the sandbox the files in ``routing_tables/`` are the source of truth: edit one and the
running platform routes by it a moment later, without a restart. A file that fails validation
changes nothing; the errors (file and line) are logged and the previous table stays in force.
In production the same step is the explicit, reviewed ``serviceplatform routing import``.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Mapping
from pathlib import Path

from serviceplatform.errors import ServicePlatformError
from serviceplatform.routing_files import load_directory
from serviceplatform.store.db import Database
from serviceplatform.store.repository import RouteChange, RoutingRepository

log = logging.getLogger(__name__)


def fingerprint(directory: Path) -> str:
    """A digest of every routing table file's name and content."""
    digest = hashlib.sha256()
    for path in sorted(directory.glob("*.csv")):
        digest.update(path.name.encode() + b"\0")
        try:
            digest.update(path.read_bytes())
        except OSError:
            digest.update(b"<unreadable>")
    return digest.hexdigest()


class RoutingWatcher:
    """Loads ``directory`` into the database whenever its files change (polling)."""

    def __init__(
        self,
        directory: Path,
        database: Database,
        known_services: Mapping[str, frozenset[str]],
        *,
        interval: float = 2.0,
    ) -> None:
        self.directory = directory
        self.repository = RoutingRepository(database)
        self.known_services = known_services
        self.interval = interval
        self._seen: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="routing-watch", daemon=True)

    def sync(self) -> RouteChange | None:
        """Load the files if they changed since the last sync; None when nothing was loaded."""
        current = fingerprint(self.directory)
        if current == self._seen:
            return None
        self._seen = current
        try:
            change = self.repository.replace_routes(
                load_directory(self.directory, self.known_services)
            )
        except ServicePlatformError as error:
            log.error("routing table not reloaded, the old one stays: %s", error.error_text)
            return None
        log.info(
            "routing table reloaded from %s: %d added, %d removed, %d changed",
            self.directory,
            change.added,
            change.removed,
            change.changed,
        )
        return change

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(self.interval + 5)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.sync()
