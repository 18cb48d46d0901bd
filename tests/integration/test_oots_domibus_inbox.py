"""The answer store and Domibus' push, on SQLite and PostgreSQL (the ``database`` fixture).

Never lose an answer: a message is stored before it is acknowledged, exactly once, whatever
fails in between; answers are found by ConversationId and by the request's MessageId.
"""

from __future__ import annotations

import base64
import io
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import pytest
import requests
from lxml import etree
from sqlalchemy import func, select

from integrations.oots.as4.model import (
    ACTION_EXCEPTION,
    ACTION_REQUEST,
    ACTION_RESPONSE,
    ReceivedAs4,
)
from integrations.oots.as4.soap import SOAP12_NS
from integrations.oots.domibus import backend_push_app
from integrations.oots.domibus.backend_service import BACKEND_NS
from integrations.oots.domibus.inbox import CONSUMED, RECEIVED, SUBMITTED, DomibusInbox
from integrations.oots.domibus.push import BackendPushApp
from integrations.oots.domibus.ws_plugin import parse_retrieve_response
from integrations.oots.edm import Evidence, parse_query_response
from integrations.oots.tables import oots_messages
from serviceplatform.errors import (
    StorageError,
    UpstreamBadResponse,
    UpstreamNotFound,
    UpstreamUnavailable,
)
from serviceplatform.store.db import Database
from tests.integration.test_oots_domibus_client import FakeDomibus, client_for, running
from tests.oots_domibus_material import (
    REEL,
    REEL_ANSWER,
    REEL_CONVERSATION,
    outgoing,
    push_notification,
    push_submit_envelope,
)
from tests.wsgi_serving import LocalWsgiServer

pytestmark = pytest.mark.integration

NOW: Final = datetime(2026, 8, 11, 9, 30, tzinfo=UTC)
ANSWER: Final = parse_retrieve_response(REEL_ANSWER.read_bytes())
ERROR_ANSWER: Final = parse_retrieve_response((REEL / "erreurObjetIntrouvable.xml").read_bytes())
REQUEST_IN: Final = parse_retrieve_response((REEL / "requete.xml").read_bytes())
_PARSER: Final = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


@pytest.fixture
def inbox(database: Database) -> DomibusInbox:
    return DomibusInbox(database, clock=Clock())


def rows(database: Database, message_id: str | None = None) -> int:
    query = select(func.count()).select_from(oots_messages)
    if message_id is not None:
        query = query.where(oots_messages.c.message_id == message_id)
    with database.transaction() as connection:
        return int(connection.execute(query).scalar_one())


class Crash(BaseException):
    """The process dies (not an error anyone handles)."""


@dataclass
class StubClient:
    """A WS plugin client double: messages by id, failures on demand."""

    messages: dict[str, ReceivedAs4]
    acknowledged: list[str] = field(default_factory=list)
    fail_retrieve: dict[str, Exception] = field(default_factory=dict)
    fail_acknowledge: BaseException | None = None
    calls: list[str] = field(default_factory=list)

    def pending(
        self, final_recipient: str | None = None, *, conversation_id: str | None = None
    ) -> list[str]:
        self.calls.append("pending")
        return [m for m in self.messages if m not in self.acknowledged]

    def retrieve(self, message_id: str) -> ReceivedAs4:
        self.calls.append(f"retrieve {message_id}")
        if message_id in self.fail_retrieve:
            raise self.fail_retrieve[message_id]
        return self.messages[message_id]

    def acknowledge(self, message_id: str) -> None:
        self.calls.append(f"acknowledge {message_id}")
        if self.fail_acknowledge is not None:
            raise self.fail_acknowledge
        if message_id in self.acknowledged:
            raise UpstreamNotFound("markMessageAsDownloaded: WS_PLUGIN:0009")
        self.acknowledged.append(message_id)


def stub(*messages: ReceivedAs4) -> StubClient:
    return StubClient({m.message_id: m for m in messages})


# --- storing and collecting -------------------------------------------------------------------


def test_a_stored_message_reads_back_whole(inbox: DomibusInbox, database: Database) -> None:
    assert inbox.store(ANSWER) is True
    assert inbox.store(ANSWER) is False
    assert rows(database) == 1
    assert inbox.received(ANSWER.message_id) == ANSWER
    assert inbox.state(ANSWER.message_id) == RECEIVED
    outcome = parse_query_response(ANSWER.body or b"", ANSWER.attachments)
    assert isinstance(outcome, Evidence) and outcome.content.startswith(b"%PDF")


