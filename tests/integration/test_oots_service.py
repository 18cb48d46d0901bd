"""OOTS Dokumentation 1 end to end: signed SOAP in, AS4 through the WS plugin out, answers back.

Real parts only: the platform's WSGI application on a local socket, the simulated OOTS
gateway (WS plugin, providers in Finland and Sweden, preview space over TLS, common services)
on its own sockets, a "portal" server the preview sends the user back to, and between the
platform and the WS plugin a recording proxy that forwards every call unchanged, so the
envelopes the platform really sent can be checked against the official schemas.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar, Final

import pytest
import requests
from lxml import etree
from sqlalchemy import select

from integrations.oots import DEFAULT_ENTITY_ID, PATH
from integrations.oots.as4.model import EBMS_NS
from integrations.oots.as4.soap import SOAP12_NS
from integrations.oots.domibus.ws_plugin import parse_submit_request
from integrations.oots.edm import parse_query_request
from integrations.oots.settings import OOTS_SETTINGS, OotsRequesterSettings, OotsSettings
from integrations.oots.tables import oots_messages, oots_requests
from serviceplatform.app import PlatformApp
from serviceplatform.config import ServiceSettings
from serviceplatform.routing.model import Agreement, AgreementStatus
from serviceplatform.sandbox.httpserver import QuietHandler, ServerThread, ThreadedServer
from serviceplatform.sandbox.nemsms_register import NemSmsRegister
from serviceplatform.sandbox.oots_gateway import SimulatedOotsGateway
from serviceplatform.sandbox.oots_network import (
    ET_FI_BIRTH,
    ET_FI_DEGREE,
    ET_SE_DEGREE,
    REQ_BIRTH,
    REQ_DEGREE,
)
from serviceplatform.sandbox.oots_seed import OOTS_AGREEMENT, SANDBOX_CONSUMER_SYSTEM
from serviceplatform.sandbox.pki import Pki
from serviceplatform.store.db import Database
from serviceplatform.store.models import audit_records
from serviceplatform.store.repository import RoutingRepository
from tests.integration.conftest import (
    AUTHORITY,
    CaseSystem,
    make_settings,
    seed,
    utc_now,
)
from tests.integration.oots_requests import (
    State,
    anmod_bevis,
    answer,
    efter_forhaandsvisning,
    find_bevistyper,
    find_udbydere,
    hent_status,
    state,
)
from tests.integration.sf2250_requests import fault_code
from tests.oots_domibus_material import (
    REEL_ANSWER,
    ebms3_schema,
    push_submit_envelope,
    ws_plugin_schema,
)
from tests.unit.test_oots_edm_validation import (
    allowed_failures,
    errors_of,
    failed_asserts,
    schema_errors,
)
from tests.wsgi_serving import LocalWsgiServer

pytestmark = pytest.mark.integration

USER, PASSWORD = "oots-platform", "s3cret-oots"
TNS: Final = "http://serviceplatformen.dk/xml/wsdl/soap12/OOTS/Dokumentation/1/"
#: Authority D gets an approved OOTS agreement here, but no OOTS identifier (no route; authority
#: B has one in the sample tables since the sandbox sends its requests over AS4).
UNCONFIGURED: Final = "29189870"
#: Authority C has no OOTS agreement at all.
NO_AGREEMENT: Final = "29189862"
RETURN_URL: Final = "https://portal.example.dk/oots/retur"


# --- the recording proxy between the platform and the WS plugin -------------------------------


@dataclass
class Recorded:
    bodies: list[bytes] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    #: Submits whose answer the proxy swallows after forwarding them (the gateway took them,
    #: the platform sees a 503): the ambiguous failure a read timeout also causes.
    lose_submit_answers: int = 0
    #: Submits the proxy answers with HTTP 400 itself, not forwarding them (a refusal).
    refuse_submits: int = 0

    def submits(self) -> list[bytes]:
        with self.lock:
            return [b for b in self.bodies if b"submitRequest" in b]

    def clear(self) -> None:
        with self.lock:
            self.bodies.clear()


def recording_proxy(target: str, recorded: Recorded) -> tuple[ThreadingHTTPServer, str]:
    session = requests.Session()
    session.trust_env = False

    class Proxy(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            with recorded.lock:
                recorded.bodies.append(body)
            headers = {
                k: v
                for k, v in self.headers.items()
                if k.lower() in ("content-type", "authorization", "accept")
            }
            with recorded.lock:
                refuse = b"submitRequest" in body and recorded.refuse_submits > 0
                recorded.refuse_submits -= 1 if refuse else 0
            if refuse:
                self.send_response(400)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            reply = session.post(target, data=body, headers=headers, timeout=30)
            with recorded.lock:
                lose = b"submitRequest" in body and recorded.lose_submit_answers > 0
                recorded.lose_submit_answers -= 1 if lose else 0
            if lose:
                self.send_response(503)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(reply.status_code)
            for name in ("Content-Type", "WWW-Authenticate"):
                if name in reply.headers:
                    self.send_header(name, reply.headers[name])
            self.send_header("Content-Length", str(len(reply.content)))
            self.end_headers()
            self.wfile.write(reply.content)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Proxy)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_port}/domibus/services/wsplugin"


# --- the portal the preview sends the user back to --------------------------------------------


class _PortalHandler(QuietHandler):
    visits: ClassVar[list[str]] = []

    def do_GET(self) -> None:  # noqa: N802
        self.visits.append(self.path)
        self.send_body(200, b"<html><body>Tilbage i portalen</body></html>", "text/html")


# --- the running platform ------------------------------------------------------------------------


@dataclass
class Oots:
    base_url: str
    app: PlatformApp
    gateway: SimulatedOotsGateway
    case_system: CaseSystem
    recorded: Recorded
    portal_url: str
    database: Database

    @property
    def url(self) -> str:
        return self.base_url + PATH

    def call(
        self, body: etree._Element, *, cvr: str = AUTHORITY, **token: Any
    ) -> requests.Response:
        payload = self.case_system.envelope(
            body, self.url, token={"cvr": cvr, "audience": DEFAULT_ENTITY_ID, **token}
        )
        session = requests.Session()
        session.trust_env = False
        return session.post(
            self.url,
            data=payload,
            headers={"Content-Type": "application/soap+xml; charset=utf-8"},
            timeout=30,
        )

    def hook(self, method: str, path: str, **kwargs: Any) -> Any:
        session = requests.Session()
        session.trust_env = False
        response = session.request(
            method, f"{self.gateway.control_url}/{path}", timeout=5, **kwargs
        )
        assert response.status_code == 200, response.text
        return response.json()

    def audit(self) -> list[dict[str, Any]]:
        with self.database.transaction() as connection:
            rows = connection.execute(select(audit_records).order_by(audit_records.c.id))
            return [dict(row._mapping) for row in rows]

    def wait_for(self, request_id: str, status: str, timeout: float = 10.0) -> State:
        deadline = time.monotonic() + timeout
        while True:
            found = state(self.call(hent_status(request_id)))
            if found.status == status or time.monotonic() > deadline:
                return found
            time.sleep(0.1)


@pytest.fixture(scope="module")
def oots(
    tmp_path_factory: pytest.TempPathFactory,
    pki: Pki,
    register: NemSmsRegister,
    case_system: CaseSystem,
) -> Iterator[Oots]:
    recorded = Recorded()
    portal = ServerThread(ThreadedServer(("127.0.0.1", 0), _PortalHandler), "portal")
    portal.start()
    with SimulatedOotsGateway(
        username=USER, password=PASSWORD, response_delay=0.05, tls_dir=pki.directory
    ) as gateway:
        proxy, proxy_url = recording_proxy(gateway.base_url, recorded)
        settings = make_settings(tmp_path_factory.mktemp("oots"), pki, register.base_url)
        settings.services["oots"] = ServiceSettings(entity_id=DEFAULT_ENTITY_ID)
        settings.sections[OOTS_SETTINGS.name] = OotsSettings(
            domibus_url=proxy_url,
            domibus_username=USER,
            domibus_password=PASSWORD,
            party_id="AP_DK_01",
            common_services_url=gateway.common_services_url,
            poll_interval_seconds=0.2,
            answer_wait_seconds=3.0,
            resend_after_seconds=0.5,
            requesters={AUTHORITY: OotsRequesterSettings(name="Sandbox Kommune A")},
        )
        seed(settings)
        database = Database(settings.database.url)
        repository = RoutingRepository(database)
        for agreement in (
            OOTS_AGREEMENT,
            Agreement(
                uuid="8f0e6d2c-4b1a-4c3e-9d7f-2a6b5c8e1f03",
                authority_cvr=UNCONFIGURED,
                service="oots",
                consumer_system=SANDBOX_CONSUMER_SYSTEM,
                supplier="Sandbox Supplier",
                status=AgreementStatus.APPROVED,
            ),
        ):
            repository.upsert_agreement(agreement)
        app = PlatformApp(settings)
        server = LocalWsgiServer(app)
        base_url = server.base_url
        try:
            yield Oots(
                base_url,
                app,
                gateway,
                case_system,
                recorded,
                f"http://127.0.0.1:{portal.port}/oots/retur",
                database,
            )
        finally:
            server.close()
            app.close()
            database.dispose()
            proxy.shutdown()
            proxy.server_close()
    portal.stop()


@pytest.fixture()
def fresh(oots: Oots) -> Oots:
    oots.hook("DELETE", "submitted")
    oots.recorded.clear()
    return oots


def browser(oots: Oots) -> requests.Session:
    session = requests.Session()
    session.trust_env = False
    session.verify = str(oots.gateway.preview_ca_cert)
    return session


def press(oots: Oots, location: str, decision: str) -> requests.Response:
    """The user at the preview page: open it as the portal redirected, press a button."""
    user = browser(oots)
    page = user.get(location, params={"returnUrl": oots.portal_url}, timeout=10)
    assert page.status_code == 200
    form = etree.HTML(page.text).find(".//form")
    assert form is not None and form.get("method") == "post"
    data = {f.get("name"): f.get("value") for f in form.iter("input") if f.get("type") == "hidden"}
    data["decision"] = decision
    return user.post(form.get("action") or location, data=data, timeout=10)


def degree_fi(**changes: Any) -> etree._Element:
    values: dict[str, Any] = {
        "provider": "FI-UNIV-PREVIEW",
        "classification": ET_FI_DEGREE,
        "country": "FI",
        "requirement": REQ_DEGREE,
        "procedure": "T3",
    }
    return anmod_bevis(**(values | changes))


def degree_se(provider: str) -> etree._Element:
    return anmod_bevis(
        provider=provider,
        classification=ET_SE_DEGREE,
        country="SE",
        requirement=REQ_DEGREE,
        procedure="T3",
    )


def check_submitted(oots: Oots, count: int) -> list[Any]:
    """Every submit the platform sent: valid against the WS plugin WSDL and ebMS 3, the body
    against RegRep 4 + SDG, and the EDM Schematron rules that apply."""
    bodies = oots.recorded.submits()
    assert len(bodies) == count
    plugin, ebms3 = ws_plugin_schema(), ebms3_schema()
    found = []
    for body in bodies:
        root = etree.fromstring(body)
        assert plugin.validate(root), plugin.error_log
        messaging = root.find(f"{{{SOAP12_NS}}}Header/{{{EBMS_NS}}}Messaging")
        assert messaging is not None
        assert ebms3.validate(messaging), ebms3.error_log
        message = parse_submit_request(body)
        assert message.body is not None
        assert schema_errors(message.body) == []
        request = parse_query_request(message.body)
        assert errors_of(failed_asserts(message.body)) <= allowed_failures(request)
        found.append((message, request))
    return found


# --- finding evidence ----------------------------------------------------------------------------


def test_find_evidence_types_of_a_procedure(fresh: Oots) -> None:
    child = answer(fresh.call(find_bevistyper("T3")))
    requirements = child.findall(f"{{{TNS}}}Krav")
    assert [r.findtext(f"{{{TNS}}}Identifikator") for r in requirements] == [REQ_DEGREE]
    types = {
        (t.findtext(f"{{{TNS}}}LandeKode"), t.findtext(f"{{{TNS}}}Klassifikation"))
        for t in requirements[0].iter(f"{{{TNS}}}Bevistype")
    }
    assert types == {("FI", ET_FI_DEGREE), ("SE", ET_SE_DEGREE)}
    only_se = answer(fresh.call(find_bevistyper("T3", REQ_DEGREE, "SE")))
    assert [t.findtext(f"{{{TNS}}}LandeKode") for t in only_se.iter(f"{{{TNS}}}Bevistype")] == [
        "SE"
    ]
    assert fresh.recorded.submits() == []


def test_several_providers_to_choose_from(fresh: Oots) -> None:
    child = answer(fresh.call(find_udbydere(ET_SE_DEGREE, "SE")))
    providers = {
        p.findtext(f"{{{TNS}}}Identifikator"): p.findtext(f"{{{TNS}}}EDMVersion")
        for p in child.iterfind(f"{{{TNS}}}Udbyder")
    }
    assert providers == {"SE-UHR-DIRECT": "oots-edm:v1.2", "SE-LADOK-ERROR": "oots-edm:v2.0"}
    assert child.find(f"{{{TNS}}}AttributKraevet") is None


def test_additional_attribute_needed_then_given(fresh: Oots) -> None:
    needed = answer(fresh.call(find_udbydere(ET_FI_BIRTH, "FI")))
    assert needed.find(f"{{{TNS}}}Udbyder") is None
    context = needed.findtext(f"{{{TNS}}}AttributKraevet/{{{TNS}}}KontekstIdentifikator")
    assert context and needed.findtext(f"{{{TNS}}}AttributKraevet/{{{TNS}}}Niveau") == "NUTS2"
    assert "Place of birth" in etree.tostring(needed, encoding="unicode")
    # Asking for the evidence without the attribute says what is missing; nothing is sent.
    birth: dict[str, Any] = {
        "provider": "FI-DVV-HELSINKI",
        "classification": ET_FI_BIRTH,
        "country": "FI",
        "requirement": REQ_BIRTH,
        "procedure": "R1",
    }
    assert fault_code(fresh.call(anmod_bevis(**birth))) == "SP-718"
    given = answer(fresh.call(find_udbydere(ET_FI_BIRTH, "FI", (context, "NUTS2", "FI1B"))))
    assert [p.findtext(f"{{{TNS}}}Identifikator") for p in given.iter(f"{{{TNS}}}Udbyder")] == [
        "FI-DVV-HELSINKI"
    ]
    evidence = state(fresh.call(anmod_bevis(**birth, attribute=(context, "NUTS2", "FI1B"))))
    assert evidence.status == "BevisModtaget", evidence
    assert evidence.media_type == "application/xml"
    assert evidence.document is not None and b"Virtanen" in evidence.document
    check_submitted(fresh, 1)


# --- requesting evidence -------------------------------------------------------------------------


def test_direct_answer_in_the_version_the_provider_conforms_to(fresh: Oots) -> None:
    result = state(fresh.call(degree_se("SE-UHR-DIRECT")))
    assert result.status == "BevisModtaget", result
    assert result.version == "oots-edm:v1.2"
    assert result.media_type == "application/json"
    assert result.document is not None and b"Virtanen" in result.document
    assert result.evidence_type == ET_SE_DEGREE
    assert result.issuer == "SE-UHR-DIRECT"
    [(message, request)] = check_submitted(fresh, 1)
    assert request.version.value == "oots-edm:v1.2"  # the DSD's ConformsTo for SE-UHR-DIRECT
    assert request.requester.identifier == AUTHORITY
    assert request.requester.name == "Sandbox Kommune A"
    assert message.to_party is not None and message.to_party.value == "AP_SE_01"
    assert message.final_recipient is not None
    assert message.final_recipient.value == "SE-UHR-DIRECT"
    [submitted] = fresh.hook("GET", "submitted")
    assert submitted["outcome"] == "evidence"
    # The status can be asked again, and gives the same document.
    again = state(fresh.call(hent_status(result.request_id)))
    assert again.status == "BevisModtaget" and again.document == result.document


def test_two_step_preview_journey(fresh: Oots) -> None:
    first = state(fresh.call(degree_fi()))
    assert first.status == "ForhaandsvisningKraevet", first
    assert first.version == "oots-edm:v2.0"
    assert first.preview_location is not None
    assert first.preview_location.startswith(fresh.gateway.preview_base_url + "/")
    assert first.preview_method == "GET" and first.descriptions
    # The portal redirects the user; the user approves and lands back at the portal.
    back = press(fresh, first.preview_location, "approve")
    assert back.history and back.history[0].status_code == 303
    assert back.url == fresh.portal_url and "Tilbage i portalen" in back.text
    second = state(fresh.call(efter_forhaandsvisning(first.request_id, RETURN_URL)))
    assert second.request_id == first.request_id
    assert second.status == "BevisModtaget", second
    assert second.media_type == "application/pdf"
    assert second.document is not None and second.document.startswith(b"%PDF")
    shown = browser(fresh).get(first.preview_location + "/document", timeout=10)
    assert shown.content == second.document  # what the user saw is what was shared
    (_, one), (_, two) = check_submitted(fresh, 2)
    assert one.preview_location is None and two.preview_location == first.preview_location
    assert two.return_location == RETURN_URL
    assert str(one.request_id) == first.request_id and two.request_id != one.request_id
    assert [s["outcome"] for s in fresh.hook("GET", "submitted")] == ["preview", "evidence"]
    # A preview step on a request that is answered is refused, without a call out.
    refused = fresh.call(efter_forhaandsvisning(first.request_id))
    assert fault_code(refused) == "SP-713"
    assert len(fresh.recorded.submits()) == 2
    audit_holds_no_evidence(fresh, second.document, first.request_id)


def audit_holds_no_evidence(oots: Oots, document: bytes, request_id: str) -> None:
    import base64

    rows = oots.audit()
    mine = [r for r in rows if r["detail"] and request_id in r["detail"]]
    operations = [r["operation"] for r in mine]
    assert operations.count("AnmodBevis") == 1
    # The second request, then the refused preview step on the answered request.
    assert operations.count("AnmodBevisEfterForhaandsvisning") == 2
    assert operations.count("Bevissvar") == 2  # the preview answer and the evidence
    assert all(r["service"] == "oots" and r["authority_cvr"] == AUTHORITY for r in mine)
    needles = [document[:64], base64.b64encode(document)[:64], b"Virtanen", b"Aino"]
    for row in rows:
        for value in row.values():
            text = str(value).encode()
            assert not any(needle in text for needle in needles), row
    # The evidence itself is kept where the answers are, and nowhere in oots_requests.
    with oots.database.transaction() as connection:
        request = connection.execute(
            select(oots_requests).where(oots_requests.c.request_id == request_id)
        ).one()
        assert request.state == "answered" and request.answer_message_id
        stored = connection.execute(
            select(oots_messages.c.attachments).where(
                oots_messages.c.message_id == request.answer_message_id
            )
        ).scalar_one()
    assert base64.b64encode(document).decode()[:64] in stored


def test_declined_preview_is_the_edm_error(fresh: Oots) -> None:
    first = state(fresh.call(degree_fi()))
    assert first.status == "ForhaandsvisningKraevet" and first.preview_location
    back = press(fresh, first.preview_location, "decline")
    assert back.url == fresh.portal_url
    refused = fresh.call(efter_forhaandsvisning(first.request_id, RETURN_URL))
    assert refused.status_code == 400
    assert fault_code(refused) == "SP-702"
    assert first.request_id in refused.text
    status = state(fresh.call(hent_status(first.request_id)))
    assert (status.status, status.error_code, status.edm_error_code) == (
        "Fejl",
        "SP-702",
        "EDM:ERR:0002",
    )


def test_provider_error_is_its_mapped_fault(fresh: Oots) -> None:
    refused = fresh.call(degree_se("SE-LADOK-ERROR"))
    assert refused.status_code == 400
    assert fault_code(refused) == "SP-704"
    [(_, request)] = check_submitted(fresh, 1)
    assert request.version.value == "oots-edm:v2.0"
    rows = [r for r in fresh.audit() if r["operation"] == "Bevissvar"]
    assert rows[-1]["error_code"] == "SP-704" and rows[-1]["outcome"] == "fault"


def test_status_of_a_pending_request_and_the_background_poller(fresh: Oots) -> None:
    first = state(fresh.call(degree_fi()))
    assert first.preview_location is not None
    # The portal sends the second request before the user decides: the provider holds it.
    second = state(fresh.call(efter_forhaandsvisning(first.request_id)))
    assert second.status == "Afventer", second
    assert state(fresh.call(hent_status(first.request_id))).status == "Afventer"
    before = len([r for r in fresh.audit() if r["operation"] == "Bevissvar"])
    press(fresh, first.preview_location, "approve")
    # Nobody asks: the poller collects the answer, applies and audits it.
    deadline = time.monotonic() + 10
    while len([r for r in fresh.audit() if r["operation"] == "Bevissvar"]) == before:
        assert time.monotonic() < deadline, "the poller did not collect the answer"
        time.sleep(0.1)
    done = state(fresh.call(hent_status(first.request_id)))
    assert done.status == "BevisModtaget" and done.document is not None


def _message_ids(bodies: list[bytes]) -> list[str]:
    return [parse_submit_request(body).message_id for body in bodies]


def test_a_gateway_that_is_down_keeps_the_request_and_sends_it_when_it_returns(
    fresh: Oots,
) -> None:
    # Every WS plugin call answers 503 for a while (the poller's calls too).
    fresh.hook("POST", "faults", json={"status": 503, "count": 500, "endpoint": "wsplugin"})
    try:
        queued = state(fresh.call(degree_se("SE-UHR-DIRECT")))
        assert queued.status == "Afventer", queued
        time.sleep(1.0)  # past resend_after: the poller tries again, and fails again
        assert state(fresh.call(hent_status(queued.request_id))).status == "Afventer"
        assert fresh.hook("GET", "submitted") == []
    finally:
        fresh.hook("POST", "faults", json={"status": 503, "count": 0, "endpoint": "wsplugin"})
    done = fresh.wait_for(queued.request_id, "BevisModtaget")
    assert done.status == "BevisModtaget" and done.document is not None
    # The same message both times (one MessageId); the gateway took it once.
    sent = fresh.recorded.submits()
    assert len(sent) == 2 and len(set(_message_ids(sent))) == 1
    assert len(fresh.hook("GET", "submitted")) == 1
    check_submitted(fresh, 2)
    delivered = [r for r in fresh.audit() if r["operation"] == "Bevisanmodning"]
    assert delivered[-1]["outcome"] == "ok" and queued.request_id in delivered[-1]["detail"]


def test_a_submission_taken_but_not_confirmed_is_not_sent_twice(fresh: Oots) -> None:
    with fresh.recorded.lock:
        fresh.recorded.lose_submit_answers = 1
    queued = state(fresh.call(degree_se("SE-UHR-DIRECT")))
    assert queued.status == "Afventer", queued
    done = fresh.wait_for(queued.request_id, "BevisModtaget")
    assert done.status == "BevisModtaget"
    # The poller asked the gateway (getStatus), which had it: no second submit.
    assert len(fresh.recorded.submits()) == 1
    assert len(fresh.hook("GET", "submitted")) == 1
    assert any(b"statusRequest" in body for body in fresh.recorded.bodies)


def test_a_submission_the_gateway_refuses_fails_at_once(fresh: Oots) -> None:
    with fresh.recorded.lock:
        fresh.recorded.refuse_submits = 1
    refused = fresh.call(degree_se("SE-UHR-DIRECT"))
    code = fault_code(refused)
    assert code == "SP-405", refused.text  # UpstreamRejected: no retry can change it
    with fresh.database.transaction() as connection:
        row = connection.execute(
            select(oots_requests).order_by(oots_requests.c.created_at.desc()).limit(1)
        ).one()
    assert (row.state, row.error_code) == ("failed", code)
    status = state(fresh.call(hent_status(row.request_id)))
    assert (status.status, status.error_code) == ("Fejl", code)
    assert fresh.hook("GET", "submitted") == []


# --- refused -------------------------------------------------------------------------------------


def test_another_authoritys_request_is_refused(fresh: Oots) -> None:
    mine = state(fresh.call(degree_se("SE-UHR-DIRECT")))
    refused = fresh.call(hent_status(mine.request_id), cvr=UNCONFIGURED)
    assert fault_code(refused) == "SP-712"
    assert "Virtanen" not in refused.text and "BevisModtaget" not in refused.text
    second = fresh.call(efter_forhaandsvisning(mine.request_id), cvr=UNCONFIGURED)
    assert fault_code(second) == "SP-712"
    assert fault_code(fresh.call(hent_status("00000000-0000-4000-8000-000000000000"))) == "SP-711"


@pytest.mark.parametrize(("cvr", "code"), [(UNCONFIGURED, "SP-710"), (NO_AGREEMENT, "SP-301")])
def test_authority_without_oots_configuration_is_refused_without_outward_call(
    fresh: Oots, cvr: str, code: str
) -> None:
    refused = fresh.call(degree_se("SE-UHR-DIRECT"), cvr=cvr)
    assert fault_code(refused) == code
    assert fresh.recorded.submits() == []  # the poller's own listing may run meanwhile
    assert fresh.hook("GET", "submitted") == []
    calls = [r for r in fresh.audit() if r["operation"] == "AnmodBevis"]
    assert (calls[-1]["authority_cvr"], calls[-1]["error_code"]) == (cvr, code)


TOKEN_FAILURES: Final[dict[str, tuple[dict[str, Any], str]]] = {
    "expired token": ({"now": utc_now().replace(year=utc_now().year - 1)}, "SP-208"),
    "wrong audience": ({"audience": "http://entityid.example/other"}, "SP-210"),
}


@pytest.mark.parametrize("case", sorted(TOKEN_FAILURES))
def test_token_failures_give_the_platform_faults(fresh: Oots, case: str) -> None:
    token, code = TOKEN_FAILURES[case]
    payload = fresh.case_system.envelope(
        degree_se("SE-UHR-DIRECT"),
        fresh.url,
        token={"cvr": AUTHORITY, "audience": DEFAULT_ENTITY_ID, **token},
    )
    session = requests.Session()
    session.trust_env = False
    refused = session.post(
        fresh.url, data=payload, headers={"Content-Type": "application/soap+xml"}, timeout=10
    )
    assert refused.status_code == 400
    assert fault_code(refused) == code
    assert fresh.recorded.submits() == []  # the poller's own listing may run meanwhile


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (degree_fi(country="XX"), "SP-716"),
        (degree_fi(media_type="text/plain"), "SP-715"),
        (degree_fi(media_type="application/json"), "SP-715"),  # not offered by the provider
        (degree_fi(provider="NO-SUCH-PROVIDER"), "SP-717"),
        (degree_fi(requirement=REQ_BIRTH), "SP-714"),
        (find_udbydere(ET_SE_DEGREE, "ZZ"), "SP-716"),
    ],
    ids=["country", "media-type", "format-not-offered", "provider", "requirement", "find-country"],
)
def test_invalid_input_is_refused_before_anything_is_sent(
    fresh: Oots, body: etree._Element, code: str
) -> None:
    refused = fresh.call(body)
    assert refused.status_code == 400
    assert fault_code(refused) == code
    assert fresh.recorded.submits() == []


# --- Domibus' push, mounted by the integration ----------------------------------------------------


def test_push_endpoint_is_mounted_where_configured_and_stores_before_answering(
    tmp_path_factory: pytest.TempPathFactory, pki: Pki, register: NemSmsRegister
) -> None:
    settings = make_settings(tmp_path_factory.mktemp("oots-push"), pki, register.base_url)
    settings.sections[OOTS_SETTINGS.name] = OotsSettings(
        domibus_url="http://127.0.0.1:9/domibus/services/wsplugin",
        party_id="AP_DK_01",
        poll_interval_seconds=30.0,
        push_path="/oots/domibus-push",
        push_username="domibus",
        push_password="push-s3cret",
    )
    seed(settings)
    app = PlatformApp(settings)
    server = LocalWsgiServer(app)
    base_url = server.base_url
    http = requests.Session()
    http.trust_env = False
    pushed = push_submit_envelope(REEL_ANSWER.read_bytes())
    headers = {"Content-Type": "application/soap+xml; charset=utf-8"}
    try:
        url = base_url + "/oots/domibus-push"
        refused = http.post(url, data=pushed, headers=headers, auth=("domibus", "wrong"))
        assert refused.status_code == 401
        for _ in range(2):  # a repeated push stores nothing new and still succeeds
            done = http.post(url, data=pushed, headers=headers, auth=("domibus", "push-s3cret"))
            assert done.status_code == 200, done.text
        database = Database(settings.database.url)
        try:
            with database.transaction() as connection:
                stored = list(connection.execute(select(oots_messages.c.action)))
        finally:
            database.dispose()
        assert [row.action for row in stored] == ["ExecuteQueryResponse"]
        assert http.get(base_url + "/oots/other").status_code == 404
        service_apps = [a for a in app._built if getattr(a, "poller", None) is not None]
        assert service_apps and all(a.poller.running for a in service_apps)  # type: ignore[attr-defined]
    finally:
        server.close()
        app.close()
    assert not any(a.poller.running for a in service_apps)  # type: ignore[attr-defined]


# --- an authority with its own access point ----------------------------------------------------


def test_an_authority_with_its_own_access_point_sends_and_collects_through_it(
    tmp_path_factory: pytest.TempPathFactory,
    pki: Pki,
    register: NemSmsRegister,
    case_system: CaseSystem,
) -> None:
    with (
        SimulatedOotsGateway(username=USER, password=PASSWORD) as platforms,
        SimulatedOotsGateway(
            username="kommune-a", password="a-s3cret", party_id="AP_DK_KOMMUNE_A"
        ) as authoritys,
    ):
        settings = make_settings(tmp_path_factory.mktemp("oots-own-ap"), pki, register.base_url)
        settings.services["oots"] = ServiceSettings(entity_id=DEFAULT_ENTITY_ID)
        settings.sections[OOTS_SETTINGS.name] = OotsSettings(
            domibus_url=platforms.base_url,
            domibus_username=USER,
            domibus_password=PASSWORD,
            party_id="AP_DK_01",
            common_services_url=platforms.common_services_url,
            poll_interval_seconds=0,
            answer_wait_seconds=3.0,
            requesters={
                AUTHORITY: OotsRequesterSettings(
                    name="Sandbox Kommune A",
                    domibus_url=authoritys.base_url,
                    domibus_username="kommune-a",
                    domibus_password="a-s3cret",
                    party_id="AP_DK_KOMMUNE_A",
                )
            },
        )
        seed(settings)
        database = Database(settings.database.url)
        RoutingRepository(database).upsert_agreement(OOTS_AGREEMENT)
        app = PlatformApp(settings)
        server = LocalWsgiServer(app)
        base_url = server.base_url
        try:
            oots = Oots(base_url, app, authoritys, case_system, Recorded(), "", database)
            result = state(oots.call(degree_se("SE-UHR-DIRECT")))
            assert result.status == "BevisModtaget", result
            assert result.document is not None
            taken = oots.hook("GET", "submitted")
            assert len(taken) == 1
            oots.gateway = platforms
            assert oots.hook("GET", "submitted") == []
        finally:
            server.close()
            app.close()
            database.dispose()
