"""The simulated OOTS gateway over real sockets: WS plugin, providers, preview pages, hooks.

The test client here talks raw WS plugin SOAP (envelopes built in the test, shaped like
``oots-edm-2.0/reference/soap/requete.soumission.xml``), builds its EDM requests with
``integrations.oots.edm.build_query_request`` and reads the gateway's envelopes with the reader
the EDM tests use for the real Domibus captures (``ws_plugin_message``): what reads the
captures reads the gateway. The preview pages are followed with ``requests``, redirect and all,
back to a small "portal" server.
"""

from __future__ import annotations

import base64
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any, ClassVar, Final, Protocol
from urllib.parse import urlsplit

import pytest
import requests
from lxml import etree

from integrations.oots.edm import (
    EdmError,
    EdmVersion,
    Evidence,
    EvidenceProvider,
    EvidenceRequest,
    LocalizedText,
    NaturalPerson,
    PreviewRequired,
    QueryOutcome,
    RequestedEvidenceType,
    Requester,
    Requirement,
    build_query_request,
    choose_version,
    parse_query_response,
)
from serviceplatform.sandbox.httpserver import QuietHandler, ServerThread, ThreadedServer
from serviceplatform.sandbox.oots_gateway import SimulatedOotsGateway
from serviceplatform.sandbox.oots_network import (
    DEFAULT_NETWORK,
    ET_SE_DEGREE,
    GATEWAY_ROLE,
    OOTS_PARTY_TYPE,
    REQ_BIRTH,
    REQ_DEGREE,
    ProviderSpec,
)
from tests.unit.test_oots_edm_samples import COMPANY, WsPluginMessage, ws_plugin_message

pytestmark = pytest.mark.integration

CONFORMANCE: Final = Path(__file__).resolve().parents[2].parent / "shared" / "conformance"
REEL: Final = CONFORMANCE / "oots-edm-2.0" / "incoming" / "reel"
SOAP_NS: Final = "http://www.w3.org/2003/05/soap-envelope"
EBMS_NS: Final = "http://docs.oasis-open.org/ebxml-msg/ebms/v3.0/ns/core/200704/"
WSPLUGIN_NS: Final = "http://eu.domibus.wsplugin/"
SERVICE_TYPE: Final = "urn:oasis:names:tc:ebcore:ebrs:ebms:binding:1.0"
EBRS: Final = "application/x-ebrs+xml"
EAS_DK: Final = "urn:cef.eu:names:identifier:EAS:0184"
RETURN_LOCATION: Final = "https://portal.example.dk/oots/return"
USER, PASSWORD = "oots-backend", "s3cret"

REQUESTER: Final = Requester(name="Københavns Kommune", identifier="64942212", scheme=EAS_DK)
PERSON: Final = NaturalPerson(
    family_name="Virtanen",
    given_name="Aino",
    date_of_birth=date(1990, 5, 17),
    identifier="FI/DK/170590-123A",
    level_of_assurance="High",
)


# --- the test client -----------------------------------------------------------------------------


@dataclass
class Header:
    """What one ``submitMessage`` ebMS header says; tests break one value at a time."""

    to_party: str
    final_recipient: tuple[str, str | None] | None
    conversation_id: str | None = field(default_factory=lambda: str(uuid.uuid4()))
    from_party: str = "AP_DK_01"
    from_type: str = OOTS_PARTY_TYPE
    to_type: str = OOTS_PARTY_TYPE
    from_role: str = GATEWAY_ROLE
    to_role: str = GATEWAY_ROLE
    service: str = "QueryManager"
    service_type: str | None = SERVICE_TYPE
    action: str = "ExecuteQueryRequest"
    message_id: str | None = None
    original_sender: tuple[str, str | None] | None = (REQUESTER.identifier, EAS_DK)
    properties: list[tuple[str, str]] = field(default_factory=list)


def _eb(parent: etree._Element, local: str, text: str | None = None, **attrib: str) -> Any:
    element = etree.SubElement(parent, f"{{{EBMS_NS}}}{local}", attrib)
    element.text = text
    return element


