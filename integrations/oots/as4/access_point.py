"""``As4Gateway``: the native AS4 access point as the ``Gateway`` the OOTS exchange talks to.

The exchange (``integrations.oots.exchange``) submits requests and collects answers through the
``gateway.Gateway`` Protocol; this is its AS4 implementation beside the Domibus WS plugin:

- ``submit``: ``As4Sender.send`` (packed, pushed, receipt checked); the MessageId is the
  message's own. By default one attempt per call (``RetrySchedule`` ``SEND_ONCE``): a call of the
  exchange must not block for the PMode's 12 minutes. No valid receipt raises
  ``As4ReceiptMissing``, an ``UpstreamUnavailable`` to the exchange, which keeps the request
  queued and sends the very same message (same MessageId) again from its poller: the PMode's
  retries happen there, and the partner's duplicate detection makes a repeat harmless. An
  ``eb:Error`` (``As4ErrorSignal``) fails the request;
- ``pending``/``retrieve``/``acknowledge``: nothing to collect. Partners *push* their answers to
  the receiving endpoint (``receiver.As4ReceiverApp``), which stores them in ``oots_messages``
  before answering, where the exchange finds them as it finds the Domibus push's;
- ``status``: ``RECEIPTED`` for a MessageId this process got a receipt for, else ``NOT_FOUND``
  (an AS4 sender cannot ask a partner; resending is safe, see above).
"""

from __future__ import annotations

import threading
from types import TracebackType
from typing import Final, Self

from integrations.oots.as4.model import OutgoingAs4, ReceivedAs4
from integrations.oots.as4.sender import As4Sender
from integrations.oots.gateway import NOT_FOUND
from serviceplatform.errors import UpstreamNotFound

RECEIPTED: Final = "RECEIPTED"


class As4Gateway:
    """The ``Gateway`` of an authority whose access point is the platform itself."""

    #: MessageIds receipted in this process (for ``status``), shared by every gateway object.
    _receipted: set[str] = set()
    _lock = threading.Lock()

    def __init__(self, sender: As4Sender) -> None:
        self.sender = sender

    def submit(self, message: OutgoingAs4) -> str:
        result = self.sender.send(message)
        with self._lock:
            self._receipted.add(result.message_id)
        return result.message_id

    def status(self, message_id: str) -> str:
        with self._lock:
            return RECEIPTED if message_id in self._receipted else NOT_FOUND

    def pending(self, final_recipient: str | None = None) -> list[str]:
        return []

    def retrieve(self, message_id: str) -> ReceivedAs4:
        raise UpstreamNotFound(f"{message_id}: AS4 answers are pushed and stored on receipt")

    def acknowledge(self, message_id: str) -> None:
        raise UpstreamNotFound(f"{message_id}: AS4 answers are pushed and stored on receipt")

    def close(self) -> None:
        pass

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