def test_collect_stores_then_acknowledges(inbox: DomibusInbox, database: Database) -> None:
    client = stub(ANSWER, ERROR_ANSWER)
    report = inbox.collect(client)
    assert report.stored == [ANSWER.message_id, ERROR_ANSWER.message_id]
    assert report.known == [] and report.failed == {} and report.unacknowledged == {}
    assert client.calls == [
        "pending",
        f"retrieve {ANSWER.message_id}",
        f"acknowledge {ANSWER.message_id}",
        f"retrieve {ERROR_ANSWER.message_id}",
        f"acknowledge {ERROR_ANSWER.message_id}",
    ]
    assert rows(database) == 2
    assert inbox.collect(client).stored == []


def test_a_failed_acknowledgement_keeps_the_message_and_stores_it_once(
    inbox: DomibusInbox, database: Database
) -> None:
    client = stub(ANSWER)
    client.fail_acknowledge = UpstreamUnavailable("markMessageAsDownloaded: HTTP 503")
    report = inbox.collect(client)
    assert report.stored == [ANSWER.message_id]
    assert list(report.unacknowledged) == [ANSWER.message_id]
    assert inbox.received(ANSWER.message_id) == ANSWER  # stored although not acknowledged
    client.fail_acknowledge = None
    report = inbox.collect(client)
    assert (report.stored, report.known) == ([], [ANSWER.message_id])
    assert client.acknowledged == [ANSWER.message_id]
    assert rows(database) == 1


def test_a_crash_between_store_and_acknowledge_loses_nothing(
    inbox: DomibusInbox, database: Database
) -> None:
    client = stub(ANSWER)
    client.fail_acknowledge = Crash()
    with pytest.raises(Crash):
        inbox.collect(client)
    assert rows(database, ANSWER.message_id) == 1
    client.fail_acknowledge = None
    assert inbox.collect(client).known == [ANSWER.message_id]
    assert rows(database, ANSWER.message_id) == 1
    assert client.acknowledged == [ANSWER.message_id]


def test_acknowledged_elsewhere_counts_as_done(inbox: DomibusInbox) -> None:
    client = stub(ANSWER)
    inbox.store(ANSWER)
    client.acknowledged.append("someone-else")
    client.acknowledge = lambda message_id: (_ for _ in ()).throw(  # type: ignore[method-assign]
        UpstreamNotFound("gone")
    )
    report = inbox.collect(client)
    assert report.known == [ANSWER.message_id] and report.unacknowledged == {}


