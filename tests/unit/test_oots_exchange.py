"""The OOTS exchange's pieces without a network: EDM error mapping, the request table's
transitions, answers applied once and audited without the document, retention purge.

Real SQL (SQLite, and PostgreSQL where configured); the answers are real EDM responses built
by ``serviceplatform.sandbox.oots_evidence_answers`` and stored through ``DomibusInbox`` as
Domibus would deliver them.
"""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import select

from integrations.oots.access_points import AccessPoint
from integrations.oots.as4.model import (
    ACTION_EXCEPTION,
    ACTION_REQUEST,
    ACTION_RESPONSE,
    EBRS_MIME,
    OutgoingAs4,
    ReceivedAs4,
    ReceivedPayload,
    TypedId,
)
from integrations.oots.domibus.ws_plugin import parse_retrieve_response
from integrations.oots.edm import (
    EDM_ERROR_CODES,
    EdmError,
    EdmVersion,
    Evidence,
    EvidenceMetadata,
    EvidenceProvider,
    EvidenceRequest,
    LocalizedText,
    NaturalPerson,
    RequestedEvidenceType,
    Requester,
    Requirement,
)
from integrations.oots.errors import (
    OotsAnswerOverdue,
    OotsEdmError,
    OotsEvidenceExpired,
    OotsEvidenceNotFound,
    OotsNoPreviewPending,
    OotsNotDelivered,
)
from integrations.oots.exchange import Destination, OotsExchange, edm_fault
from integrations.oots.request_store import RequestRecord
from integrations.oots.settings import OotsRequesterSettings, OotsSettings
from integrations.oots.tables import oots_messages
from serviceplatform.closing import Closing
from serviceplatform.errors import (
    ResendRefused,
    UpstreamRejected,
    UpstreamUnavailable,
    UpstreamUnreachable,
)
from serviceplatform.sandbox.oots_evidence_answers import (
    build_error_response,
    build_evidence_response,
)
from serviceplatform.store.audit import AuditLog
from serviceplatform.store.db import Database
from serviceplatform.store.models import audit_records
from tests.oots_domibus_material import REEL

NOW = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
PDF = b"%PDF-1.4 the degree of Aino Virtanen %%EOF"


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


def test_every_edm_code_has_its_own_fault() -> None:
    codes = {}
    for code in EDM_ERROR_CODES:
        error = edm_fault(EdmError(code, None, "message", "detail"))
        assert type(error) is not OotsEdmError and error.detail == "detail"
        codes[code] = error.code
    assert len(set(codes.values())) == len(codes) == 8
    assert codes["EDM:ERR:0004"] == "SP-704"
    unknown = edm_fault(EdmError(None, None, "message", None))
    assert type(unknown) is OotsEdmError and unknown.code == "SP-709"


def request() -> EvidenceRequest:
    return EvidenceRequest(
        request_id=uuid.uuid4(),
        issue_datetime=NOW,
        procedure="T3",
        requirements=(Requirement("https://sr.example/req/1", (LocalizedText("Proof"),)),),
        evidence_type=RequestedEvidenceType(
            "et-1", "https://sr.example/et/1", (LocalizedText("Degree"),), "application/pdf"
        ),
        provider=EvidenceProvider("FI-UNIV", "urn:cef.eu:names:identifier:EAS:0212", "Univ"),
        requester=Requester("Kommune A", "29189846", "urn:cef.eu:names:identifier:EAS:0184"),
        subject=NaturalPerson("Virtanen", "Aino", date(1990, 5, 17), level_of_assurance="High"),
        explicit_request_given=True,
        possibility_for_preview=True,
        version=EdmVersion.V2_0,
    )


class Submitted(Closing):
    """A WS plugin client that accepts every submission (``submit`` only is used here)."""

    def __init__(self) -> None:
        self.messages: list[str] = []

    def submit(self, message: object) -> str:
        message_id: str = getattr(message, "message_id")  # noqa: B009
        self.messages.append(message_id)
        return message_id


@pytest.fixture()
def exchange(database: Database) -> tuple[OotsExchange, Clock, Submitted]:
    clock = Clock()
    submitted = Submitted()
    settings = OotsSettings(domibus_url="http://127.0.0.1:1/ws", party_id="AP_DK_01")
    exchange = OotsExchange(
        database,
        AuditLog(database),
        settings,
        clock=clock,
        client_factory=lambda _point: submitted,  # type: ignore[arg-type,return-value]
    )
    return exchange, clock, submitted