def submit_envelope(
    header: Header | None,
    payloads: Sequence[tuple[str, str | None, bytes]],
    announced: Sequence[tuple[str, str]] | None = None,
) -> bytes:
    """A ``submitRequest`` envelope; ``payloads`` are (content id, contentType, bytes) and
    ``announced`` the PartInfo (content id, MimeType) list, by default the payloads'."""
    root = etree.Element(f"{{{SOAP_NS}}}Envelope", nsmap={"soap": SOAP_NS, "_1": WSPLUGIN_NS})
    head = etree.SubElement(root, f"{{{SOAP_NS}}}Header")
    if header is not None:
        messaging = etree.SubElement(head, f"{{{EBMS_NS}}}Messaging", nsmap={"eb": EBMS_NS})
        user = _eb(messaging, "UserMessage")
        info = _eb(user, "MessageInfo")
        _eb(info, "Timestamp", datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z"))
        if header.message_id:
            _eb(info, "MessageId", header.message_id)
        parties = _eb(user, "PartyInfo")
        for side, party, kind, role in (
            ("From", header.from_party, header.from_type, header.from_role),
            ("To", header.to_party, header.to_type, header.to_role),
        ):
            element = _eb(parties, side)
            _eb(element, "PartyId", party, type=kind)
            _eb(element, "Role", role)
        collaboration = _eb(user, "CollaborationInfo")
        service_attrib = {"type": header.service_type} if header.service_type else {}
        _eb(collaboration, "Service", header.service, **service_attrib)
        _eb(collaboration, "Action", header.action)
        if header.conversation_id is not None:
            _eb(collaboration, "ConversationId", header.conversation_id)
        properties = _eb(user, "MessageProperties")
        for name, value in (
            ("originalSender", header.original_sender),
            ("finalRecipient", header.final_recipient),
        ):
            if value is not None:
                attrib = {"name": name, **({"type": value[1]} if value[1] else {})}
                _eb(properties, "Property", value[0], **attrib)
        for name, text in header.properties:
            _eb(properties, "Property", text, name=name)
        payload_info = _eb(user, "PayloadInfo")
        listed = announced if announced is not None else [(c, t or EBRS) for c, t, _ in payloads]
        for cid, mime in listed:
            part = _eb(payload_info, "PartInfo", href=f"cid:{cid}")
            _eb(_eb(part, "PartProperties"), "Property", mime, name="MimeType")
    body = etree.SubElement(root, f"{{{SOAP_NS}}}Body")
    submit = etree.SubElement(body, f"{{{WSPLUGIN_NS}}}submitRequest")
    etree.SubElement(etree.SubElement(submit, "bodyload"), "value").text = "cid:bodyload"
    for cid, content_type, data in payloads:
        attrib = {
            "payloadId": f"cid:{cid}",
            **({"contentType": content_type} if content_type else {}),
        }
        payload = etree.SubElement(submit, "payload", attrib)
        etree.SubElement(payload, "value").text = base64.b64encode(data).decode()
    return bytes(etree.tostring(root))


def operation_envelope(local: str, children: dict[str, str] | None = None, **attrib: str) -> bytes:
    root = etree.Element(f"{{{SOAP_NS}}}Envelope", nsmap={"soap": SOAP_NS, "_1": WSPLUGIN_NS})
    etree.SubElement(root, f"{{{SOAP_NS}}}Header")
    operation = etree.SubElement(
        etree.SubElement(root, f"{{{SOAP_NS}}}Body"), f"{{{WSPLUGIN_NS}}}{local}", attrib
    )
    for name, text in (children or {}).items():
        etree.SubElement(operation, name).text = text
    return bytes(etree.tostring(root))


@dataclass(frozen=True)
class Received:
    """A retrieved message: the capture reader's view plus the header fields it leaves out."""

    message: WsPluginMessage
    ref_to: str | None
    conversation_id: str | None
    from_party: str | None
    to_party: str | None
    properties: dict[str, tuple[str | None, str | None]]

    def outcome(self) -> QueryOutcome:
        return parse_query_response(self.message.body(), self.message.attachments())


def received(envelope: bytes) -> Received:
    root = etree.fromstring(envelope)
    user = root.find(f"{{{SOAP_NS}}}Header/{{{EBMS_NS}}}Messaging/{{{EBMS_NS}}}UserMessage")
    assert user is not None

    def text(path: str) -> str | None:
        return user.findtext(path.replace("eb:", f"{{{EBMS_NS}}}"))

    return Received(
        message=ws_plugin_message(envelope),
        ref_to=text("eb:MessageInfo/eb:RefToMessageId"),
        conversation_id=text("eb:CollaborationInfo/eb:ConversationId"),
        from_party=text("eb:PartyInfo/eb:From/eb:PartyId"),
        to_party=text("eb:PartyInfo/eb:To/eb:PartyId"),
        properties={
            p.get("name") or "": (p.text, p.get("type"))
            for p in user.iterfind(f"{{{EBMS_NS}}}MessageProperties/{{{EBMS_NS}}}Property")
        },
    )


@dataclass(frozen=True)
class Fault:
    status: int
    code: str
    reason: str
    detail_code: str
    detail_message: str


def fault_of(response: requests.Response) -> Fault:
    root = etree.fromstring(response.content)
    fault = root.find(f"{{{SOAP_NS}}}Body/{{{SOAP_NS}}}Fault")
    assert fault is not None, response.text
    detail = fault.find(f"{{{SOAP_NS}}}Detail/{{{WSPLUGIN_NS}}}FaultDetail")
    assert detail is not None
    return Fault(
        status=response.status_code,
        code=fault.findtext(f"{{{SOAP_NS}}}Code/{{{SOAP_NS}}}Value") or "",
        reason=fault.findtext(f"{{{SOAP_NS}}}Reason/{{{SOAP_NS}}}Text") or "",
        detail_code=detail.findtext("code") or "",
        detail_message=detail.findtext("message") or "",
    )


class Route(Protocol):
    """Where a request goes: the DSD's access service and publisher (a ``ProviderSpec`` is one)."""

    @property
    def access_point(self) -> str: ...
    @property
    def identifier(self) -> str: ...
    @property
    def scheme(self) -> str: ...


@dataclass(frozen=True)
class Discovered:
    access_point: str
    identifier: str
    scheme: str
    name: str
    conforms_to: str


class OotsClient:
    """A backend of the WS plugin, as the platform will be one."""

    def __init__(self, gateway: SimulatedOotsGateway) -> None:
        self.gateway = gateway
        self.http = requests.Session()
        self.http.trust_env = False
        self.http.auth = (USER, PASSWORD)

    def call(self, envelope: bytes) -> requests.Response:
        return self.http.post(
            self.gateway.base_url,
            data=envelope,
            headers={"Content-Type": "application/soap+xml; charset=UTF-8"},
            timeout=10,
        )

    def ok(self, envelope: bytes) -> bytes:
        response = self.call(envelope)
        assert response.status_code == 200, response.text
        return response.content

    def header_for(self, provider: Route, **changes: Any) -> Header:
        header = Header(
            to_party=provider.access_point,
            final_recipient=(provider.identifier, provider.scheme),
            properties=[("ExchangeId", str(uuid.uuid4()))],
        )
        return replace(header, **changes)

    def submit(self, request: EvidenceRequest, provider: Route, conversation_id: str) -> str:
        header = self.header_for(provider, conversation_id=conversation_id)
        cid = f"{uuid.uuid4()}@dk.serviceplatform.test"
        answer = ws_plugin_message(
            self.ok(submit_envelope(header, [(cid, EBRS, build_query_request(request))]))
        )
        assert answer.operation == "submitResponse"
        assert len(answer.message_ids) == 1
        return answer.message_ids[0]

    def pending(self, **filters: str) -> list[str]:
        answer = ws_plugin_message(
            self.ok(operation_envelope("listPendingMessagesRequest", filters))
        )
        assert answer.operation == "listPendingMessagesResponse"
        return list(answer.message_ids)

    def retrieve(self, message_id: str, **attrib: str) -> Received:
        return received(
            self.ok(
                operation_envelope("retrieveMessageRequest", {"messageID": message_id}, **attrib)
            )
        )

    def answer_to(self, message_id: str, timeout: float = 5.0) -> Received:
        """The answer to a submitted request, once it is pending (answers are asynchronous)."""
        deadline = time.monotonic() + timeout
        while True:
            found = self.pending(refToMessageId=message_id)
            if found:
                assert len(found) == 1
                return self.retrieve(found[0])
            assert time.monotonic() < deadline, f"no answer to {message_id}"
            time.sleep(0.02)

    def ask(
        self, request: EvidenceRequest, provider: Route, conversation_id: str | None = None
    ) -> tuple[Received, QueryOutcome]:
        conversation = conversation_id or str(uuid.uuid4())
        message_id = self.submit(request, provider, conversation)
        answer = self.answer_to(message_id)
        assert answer.ref_to == message_id
        assert answer.conversation_id == conversation
        return answer, answer.outcome()

    def hook(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.http.request(
            method, f"{self.gateway.control_url}/{path}", timeout=5, **kwargs
        )
        assert response.status_code == 200, response.text
        return response.json()


def request_to(
    gateway: SimulatedOotsGateway, provider_id: str, **changes: Any
) -> tuple[EvidenceRequest, ProviderSpec]:
    """A first request to a provider of the network, in the version it speaks."""
    provider = gateway.network.provider(provider_id)
    assert provider is not None
    spec = gateway.network.evidence_type(provider.evidence_type)
    assert spec is not None
    requirement = REQ_BIRTH if "birth" in spec.titles[0].value.lower() else REQ_DEGREE
    request = EvidenceRequest(
        request_id=uuid.uuid4(),
        issue_datetime=datetime.now(UTC),
        procedure="T3" if requirement == REQ_DEGREE else "R1",
        requirements=(Requirement(requirement, (LocalizedText("Proof"),)),),
        evidence_type=RequestedEvidenceType(
            identifier=spec.identifier,
            classification=spec.classification,
            titles=spec.titles,
            format=spec.format,
        ),
        provider=EvidenceProvider(provider.identifier, provider.scheme, provider.name),
        requester=REQUESTER,
        subject=PERSON,
        explicit_request_given=True,
        possibility_for_preview=True,
        version=provider.version,
    )
    return replace(request, **changes), provider


def request_to_type() -> RequestedEvidenceType:
    """The Swedish degree certificate as the DSD describes it (JSON)."""
    spec = DEFAULT_NETWORK.evidence_type(ET_SE_DEGREE)
    assert spec is not None
    return RequestedEvidenceType(spec.identifier, spec.classification, spec.titles, spec.format)


def second(request: EvidenceRequest, location: str) -> EvidenceRequest:
    """The request after the preview: it repeats the location (v2.0 adds ``ReturnLocation``,
    an ``https://`` address the page may send the user back to)."""
    return replace(
        request,
        request_id=uuid.uuid4(),
        issue_datetime=datetime.now(UTC),
        preview_location=location,
        return_location=RETURN_LOCATION if request.version is EdmVersion.V2_0 else None,
    )


# --- the portal the preview sends the user back to -----------------------------------------------


class _PortalHandler(QuietHandler):
    visits: ClassVar[list[str]]

    def do_GET(self) -> None:  # noqa: N802
        self.visits.append(self.path)
        self.send_body(200, b"<html><body>Welcome back to the portal</body></html>", "text/html")


@pytest.fixture(scope="module")
def portal() -> Iterator[tuple[str, list[str]]]:
    visits: list[str] = []
    handler: type[BaseHTTPRequestHandler] = type("Portal", (_PortalHandler,), {"visits": visits})
    server = ServerThread(ThreadedServer(("127.0.0.1", 0), handler), "portal")
    server.start()
    yield f"http://127.0.0.1:{server.port}/oots/return", visits
    server.stop()


# --- gateways ------------------------------------------------------------------------------------


def _gateway(**options: Any) -> SimulatedOotsGateway:
    return SimulatedOotsGateway(username=USER, password=PASSWORD, **options)


@pytest.fixture(scope="module")
def gateway() -> Iterator[SimulatedOotsGateway]:
    with _gateway(response_delay=0.05) as running:
        yield running


@pytest.fixture()
def client(gateway: SimulatedOotsGateway) -> Iterator[OotsClient]:
    client = OotsClient(gateway)
    client.hook("DELETE", "submitted")
    client.hook("POST", "faults", json={"status": 503, "count": 0})
    yield client
    client.http.close()


@pytest.fixture()
def browser(gateway: SimulatedOotsGateway) -> Iterator[requests.Session]:
    """The user's browser: trusts the preview space's CA, follows redirects."""
    session = requests.Session()
    session.trust_env = False
    session.verify = str(gateway.preview_ca_cert)
    yield session
    session.close()


def preview_and_decide(
    browser: requests.Session,
    location: str,
    decision: str,
    return_url: str | None,
    *,
    follow: bool = True,
) -> requests.Response:
    """What the user does: open the page the portal redirected to, press a button."""
    params = {"returnUrl": return_url} if return_url else {}
    page = browser.get(location, params=params, timeout=10)
    assert page.status_code == 200
    assert 'name="decision" value="approve"' in page.text
    assert 'name="decision" value="decline"' in page.text
    form = etree.HTML(page.text).find(".//form")
    assert form is not None and form.get("method") == "post"
    data = {
        field.get("name"): field.get("value")
        for field in form.iter("input")
        if field.get("type") == "hidden"
    }
    data["decision"] = decision
    return browser.post(
        form.get("action") or location, data=data, timeout=10, allow_redirects=follow
    )


# --- the journeys --------------------------------------------------------------------------------


def journey(
    client: OotsClient,
    browser: requests.Session,
    portal: tuple[str, list[str]],
    provider_id: str,
) -> tuple[Evidence, PreviewRequired, EvidenceRequest]:
    return_url, visits = portal
    gateway = client.gateway
    first, provider = request_to(gateway, provider_id)
    conversation = str(uuid.uuid4())
    answer, outcome = client.ask(first, provider, conversation)
    assert answer.message.action == "ExceptionResponse"
    assert isinstance(outcome, PreviewRequired)
    assert outcome.location.startswith(gateway.preview_base_url + "/")
    assert outcome.request_id == f"urn:uuid:{first.request_id}"
    assert outcome.version is provider.version

    page = browser.get(outcome.location, params={"returnUrl": return_url}, timeout=10)
    assert page.status_code == 200
    assert "Aino Virtanen" in page.text and provider.name in page.text
    back = preview_and_decide(browser, outcome.location, "approve", return_url)
    assert back.status_code == 200
    assert back.history and back.history[0].status_code == 303
    assert back.url == return_url
    assert "Welcome back" in back.text
    assert urlsplit(return_url).path in visits

    request = second(first, outcome.location)
    answer, evidence = client.ask(request, provider, conversation)
    assert answer.message.action == "ExecuteQueryResponse"
    assert isinstance(evidence, Evidence)
    return evidence, outcome, request


def test_preview_journey_approve(
    client: OotsClient, browser: requests.Session, portal: tuple[str, list[str]]
) -> None:
    evidence, preview, request = journey(client, browser, portal, "FI-UNIV-PREVIEW")
    assert preview.method == "GET" and preview.version is EdmVersion.V2_0
    assert evidence.mime_type == "application/pdf"
    assert evidence.content.startswith(b"%PDF-1.4") and evidence.content.rstrip().endswith(b"%%EOF")
    assert evidence.classification == "MainEvidence"
    assert evidence.metadata.subject == PERSON
    assert evidence.request_id == f"urn:uuid:{request.request_id}"
    # What the user saw is what was shared.
    document = browser.get(preview.location + "/document", timeout=10)
    assert document.content == evidence.content
    # The hooks saw both requests and the preview.
    submitted = client.hook("GET", "submitted")
    assert [s["outcome"] for s in submitted] == ["preview", "evidence"]
    assert all(s["action"] == "ExecuteQueryRequest" for s in submitted)
    assert submitted[1]["payload"].count(preview.location) == 1
    assert submitted[0]["final_recipient"] == {
        "value": "FI-UNIV-PREVIEW",
        "type": "urn:cef.eu:names:identifier:EAS:0212",
    }
    assert submitted[0]["from"]["party_id"] == "AP_DK_01"
    assert submitted[0]["to"]["party_id"] == "AP_FI_01"
    previews = {p["location"]: p for p in client.hook("GET", "previews")}
    assert previews[preview.location]["state"] == "approved"
    assert previews[preview.location]["used"] is True
    assert previews[preview.location]["return_location"] == request.return_location


def test_whole_journey_from_the_evidence_broker(
    client: OotsClient, browser: requests.Session, portal: tuple[str, list[str]]
) -> None:
    """Procedure T3 in Denmark, evidence from Finland: EB -> DSD -> first request -> preview ->
    approve -> back at the portal -> second request -> the PDF."""
    gateway, return_url = client.gateway, portal[0]
    ns = {
        "rim": "urn:oasis:names:tc:ebxml-regrep:xsd:rim:4.0",
        "sdg": "http://data.europa.eu/p4s",
    }
    headers = {"Accept": "application/x-ebrs+xml", "Accept-Version": "oots-cs:v2.0"}

    def query(**params: str) -> Any:
        response = client.http.get(
            gateway.common_services_url, params=params, headers=headers, timeout=5
        )
        assert response.status_code == 200
        return etree.fromstring(response.content)

    eb = "urn:fdc:oots:eb:ebxml-regrep:queries:"
    requirements = query(
        queryId=eb + "requirements-by-procedure-and-jurisdiction",
        **{"procedure-id": "T3", "country-code": "DK"},
    )
    requirement = requirements.find(".//sdg:Requirement", ns)
    requirement_id = requirement.findtext("sdg:Identifier", namespaces=ns)
    names = tuple(
        LocalizedText(n.text or "", n.get("lang") or "EN")
        for n in requirement.iterfind("sdg:Name", ns)
    )
    types = query(
        queryId=eb + "evidence-types-by-requirement-and-jurisdiction",
        **{"requirement-id": requirement_id, "country-code": "FI"},
    )
    classification = types.findtext(
        ".//sdg:EvidenceType/sdg:EvidenceTypeClassification", namespaces=ns
    )
    services = query(
        queryId="urn:fdc:oots:dsd:ebxml-regrep:queries:dataservices-by-evidencetype-and-jurisdiction",
        **{"evidence-type-classification": classification, "country-code": "FI"},
    )
    dset = services.find(".//sdg:DataServiceEvidenceType", ns)
    service = dset.find("sdg:AccessService", ns)
    publisher = service.find("sdg:Publisher", ns)
    route = Discovered(
        access_point=service.findtext("sdg:Identifier", namespaces=ns),
        identifier=publisher.findtext("sdg:Identifier", namespaces=ns),
        scheme=publisher.find("sdg:Identifier", ns).get("schemeID"),
        name=publisher.findtext("sdg:Name", namespaces=ns),
        conforms_to=service.findtext("sdg:ConformsTo", namespaces=ns),
    )
    first = EvidenceRequest(
        request_id=uuid.uuid4(),
        issue_datetime=datetime.now(UTC),
        procedure="T3",
        requirements=(Requirement(requirement_id, names),),
        evidence_type=RequestedEvidenceType(
            identifier=dset.findtext("sdg:Identifier", namespaces=ns),
            classification=classification,
            titles=tuple(
                LocalizedText(t.text or "", t.get("lang") or "EN")
                for t in dset.iterfind("sdg:Title", ns)
            ),
            format=dset.findtext("sdg:DistributedAs/sdg:Format", namespaces=ns),
        ),
        provider=EvidenceProvider(route.identifier, route.scheme, route.name),
        requester=REQUESTER,
        subject=PERSON,
        explicit_request_given=True,
        possibility_for_preview=True,
        version=choose_version([route.conforms_to]),
    )
    conversation = str(uuid.uuid4())
    _, preview = client.ask(first, route, conversation)
    assert isinstance(preview, PreviewRequired)
    back = preview_and_decide(browser, preview.location, "approve", return_url)
    assert back.url == return_url and back.history[0].status_code == 303
    _, evidence = client.ask(second(first, preview.location), route, conversation)
    assert isinstance(evidence, Evidence)
    assert evidence.content.startswith(b"%PDF")
    assert evidence.metadata.evidence_type_classification == classification


@pytest.fixture(scope="module")
def gateway_v12() -> Iterator[SimulatedOotsGateway]:
    with _gateway(response_delay=0.05, version_by_country={"FI": "oots-edm:v1.2"}) as running:
        yield running


def test_preview_journey_at_v1_2(
    gateway_v12: SimulatedOotsGateway, portal: tuple[str, list[str]]
) -> None:
    client = OotsClient(gateway_v12)
    browser = requests.Session()
    browser.trust_env = False
    browser.verify = str(gateway_v12.preview_ca_cert)
    evidence, preview, _ = journey(client, browser, portal, "FI-UNIV-PREVIEW")
    assert preview.version is EdmVersion.V1_2 and preview.method == "GET"
    assert evidence.version is EdmVersion.V1_2 and evidence.classification is None
    assert evidence.content.startswith(b"%PDF")


def test_preview_declined_gives_an_error(
    client: OotsClient, browser: requests.Session, portal: tuple[str, list[str]]
) -> None:
    return_url, _ = portal
    first, provider = request_to(client.gateway, "FI-UNIV-PREVIEW")
    conversation = str(uuid.uuid4())
    _, preview = client.ask(first, provider, conversation)
    assert isinstance(preview, PreviewRequired)
    back = preview_and_decide(browser, preview.location, "decline", return_url)
    assert back.url == return_url
    answer, outcome = client.ask(second(first, preview.location), provider, conversation)
    assert answer.message.action == "ExceptionResponse"
    assert isinstance(outcome, EdmError)
    assert outcome.code == "EDM:ERR:0002" and "declined" in (outcome.detail or "")
    assert outcome.exception_type == "rs:AuthorizationExceptionType"
    states = {p["location"]: p["state"] for p in client.hook("GET", "previews")}
    assert states[preview.location] == "declined"
    again = browser.post(preview.location, data={"decision": "approve"}, timeout=10)
    assert again.status_code == 409


def test_preview_page_without_return_url_confirms(
    client: OotsClient, browser: requests.Session
) -> None:
    first, provider = request_to(client.gateway, "FI-UNIV-PREVIEW")
    _, preview = client.ask(first, provider)
    assert isinstance(preview, PreviewRequired)
    done = preview_and_decide(browser, preview.location, "approve", None)
    assert done.status_code == 200 and not done.history
    assert "approved" in done.text


def test_second_request_waits_for_the_decision(
    client: OotsClient, browser: requests.Session
) -> None:
    """The portal may send the second request first and redirect the user after: the answer
    comes once the user has decided."""
    first, provider = request_to(client.gateway, "FI-UNIV-PREVIEW")
    conversation = str(uuid.uuid4())
    _, preview = client.ask(first, provider, conversation)
    assert isinstance(preview, PreviewRequired)
    request = second(first, preview.location)
    message_id = client.submit(request, provider, conversation)
    time.sleep(0.2)
    assert client.pending(refToMessageId=message_id) == []
    waiting = [p for p in client.hook("GET", "pending") if p["ref_to_message_id"] == message_id]
    assert [p["state"] for p in waiting] == ["waiting-for-preview"]
    # No returnUrl on the page: the v2.0 ReturnLocation of the second request is where the
    # user goes back to.
    decided = preview_and_decide(browser, preview.location, "approve", None, follow=False)
    assert (decided.status_code, decided.headers["Location"]) == (303, RETURN_LOCATION)
    outcome = client.answer_to(message_id).outcome()
    assert isinstance(outcome, Evidence)


def test_preview_not_decided_in_time() -> None:
    with _gateway(response_delay=0.0, preview_timeout=0.3) as gateway:
        client = OotsClient(gateway)
        first, provider = request_to(gateway, "FI-UNIV-PREVIEW")
        _, preview = client.ask(first, provider)
        assert isinstance(preview, PreviewRequired)
        _, outcome = client.ask(second(first, preview.location), provider)
        assert isinstance(outcome, EdmError) and outcome.code == "EDM:ERR:0005"


def test_request_without_possibility_for_preview(client: OotsClient) -> None:
    request, provider = request_to(client.gateway, "FI-UNIV-PREVIEW", possibility_for_preview=False)
    _, outcome = client.ask(request, provider)
    assert isinstance(outcome, EdmError)
    assert outcome.code == "EDM:ERR:0002"
    assert "PossibilityForPreview" in (outcome.detail or "")


def test_unknown_or_spent_preview_location(client: OotsClient, browser: requests.Session) -> None:
    first, provider = request_to(client.gateway, "FI-UNIV-PREVIEW")
    unknown = second(first, client.gateway.preview_base_url + "/no-such-token")
    _, outcome = client.ask(unknown, provider)
    assert isinstance(outcome, EdmError) and outcome.code == "EDM:ERR:0006"

    _, preview = client.ask(first, provider)
    assert isinstance(preview, PreviewRequired)
    preview_and_decide(browser, preview.location, "approve", None)
    _, evidence = client.ask(second(first, preview.location), provider)
    assert isinstance(evidence, Evidence)
    _, again = client.ask(second(first, preview.location), provider)
    assert isinstance(again, EdmError) and again.code == "EDM:ERR:0006"

    other = replace(PERSON, given_name="Eero")
    _, preview = client.ask(first, provider)
    assert isinstance(preview, PreviewRequired)
    _, swapped = client.ask(replace(second(first, preview.location), subject=other), provider)
    assert isinstance(swapped, EdmError) and swapped.code == "EDM:ERR:0006"


def test_direct_provider_answers_with_json_evidence(client: OotsClient) -> None:
    request, provider = request_to(client.gateway, "SE-UHR-DIRECT")
    assert request.version is EdmVersion.V1_2
    answer, outcome = client.ask(request, provider)
    assert answer.message.action == "ExecuteQueryResponse"
    assert answer.message.specification_id == "oots-edm:v1.2"
    assert answer.from_party == "AP_SE_01" and answer.to_party == "AP_DK_01"
    assert answer.properties["originalSender"] == ("SE-UHR-DIRECT", provider.scheme)
    assert answer.properties["finalRecipient"] == (REQUESTER.identifier, EAS_DK)
    assert isinstance(outcome, Evidence)
    assert outcome.version is EdmVersion.V1_2
    assert outcome.mime_type == "application/json"
    assert b'"familyName": "Virtanen"' in outcome.content
    assert outcome.metadata.issuing_authority is not None
    assert outcome.metadata.issuing_authority.identifier == "SE-UHR-DIRECT"


def test_direct_provider_of_a_region_answers_with_xml(client: OotsClient) -> None:
    request, provider = request_to(client.gateway, "FI-DVV-HELSINKI")
    _, outcome = client.ask(request, provider)
    assert isinstance(outcome, Evidence)
    assert outcome.mime_type == "application/xml"
    root = etree.fromstring(outcome.content)
    assert root.findtext("{*}Person/{*}PlaceOfBirth") == "Helsinki-Uusimaa"


def test_error_provider(client: OotsClient) -> None:
    request, provider = request_to(client.gateway, "SE-LADOK-ERROR")
    answer, outcome = client.ask(request, provider)
    assert answer.message.action == "ExceptionResponse"
    assert isinstance(outcome, EdmError)
    assert outcome.code == "EDM:ERR:0004"
    assert outcome.exception_type == "rs:ObjectNotFoundExceptionType"
    assert outcome.version is EdmVersion.V2_0


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"version": EdmVersion.V1_2}, "EDM:ERR:0007"),
        (
            {
                "provider": EvidenceProvider(
                    "SE-UHR-DIRECT", "urn:cef.eu:names:identifier:EAS:0007", "x"
                )
            },
            "EDM:ERR:0003",
        ),
        ({"subject": COMPANY}, "EDM:ERR:0004"),
        ({"evidence_type": replace(request_to_type(), format="application/pdf")}, "EDM:ERR:0007"),
    ],
    ids=["version", "provider", "company", "format"],
)
def test_providers_check_the_request(client: OotsClient, change: dict[str, Any], code: str) -> None:
    request, provider = request_to(client.gateway, "SE-LADOK-ERROR")
    _, outcome = client.ask(replace(request, **change), provider)
    assert isinstance(outcome, EdmError) and outcome.code == code


