"""The native AS4 access point over real HTTPS into a real database.

The platform's receiving endpoint (``As4ReceiverApp``) runs behind TLS (a test CA) and stores
into ``oots_messages`` through ``DomibusInbox``, where the OOTS exchange finds answers; the
German provider's access point is an ``As4Sender`` with the German keys, posting through the
platform's one HTTP function (``transport.post_message``).
"""

from __future__ import annotations

import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import pytest
from sqlalchemy import func, select

from integrations.oots.as4.errors import As4ErrorSignal, As4ReceiptMissing
from integrations.oots.as4.model import ACTION_REQUEST, EBRS_MIME
from integrations.oots.as4.receiver import As4ReceiverApp
from integrations.oots.as4.sender import As4Sender, RetrySchedule
from integrations.oots.domibus.inbox import DomibusInbox
from integrations.oots.tables import oots_messages
from serviceplatform.store.db import Database
from tests.as4_material import answer, de_partner, dk_access_point, dk_partner_of_de
from tests.oots_domibus_material import REEL_CONVERSATION, regrep_request


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> tuple[ssl.SSLContext, Path]:
    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    path = tmp_path_factory.mktemp("ca") / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return context, path


@contextmanager
def https(app: As4ReceiverApp, context: ssl.SSLContext) -> Iterator[str]:
    server: WSGIServer = make_server("127.0.0.1", 0, app, handler_class=_Quiet)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{server.server_port}/as4"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def _rows(database: Database) -> int:
    with database.transaction() as connection:
        return int(connection.execute(select(func.count()).select_from(oots_messages)).scalar_one())


def test_a_pushed_answer_is_stored_once_and_found_by_the_exchange(
    database: Database, tls: tuple[ssl.SSLContext, Path]
) -> None:
    context, ca = tls
    inbox = DomibusInbox(database)
    app = As4ReceiverApp(dk_access_point(), {"AP_DE_01": de_partner()}, inbox)
    sleeps: list[float] = []
    with https(app, context) as url:
        german, platform = dk_partner_of_de(url, ca_cert=str(ca))
        sender = As4Sender(german, {"AP_DK_01": platform}, sleep=sleeps.append)
        first = sender.send(answer())
        # The same message pushed again (a lost receipt): receipted again, stored once.
        again = sender.send(answer())
    assert first.attempts == again.attempts == 1 and sleeps == []
    assert first.receipt_message_id != again.receipt_message_id
    assert _rows(database) == 1
    assert inbox.state(answer().message_id) == "received"
    found = inbox.answer_for(conversation_id=str(REEL_CONVERSATION))
    assert found is not None and found.message_id == answer().message_id
    assert found.body == regrep_request() and found.body_id == answer().payload_id
    assert [p.mime_type for p in found.payloads] == [EBRS_MIME]


def test_an_error_signal_over_the_wire_is_its_own_fault(
    database: Database, tls: tuple[ssl.SSLContext, Path]
) -> None:
    """The German endpoint takes only answers: the platform's *request* to it is refused with
    an eb:Error (EBMS:0001), which the platform's sender raises as As4ErrorSignal."""
    context, ca = tls
    german, platform = dk_partner_of_de()
    app = As4ReceiverApp(german, {"AP_DK_01": platform}, DomibusInbox(database))
    with https(app, context) as url:
        sender = As4Sender(
            dk_access_point(), {"AP_DE_01": de_partner(url, ca_cert=str(ca))}, sleep=lambda s: None
        )
        request = answer(action=ACTION_REQUEST, from_party="AP_DK_01", to_party="AP_DE_01")
        with pytest.raises(As4ErrorSignal) as raised:
            sender.send(request)
    assert raised.value.remote_code == "EBMS:0001" and raised.value.status == 500
    assert _rows(database) == 0


def test_an_untrusted_tls_partner_gets_no_message(
    database: Database, tls: tuple[ssl.SSLContext, Path]
) -> None:
    context, _ = tls
    app = As4ReceiverApp(dk_access_point(), {"AP_DE_01": de_partner()}, DomibusInbox(database))
    with https(app, context) as url:
        german, platform = dk_partner_of_de(url)  # no ca_cert: the test CA is not trusted
        sender = As4Sender(
            german,
            {"AP_DK_01": platform},
            sleep=lambda s: None,
            schedule=RetrySchedule.parse("0;1;CONSTANT"),
        )
        with pytest.raises(As4ReceiptMissing, match="SP-403"):
            sender.send(answer())
    assert _rows(database) == 0