def evidence_answer(
    edm: EvidenceRequest, content: bytes = PDF, mime_type: str = "application/pdf"
) -> tuple[bytes, ReceivedPayload]:
    evidence = Evidence(
        content=content,
        mime_type=mime_type,
        content_id="degree-1@fi.oots.eu",
        filename="degree",
        metadata=EvidenceMetadata(format=mime_type),
    )
    body, attachments = build_evidence_response(edm, evidence)
    [(content_id, data)] = attachments.items()
    return body, ReceivedPayload(f"cid:{content_id}", mime_type, data)


def deliver(
    exchange: OotsExchange,
    record: RequestRecord,
    body: bytes,
    *extra: ReceivedPayload,
    action: str = ACTION_RESPONSE,
) -> str:
    message_id = f"{uuid.uuid4()}@fi.oots.eu"
    exchange.inbox.store(
        ReceivedAs4(
            message_id=message_id,
            conversation_id=record.conversation_id,
            service="QueryManager",
            action=action,
            from_party=TypedId("AP_FI_01", None),
            to_party=TypedId("AP_DK_01", None),
            payloads=(ReceivedPayload("cid:body@oots.eu", EBRS_MIME, body), *extra),
            ref_to_message_id=record.message_id,
        )
    )
    return message_id


def submit(exchange: OotsExchange) -> tuple[RequestRecord, EvidenceRequest]:
    edm = request()
    record = exchange.submit_first(
        edm,
        Destination("AP_FI_01", "FI-UNIV", "urn:cef.eu:names:identifier:EAS:0212"),
        authority_cvr="29189846",
        consumer_system="cs-1",
    )
    return record, edm


def test_evidence_is_applied_once_and_audited_without_the_document(
    exchange: tuple[OotsExchange, Clock, Submitted], database: Database
) -> None:
    oots, clock, submitted = exchange
    record, edm = submit(oots)
    assert submitted.messages == [record.message_id] and record.state == "submitted"
    deliver(oots, record, *evidence_answer(edm))
    clock.now += timedelta(seconds=2)
    first = oots.refresh(record)
    again = oots.refresh(record)  # as another process would, with the row it read before
    assert first.state == again.state == "answered"
    outcome = oots.outcome(first)
    assert outcome.evidence is not None and outcome.evidence.content == PDF
    with database.transaction() as connection:
        rows = [dict(r._mapping) for r in connection.execute(select(audit_records))]
    assert [r["operation"] for r in rows] == ["Bevissvar"]
    assert rows[0]["latency_ms"] == 2000.0 and rows[0]["outcome"] == "ok"
    assert all(b"Virtanen" not in str(v).encode() for row in rows for v in row.values())


#: One document per evidence format the service offers (the contract's ``MedieTypeType``).
DOCUMENTS = {
    "application/pdf": PDF,
    "application/xml": b"<degree><holder>Aino Virtanen</holder></degree>",
    "application/json": b'{"holder": "Aino Virtanen"}',
    "image/png": b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR Aino Virtanen",
    "image/jpeg": b"\xff\xd8\xff\xe0\x00\x10JFIF Aino Virtanen \xff\xd9",
    "image/svg+xml": b'<svg xmlns="http://www.w3.org/2000/svg"><text>Aino Virtanen</text></svg>',
}


@pytest.mark.parametrize("mime_type", sorted(DOCUMENTS))
def test_every_evidence_format_arrives_byte_for_byte_with_its_metadata(
    exchange: tuple[OotsExchange, Clock, Submitted], mime_type: str
) -> None:
    oots, _, _ = exchange
    record, edm = submit(oots)
    deliver(oots, record, *evidence_answer(edm, DOCUMENTS[mime_type], mime_type))
    outcome = oots.outcome(oots.refresh(record))
    assert outcome.evidence is not None
    assert outcome.evidence.content == DOCUMENTS[mime_type]
    assert outcome.evidence.mime_type == mime_type
    assert outcome.evidence.metadata.format == mime_type


def test_an_edm_error_fails_the_request_with_its_code(
    exchange: tuple[OotsExchange, Clock, Submitted],
) -> None:
    oots, _, _ = exchange
    record, edm = submit(oots)
    answer = build_error_response(edm, "EDM:ERR:0004", "nothing")
    deliver(oots, record, answer, action=ACTION_EXCEPTION)
    done = oots.refresh(record)
    assert (done.state, done.error_code, done.edm_error_code) == (
        "failed",
        "SP-704",
        "EDM:ERR:0004",
    )
    error = oots.outcome(done).error
    assert isinstance(error, OotsEvidenceNotFound)
    with pytest.raises(OotsNoPreviewPending):
        oots.submit_second(done, return_location=None)


