"""The outbox relay: hands pending outbox rows to the message distributor, oldest first.

A row is marked delivered only after the distributor accepted it, so nothing is lost; a
crash in between delivers it again (at least once, under the same deterministic message id).
Rows go to the distributor a batch at a time (``deliver_batch``) and the accepted ones are
marked in one transaction per batch: one transaction per message kept a national night's
delivery at a few hundred messages a second.

Each batch is claimed (:meth:`Outbox.claim`): the relay delivers and marks it while the claim's
transaction holds the rows locked, so relays running at the same time (``subscriptions run``
and ``subscriptions deliver``, two ``deliver``, the scheduler) never hand a row over twice. A
relay that ends without committing (a crash, a lost database) leaves its rows pending for
the next round.

The batches go to the distributor as a stream (``Distributor.deliver_stream``): the relay
claims a batch when the distributor takes it and marks and commits it when its outcome comes.
Where one relay may hold two claims at once (PostgreSQL's row locks,
``Outbox.claims_overlap``) the distributor takes the next batch while the previous one's
answers are still coming (AMQP's window stays full across batches; the next claim starts
after the previous one's last row); on SQLite, whose claim holds the one writer lock, a batch
is claimed only after the previous one committed.

When the distributor cannot be reached the round stops at once (every later row would fail
the same way) and the rows wait for the next round; a row the distributor rejects keeps its
error text and stays pending, and the round goes on with the others (rows after it: a round
tries each row once).
"""

from __future__ import annotations

import contextlib
import logging
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime

from serviceplatform.distribution.base import BatchOutcome, Distributor, OutgoingMessage
from serviceplatform.errors import DistributorUnavailable
from serviceplatform.store.outbox import Claim, Outbox

log = logging.getLogger(__name__)


@dataclass
class RelayResult:
    delivered: int = 0
    rejected: int = 0
    #: True when the round stopped because the distributor could not be reached.
    unavailable: bool = False
    errors: list[str] = field(default_factory=list)


class OutboxRelay:
    def __init__(
        self,
        outbox: Outbox,
        distributor: Distributor,
        *,
        clock: Callable[[], datetime],
        topic: str | None = None,
        batch_size: int = 500,
    ) -> None:
        self._outbox = outbox
        self._distributor = distributor
        self._clock = clock
        self._topic = topic
        self._batch_size = batch_size

    def run(self, *, on_delivered: Callable[[int], None] | None = None) -> RelayResult:
        """Deliver until nothing is pending, the distributor is down or only rejects remain."""
        result = RelayResult()
        # The claims whose batches are with the distributor, oldest first (two at most).
        claims: deque[tuple[AbstractContextManager[Claim], Claim]] = deque()
        stream = self._distributor.deliver_stream(
            self._batches(claims), overlap=self._outbox.claims_overlap
        )
        try:
            for outcome in stream:
                manager, claim = claims[0]
                accepted = self._settle(claim, outcome, result)
                claims.popleft()
                manager.__exit__(None, None, None)  # commits the marks
                # Counted once the claim committed: a rolled-back batch was not delivered.
                result.delivered += len(accepted)
                if on_delivered is not None and accepted:
                    on_delivered(len(accepted))
        except BaseException as error:
            stream.close()
            # Every claim still open rolls back: its rows are pending again, never lost.
            while claims:
                manager, _ = claims.popleft()
                with contextlib.suppress(Exception):
                    manager.__exit__(type(error), error, error.__traceback__)
            raise
        return result

    def _batches(
        self, claims: deque[tuple[AbstractContextManager[Claim], Claim]]
    ) -> Iterator[list[OutgoingMessage]]:
        """Claims batch after batch, as the distributor takes them; ends when none is pending."""
        after = 0
        while True:
            manager = self._outbox.claim(limit=self._batch_size, topic=self._topic, after=after)
            claim = manager.__enter__()
            if not claim.rows:
                manager.__exit__(None, None, None)
                return
            claims.append((manager, claim))
            after = claim.rows[-1].id
            yield [
                OutgoingMessage(
                    besked_id=row.message_id,
                    authority_cvr=row.authority_cvr,
                    body=row.body.encode("utf-8"),
                )
                for row in claim.rows
            ]

    def _settle(self, claim: Claim, outcome: BatchOutcome, result: RelayResult) -> list[int]:
        """Marks the claim's rows by the distributor's answer; returns the delivered ones."""
        batch = claim.rows
        accepted = [
            row.id for index, row in enumerate(batch) if index in outcome and outcome[index] is None
        ]
        claim.mark_delivered(accepted, self._clock())
        for index, error in sorted(outcome.items()):
            row = batch[index]
            if isinstance(error, DistributorUnavailable):
                claim.mark_failed(row.id, error.error_text)
                result.unavailable = True
                result.errors.append(error.error_text)
                # Row ids, not message ids: those are derived from a CPR number.
                log.warning("distributor unavailable; outbox row %d waits: %s", row.id, error)
            elif error is not None:
                claim.mark_failed(row.id, error.error_text)
                result.rejected += 1
                result.errors.append(f"outbox row {row.id}: {error.error_text}")
                log.warning("distributor rejected outbox row %d: %s", row.id, error)
        return accepted
