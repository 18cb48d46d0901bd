"""The gateway Protocol: what the OOTS exchange needs of the authority's eDelivery access point.

The exchange (``exchange.py``) and the answer store (``domibus/inbox.py``) talk to a gateway
through these Protocols only, never to a named implementation, so a second kind of access
point is a sibling module beside ``domibus/`` (e.g. a native AS4 one), chosen per authority
where gateways are opened (``access_points.open_gateway``):

- ``Submitter``: ``submit`` an ``OutgoingAs4`` (normally the evidence request); the answer is
  the MessageId the gateway took it under, normally the message's own. Submitting a
  MessageId the gateway already has must be refused, never sent twice;
- ``AnswerSource``: collect answers: ``pending`` lists the MessageIds received and not yet
  acknowledged, ``retrieve`` gives one without consuming it, ``acknowledge`` takes it off the
  pending list once the platform has stored it (``UpstreamNotFound`` when it is not pending
  any more, which callers read as "already done");
- ``Gateway``: both, ``status`` (the gateway's status of a MessageId, ``NOT_FOUND`` when it
  does not have it: how a submission whose outcome was not seen is settled), and ``close``
  (also as a context manager: a gateway may hold connections).

Every failure is one ``ServicePlatformError`` (SP-4xx for the gateway's), never a library
exception: the exchange decides on the error's class (down -> keep the request queued;
refused -> fail it).
"""

from __future__ import annotations

from types import TracebackType
from typing import Final, Protocol, Self

from integrations.oots.as4.model import OutgoingAs4, ReceivedAs4

#: ``Gateway.status`` of a MessageId the access point does not have.
NOT_FOUND: Final = "NOT_FOUND"


class Submitter(Protocol):
    """Hands a user message to the gateway."""

    def submit(self, message: OutgoingAs4) -> str: ...


class AnswerSource(Protocol):
    """Gives the messages the gateway received: list, retrieve, acknowledge once stored."""

    def pending(self, final_recipient: str | None = None) -> list[str]: ...

    def retrieve(self, message_id: str) -> ReceivedAs4: ...

    def acknowledge(self, message_id: str) -> None: ...


class Gateway(Submitter, AnswerSource, Protocol):
    """One access point as the OOTS exchange uses it; see the module docstring."""

    def status(self, message_id: str) -> str: ...

    def close(self) -> None: ...

    def __enter__(self) -> Self: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...