SPECIFICATION_SLOT: Final = (
    '<rim:Slot xmlns:rim="urn:oasis:names:tc:ebxml-regrep:xsd:rim:4.0" '
    'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" name="SpecificationIdentifier">'
    '<rim:SlotValue xsi:type="rim:StringValueType"><rim:Value>{}</rim:Value></rim:SlotValue>'
    "</rim:Slot>"
)


@pytest.mark.parametrize(
    ("slot", "code"),
    [
        ("", "EDM:ERR:0003"),
        (SPECIFICATION_SLOT.format("oots-edm:v2.0"), "EDM:ERR:0003"),
        (SPECIFICATION_SLOT.format("oots-edm:v1.0"), "EDM:ERR:0007"),
    ],
    ids=["no-version", "incomplete", "v1.0"],
)
def test_unreadable_payload_is_answered_with_an_error(
    client: OotsClient, slot: str, code: str
) -> None:
    provider = client.gateway.network.provider("SE-LADOK-ERROR")
    assert provider is not None
    header = client.header_for(provider)
    payload = (
        '<query:QueryRequest xmlns:query="urn:oasis:names:tc:ebxml-regrep:xsd:query:4.0" '
        f'id="urn:uuid:5b0c1e2d-3f4a-4b5c-8d6e-7f8091a2b3c4">{slot}</query:QueryRequest>'
    ).encode()
    answer = ws_plugin_message(client.ok(submit_envelope(header, [("x@dk", EBRS, payload)])))
    outcome = client.answer_to(answer.message_ids[0]).outcome()
    assert isinstance(outcome, EdmError)
    assert outcome.code == code
    assert outcome.request_id == "urn:uuid:5b0c1e2d-3f4a-4b5c-8d6e-7f8091a2b3c4"
    assert outcome.version is EdmVersion.V2_0  # the provider's own