def test_an_unanswered_request_fails_when_overdue(
    exchange: tuple[OotsExchange, Clock, Submitted],
) -> None:
    oots, clock, _ = exchange
    record, _ = submit(oots)
    assert oots.refresh(record).state == "submitted"
    clock.now += timedelta(seconds=oots.settings.answer_timeout_seconds)
    done = oots.refresh(record)
    assert done.state == "failed" and done.error_code == OotsAnswerOverdue.code


def test_documents_are_purged_after_the_retention(
    exchange: tuple[OotsExchange, Clock, Submitted], database: Database
) -> None:
    oots, clock, _ = exchange
    record, edm = submit(oots)
    deliver(oots, record, *evidence_answer(edm))
    done = oots.refresh(record)
    clock.now += timedelta(hours=oots.settings.evidence_retention_hours - 1)
    assert (
        oots.store.purge(clock.now - timedelta(hours=oots.settings.evidence_retention_hours)) == 0
    )
    clock.now += timedelta(hours=2)
    assert (
        oots.store.purge(clock.now - timedelta(hours=oots.settings.evidence_retention_hours)) == 1
    )
    # Purged once: a later round finds nothing left to empty.
    assert (
        oots.store.purge(clock.now - timedelta(hours=oots.settings.evidence_retention_hours)) == 0
    )
    with database.transaction() as connection:
        left = list(
            connection.execute(select(oots_messages.c.payload, oots_messages.c.attachments))
        )
    assert left and all(row.payload is None and row.attachments == "{}" for row in left)
    assert isinstance(oots.outcome(done).error, OotsEvidenceExpired)
    # The row itself stays: the request's history is kept, without the documents.
    assert oots.store.get(record.request_id) == replace(done)


@pytest.mark.parametrize(
    ("capture", "state", "code"),
    [
        ("reponseAvecPieceJointe.xml", "answered", None),
        ("erreurObjetIntrouvable.xml", "failed", "SP-704"),
    ],
)
def test_the_real_captured_answers_are_applied(
    exchange: tuple[OotsExchange, Clock, Submitted], capture: str, state: str, code: str | None
) -> None:
    """The real Domibus answers carry no RefToMessageId: correlated by their conversation."""
    oots, _, _ = exchange
    answer = parse_retrieve_response((REEL / capture).read_bytes())
    request_message = OutgoingAs4(
        conversation_id=uuid.UUID(answer.conversation_id),
        from_party="AP_DK_01",
        to_party="blue_gw",
        original_sender=TypedId("29189846", "urn:cef.eu:names:identifier:EAS:0184"),
        final_recipient=TypedId("blue_gw", "urn:oasis:names:tc:ebcore:partyid-type:unregistered"),
        action=ACTION_REQUEST,
        payload=b"<QueryRequest/>",
    )
    record = RequestRecord(
        request_id=str(uuid.uuid4()),
        authority_cvr="29189846",
        consumer_system=None,
        conversation_id=answer.conversation_id,
        first_message_id=request_message.message_id,
        message_id=request_message.message_id,
        provider_id="blue_gw",
        provider_scheme="urn:oasis:names:tc:ebcore:partyid-type:unregistered",
        to_party="blue_gw",
        edm_version="oots-edm:v2.0",
        state="submitted",
        created_at=NOW,
        updated_at=NOW,
    )
    oots.store.add(record)
    oots.inbox.record_outgoing(request_message)
    oots.inbox.store(answer)
    done = oots.refresh(record)
    assert (done.state, done.error_code) == (state, code)
    outcome = oots.outcome(done)
    if state == "answered":
        assert outcome.evidence is not None
        assert outcome.evidence.content.startswith(b"%PDF")
    else:
        assert isinstance(outcome.error, OotsEvidenceNotFound)


# --- a gateway that is down: queued, resent, or given up ---------------------------------------


