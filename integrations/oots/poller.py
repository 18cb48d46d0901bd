"""The background poller: collects OOTS answers from Domibus while no call is waiting for one.

One daemon thread per server process runs ``OotsExchange.poll_once`` every
``poll_interval_seconds``: answers are stored (before Domibus is told they were downloaded),
applied to their requests and audited even when no case system asks, overdue requests fail,
and finished requests lose their documents after the retention period. Several processes
polling the same Domibus is safe (see ``exchange``). A failed round is logged and the next one
tries again; the thread stops with ``stop()`` (the platform application's ``close()``).
"""

from __future__ import annotations

import logging
import threading

from integrations.oots.exchange import OotsExchange
from serviceplatform.errors import ServicePlatformError

log = logging.getLogger(__name__)


class AnswerPoller:
    def __init__(self, exchange: OotsExchange, interval: float) -> None:
        if interval <= 0:
            raise ValueError("the poll interval must be positive")
        self._exchange = exchange
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="oots-answer-poller", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self._exchange.poll_once()
            except ServicePlatformError as error:
                log.warning("oots: polling Domibus failed: %s %s", error.code, error)
            except Exception:
                # The poller must outlive a bug in one round; the next round tries again.
                log.exception("oots: polling Domibus failed unexpectedly")