def test_preview_space_with_the_sandbox_ca(tmp_path: Path) -> None:
    """With ``tls_dir`` the preview certificate comes from the sandbox CA (``pki``)."""
    with _gateway(tls_dir=tmp_path) as gateway:
        assert gateway.preview_ca_cert == (tmp_path / "ca.crt").resolve()
        session = requests.Session()
        session.trust_env = False
        page = session.get(
            gateway.preview_base_url + "/unknown", verify=str(gateway.preview_ca_cert), timeout=5
        )
        assert page.status_code == 404 and "unknown" in page.text
        assert (tmp_path / "oots-preview.crt").is_file()


# --- the WS plugin contract ----------------------------------------------------------------------


def _ladok(client: OotsClient) -> ProviderSpec:
    provider = client.gateway.network.provider("SE-LADOK-ERROR")
    assert provider is not None
    return provider


HEADER_FAULTS: Final[list[tuple[str, dict[str, Any], str, str]]] = [
    ("service", {"service": "Other"}, "WS_PLUGIN:0003", "QueryManager"),
    ("service type", {"service_type": None}, "WS_PLUGIN:0003", SERVICE_TYPE),
    ("action", {"action": "ExecuteQueryResponse"}, "WS_PLUGIN:0003", "ExecuteQueryRequest"),
    ("from role", {"from_role": "http://example.org/role"}, "WS_PLUGIN:0004", GATEWAY_ROLE),
    (
        "to party type",
        {"to_type": "urn:oasis:names:tc:ebcore:partyid-type:unregistered"},
        "WS_PLUGIN:0004",
        OOTS_PARTY_TYPE,
    ),
    ("conversation", {"conversation_id": None}, "WS_PLUGIN:0007", "ConversationId"),
    ("conversation uuid", {"conversation_id": "conv-1"}, "WS_PLUGIN:0007", "not a UUID"),
    (
        "original sender type",
        {"original_sender": ("64942212", None)},
        "WS_PLUGIN:0007",
        "originalSender",
    ),
    ("final recipient", {"final_recipient": None}, "WS_PLUGIN:0007", "finalRecipient"),
    ("unknown recipient", {"final_recipient": ("NO-SUCH", "urn:x")}, "WS_PLUGIN:0004", "NO-SUCH"),
    (
        "recipient scheme",
        {"final_recipient": ("SE-LADOK-ERROR", "urn:x")},
        "WS_PLUGIN:0004",
        "urn:cef.eu:names:identifier:EAS:0007",
    ),
    ("to party", {"to_party": "AP_FI_01"}, "WS_PLUGIN:0003", "AP_SE_01"),
    ("from party", {"from_party": "AP_XX_01"}, "WS_PLUGIN:0004", "AP_DK_01"),
]


