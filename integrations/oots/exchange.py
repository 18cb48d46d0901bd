"""The OOTS evidence exchange: submit requests through a gateway, collect and apply the answers.

``OotsExchange`` is the integration's one stateful object per server process. It talks to the
authority's access point through the ``Gateway`` Protocol (``gateway.py``) only; which gateway
an access point has is decided in ``access_points.open_gateway`` (the Domibus WS plugin, whose
operations are named below in brackets, or the native AS4 access point).

- ``submit_first`` records the AS4 message (``oots_messages``) and the ``oots_requests`` row
  (``queued``), then hands the message to the gateway (``submitMessage``): whatever answer
  arrives can be correlated. Accepted, the row is ``submitted``. A gateway that is down
  (unreachable, timeout, 5xx) leaves it ``queued``: the caller gets ``Afventer`` and the poller
  sends the very same message (same MessageId) once the gateway answers again. A timeout may hide an
  accepted submission, so a resend first asks the gateway (``getStatus``) whether it has the
  message: a gateway refuses a MessageId twice, and nothing is sent twice. A refusal
  (``UpstreamRejected``...) fails the request at once;
- ``submit_second`` re-reads the first request from ``oots_messages``, adds the preview
  location (and at v2.0 the return location) under a new request id, and submits it in the
  same conversation;
- ``collect`` downloads pending answers (retrieve -> store -> acknowledge, ``DomibusInbox``);
  ``refresh`` applies the answer to a request (``answer_for(ref_to_message_id=...)``:
  RefToMessageId, else the first answer of the conversation after the request), one
  conditional update, and the process that moved the row writes the audit record of the
  answer (never the document: the evidence stays in ``oots_messages``);
- ``poll_once`` is what the background poller runs: resend queued requests, collect, refresh
  every submitted request, fail the overdue ones, purge finished requests past their
  retention.

Several processes may do all of this at once: storage is idempotent per MessageId, a
transition happens once (``RequestStore.move``), an acknowledgement twice is harmless.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Final

from integrations.oots import SERVICE_KEY
from integrations.oots.access_points import (
    AccessPoint,
    access_point_for,
    access_points,
    open_gateway,
    platform_access_point,
)
from integrations.oots.as4.model import (
    ACTION_REQUEST,
    OutgoingAs4,
    ReceivedAs4,
    TypedId,
    new_content_id,
    new_message_id,
)
from integrations.oots.domibus import DomibusInbox
from integrations.oots.edm import (
    EdmError,
    EdmParseError,
    EdmVersion,
    Evidence,
    EvidenceRequest,
    LocalizedText,
    PreviewRequired,
    build_query_request,
    parse_query_request,
    parse_query_response,
)
from integrations.oots.errors import (
    OotsAnswerOverdue,
    OotsAnswerUnreadable,
    OotsEdmError,
    OotsError,
    OotsEvidenceExpired,
    OotsNoPreviewPending,
    OotsNotDelivered,
)
from integrations.oots.gateway import NOT_FOUND, Gateway
from integrations.oots.request_store import (
    ANSWERED,
    FAILED,
    PREVIEW_REQUIRED,
    QUEUED,
    SUBMITTED,
    RequestRecord,
    RequestStore,
)
from integrations.oots.settings import OOTS_SETTINGS, OotsSettings
from serviceplatform.config import Settings
from serviceplatform.errors import (
    ResendRefused,
    ServicePlatformError,
    StorageError,
    UpstreamTimeout,
    UpstreamUnavailable,
    UpstreamUnreachable,
    rebuild_error,
)
from serviceplatform.outbound.certstore import CertificateStore
from serviceplatform.store.audit import AuditEntry, AuditLog
from serviceplatform.store.db import Database

log = logging.getLogger(__name__)

#: The audit operation of an answer that arrived from a provider.
ANSWER_OPERATION: Final = "Bevissvar"
#: The media types of the OOTS code list (``OOTSMediaTypes``) the platform hands out.
MEDIA_TYPES: Final = frozenset(
    {
        "application/pdf",
        "application/xml",
        "application/json",
        "image/png",
        "image/jpeg",
        "image/svg+xml",
    }
)
#: Collections from a waiting call are at most this often (others read the database).
_COLLECT_EVERY: Final = 0.1
#: The audit operation of a queued request handed to the gateway later, or given up.
DELIVERY_OPERATION: Final = "Bevisanmodning"
#: Failures that mean "the gateway is down" (or may have taken it): keep the request queued.
_GATEWAY_DOWN: Final = (UpstreamUnreachable, UpstreamTimeout, UpstreamUnavailable)


def edm_fault(error: EdmError) -> OotsEdmError:
    """The platform error of a provider's ``EDM:ERR:000x`` answer (SP-701..708, else 709)."""
    detail = error.detail or error.message
    for cls in OotsEdmError.__subclasses__():
        if cls.edm_code is not None and cls.edm_code == error.code:
            return cls(detail)
    return OotsEdmError(f"{error.code or 'no code'}: {detail}" if detail else error.code)