class FlakyGateway(Closing):
    """A WS plugin client whose gateway is down until ``up`` is set; it remembers what it took."""

    def __init__(self) -> None:
        self.up = False
        self.taken: list[str] = []
        self.status_asked: list[str] = []
        self.pending_asked = 0
        self.refuse = False
        self.stale_status = 0

    def submit(self, message: OutgoingAs4) -> str:
        if not self.up:
            raise UpstreamUnavailable("HTTP 503")
        if self.refuse:
            raise UpstreamRejected("WS_PLUGIN:0004: no such party")
        if message.message_id in self.taken:
            raise UpstreamRejected("Message identifiers must be unique")
        self.taken.append(message.message_id)
        return message.message_id

    def pending(self, final_recipient: str | None = None) -> list[str]:
        self.pending_asked += 1
        return []

    def status(self, message_id: str) -> str:
        if not self.up:
            raise UpstreamUnreachable("connection refused")
        self.status_asked.append(message_id)
        if self.stale_status > 0:  # as before another process's submit arrived
            self.stale_status -= 1
            return "NOT_FOUND"
        return "SEND_ENQUEUED" if message_id in self.taken else "NOT_FOUND"


@pytest.fixture()
def flaky(database: Database) -> tuple[OotsExchange, Clock, FlakyGateway]:
    clock = Clock()
    gateway = FlakyGateway()
    settings = OotsSettings(
        domibus_url="http://127.0.0.1:1/ws", party_id="AP_DK_01", resend_after_seconds=60
    )
    exchange = OotsExchange(
        database,
        AuditLog(database),
        settings,
        clock=clock,
        client_factory=lambda _point: gateway,  # type: ignore[arg-type,return-value]
    )
    return exchange, clock, gateway


def _audited(database: Database, operation: str) -> list[dict[str, object]]:
    with database.transaction() as connection:
        rows = connection.execute(
            select(audit_records).where(audit_records.c.operation == operation)
        )
        return [dict(r._mapping) for r in rows]


def test_a_request_queued_while_the_gateway_is_down_is_sent_once_it_is_up(
    flaky: tuple[OotsExchange, Clock, FlakyGateway], database: Database
) -> None:
    oots, clock, gateway = flaky
    record, _ = submit(oots)
    assert record.state == "queued" and gateway.taken == []
    oots.send_queued()  # too soon: a first attempt may still be under way
    assert gateway.status_asked == [] and oots.store.get(record.request_id).state == "queued"  # type: ignore[union-attr]
    clock.now += timedelta(seconds=61)
    oots.send_queued()  # still down: nothing changes, nothing is lost
    assert oots.store.get(record.request_id).state == "queued"  # type: ignore[union-attr]
    gateway.up = True
    oots.send_queued()
    assert gateway.taken == [record.message_id]  # the very message first recorded
    assert oots.store.get(record.request_id).state == "submitted"  # type: ignore[union-attr]
    [delivered] = _audited(database, "Bevisanmodning")
    assert delivered["outcome"] == "ok" and record.request_id in str(delivered["detail"])
    oots.send_queued()  # nothing queued any more: nothing sent again
    assert gateway.taken == [record.message_id]


def test_a_submission_the_gateway_took_unseen_is_not_sent_again(
    flaky: tuple[OotsExchange, Clock, FlakyGateway],
) -> None:
    oots, clock, gateway = flaky
    record, _ = submit(oots)
    gateway.taken.append(record.message_id)  # it arrived; the answer to the submit did not
    gateway.up = True
    clock.now += timedelta(seconds=61)
    oots.send_queued()
    assert gateway.status_asked == [record.message_id]
    assert gateway.taken == [record.message_id]
    assert oots.store.get(record.request_id).state == "submitted"  # type: ignore[union-attr]


def test_a_request_queued_too_long_fails_with_its_own_code(
    flaky: tuple[OotsExchange, Clock, FlakyGateway], database: Database
) -> None:
    oots, clock, gateway = flaky
    record, _ = submit(oots)
    clock.now += timedelta(seconds=oots.settings.answer_timeout_seconds + 1)
    oots.send_queued()
    failed = oots.store.get(record.request_id)
    assert failed is not None and (failed.state, failed.error_code) == ("failed", "SP-723")
    assert isinstance(oots.outcome(failed).error, OotsNotDelivered)
    [audited] = _audited(database, "Bevisanmodning")
    assert (audited["outcome"], audited["error_code"]) == ("fault", "SP-723")
    assert gateway.taken == []