@pytest.mark.parametrize(
    ("change", "code", "mentions"),
    [case[1:] for case in HEADER_FAULTS],
    ids=[case[0] for case in HEADER_FAULTS],
)
def test_bad_ebms_header_is_a_soap_fault(
    client: OotsClient, change: dict[str, Any], code: str, mentions: str
) -> None:
    request, provider = request_to(client.gateway, "SE-LADOK-ERROR")
    header = client.header_for(provider, **change)
    response = client.call(submit_envelope(header, [("p@dk", EBRS, build_query_request(request))]))
    fault = fault_of(response)
    assert fault.status == 500
    assert fault.code == "soap:Receiver"
    assert fault.detail_code == code
    assert mentions in fault.detail_message and fault.reason == fault.detail_message
    assert client.hook("GET", "submitted") == []


def test_payload_faults(client: OotsClient) -> None:
    header = client.header_for(_ladok(client))
    body = build_query_request(request_to(client.gateway, "SE-LADOK-ERROR")[0])
    cases = [
        (None, [("p@dk", EBRS, body)], None, "WS_PLUGIN:0007"),
        (header, [("p@dk", EBRS, body)], [("q@dk", EBRS)], "WS_PLUGIN:0005"),
        (header, [("p@dk", "application/pdf", b"%PDF")], None, "WS_PLUGIN:0005"),
        (header, [], [("p@dk", EBRS)], "WS_PLUGIN:0005"),
    ]
    for head, payloads, announced, code in cases:
        fault = fault_of(client.call(submit_envelope(head, payloads, announced)))
        assert fault.detail_code == code, fault
    broken = submit_envelope(header, [("p@dk", EBRS, body)]).replace(
        b"<value>PD94", b"<value>!!PD94"
    )
    assert fault_of(client.call(broken)).detail_code == "WS_PLUGIN:0005"


