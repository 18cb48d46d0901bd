"""The native AS4 access point's receiving endpoint as the served platform mounts it.

The whole ``PlatformApp`` (the OOTS integration's ``WsgiMount`` at ``[oots.as4] receive_path``)
behind real TLS; the German provider's access point pushes an OOTS answer to it with its own
keys. The answer lands in ``oots_messages`` where the OOTS exchange finds it, exactly as a
Domibus push's; an authority with an AS4 party id of its own is served by the same endpoint.
"""

from __future__ import annotations

import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import pytest

from integrations.oots.as4.errors import As4ErrorSignal
from integrations.oots.as4.sender import As4Sender, RetrySchedule
from integrations.oots.as4.settings import As4AuthoritySettings, As4PartnerSettings, As4Settings
from integrations.oots.exchange import OotsExchange
from integrations.oots.settings import OOTS_SETTINGS, OotsRequesterSettings
from serviceplatform.app import PlatformApp
from serviceplatform.config import CertificateSettings, DatabaseSettings, Settings
from serviceplatform.outbound.certstore import CertificateStore
from serviceplatform.store.db import Database
from tests.as4_material import answer, dk_partner_of_de, key_pem, party
from tests.oots_domibus_material import REEL_CONVERSATION, regrep_request

B = "29189854"


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@contextmanager
def https(app: PlatformApp, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    ca_path = tmp_path / "tls-ca.pem"
    ca.cert_pem.write_to_path(str(ca_path))
    server: WSGIServer = make_server("127.0.0.1", 0, app, handler_class=_Quiet)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{server.server_port}", ca_path
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def _settings(tmp_path: Path) -> Settings:
    store = CertificateStore(tmp_path / "certs")
    store.import_pem("as4-sign", party("AP_DK_01").pem, key_pem("AP_DK_01"))
    store.import_pem("as4-sign-b", party("AP_DK_02").pem, key_pem("AP_DK_02"))
    (tmp_path / "de.pem").write_bytes(party("AP_DE_01").pem)
    settings = Settings(
        database=DatabaseSettings(url=f"sqlite:///{tmp_path / 'platform.sqlite'}"),
        certificates=CertificateSettings(directory="certs"),
        base_dir=str(tmp_path),
    )
    oots = settings.section(OOTS_SETTINGS)
    oots.as4 = As4Settings(
        party_id="AP_DK_01",
        signing_alias="as4-sign",
        receive_path="/oots/as4",
        partners={
            "AP_DE_01": As4PartnerSettings(
                endpoint_url="https://de.example/as4", signing_cert="de.pem"
            )
        },
    )
    oots.requesters = {
        B: OotsRequesterSettings(
            gateway="as4",
            as4=As4AuthoritySettings(party_id="AP_DK_02", signing_alias="as4-sign-b"),
        )
    }
    Database(settings.database.url).upgrade()
    return settings


def test_the_served_platform_receives_an_as4_answer_for_the_exchange(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    app = PlatformApp(settings)
    try:
        with https(app, tmp_path) as (base_url, ca):
            german, platform = dk_partner_of_de(base_url + "/oots/as4", ca_cert=str(ca))
            sender = As4Sender(german, {"AP_DK_01": platform}, sleep=lambda s: None)
            result = sender.send(answer())
            # A party id this endpoint does not serve: refused with an eb:Error, nothing stored.
            nobody = replace(platform, party_id="AP_DK_99")
            stranger = As4Sender(
                german, {"AP_DK_99": nobody}, schedule=RetrySchedule.parse("0;0;SEND_ONCE")
            )
            with pytest.raises(As4ErrorSignal) as refused:
                stranger.send(answer(to_party="AP_DK_99", message_id="x-1@oots.eu"))
        assert result.attempts == 1 and result.receipt_message_id
        assert refused.value.remote_code == "EBMS:0003"
        platform_ = app.platform
        exchange = OotsExchange.from_settings(
            platform_.db, platform_.audit, settings, platform_.clock
        )
        found = exchange.inbox.answer_for(conversation_id=str(REEL_CONVERSATION))
        assert found is not None and found.message_id == answer().message_id
        assert found.body == regrep_request()
        assert exchange.inbox.state("x-1@oots.eu") is None
    finally:
        app.close()


def test_an_authority_with_its_own_as4_party_id_is_served_by_the_same_endpoint(
    tmp_path: Path,
) -> None:
    settings = _settings(tmp_path)
    app = PlatformApp(settings)
    try:
        with https(app, tmp_path) as (base_url, ca):
            german, _ = dk_partner_of_de()
            cert = party("AP_DK_02").cert
            own = dk_partner_of_de(base_url + "/oots/as4", ca_cert=str(ca))[1]
            authority_b = replace(
                own, party_id="AP_DK_02", signing_certificate=cert, encryption_certificate=cert
            )
            sender = As4Sender(german, {"AP_DK_02": authority_b}, sleep=lambda s: None)
            message = answer(to_party="AP_DK_02", message_id="b-1@oots.eu")
            # The receipt is signed with authority B's key (verified against its certificate).
            assert sender.send(message).attempts == 1
        inbox = OotsExchange.from_settings(
            app.platform.db, app.platform.audit, settings, app.platform.clock
        ).inbox
        assert inbox.state("b-1@oots.eu") == "received"
    finally:
        app.close()