def test_each_authority_goes_through_its_own_access_point(database: Database) -> None:
    clock = Clock()
    gateways: dict[str, FlakyGateway] = {}

    def factory(point: AccessPoint) -> FlakyGateway:
        gateway = gateways.setdefault(point.url, FlakyGateway())
        gateway.up = True
        return gateway

    own = OotsRequesterSettings(domibus_url="http://127.0.0.1:2/ws", party_id="AP_KOMMUNE_B")
    settings = OotsSettings(
        domibus_url="http://127.0.0.1:1/ws", party_id="AP_DK_01", requesters={"29189854": own}
    )
    oots = OotsExchange(
        database,
        AuditLog(database),
        settings,
        clock=clock,
        client_factory=factory,  # type: ignore[arg-type]
    )
    destination = Destination("AP_FI_01", "FI-UNIV", "urn:cef.eu:names:identifier:EAS:0212")
    mine = oots.submit_first(request(), destination, authority_cvr="29189846", consumer_system=None)
    theirs = oots.submit_first(
        request(), destination, authority_cvr="29189854", consumer_system=None
    )
    assert gateways["http://127.0.0.1:1/ws"].taken == [mine.message_id]
    assert gateways["http://127.0.0.1:2/ws"].taken == [theirs.message_id]
    sent = oots.inbox.outgoing(theirs.message_id)
    assert sent is not None and sent.from_party == "AP_KOMMUNE_B"
    assert oots.configured_for("29189854") and oots.configured_for("29189846")
    oots.collect(force=True)  # answers are collected from both
    assert [g.pending_asked for g in gateways.values()] == [1, 1]


def test_a_queued_request_the_gateway_then_refuses_fails_and_is_audited(
    flaky: tuple[OotsExchange, Clock, FlakyGateway], database: Database
) -> None:
    oots, clock, gateway = flaky
    record, _ = submit(oots)
    gateway.up, gateway.refuse = True, True
    clock.now += timedelta(seconds=61)
    oots.send_queued()
    failed = oots.store.get(record.request_id)
    assert failed is not None and (failed.state, failed.error_code) == ("failed", "SP-405")
    [audited] = _audited(database, "Bevisanmodning")
    assert (audited["outcome"], audited["error_code"]) == ("fault", "SP-405")
    assert gateway.taken == []


def test_a_resend_racing_another_process_is_not_taken_for_a_refusal(
    flaky: tuple[OotsExchange, Clock, FlakyGateway], database: Database
) -> None:
    oots, clock, gateway = flaky
    record, _ = submit(oots)
    gateway.up = True
    gateway.taken.append(record.message_id)  # another process's resend got there first...
    gateway.stale_status = 1  # ...after this one asked
    clock.now += timedelta(seconds=61)
    oots.send_queued()
    assert oots.store.get(record.request_id).state == "submitted"  # type: ignore[union-attr]
    assert gateway.taken == [record.message_id]
    [audited] = _audited(database, "Bevisanmodning")
    assert audited["outcome"] == "ok"


def test_an_operator_resends_a_failed_request_under_a_new_message_id(
    flaky: tuple[OotsExchange, Clock, FlakyGateway], database: Database
) -> None:
    oots, clock, gateway = flaky
    record, _ = submit(oots)
    gateway.up, gateway.refuse = True, True
    clock.now += timedelta(seconds=61)
    oots.send_queued()
    failed = oots.store.get(record.request_id)
    assert failed is not None and failed.state == "failed"
    gateway.refuse = False
    clock.now += timedelta(seconds=5)
    resent = oots.resend_failed(failed, actor="ops (operator)")
    assert resent.state == "submitted" and resent.error_code is None
    assert resent.message_id != record.message_id and gateway.taken == [resent.message_id]
    assert resent.conversation_id == record.conversation_id
    again = oots.inbox.outgoing(resent.message_id)
    first = oots.inbox.outgoing(record.message_id)
    assert again is not None and first is not None and again.payload == first.payload
    details = [str(a["detail"]) for a in _audited(database, "Bevisanmodning")]
    assert any("resent by ops (operator)" in d for d in details)
    with pytest.raises(ResendRefused):  # only a failed request is resent
        oots.resend_failed(resent, actor="ops")


def test_a_resend_the_gateway_refuses_again_leaves_the_request_failed(
    flaky: tuple[OotsExchange, Clock, FlakyGateway],
) -> None:
    oots, clock, gateway = flaky
    record, _ = submit(oots)
    gateway.up, gateway.refuse = True, True
    clock.now += timedelta(seconds=61)
    oots.send_queued()
    failed = oots.store.get(record.request_id)
    assert failed is not None
    again = oots.resend_failed(failed, actor="ops")
    assert (again.state, again.error_code) == ("failed", "SP-405")
    assert again.message_id != record.message_id