def test_contract_faults(client: OotsClient) -> None:
    unknown = fault_of(client.call(operation_envelope("sendMessageRequest")))
    assert (unknown.code, unknown.detail_code) == ("soap:Sender", "WS_PLUGIN:0001")
    assert "unknown operation" in unknown.reason
    soap11 = (
        b'<e:Envelope xmlns:e="http://schemas.xmlsoap.org/soap/envelope/"><e:Body/></e:Envelope>'
    )
    assert "SOAP 1.1" in fault_of(client.call(soap11)).reason
    assert fault_of(client.call(b"<not xml")).code == "soap:Sender"
    empty = fault_of(client.call(operation_envelope("retrieveMessageRequest")))
    assert empty.detail_code == "WS_PLUGIN:0007"
    missing = fault_of(
        client.call(operation_envelope("retrieveMessageRequest", {"messageID": "nope@x"}))
    )
    assert missing.detail_code == "WS_PLUGIN:0009" and "nope@x" in missing.reason


def test_authentication_is_required(gateway: SimulatedOotsGateway) -> None:
    session = requests.Session()
    session.trust_env = False
    envelope = operation_envelope("listPendingMessagesRequest")
    for auth in (None, (USER, "wrong"), ("admin", "123456")):
        response = session.post(gateway.base_url, data=envelope, auth=auth, timeout=5)
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"].startswith("Basic")
        assert fault_of(response).detail_code == "WS_PLUGIN:0002"
    assert session.post(gateway.base_url, data=envelope, auth=(USER, PASSWORD), timeout=5).ok


