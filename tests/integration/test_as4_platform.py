"""The AS4 access point built from a real ``Platform``: certificate store, database, audit log.

Two platforms (the Danish authority's and, for the other end, the German provider's), each with
its ``[oots.as4]`` settings and keys in its certificate store; the German one pushes an answer to
the Danish receiving endpoint over HTTP, which stores it where the exchange reads answers; the
Danish gateway's failed push to an unreachable partner is audited as SP-790 (EBMS:0301).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from integrations.oots.as4.app import build_gateway, build_receiver_app, build_sender
from integrations.oots.as4.errors import As4ReceiptMissing
from integrations.oots.as4.settings import As4PartnerSettings, As4Settings
from integrations.oots.domibus.inbox import DomibusInbox
from serviceplatform.config import CertificateSettings, Settings
from serviceplatform.platform import Platform
from serviceplatform.store.db import Database
from tests.as4_material import answer, key_pem, party
from tests.oots_domibus_material import REEL_CONVERSATION, outgoing, regrep_request
from tests.wsgi_serving import LocalWsgiServer


def _platform(tmp_path: Path, database: Database, me: str) -> Platform:
    home = tmp_path / me
    (home / "certs").mkdir(parents=True)
    settings = Settings(
        certificates=CertificateSettings(directory=str(home / "certs")), base_dir=str(home)
    )
    platform = Platform(settings, database=database)
    platform.certificates.import_pem("as4-sign", party(me).pem, key_pem(me))
    return platform


def _settings(tmp_path: Path, me: str, partner: str, url: str) -> As4Settings:
    (tmp_path / me / "partner.pem").write_bytes(party(partner).pem)
    return As4Settings(
        party_id=me,
        signing_alias="as4-sign",
        partners={partner: As4PartnerSettings(endpoint_url=url, signing_cert="partner.pem")},
    )


def test_an_answer_pushed_between_two_platforms_lands_in_the_answer_store(
    tmp_path: Path, database: Database
) -> None:
    danish = _platform(tmp_path, database, "AP_DK_01")
    app = build_receiver_app(
        danish, _settings(tmp_path, "AP_DK_01", "AP_DE_01", "https://de.example/as4")
    )
    with LocalWsgiServer(app) as server:
        german = _platform(tmp_path, database, "AP_DE_01")
        sender = build_sender(
            german, _settings(tmp_path, "AP_DE_01", "AP_DK_01", server.base_url + "/as4")
        )
        result = sender.send(answer())
    assert result.attempts == 1
    found = DomibusInbox(database).answer_for(conversation_id=str(REEL_CONVERSATION))
    assert found is not None and found.body == regrep_request()
    (entry,) = german.audit.tail(5)
    assert entry.service == "oots-as4" and entry.outcome == "ok"
    assert entry.message_id == answer().message_id


def test_the_gateway_audits_a_push_without_receipt(tmp_path: Path, database: Database) -> None:
    danish = _platform(tmp_path, database, "AP_DK_01")
    settings = _settings(tmp_path, "AP_DK_01", "AP_DE_01", "http://127.0.0.1:9/as4")
    with build_gateway(danish, settings) as gateway, pytest.raises(As4ReceiptMissing):
        gateway.submit(outgoing())
    (entry,) = danish.audit.tail(5)
    assert entry.outcome == "fault" and entry.error_code == "SP-790"
    assert entry.detail is not None and "EBMS:0301" in entry.detail
