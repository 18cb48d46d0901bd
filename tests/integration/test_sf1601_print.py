"""SF2250 EP_SP1/EP_SP4 over the SF1601 route: SOAP in, token-secured REST out.

Authority B's print agreement is set to ``sf1601``; authority A's stays on the register, so
both routes run side by side. The simulated STS and SF1601 host speak over mutual TLS with
the platform's certificate; the SF1601 host accepts only an access token for its entity ID
bound to that certificate. The business clock stands at noon (the sending-hours rule).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
import requests
from lxml import etree

from integrations.sf2250.integration import PRINT_ENTITY_ID, PRINT_PATH
from integrations.sf2250.print_routes import PrintRoutes
from integrations.sf2250.sendings import SendingLedger
from integrations.sf2250.sf1600.service import TNS
from serviceplatform.app import PlatformApp
from serviceplatform.config import PeerSettings
from serviceplatform.platform import Platform
from serviceplatform.sandbox.kombi_sts import IssuedTokens, SimulatedSts
from serviceplatform.sandbox.nemsms_register import NemSmsRegister
from serviceplatform.sandbox.pki import Pki
from serviceplatform.sandbox.sf1601_service import SimulatedSf1601
from serviceplatform.store.db import Database
from tests.integration.conftest import AUTHORITY, CaseSystem, RegisterHooks, make_settings, seed
from tests.integration.print_requests import afsend, official_schema, spoerg
from tests.wsgi_serving import LocalWsgiServer

AUTHORITY_B = "29189854"
#: Authority B's SF1600 Print agreement (routing_tables/agreements.toml).
AGREEMENT_B = "b7e2d9a4-5c3f-4f1a-8e6d-2a9c4b7e1f02"
CPR = "0101901234"
NOON = datetime(2026, 1, 15, 11, 0, tzinfo=UTC)
SOAP12 = "http://www.w3.org/2003/05/soap-envelope"


@dataclass
class Hooks:
    control_url: str
    session: requests.Session

    def call(self, verb: str, path: str, data: Any = None) -> Any:
        answer = self.session.request(verb, f"{self.control_url}/{path}", json=data, timeout=5)
        answer.raise_for_status()
        return answer.json()


@dataclass
class Sf1601Platform:
    url: str
    app: PlatformApp
    case_system: CaseSystem
    sts: SimulatedSts
    sf1601: SimulatedSf1601
    sts_hooks: Hooks
    hooks: Hooks
    register_hooks: RegisterHooks

    def call(self, body: etree._Element, *, cvr: str = AUTHORITY_B) -> requests.Response:
        operation = (
            "afsendBrev" if "AfsendBrev" in etree.QName(body).localname else "spoergTilmelding"
        )
        payload = self.case_system.envelope(
            body, self.url, token={"cvr": cvr, "audience": PRINT_ENTITY_ID}, soap_version=12
        )
        action = f"{TNS}{operation}"
        headers = {"Content-Type": f'application/soap+xml; charset=utf-8; action="{action}"'}
        session = requests.Session()
        session.trust_env = False
        return session.post(self.url, data=payload, headers=headers, timeout=10)

    def outward(self) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = self.hooks.call("GET", "requests")
        return [r for r in found if r["path"].startswith("/service/") and "Token" not in r["path"]]


@pytest.fixture(scope="module")
def routes(
    tmp_path_factory: pytest.TempPathFactory,
    pki: Pki,
    register: NemSmsRegister,
    case_system: CaseSystem,
) -> Iterator[Sf1601Platform]:
    issued = IssuedTokens()
    tls = (pki.nemsms_server_cert, pki.nemsms_server_key, pki.ca_cert)
    sts = SimulatedSts(
        server_cert=tls[0],
        server_key=tls[1],
        client_ca=tls[2],
        sts_cert=pki.sts_cert,
        sts_key=pki.sts_key,
        issued=issued,
    )
    sf1601 = SimulatedSf1601(server_cert=tls[0], server_key=tls[1], client_ca=tls[2], issued=issued)
    sts.start()
    sf1601.start()
    settings = make_settings(tmp_path_factory.mktemp("sf1601"), pki, register.base_url)
    for name, peer in (("sts", sts), ("sf1601", sf1601)):
        settings.peers[name] = PeerSettings(
            base_url=peer.base_url, ca_cert=str(pki.ca_cert), budget_seconds=3.0
        )
    seed(settings)
    database = Database(settings.database.url)
    PrintRoutes(database).set_route(
        AGREEMENT_B, "sf1601", actor="test", now=datetime.now(UTC), peers=settings.peers
    )
    database.dispose()
    app = PlatformApp(settings, lambda: Platform(settings, business_clock=lambda: NOON))
    server = LocalWsgiServer(app)
    session = requests.Session()
    session.trust_env = False
    yield Sf1601Platform(
        server.base_url + PRINT_PATH,
        app,
        case_system,
        sts,
        sf1601,
        Hooks(sts.control_url, session),
        Hooks(sf1601.control_url, session),
        RegisterHooks(register.control_url),
    )
    server.close()
    app.close()
    sts.stop()
    sf1601.stop()


@pytest.fixture()
def sf(routes: Sf1601Platform) -> Iterator[Sf1601Platform]:
    routes.hooks.call("DELETE", "requests")
    routes.hooks.call("DELETE", "sent")
    routes.hooks.call("PUT", "recipients", {"nemsms": [CPR]})
    routes.register_hooks.clear()
    # The register refuses SMS outside 08:00-22:00 by its own clock; it stands at the
    # platform's noon so a run late in the evening sends like one at midday.
    routes.register_hooks.set_clock(NOON)
    yield routes
    routes.register_hooks.set_clock(None)


def body_of(response: requests.Response) -> etree._Element:
    root = etree.fromstring(response.content)
    body = root.find(f"{{{SOAP12}}}Body")
    assert body is not None, response.text
    return body[0]


def error_code(response: requests.Response) -> str | None:
    return body_of(response).findtext(".//{*}ErrorCode")


def new_id() -> str:
    return f"sms-{uuid.uuid4().hex[:12]}"


def test_spoerg_tilmelding_over_sf1601(sf: Sf1601Platform) -> None:
    yes = sf.call(spoerg(CPR))
    no = sf.call(spoerg("0202904321"))
    assert yes.status_code == 200, yes.text
    assert official_schema().validate(body_of(yes)), official_schema().error_log
    assert body_of(yes).findtext(f"{{{TNS}}}tilmeldt") == "true"
    assert body_of(no).findtext(f"{{{TNS}}}tilmeldt") == "false"
    first, second = sf.outward()
    assert first["method"] == "GET"
    assert first["path"] == f"/service/PostForespoerg_1/nemsms?cprNumber={CPR}"
    assert first["headers"]["Authorization"] == "Holder-of-key ****"
    assert "serviceplatform-sandbox" in (first["client_subject"] or "")
    assert second["path"] == "/service/PostForespoerg_1/nemsms?cprNumber=0202904321"
    assert sf.register_hooks.requests() == []  # authority B's calls never reach the register


def test_spoerg_tilmelding_for_a_company_asks_by_cvr(sf: Sf1601Platform) -> None:
    sf.hooks.call("PUT", "recipients", {"nemsms": ["29189854"]})
    response = sf.call(spoerg(cpr=None, cvr="29189854"))
    assert body_of(response).findtext(f"{{{TNS}}}tilmeldt") == "true"
    assert sf.outward()[0]["path"].endswith("/nemsms?cvrNumber=29189854")


def test_both_routes_side_by_side(sf: Sf1601Platform) -> None:
    assert sf.call(spoerg(CPR), cvr=AUTHORITY).status_code == 200
    assert sf.outward() == []
    assert len(sf.register_hooks.requests()) == 1


def test_afsend_brev_over_sf1601_sends_a_nemsms_memo(sf: Sf1601Platform) -> None:
    sending = new_id()
    response = sf.call(afsend("Hej fra kommunen", afsendelse_id=sending))
    assert response.status_code == 200, response.text
    assert official_schema().validate(body_of(response)), official_schema().error_log
    assert body_of(response).findtext(f"{{{TNS}}}resultat") == "true"
    [request] = sf.outward()
    assert (request["method"], request["path"]) == ("POST", "/service/KombiPostAfsend_1/kombi")
    [sent] = sf.hooks.call("GET", "sent")
    assert sent["kombiValgKode"] == "NemSMS" and sent["messageType"] == "NEMSMS"
    assert sent["notification"] == "Hej fra kommunen"
    assert (sent["recipient"], sent["sender"]) == (CPR, AUTHORITY_B)
    assert sent["transaktionsId"] == sent["messageUUID"]
    assert uuid.UUID(sent["messageUUID"]).version == 4
    ledger = SendingLedger(sf.app.platform.db)
    state = ledger.get(service="sf1600", authority_cvr=AUTHORITY_B, key=sending)
    assert state is not None and state.outward_id == sent["messageUUID"]


def test_a_repeated_afsendelse_identifikator_is_sent_once(sf: Sf1601Platform) -> None:
    sending = new_id()
    for _ in range(3):
        response = sf.call(afsend("Kun én gang", afsendelse_id=sending))
        assert body_of(response).findtext(f"{{{TNS}}}resultat") == "true", response.text
    assert len(sf.outward()) == 1
    assert len(sf.hooks.call("GET", "sent")) == 1


def test_a_retry_after_a_lost_answer_sends_the_same_message_uuid(sf: Sf1601Platform) -> None:
    sending = new_id()
    sf.call(spoerg(CPR))  # a token at hand: the fault below hits the sending itself
    sf.hooks.call("DELETE", "requests")
    sf.hooks.call("POST", "faults", {"status": 503, "count": 1, "target": "service"})
    lost = sf.call(afsend("Igen", afsendelse_id=sending))
    assert error_code(lost) == "SP-404"
    retried = sf.call(afsend("Igen", afsendelse_id=sending))
    assert body_of(retried).findtext(f"{{{TNS}}}resultat") == "true", retried.text
    first, second = sf.outward()  # never repeated by the seam: not idempotent
    assert first["body"] == second["body"]  # the same MeMo, messageUUID included
    [sent] = sf.hooks.call("GET", "sent")
    assert sent["messageUUID"] in first["body"]


def test_151_characters_refused_on_sf1601_and_sent_on_the_certificate_route(
    sf: Sf1601Platform,
) -> None:
    text = "x" * 151
    refused = sf.call(afsend(text, afsendelse_id=new_id()))
    assert (refused.status_code, error_code(refused)) == (400, "SP-510")
    assert sf.outward() == []
    fits = sf.call(afsend("y" * 150, afsendelse_id=new_id()))
    assert body_of(fits).findtext(f"{{{TNS}}}resultat") == "true", fits.text
    sf.register_hooks.subscribe("2250004", cpr=[CPR])
    sent = sf.call(afsend(text, afsendelse_id=new_id()), cvr=AUTHORITY)
    assert body_of(sent).findtext(f"{{{TNS}}}resultat") == "true", sent.text
    assert [len(s["text"]) for s in sf.register_hooks.sms()] == [151]


def test_sts_down_is_its_own_fault(sf: Sf1601Platform) -> None:
    assert sf.call(spoerg(CPR)).status_code == 200  # a token is cached
    # The peer refuses it once, so a refresh is needed, and the STS is down.
    sf.sts_hooks.call("POST", "faults", {"status": "reset", "count": 10, "target": "issue"})
    sf.hooks.call("POST", "faults", {"status": 401, "count": 1, "target": "service"})
    try:
        response = sf.call(spoerg(CPR))
        assert error_code(response) == "SP-440", response.text
    finally:
        sf.sts_hooks.call("POST", "faults", {"status": 503, "count": 0, "target": "issue"})
    assert body_of(sf.call(spoerg(CPR))).findtext(f"{{{TNS}}}tilmeldt") == "true"