def test_mark_as_downloaded_semantics(client: OotsClient) -> None:
    request, provider = request_to(client.gateway, "SE-LADOK-ERROR")
    conversation = str(uuid.uuid4())
    message_id = client.submit(request, provider, conversation)
    deadline = time.monotonic() + 5
    while not (found := client.pending(conversationId=conversation)):
        assert time.monotonic() < deadline
        time.sleep(0.02)
    answer_id = found[0]

    def status_of(message: str) -> str:
        root = etree.fromstring(
            client.ok(operation_envelope("statusRequest", {"messageID": message}))
        )
        return root.findtext(f".//{{{WSPLUGIN_NS}}}getStatusResponse") or ""

    assert status_of(message_id) == "ACKNOWLEDGED"
    assert status_of(answer_id) == "RECEIVED"
    assert status_of("unknown@x") == "NOT_FOUND"
    kept = client.retrieve(answer_id, markAsDownloaded="false")
    assert kept.ref_to == message_id
    assert client.pending(conversationId=conversation) == [answer_id]
    assert (
        client.retrieve(answer_id, markAsDownloaded="false").message.body() == kept.message.body()
    )
    marked = client.ok(
        operation_envelope("markMessageAsDownloadedRequest", {"messageID": answer_id})
    )
    assert received(marked).message.operation == "markMessageAsDownloadedResponse"
    assert ws_plugin_message(marked).message_ids == (answer_id,)
    assert client.pending(conversationId=conversation) == []
    assert status_of(answer_id) == "DOWNLOADED"
    gone = fault_of(
        client.call(operation_envelope("retrieveMessageRequest", {"messageID": answer_id}))
    )
    assert gone.detail_code == "WS_PLUGIN:0009"


def test_retrieve_marks_as_downloaded_by_default(client: OotsClient) -> None:
    request, provider = request_to(client.gateway, "SE-LADOK-ERROR")
    message_id = client.submit(request, provider, str(uuid.uuid4()))
    client.answer_to(message_id)
    assert client.pending(refToMessageId=message_id) == []


def test_pending_filters(client: OotsClient) -> None:
    request, provider = request_to(client.gateway, "SE-LADOK-ERROR")
    conversations = [str(uuid.uuid4()), str(uuid.uuid4())]
    ids = [
        client.submit(replace(request, request_id=uuid.uuid4()), provider, c) for c in conversations
    ]
    deadline = time.monotonic() + 5
    while len(client.pending(finalRecipient=REQUESTER.identifier, fromPartyId="AP_SE_01")) < 2:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    first = client.pending(conversationId=conversations[0])
    assert len(first) == 1
    assert client.pending(refToMessageId=ids[1]) != first
    assert client.pending(originalSender="SE-LADOK-ERROR", conversationId=conversations[1])
    assert client.pending(finalRecipient="somebody-else") == []
    assert client.pending(receivedTo="2000-01-01T00:00:00Z") == []
    for message_id in ids:
        client.answer_to(message_id)