@dataclass(frozen=True)
class Destination:
    """Where a request goes: the provider's access point (the ebMS ``To`` party)."""

    to_party: str
    provider_id: str
    provider_scheme: str


@dataclass(frozen=True)
class Outcome:
    """A request's state with what the caller may see of its answer."""

    record: RequestRecord
    preview: PreviewRequired | None = None
    evidence: Evidence | None = None
    error: ServicePlatformError | None = None


class OotsExchange:
    def __init__(
        self,
        db: Database,
        audit: AuditLog,
        settings: OotsSettings,
        *,
        clock: Callable[[], datetime],
        path: Callable[[str], Path] = Path,
        client_factory: Callable[[AccessPoint], Gateway] | None = None,
        certificates: CertificateStore | None = None,
    ) -> None:
        self._db = db
        self._audit = audit
        #: The AS4 access points' keys (``[certificates] directory``).
        self._certificates = certificates
        self.settings = settings
        self._clock = clock
        #: Resolves a configured file name (``Settings.path``: against the settings' directory).
        self._path = path
        self.inbox = DomibusInbox(db, clock=clock)
        self.store = RequestStore(db)
        #: Opens the gateway of an access point (tests give doubles).
        self._client_factory = client_factory or self._open_gateway
        #: One long-lived gateway per access point answers are collected from.
        self._collectors: dict[AccessPoint, Gateway] = {}
        self._collect_lock = threading.Lock()
        self._last_collect = 0.0

    @classmethod
    def from_settings(
        cls, db: Database, audit: AuditLog, settings: Settings, clock: Callable[[], datetime]
    ) -> OotsExchange:
        certificates = CertificateStore(settings.path(settings.certificates.directory), clock=clock)
        return cls(
            db,
            audit,
            settings.section(OOTS_SETTINGS),
            clock=clock,
            path=settings.path,
            certificates=certificates,
        )

    # --- the gateways ------------------------------------------------------------------------

    @property
    def configured(self) -> bool:
        """Whether any access point is configured (the poller has somewhere to collect)."""
        return bool(access_points(self.settings))

    def configured_for(self, authority_cvr: str) -> bool:
        return access_point_for(self.settings, authority_cvr).configured

    def _open_gateway(self, point: AccessPoint) -> Gateway:
        return open_gateway(
            point,
            self.settings,
            path=self._path,
            certificates=self._certificates,
            audit=self._audit,
            clock=self._clock,
        )

    def new_client(self, authority_cvr: str | None = None) -> Gateway:
        """A gateway of its own (a Domibus client with its own transport) for the access
        point of ``authority_cvr`` (None: the platform's)."""
        if authority_cvr is None:
            return self._client_factory(platform_access_point(self.settings))
        return self._client_factory(access_point_for(self.settings, authority_cvr))

    def close(self) -> None:
        with self._collect_lock:
            for client in self._collectors.values():
                client.close()
            self._collectors.clear()

    # --- submitting --------------------------------------------------------------------------

    def submit_first(
        self,
        request: EvidenceRequest,
        destination: Destination,
        *,
        authority_cvr: str,
        consumer_system: str | None,
    ) -> RequestRecord:
        """Record and submit a first request; its ``request_id`` is the platform's id."""
        message = self._message(request, destination, uuid.uuid4(), authority_cvr)
        now = self._clock()
        record = RequestRecord(
            request_id=str(request.request_id),
            authority_cvr=authority_cvr,
            consumer_system=consumer_system,
            conversation_id=str(message.conversation_id),
            first_message_id=message.message_id,
            message_id=message.message_id,
            provider_id=destination.provider_id,
            provider_scheme=destination.provider_scheme,
            to_party=destination.to_party,
            edm_version=request.version.value,
            state=QUEUED,
            created_at=now,
            updated_at=now,
        )
        # A client per submission (made before anything is written: a configuration error
        # leaves no record): a submit goes on a fresh connection anyway.
        with self.new_client(authority_cvr) as client:
            self.inbox.record_outgoing(message)  # first: a queued row can always be resent
            self.store.add(record)
            return self._send(client, record, message)

    def submit_second(self, record: RequestRecord, *, return_location: str | None) -> RequestRecord:
        """The request after the user's preview, in the same conversation."""
        if record.state != PREVIEW_REQUIRED or not record.preview_location:
            raise OotsNoPreviewPending(f"request {record.request_id} is {record.state}")
        first = self.inbox.outgoing(record.first_message_id)
        if first is None:
            raise OotsEvidenceExpired(f"the first request of {record.request_id} is gone")
        try:
            request = parse_query_request(first.payload)
        except EdmParseError as exc:
            raise OotsEvidenceExpired(f"the first request cannot be read: {exc}") from exc
        second = replace(
            request,
            request_id=uuid.uuid4(),
            issue_datetime=self._clock(),
            preview_location=record.preview_location,
            return_location=return_location if request.version is EdmVersion.V2_0 else None,
        )
        destination = Destination(record.to_party, record.provider_id, record.provider_scheme)
        message = self._message(
            second, destination, uuid.UUID(record.conversation_id), record.authority_cvr
        )
        with self.new_client(record.authority_cvr) as client:
            return self._resubmit(client, record, message)

    def _resubmit(
        self, client: Gateway, record: RequestRecord, message: OutgoingAs4
    ) -> RequestRecord:
        now = self._clock()
        self.inbox.record_outgoing(message)
        if not self.store.move(
            record,
            from_state=PREVIEW_REQUIRED,
            now=now,
            state=QUEUED,
            message_id=message.message_id,
        ):
            raise OotsNoPreviewPending(f"request {record.request_id} was sent again meanwhile")
        moved = replace(record, state=QUEUED, message_id=message.message_id, updated_at=now)
        return self._send(client, moved, message)

    def resend_failed(self, record: RequestRecord, *, actor: str) -> RequestRecord:
        """A failed request once more, as an operator asked (the message log's resend).

        The recorded request goes out again under a new MessageId in the same conversation
        (a gateway refuses a MessageId twice); the row moves ``failed`` -> ``queued`` and is
        submitted like a first request: ``submitted``, still ``queued`` while the gateway is
        down (the poller goes on), or ``failed`` again with the new refusal. Audited.
        """
        if record.state != FAILED:
            raise ResendRefused(f"request {record.request_id} is {record.state}, not failed")
        recorded = self.inbox.outgoing(record.message_id)
        if recorded is None:
            raise ResendRefused(f"the recorded request of {record.request_id} is gone")
        now = self._clock()
        message = replace(
            recorded, message_id=new_message_id(), payload_id=new_content_id(), timestamp=now
        )
        with self.new_client(record.authority_cvr) as client:
            self.inbox.record_outgoing(message)
            cleared = {"error_code": None, "edm_error_code": None, "error_text": None}
            if not self.store.move(
                record,
                from_state=FAILED,
                now=now,
                state=QUEUED,
                message_id=message.message_id,
                **cleared,
            ):
                raise ResendRefused(f"request {record.request_id} changed meanwhile")
            moved = replace(
                record,
                state=QUEUED,
                message_id=message.message_id,
                updated_at=now,
                error_code=None,
                edm_error_code=None,
                error_text=None,
            )
            self._audit_event(
                moved,
                DELIVERY_OPERATION,
                f"request {record.request_id}: resent by {actor} (was {record.message_id})",
                now=now,
                since=now,
            )
            try:
                return self._send(client, moved, message)
            except StorageError:
                raise
            except ServicePlatformError as error:
                self._audit_delivery(moved, "refused by the gateway", error)
                return self.store.get(record.request_id) or moved

    def _message(
        self,
        request: EvidenceRequest,
        destination: Destination,
        conversation: uuid.UUID,
        authority_cvr: str,
    ) -> OutgoingAs4:
        try:
            payload = build_query_request(request)
        except ValueError as exc:
            raise OotsError(f"the EDM request cannot be built: {exc}") from exc
        return OutgoingAs4(
            conversation_id=conversation,
            from_party=access_point_for(self.settings, authority_cvr).party_id,
            to_party=destination.to_party,
            original_sender=TypedId(request.requester.identifier, request.requester.scheme),
            final_recipient=TypedId(destination.provider_id, destination.provider_scheme),
            action=ACTION_REQUEST,
            payload=payload,
        )

    def _send(
        self,
        client: Gateway,
        record: RequestRecord,
        message: OutgoingAs4,
        *,
        resend: bool = False,
    ) -> RequestRecord:
        """Submit a queued request: ``submitted``, or still ``queued`` while the gateway is
        down; a refusal fails the request and is raised."""
        try:
            self.inbox.send_recorded(client, message)  # every caller recorded it first
        except StorageError:
            raise  # our database, not the gateway: the request stays as it was
        except ServicePlatformError as error:
            if isinstance(error, _GATEWAY_DOWN):
                log.warning(
                    "oots: request %s stays queued, the gateway failed: %s %s",
                    record.request_id,
                    error.code,
                    error,
                )
                return record
            if resend and self._taken(client, record):
                # Another process resent it a moment earlier: Domibus refuses the MessageId
                # a second time, which is not a refusal of the request.
                return self._submitted(record)
            self.store.move(
                record,
                from_state=QUEUED,
                now=self._clock(),
                state=FAILED,
                error_code=error.code,
                error_text=error.error_text,
            )
            raise
        return self._submitted(record)

    def _submitted(self, record: RequestRecord) -> RequestRecord:
        now = self._clock()
        if self.store.move(record, from_state=QUEUED, now=now, state=SUBMITTED):
            return replace(record, state=SUBMITTED, updated_at=now)
        return self.store.get(record.request_id) or record  # another process moved it

    def send_queued(self) -> None:
        """Hand the requests queued while the gateway was down to it, oldest first.

        An access point that shows it is still down is skipped for the rest of the round; a
        request queued for longer than ``answer_timeout_seconds`` fails with SP-723 and is
        audited.
        """
        now = self._clock()
        settle = timedelta(seconds=self.settings.resend_after_seconds)
        give_up = timedelta(seconds=self.settings.answer_timeout_seconds)
        due = [r for r in self.store.in_state(QUEUED) if now - r.updated_at >= settle]
        clients: dict[AccessPoint, Gateway] = {}
        down: set[AccessPoint] = set()
        try:
            for record in due:
                point = access_point_for(self.settings, record.authority_cvr)
                if now - record.updated_at >= give_up:
                    error = OotsNotDelivered(f"queued since {record.updated_at.isoformat()}")
                    self._finish(record, None, FAILED, error=error, from_state=QUEUED)
                elif point not in down:
                    if point not in clients:
                        clients[point] = self._client_factory(point)
                    if not self._resend(clients[point], record):
                        down.add(point)
        finally:
            for client in clients.values():
                client.close()

    def _resend(self, client: Gateway, record: RequestRecord) -> bool:
        """One queued request again; False when the gateway is still down."""
        message = self.inbox.outgoing(record.message_id)
        if message is None:
            error = OotsNotDelivered("the recorded request is gone")
            self._finish(record, None, FAILED, error=error, from_state=QUEUED)
            return True
        try:
            known = client.status(record.message_id) != NOT_FOUND
        except ServicePlatformError as error:
            log.warning(
                "oots: the gateway cannot tell about %s: %s %s",
                record.message_id,
                error.code,
                error,
            )
            return False
        try:
            if known:
                sent = self._submitted(record)
            else:
                sent = self._send(client, record, message, resend=True)
        except StorageError:
            raise
        except ServicePlatformError as error:
            # Refused: _send failed the request; say so, and go on with the next one.
            self._audit_delivery(record, "refused by the gateway", error)
            return True
        if sent.state == QUEUED:
            return False
        self._audit_delivery(sent, f"{'taken' if known else 'sent'} by the gateway")
        return True

    def _taken(self, client: Gateway, record: RequestRecord) -> bool:
        """Whether the access point has the request's message (False when it cannot say)."""
        try:
            return client.status(record.message_id) != NOT_FOUND
        except ServicePlatformError:
            return False

    def _audit_delivery(
        self, record: RequestRecord, what: str, error: ServicePlatformError | None = None
    ) -> None:
        detail = f"request {record.request_id}: queued, now {what}"
        self._audit_event(
            record,
            DELIVERY_OPERATION,
            detail,
            now=self._clock(),
            since=record.created_at,
            error=error,
        )

    def _audit_event(
        self,
        record: RequestRecord,
        operation: str,
        detail: str,
        *,
        now: datetime,
        since: datetime,
        message_id: str | None = None,
        error: ServicePlatformError | None = None,
    ) -> None:
        """One audit record of something that happened to a request outside a SOAP call."""
        self._audit.write(
            AuditEntry(
                at=now,
                service=SERVICE_KEY,
                operation=operation,
                message_id=message_id or record.message_id,
                authority_cvr=record.authority_cvr,
                consumer_system=record.consumer_system,
                sysid=record.provider_id,
                outcome="fault" if error is not None else "ok",
                error_code=error.code if error is not None else None,
                latency_ms=max(0.0, (now - since).total_seconds() * 1000.0),
                detail=detail if error is None else f"{detail}: {error.error_text}",
            )
        )

    # --- answers -----------------------------------------------------------------------------

    def collect(self, *, force: bool = False) -> None:
        """Download pending answers from every access point in use; one collection at a time
        per process. An access point that fails does not keep the others from being
        collected; its error is raised after them (a ``StorageError`` at once)."""
        if not self.configured:
            return
        if not self._collect_lock.acquire(blocking=force):
            return
        try:
            if not force and time.monotonic() - self._last_collect < _COLLECT_EVERY:
                return
            first_error: ServicePlatformError | None = None
            for point in access_points(self.settings):
                if point not in self._collectors:
                    self._collectors[point] = self._client_factory(point)
                try:
                    report = self.inbox.collect(self._collectors[point])
                except StorageError:
                    raise
                except ServicePlatformError as error:
                    first_error = first_error or error
                    continue
                if report.stored:
                    log.info("oots: collected %d answer(s) from %s", len(report.stored), point.name)
            self._last_collect = time.monotonic()
            if first_error is not None:
                raise first_error
        finally:
            self._collect_lock.release()

    def refresh(self, record: RequestRecord) -> RequestRecord:
        """Apply the request's answer if it arrived; fail it when overdue."""
        if record.state != SUBMITTED:
            return record
        answer = self.inbox.answer_for(ref_to_message_id=record.message_id)
        if answer is None:
            overdue = record.updated_at + timedelta(seconds=self.settings.answer_timeout_seconds)
            if self._clock() >= overdue:
                error = OotsAnswerOverdue(f"no answer since {record.updated_at.isoformat()}")
                self._finish(record, None, FAILED, error=error)
            return self.store.get(record.request_id) or record
        self._apply(record, answer)
        return self.store.get(record.request_id) or record

    def _apply(self, record: RequestRecord, answer: ReceivedAs4) -> None:
        try:
            if answer.body is None:
                raise EdmParseError("the answer has no RegRep document")
            outcome = parse_query_response(answer.body, answer.attachments)
        except EdmParseError as exc:
            self._finish(record, answer, FAILED, error=OotsAnswerUnreadable(str(exc)))
            return
        if isinstance(outcome, PreviewRequired):
            self._finish(
                record,
                answer,
                PREVIEW_REQUIRED,
                preview_location=outcome.location,
                preview_method=outcome.method,
                preview_description=[(t.lang, t.value) for t in outcome.description],
            )
        elif isinstance(outcome, EdmError):
            self._finish(record, answer, FAILED, error=edm_fault(outcome), edm=outcome.code)
        elif outcome.mime_type not in MEDIA_TYPES:
            error = OotsAnswerUnreadable(f"evidence of media type {outcome.mime_type!r}")
            self._finish(record, answer, FAILED, error=error)
        else:
            size = len(outcome.content)
            self._finish(record, answer, ANSWERED, note=f"{outcome.mime_type}, {size} bytes")

    def _finish(
        self,
        record: RequestRecord,
        answer: ReceivedAs4 | None,
        state: str,
        *,
        error: ServicePlatformError | None = None,
        edm: str | None = None,
        note: str | None = None,
        from_state: str = SUBMITTED,
        **values: object,
    ) -> None:
        now = self._clock()
        if error is not None:
            values |= {
                "error_code": error.code,
                "edm_error_code": edm,
                "error_text": error.error_text,
            }
        if answer is not None:
            values["answer_message_id"] = answer.message_id
        if not self.store.move(record, from_state=from_state, now=now, state=state, **values):
            return  # another process applied it (and audited it)
        if answer is not None:
            self.inbox.mark_consumed(answer.message_id)
        what = {ANSWERED: "evidence", PREVIEW_REQUIRED: "preview required", FAILED: "failed"}
        detail = f"request {record.request_id} from {record.provider_id}: {what[state]}"
        if note:
            detail += f" ({note})"
        self._audit_event(
            record,
            ANSWER_OPERATION if from_state == SUBMITTED else DELIVERY_OPERATION,
            detail,
            now=now,
            since=record.updated_at,
            message_id=answer.message_id if answer is not None else None,
            error=error,
        )

    def wait(self, record: RequestRecord, seconds: float) -> RequestRecord:
        """Collect and refresh until the request leaves ``submitted`` or ``seconds`` pass."""
        deadline = time.monotonic() + seconds
        while True:
            try:
                self.collect()
            except ServicePlatformError as error:
                # The request is submitted; a failed collection only delays its answer.
                log.warning("oots: collecting answers failed: %s %s", error.code, error)
            record = self.refresh(record)
            if record.state != SUBMITTED or time.monotonic() >= deadline:
                return record
            time.sleep(min(0.05, max(0.0, deadline - time.monotonic())))

    def outcome(self, record: RequestRecord) -> Outcome:
        """What the caller sees of ``record``: its preview, evidence or error."""
        if record.state == PREVIEW_REQUIRED and record.preview_location:
            preview = PreviewRequired(
                location=record.preview_location,
                method=record.preview_method or "GET",
                description=tuple(LocalizedText(t, lang) for lang, t in record.preview_description),
            )
            return Outcome(record, preview=preview)
        if record.state == FAILED:
            return Outcome(record, error=_stored_error(record))
        if record.state == ANSWERED and record.answer_message_id:
            answer = self.inbox.received(record.answer_message_id)
            body = answer.body if answer is not None else None
            if answer is None or body is None:
                return Outcome(record, error=OotsEvidenceExpired(f"request {record.request_id}"))
            try:
                evidence = parse_query_response(body, answer.attachments)
            except EdmParseError as exc:
                return Outcome(record, error=OotsEvidenceExpired(str(exc)))
            if not isinstance(evidence, Evidence):
                return Outcome(record, error=OotsEvidenceExpired("the answer holds no evidence"))
            return Outcome(record, evidence=evidence)
        return Outcome(record)

    # --- the background work -------------------------------------------------------------------

    def poll_once(self) -> None:
        """Resend queued requests, collect, apply answers to every submitted request, purge
        what is past retention."""
        try:
            self.send_queued()
        except ServicePlatformError as error:
            log.warning("oots: sending queued requests failed: %s %s", error.code, error)
        self.collect(force=True)
        for record in self.store.in_state(SUBMITTED):
            self.refresh(record)
        retention = timedelta(hours=self.settings.evidence_retention_hours)
        purged = self.store.purge(self._clock() - retention)
        if purged:
            log.info("oots: purged the documents of %d finished request(s)", purged)


def _stored_error(record: RequestRecord) -> ServicePlatformError:
    """The error a failed request ended with, rebuilt from its code (for the caller)."""
    return rebuild_error(record.error_code, record.error_text)