def test_nothing_is_acknowledged_when_storing_fails(
    inbox: DomibusInbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = stub(ANSWER, ERROR_ANSWER)

    def broken(message: ReceivedAs4) -> bool:
        raise StorageError("OperationalError: database is locked")

    monkeypatch.setattr(inbox, "store", broken)
    with pytest.raises(StorageError):
        inbox.collect(client)
    assert client.acknowledged == []
    assert not any(call.startswith("acknowledge") for call in client.calls)


def test_an_unreadable_message_is_skipped_and_stays_pending(inbox: DomibusInbox) -> None:
    client = stub(ANSWER, ERROR_ANSWER)
    client.fail_retrieve[ANSWER.message_id] = UpstreamBadResponse("retrieveMessage: not base64")
    report = inbox.collect(client)
    assert list(report.failed) == [ANSWER.message_id]
    assert report.stored == [ERROR_ANSWER.message_id]
    assert client.acknowledged == [ERROR_ANSWER.message_id]
    assert inbox.received(ANSWER.message_id) is None


def test_collect_over_sockets_with_the_real_captures(
    inbox: DomibusInbox, database: Database
) -> None:
    with running(FakeDomibus()) as domibus:
        answer_id = domibus.add(REEL_ANSWER)
        error_id = domibus.add(REEL / "erreurObjetIntrouvable.xml")
        domibus.script["markMessageAsDownloadedRequest"] = [(503, b"busy", {})] * 2
        with client_for(domibus, retries=0) as client:
            first = inbox.collect(client)
            assert first.stored == [answer_id, error_id]
            assert list(first.unacknowledged) == [answer_id, error_id]
            assert list(domibus.pending) == [answer_id, error_id]
            second = inbox.collect(client)
        assert (second.stored, second.known) == ([], [answer_id, error_id])
        assert second.unacknowledged == {}
        assert domibus.pending == {}
    assert rows(database) == 2
    assert inbox.received(answer_id) == ANSWER


# --- correlation -------------------------------------------------------------------------------


def test_the_answer_is_found_by_conversation_and_by_the_request(inbox: DomibusInbox) -> None:
    request = outgoing()  # the conversation of the real request and answer
    assert inbox.record_outgoing(request) is True
    assert inbox.record_outgoing(request) is False
    assert inbox.state(request.message_id, direction="out") == SUBMITTED
    assert inbox.answer_for(conversation_id=str(REEL_CONVERSATION)) is None
    inbox.store(REQUEST_IN)  # a request in the same conversation is not an answer
    assert inbox.answer_for(ref_to_message_id=request.message_id) is None
    inbox.store(ANSWER)
    # The real answer has no RefToMessageId: found through the request's conversation.
    assert inbox.answer_for(conversation_id=str(REEL_CONVERSATION)) == ANSWER
    assert inbox.answer_for(ref_to_message_id=request.message_id) == ANSWER
    assert inbox.answer_for(ref_to_message_id="unknown@x") is None
    with pytest.raises(ValueError):
        inbox.answer_for()


def test_a_ref_to_message_id_is_followed(inbox: DomibusInbox) -> None:
    answer = replace(
        ERROR_ANSWER,
        message_id="answer-2@oots.eu",
        conversation_id=str(uuid.uuid4()),
        ref_to_message_id="request-elsewhere@oots.eu",
    )
    inbox.store(answer)
    assert inbox.answer_for(ref_to_message_id="request-elsewhere@oots.eu") == answer
    assert inbox.answer_for(conversation_id=answer.conversation_id) == answer


def test_two_requests_of_one_conversation_each_get_their_answer(inbox: DomibusInbox) -> None:
    """The two-step exchange: preview answer to the first request, evidence to the second."""
    conversation = uuid.uuid4()
    first = outgoing(conversation_id=conversation, message_id="first@oots.eu")
    preview = replace(ERROR_ANSWER, message_id="preview@oots.eu", conversation_id=str(conversation))
    second = outgoing(conversation_id=conversation, message_id="second@oots.eu")
    evidence = replace(ANSWER, message_id="evidence@oots.eu", conversation_id=str(conversation))
    inbox.record_outgoing(first)
    inbox.store(preview)
    assert inbox.answer_for(ref_to_message_id="second@oots.eu") is None
    inbox.record_outgoing(second)
    assert inbox.answer_for(ref_to_message_id="second@oots.eu") is None
    inbox.store(evidence)
    assert inbox.answer_for(ref_to_message_id="first@oots.eu") == preview
    assert inbox.answer_for(ref_to_message_id="second@oots.eu") == evidence
    assert inbox.answer_for(conversation_id=str(conversation)) == evidence
    assert {preview.action, evidence.action} == {ACTION_EXCEPTION, ACTION_RESPONSE}


def test_submit_records_before_sending(inbox: DomibusInbox, database: Database) -> None:
    recorded: list[int] = []

    class Client:
        def submit(self, message: Any) -> str:
            recorded.append(rows(database, message.message_id))
            return str(message.message_id)

    request = outgoing()
    assert inbox.submit(Client(), request) == request.message_id
    assert recorded == [1]


def test_a_loopback_gateway_returns_our_own_request_and_both_are_kept(
    inbox: DomibusInbox, database: Database
) -> None:
    request = outgoing(message_id=REQUEST_IN.message_id)
    inbox.record_outgoing(request)
    assert inbox.store(REQUEST_IN) is True
    assert rows(database, REQUEST_IN.message_id) == 2
    assert inbox.received(REQUEST_IN.message_id) == REQUEST_IN
    assert REQUEST_IN.action == ACTION_REQUEST


def test_consuming_an_answer(inbox: DomibusInbox) -> None:
    inbox.store(ANSWER)
    assert inbox.mark_consumed(ANSWER.message_id) is True
    assert inbox.mark_consumed(ANSWER.message_id) is False
    assert inbox.state(ANSWER.message_id) == CONSUMED
    assert inbox.answer_for(conversation_id=ANSWER.conversation_id) == ANSWER


# --- the push endpoint -----------------------------------------------------------------------


@dataclass
class Answer:
    status: str
    headers: dict[str, str]
    body: bytes

    @property
    def code(self) -> int:
        return int(self.status.split()[0])

    def fault_code(self) -> str | None:
        root = etree.fromstring(self.body, _PARSER)
        return root.findtext(f".//{{{BACKEND_NS}}}BackendFaultDetail/code")

    def soap_code(self) -> str | None:
        root = etree.fromstring(self.body, _PARSER)
        return root.findtext(f".//{{{SOAP12_NS}}}Code/{{{SOAP12_NS}}}Value")


def call(
    app: BackendPushApp, body: bytes, *, method: str = "POST", headers: dict[str, str] | None = None
) -> Answer:
    environ: dict[str, Any] = {
        "REQUEST_METHOD": method,
        "CONTENT_TYPE": "application/soap+xml; charset=UTF-8",
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.input": io.BytesIO(body),
    }
    environ.update(headers or {})
    captured: dict[str, Any] = {}

    def start_response(status: str, response_headers: list[tuple[str, str]]) -> None:
        captured["status"], captured["headers"] = status, dict(response_headers)

    content = b"".join(app(environ, start_response))
    return Answer(captured["status"], captured["headers"], content)


def test_a_pushed_message_is_stored_before_success(inbox: DomibusInbox, database: Database) -> None:
    stored_before_answer: list[int] = []
    app = backend_push_app(inbox)
    original = inbox.store

    def spy(message: ReceivedAs4) -> bool:
        result = original(message)
        stored_before_answer.append(rows(database, message.message_id))
        return result

    inbox.store = spy  # type: ignore[method-assign]
    answer = call(app, push_submit_envelope(REEL_ANSWER.read_bytes()))
    assert answer.code == 200
    assert answer.headers["Content-Type"].startswith("application/soap+xml")
    body = etree.fromstring(answer.body, _PARSER).find(f"{{{SOAP12_NS}}}Body")
    assert body is not None and len(body) == 0
    assert stored_before_answer == [1]
    assert inbox.received(ANSWER.message_id) == ANSWER
    # Pushed twice (Domibus retries when it missed our answer): still one row.
    assert call(app, push_submit_envelope(REEL_ANSWER.read_bytes())).code == 200
    assert rows(database) == 1


@pytest.mark.parametrize(
    "document",
    [
        b"<not-xml",
        push_notification("receiveSuccess"),
        push_notification("getStatus", "m@x"),
        push_submit_envelope(REEL_ANSWER.read_bytes()).replace(b"<value>", b"<value>!!"),
        push_submit_envelope(REEL_ANSWER.read_bytes())
        .replace(b"<ns:Messaging", b"<ns:Other")
        .replace(b"</ns:Messaging>", b"</ns:Other>"),
    ],
    ids=["not-xml", "no-id", "unknown-operation", "bad-base64", "no-header"],
)
def test_a_malformed_push_gets_a_fault_and_stores_nothing(
    inbox: DomibusInbox, database: Database, document: bytes
) -> None:
    answer = call(backend_push_app(inbox), document)
    assert answer.code == 400
    assert answer.soap_code() == "soap:Sender"
    assert (answer.fault_code() or "").startswith("SP-1")
    assert rows(database) == 0


def test_a_push_that_cannot_be_stored_is_a_receiver_fault(
    inbox: DomibusInbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(message: ReceivedAs4) -> bool:
        raise StorageError("OperationalError: disk full")

    monkeypatch.setattr(inbox, "store", broken)
    answer = call(backend_push_app(inbox), push_submit_envelope(REEL_ANSWER.read_bytes()))
    assert (answer.code, answer.soap_code(), answer.fault_code()) == (
        500,
        "soap:Receiver",
        "SP-902",
    )


def test_receive_success_fetches_stores_and_acknowledges(
    inbox: DomibusInbox, database: Database
) -> None:
    client = stub(ANSWER)
    app = backend_push_app(inbox, client=client)
    answer = call(app, push_notification("receiveSuccess", ANSWER.message_id))
    assert answer.code == 200
    assert client.calls == [f"retrieve {ANSWER.message_id}", f"acknowledge {ANSWER.message_id}"]
    assert inbox.received(ANSWER.message_id) == ANSWER
    # Notified again after it was collected: already stored, gone from Domibus -> success.
    client.fail_retrieve[ANSWER.message_id] = UpstreamNotFound("retrieveMessage: WS_PLUGIN:0009")
    assert call(app, push_notification("receiveSuccess", ANSWER.message_id)).code == 200
    assert rows(database) == 1


def test_receive_success_that_cannot_be_fetched_is_pushed_again(
    inbox: DomibusInbox, database: Database
) -> None:
    client = stub(ANSWER)
    client.fail_retrieve[ANSWER.message_id] = UpstreamUnavailable("retrieveMessage: HTTP 503")
    app = backend_push_app(inbox, client=client)
    notification = push_notification("receiveSuccess", ANSWER.message_id)
    answer = call(app, notification)
    assert (answer.code, answer.soap_code()) == (500, "soap:Receiver")
    client.fail_retrieve[ANSWER.message_id] = UpstreamNotFound("gone")
    answer = call(app, notification)
    assert answer.code == 500  # neither in Domibus nor here: say so
    assert rows(database) == 0


def test_receive_success_without_a_client_leaves_it_to_collect(
    inbox: DomibusInbox, database: Database
) -> None:
    answer = call(backend_push_app(inbox), push_notification("receiveSuccess", "m@oots.eu"))
    assert answer.code == 200
    assert rows(database) == 0


@pytest.mark.parametrize(
    "document",
    [
        push_notification("sendSuccess", "m@x"),
        push_notification("sendFailure", "m@x"),
        push_notification("receiveFailure", "m@x"),
        push_notification("messageStatusChange", "m@x", status="ACKNOWLEDGED"),
        push_notification("delete", "m@x"),
        push_notification("deleteBatch", "a@x", "b@x"),
    ],
)
def test_notifications_are_answered(inbox: DomibusInbox, document: bytes) -> None:
    assert call(backend_push_app(inbox), document).code == 200


def test_push_credentials_when_configured(inbox: DomibusInbox) -> None:
    app = backend_push_app(inbox, username="domibus", password="push-Secret")
    document = push_notification("sendSuccess", "m@x")
    assert call(app, document).code == 401
    wrong = "Basic " + base64.b64encode(b"domibus:wrong").decode()
    answer = call(app, document, headers={"HTTP_AUTHORIZATION": wrong})
    assert (answer.code, answer.headers.get("WWW-Authenticate")) == (
        401,
        'Basic realm="domibus-push"',
    )
    right = "Basic " + base64.b64encode(b"domibus:push-Secret").decode()
    assert call(app, document, headers={"HTTP_AUTHORIZATION": right}).code == 200
    # Without configured credentials, Domibus' "null:null" header is ignored.
    junk = "Basic " + base64.b64encode(b"null:null").decode()
    open_app = backend_push_app(inbox)
    assert call(open_app, document, headers={"HTTP_AUTHORIZATION": junk}).code == 200


def test_only_post_and_bounded_bodies(inbox: DomibusInbox) -> None:
    app = backend_push_app(inbox, max_body_bytes=1024)
    assert call(app, b"", method="GET").code == 405
    answer = call(app, push_submit_envelope(REEL_ANSWER.read_bytes()))
    assert (answer.code, answer.fault_code()) == (413, "SP-103")


@pytest.fixture
def push_server(inbox: DomibusInbox) -> Iterator[str]:
    with LocalWsgiServer(backend_push_app(inbox)) as server:
        yield server.base_url + "/oots/domibus-backend"


def test_a_push_over_a_socket(push_server: str, inbox: DomibusInbox) -> None:
    headers = {"Content-Type": "application/soap+xml; charset=UTF-8"}
    envelope = push_submit_envelope((REEL / "erreurObjetIntrouvable.xml").read_bytes())
    answer = requests.post(push_server, data=envelope, headers=headers, timeout=10)
    assert answer.status_code == 200
    assert inbox.received(ERROR_ANSWER.message_id) == ERROR_ANSWER
    answer = requests.post(push_server, data=b"<oops", headers=headers, timeout=10)
    assert answer.status_code == 400
    assert b"BackendFaultDetail" in answer.content