def test_own_message_id_is_kept_and_unique(client: OotsClient) -> None:
    request, provider = request_to(client.gateway, "SE-LADOK-ERROR")
    header = client.header_for(provider, message_id=f"{uuid.uuid4()}@dk.serviceplatform.test")
    envelope = submit_envelope(header, [("p@dk", EBRS, build_query_request(request))])
    assert ws_plugin_message(client.ok(envelope)).message_ids == (header.message_id,)
    duplicate = fault_of(client.call(envelope))
    assert duplicate.detail_code == "WS_PLUGIN:0007" and "exists" in duplicate.reason
    client.answer_to(header.message_id or "")


def test_answers_are_asynchronous() -> None:
    with _gateway(response_delay=30.0) as gateway:
        client = OotsClient(gateway)
        request, provider = request_to(gateway, "SE-LADOK-ERROR")
        message_id = client.submit(request, provider, str(uuid.uuid4()))
        assert client.pending() == []
        scheduled = client.hook("GET", "pending")
        assert [(p["ref_to_message_id"], p["state"]) for p in scheduled] == [
            (message_id, "scheduled")
        ]


def test_other_operations(client: OotsClient) -> None:
    errors = etree.fromstring(
        client.ok(operation_envelope("getErrorsRequest", {"messageID": "x@y"}))
    )
    assert errors.find(f".//{{{WSPLUGIN_NS}}}getMessageErrorsResponse") is not None
    failed = ws_plugin_message(client.ok(operation_envelope("listPushFailedMessagesRequest")))
    assert failed.operation == "listPushFailedMessagesResponse" and failed.message_ids == ()
    repush = etree.fromstring(client.ok(operation_envelope("rePushFailedMessagesRequest")))
    assert len(repush.find(f"{{{SOAP_NS}}}Body")) == 0  # type: ignore[arg-type]


def test_injected_faults(client: OotsClient) -> None:
    envelope = operation_envelope("listPendingMessagesRequest")
    client.hook("POST", "faults", json={"status": 503, "count": 2})
    assert [client.call(envelope).status_code for _ in range(3)] == [503, 503, 200]
    client.hook("POST", "faults", json={"status": "reset", "count": 1})
    with pytest.raises(requests.ConnectionError):
        client.call(envelope)
    assert client.call(envelope).status_code == 200
    client.hook("POST", "faults", json={"status": 502, "count": 1, "endpoint": "common-services"})
    search = client.http.get(client.gateway.common_services_url, timeout=5)
    assert search.status_code == 502
    client.hook("POST", "faults", json={"status": 503, "count": 1, "endpoint": "preview"})
    preview = client.http.get(
        client.gateway.preview_base_url + "/x",
        verify=str(client.gateway.preview_ca_cert),
        timeout=5,
    )
    assert preview.status_code == 503
    bad = client.http.post(f"{client.gateway.control_url}/faults", json={"status": 99}, timeout=5)
    assert bad.status_code == 400


def test_preview_decision_hook(client: OotsClient) -> None:
    first, provider = request_to(client.gateway, "FI-UNIV-PREVIEW")
    _, preview = client.ask(first, provider)
    assert isinstance(preview, PreviewRequired)
    token = preview.location.rsplit("/", 1)[1]
    decided = client.hook("POST", f"previews/{token}", json={"decision": "decline"})
    assert decided["state"] == "declined"
    _, outcome = client.ask(second(first, preview.location), provider)
    assert isinstance(outcome, EdmError) and outcome.code == "EDM:ERR:0002"


# --- the shape of the envelopes, against the real captures ---------------------------------------


def element_paths(envelope: bytes) -> set[str]:
    """Every element path (namespace URIs, no prefixes) with its attribute names."""
    root = etree.fromstring(envelope)
    paths = set()
    for element in root.iter():
        if not isinstance(element.tag, str):
            continue
        names = "/".join(
            str(etree.QName(e)) for e in [*reversed(list(element.iterancestors())), element]
        )
        paths.add(f"{names}@{','.join(sorted(str(a) for a in element.attrib))}")
    return paths


def test_envelopes_are_shaped_like_the_real_captures(client: OotsClient) -> None:
    request, provider = request_to(client.gateway, "SE-UHR-DIRECT")
    submit = client.ok(
        submit_envelope(client.header_for(provider), [("p@dk", EBRS, build_query_request(request))])
    )
    assert element_paths(submit) == element_paths((REEL / "soumissionMessage.xml").read_bytes())
    message_id = ws_plugin_message(submit).message_ids[0]
    deadline = time.monotonic() + 5
    while not (
        listed := client.ok(
            operation_envelope("listPendingMessagesRequest", {"refToMessageId": message_id})
        )
    ).count(b"messageID"):
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert element_paths(listed) == element_paths(
        (REEL / "listeMessagesEnAttente.xml").read_bytes()
    )
    answer_id = ws_plugin_message(listed).message_ids[0]
    evidence = client.ok(operation_envelope("retrieveMessageRequest", {"messageID": answer_id}))
    reel = element_paths((REEL / "reponseAvecPieceJointe.xml").read_bytes())
    ours = element_paths(evidence)
    ref_to = "/".join(
        [f"{{{SOAP_NS}}}Envelope", f"{{{SOAP_NS}}}Header"]
        + [f"{{{EBMS_NS}}}{n}" for n in ("Messaging", "UserMessage", "MessageInfo")]
        + [f"{{{EBMS_NS}}}RefToMessageId@"]
    )
    assert ours - reel == {ref_to}  # the only addition: the answer names the request
    assert reel <= ours
    empty = client.ok(
        operation_envelope("listPendingMessagesRequest", {"refToMessageId": message_id})
    )
    assert element_paths(empty) == element_paths(
        (REEL / "listeMessagesEnAttente.vide.xml").read_bytes()
    )


def test_the_capture_reader_reads_an_error_answer_like_the_real_one(client: OotsClient) -> None:
    request, provider = request_to(client.gateway, "SE-LADOK-ERROR")
    answer, outcome = client.ask(request, provider)
    real = ws_plugin_message((REEL / "erreurObjetIntrouvable.xml").read_bytes())
    assert (answer.message.operation, answer.message.action) == (real.operation, real.action)
    real_outcome = parse_query_response(real.body())
    assert isinstance(outcome, EdmError) and isinstance(real_outcome, EdmError)
    assert (outcome.code, outcome.exception_type, outcome.severity) == (
        real_outcome.code,
        real_outcome.exception_type,
        real_outcome.severity,
    )
