"""spyne glue: the Soap12 fix, contract validation, platform faults, contract documents.

Uses a tiny generic contract written by the tests (the glue knows nothing of NemSMS).
"""

from __future__ import annotations

import gc
import io
import logging
from pathlib import Path
from typing import Any

import pytest
from lxml import etree
from spyne import AnyXml, Application, ComplexModel, Integer, ServiceBase, Unicode, rpc
from spyne.error import RequestNotAllowed, RequestTooLongError, ResourceNotFoundError
from spyne.model.fault import Fault
from spyne.protocol.soap import Soap12
from spyne.protocol.xml import SchemaValidationError
from spyne.server.wsgi import WsgiApplication

from serviceplatform.errors import (
    ConfigurationError,
    MalformedXml,
    NoAgreement,
    NotSoapEnvelope,
    RequestError,
    RequestTooLarge,
    SchemaViolation,
    ServicePlatformError,
    UnknownOperation,
)
from serviceplatform.soap.contract_docs import ContractDocuments, request_base_url
from serviceplatform.soap.envelope import (
    ENVELOPE_ENVIRON_KEY,
    SOAP11_ENV_NS,
    SOAP12_ENV_NS,
    parse_envelope,
)
from serviceplatform.soap.faults import SPF_NS
from serviceplatform.soap.spyne_glue import (
    CannedAnswer,
    ContractApplication,
    LeanEventManager,
    PlatformFault,
    PlatformSoap12,
    contract_application,
    platform_error,
)

TNS = "urn:glue:test"
XSD = f"""<?xml version="1.0" encoding="UTF-8"?>
<xsd:schema xmlns:xsd="http://www.w3.org/2001/XMLSchema" targetNamespace="{TNS}"
            elementFormDefault="qualified">
  <xsd:complexType name="EchoType">
    <xsd:sequence>
      <xsd:element name="n" type="xsd:int"/>
      <xsd:element name="note" type="xsd:string" minOccurs="0"/>
    </xsd:sequence>
  </xsd:complexType>
  <xsd:element name="Echo" type="tns:EchoType" xmlns:tns="{TNS}"/>
  <xsd:element name="EchoResponse" type="tns:EchoType" xmlns:tns="{TNS}"/>
</xsd:schema>
"""
WSDL = f"""<?xml version="1.0" encoding="UTF-8"?>
<wsdl:definitions xmlns:wsdl="http://schemas.xmlsoap.org/wsdl/"
                  xmlns:xsd="http://www.w3.org/2001/XMLSchema"
                  xmlns:soap12="http://schemas.xmlsoap.org/wsdl/soap12/"
                  xmlns:wsp="http://www.w3.org/ns/ws-policy"
                  xmlns:tns="{TNS}" targetNamespace="{TNS}" name="Glue">
  <wsdl:documentation>glue test contract</wsdl:documentation>
  <wsdl:import namespace="urn:glue:policy" location="policy/p.wsdl"/>
  <wsdl:types>
    <xsd:schema targetNamespace="{TNS}">
      <xsd:include schemaLocation="types/echo.xsd"/>
    </xsd:schema>
  </wsdl:types>
  <wsdl:binding name="Glue" type="tns:GluePortType">
    <wsp:PolicyReference URI="policy/p.wsdl#P"/>
    <wsp:PolicyReference URI="#Local"/>
  </wsdl:binding>
  <wsdl:service name="Glue">
    <wsdl:port name="Glue" binding="tns:Glue">
      <soap12:address location="https://placeholder.invalid/x"/>
    </wsdl:port>
  </wsdl:service>
</wsdl:definitions>
"""
POLICY = """<?xml version="1.0" encoding="UTF-8"?>
<wsdl:definitions xmlns:wsdl="http://schemas.xmlsoap.org/wsdl/" targetNamespace="urn:glue:policy"/>
"""


def write_contract(directory: Path, wsdl: str = WSDL) -> Path:
    (directory / "types").mkdir(parents=True, exist_ok=True)
    (directory / "policy").mkdir(exist_ok=True)
    (directory / "types" / "echo.xsd").write_text(XSD)
    (directory / "policy" / "p.wsdl").write_text(POLICY)
    path = directory / "glue.wsdl"
    path.write_text(wsdl)
    return path


class EchoType(ComplexModel):  # type: ignore[misc]
    __namespace__ = TNS
    _type_info = [("n", Integer(min_occurs=1, nillable=False)), ("note", Unicode(min_occurs=0))]


class EchoService(ServiceBase):  # type: ignore[misc]
    @rpc(  # type: ignore[untyped-decorator]
        EchoType,
        _returns=EchoType,
        _body_style="bare",
        _operation_name="Echo",
        _in_message_name="Echo",
        _out_message_name="EchoResponse",
    )
    def Echo(ctx: Any, request: Any) -> Any:  # noqa: N802, N805
        if request.note == "platform":
            raise NoAgreement("from the method")
        if request.note == "crash":
            raise RuntimeError("secret-text-from-crash")
        if request.note == "bad-return":
            return 42  # spyne fails while serializing this
        return EchoType(n=request.n + 1, note=ctx.transport.req_env.get("test.marker"))


def soap(body: str, ns: str = SOAP12_ENV_NS) -> bytes:
    return f'<s:Envelope xmlns:s="{ns}"><s:Body>{body}</s:Body></s:Envelope>'.encode()


def echo(n: str = "1", note: str | None = None, ns: str = SOAP12_ENV_NS) -> bytes:
    extra = f"<g:note>{note}</g:note>" if note is not None else ""
    return soap(f'<g:Echo xmlns:g="{TNS}"><g:n>{n}</g:n>{extra}</g:Echo>', ns)


class Exploding(io.BytesIO):
    def read(self, *args: Any) -> bytes:
        raise AssertionError("the body must not be read")


def call(
    app: Any,
    body: bytes = b"",
    *,
    method: str = "POST",
    query: str = "",
    env: dict[str, Any] | None = None,
    **extra: str,
) -> tuple[str, dict[str, str], bytes]:
    environ: dict[str, Any] = {
        "REQUEST_METHOD": method,
        "CONTENT_TYPE": "application/soap+xml; charset=utf-8",
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.input": io.BytesIO(body),
        "wsgi.url_scheme": "http",
        "SERVER_NAME": "server.local",
        "SERVER_PORT": "8080",
        "HTTP_HOST": "glue.example:8080",
        "SCRIPT_NAME": "",
        "PATH_INFO": "/service/Glue/1",
        "QUERY_STRING": query,
    }
    environ.update(extra)
    environ.update(env or {})
    started: list[tuple[str, list[tuple[str, str]]]] = []
    chunks = app(environ, lambda status, headers, exc_info=None: started.append((status, headers)))
    payload = b"".join(chunks)
    status, headers = started[0]
    return status, dict(headers), payload


def error_code(payload: bytes) -> str | None:
    return etree.fromstring(payload).findtext(f".//{{{SPF_NS}}}ErrorCode")


@pytest.fixture
def contract(tmp_path: Path) -> Path:
    return write_contract(tmp_path)


@pytest.fixture
def app(contract: Path) -> ContractApplication:
    return contract_application(
        [EchoService], tns=TNS, name="Glue", wsdl_path=contract, max_body_bytes=4096
    )


# --- the Soap12 crash and its fix ------------------------------------------------------------


def test_stock_spyne_soap12_crashes_on_schema_errors() -> None:
    """The quirk the glue exists for; if spyne fixes it, this test says so."""
    stock = Application(
        [EchoService],
        tns=TNS,
        name="Stock",
        in_protocol=Soap12(validator="lxml"),
        out_protocol=Soap12(),
    )
    with pytest.raises(TypeError, match="bad argument type"):
        call(WsgiApplication(stock), echo(n="abc"))


def test_platform_soap12_turns_spyne_schema_errors_into_sp105() -> None:
    fixed = Application(
        [EchoService],
        tns=TNS,
        name="Fixed",
        in_protocol=PlatformSoap12(validator="lxml"),
        out_protocol=PlatformSoap12(),
    )
    status, headers, payload = call(WsgiApplication(fixed), echo(n="abc"))
    assert status == "400 Bad Request"
    assert headers["Content-Type"] == "application/soap+xml; charset=utf-8"
    assert error_code(payload) == "SP-105"


# --- requests through the contract application -----------------------------------------------


def test_valid_request_is_answered(app: ContractApplication) -> None:
    status, headers, payload = call(app, echo("41"), env={"test.marker": "environ-seen"})
    assert status == "200 OK"
    assert headers["Content-Length"] == str(len(payload))
    root = etree.fromstring(payload)
    assert root.findtext(f".//{{{TNS}}}n") == "42"
    assert root.findtext(f".//{{{TNS}}}note") == "environ-seen"


@pytest.mark.parametrize(
    ("body", "code", "status"),
    [
        (echo(n="abc"), "SP-105", "400 Bad Request"),
        (soap(f'<g:Echo xmlns:g="{TNS}"/>'), "SP-105", "400 Bad Request"),
        (soap(f'<g:Echo xmlns:g="{TNS}"><g:n>1</g:n><g:x/></g:Echo>'), "SP-105", "400 Bad Request"),
        (soap('<g:Other xmlns:g="urn:glue:test"/>'), "SP-106", "400 Bad Request"),
        (soap(f'<s:Fault xmlns:s="{SOAP12_ENV_NS}"/>'), "SP-106", "400 Bad Request"),
        (
            soap('<g:Echo xmlns:g="urn:elsewhere"><g:n>1</g:n></g:Echo>'),
            "SP-106",
            "400 Bad Request",
        ),
        (b"<not-xml", "SP-101", "400 Bad Request"),
        (b'<!DOCTYPE x [<!ENTITY a "b">]><x>&a;</x>', "SP-102", "400 Bad Request"),
        (b"<x/>", "SP-104", "400 Bad Request"),
        (echo(ns=SOAP11_ENV_NS), "SP-104", "400 Bad Request"),
        (echo(note="platform"), "SP-301", "400 Bad Request"),
        (echo(note="crash"), "SP-900", "500 Internal Server Error"),
        (echo(note="bad-return"), "SP-900", "500 Internal Server Error"),
    ],
)
def test_every_failure_is_a_platform_fault(
    app: ContractApplication, body: bytes, code: str, status: str
) -> None:
    got_status, headers, payload = call(app, body)
    assert (got_status, error_code(payload)) == (status, code)
    assert headers["Content-Type"] == "application/soap+xml; charset=utf-8"
    assert b"Traceback" not in payload


def test_unexpected_exception_is_logged_but_not_sent(
    app: ContractApplication, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="serviceplatform.soap.spyne_glue"):
        _, _, payload = call(app, echo(note="crash"))
    assert b"secret-text-from-crash" not in payload
    assert b"RuntimeError" not in payload
    assert any("secret-text-from-crash" in (r.exc_text or "") for r in caplog.records)


def test_schema_fault_text_hides_the_offending_value(app: ContractApplication) -> None:
    _, _, payload = call(app, echo(n="0101901234x"))
    assert error_code(payload) == "SP-105"
    assert b"0101901234" not in payload


def test_declared_oversize_is_refused_without_reading(app: ContractApplication) -> None:
    status, _, payload = call(app, CONTENT_LENGTH="4097", env={"wsgi.input": Exploding()})
    assert (status, error_code(payload)) == ("400 Bad Request", "SP-103")


def test_chunked_request_is_read_up_to_the_limit(app: ContractApplication) -> None:
    chunked: dict[str, Any] = {"CONTENT_LENGTH": "", "HTTP_TRANSFER_ENCODING": "chunked"}
    status, _, payload = call(app, echo(note="x" * 5000), env=chunked)
    assert (status, error_code(payload)) == ("400 Bad Request", "SP-103")
    status, _, payload = call(app, echo("2"), env=chunked)
    assert status == "200 OK"
    assert etree.fromstring(payload).findtext(f".//{{{TNS}}}n") == "3"


def test_no_length_and_no_chunking_means_no_body(app: ContractApplication) -> None:
    status, _, payload = call(app, CONTENT_LENGTH="", env={"wsgi.input": Exploding()})
    assert (status, error_code(payload)) == ("400 Bad Request", "SP-101")


def test_invalid_content_length(app: ContractApplication) -> None:
    _, _, payload = call(app, echo(), CONTENT_LENGTH="12abc")
    assert error_code(payload) == "SP-100"


def test_other_methods_get_a_405_fault(app: ContractApplication) -> None:
    for method in ("PUT", "GET", "DELETE"):
        status, headers, payload = call(app, echo(), method=method)
        assert status == "405 Method Not Allowed"
        assert headers["Allow"] == "GET, POST"
        assert error_code(payload) == "SP-100"


def test_spyne_never_serves_its_generated_wsdl(app: ContractApplication) -> None:
    status, _, payload = call(app, method="GET", env={"PATH_INFO": "/service/Glue/1/x.wsdl"})
    assert status == "405 Method Not Allowed"
    assert b"definitions" not in payload


def test_stock_protocol_path_answers_non_post_with_405() -> None:
    # The protocol refuses non-POST too, for use without ContractApplication.
    plain = Application(
        [EchoService],
        tns=TNS,
        name="Plain",
        in_protocol=PlatformSoap12(),
        out_protocol=PlatformSoap12(),
    )
    status, headers, payload = call(WsgiApplication(plain), echo(), method="PUT")
    assert status.startswith("405")
    assert headers["Allow"] == "GET, POST"
    assert error_code(payload) == "SP-100"


def test_an_envelope_parsed_by_the_front_is_reused(app: ContractApplication) -> None:
    parsed = parse_envelope(echo("6"), max_bytes=4096)
    status, _, payload = call(
        app, CONTENT_LENGTH="0", env={"wsgi.input": Exploding(), ENVELOPE_ENVIRON_KEY: parsed}
    )
    assert status == "200 OK"
    assert etree.fromstring(payload).findtext(f".//{{{TNS}}}n") == "7"


def test_a_crash_inside_spyne_becomes_sp900(app: ContractApplication) -> None:
    def broken(environ: Any, start_response: Any, wsgi_url: str | None = None) -> Any:
        raise KeyError("internal")

    app.spyne_apps = {12: broken}
    status, _, payload = call(app, echo())
    assert (status, error_code(payload)) == ("500 Internal Server Error", "SP-900")


# --- a method on the body element itself, answering canned bytes -----------------------------

CANNED_OK = CannedAnswer(f'<g:EchoResponse xmlns:g="{TNS}"><g:n>7</g:n></g:EchoResponse>'.encode())
# Outside the contract: EchoResponse has no child x.
CANNED_BAD = CannedAnswer(f'<g:EchoResponse xmlns:g="{TNS}"><g:x/></g:EchoResponse>'.encode())
RECEIVED: list[Any] = []


class RawEchoService(ServiceBase):  # type: ignore[misc]
    @rpc(  # type: ignore[untyped-decorator]
        AnyXml,
        _returns=AnyXml,
        _body_style="bare",
        _operation_name="Echo",
        _in_message_name="Echo",
        _out_message_name="EchoResponse",
    )
    def Echo(ctx: Any, request: Any) -> Any:  # noqa: N802, N805
        RECEIVED.append(request)
        if request.findtext(f"{{{TNS}}}note") == "platform":
            raise NoAgreement("from the method")
        return CANNED_BAD if request.findtext(f"{{{TNS}}}note") == "bad" else CANNED_OK


@pytest.fixture
def raw_app(contract: Path) -> ContractApplication:
    RECEIVED.clear()
    return contract_application(
        [RawEchoService], tns=TNS, name="Glue", wsdl_path=contract, soap_version={11, 12}
    )


@pytest.mark.parametrize("ns", [SOAP12_ENV_NS, SOAP11_ENV_NS])
def test_an_any_xml_method_gets_the_body_element_and_answers_canned_bytes(
    raw_app: ContractApplication, ns: str
) -> None:
    body = echo("5", note="hi", ns=ns)
    status, headers, payload = call(raw_app, body)
    assert status == "200 OK"
    # The validated Body child itself, not spyne's first child of it.
    (request,) = RECEIVED
    assert request.tag == f"{{{TNS}}}Echo"
    assert request.findtext(f"{{{TNS}}}note") == "hi"
    prefix = "soap12env" if ns == SOAP12_ENV_NS else "soap11env"
    assert payload == (
        b"<?xml version='1.0' encoding='UTF-8'?>\n"
        + f'<{prefix}:Envelope xmlns:{prefix}="{ns}" xmlns:tns="{TNS}"><{prefix}:Body>'
        f"<tns:EchoResponse><tns:n>7</tns:n></tns:EchoResponse></{prefix}:Body>"
        f"</{prefix}:Envelope>".encode()
    )
    assert headers["Content-Length"] == str(len(payload))
    assert call(raw_app, body)[2] == payload  # rendered once, the same bytes again


@pytest.mark.parametrize("ns", [SOAP12_ENV_NS, SOAP11_ENV_NS])
def test_a_canned_answer_outside_the_contract_is_sp900_every_time(
    raw_app: ContractApplication, ns: str, caplog: pytest.LogCaptureFixture
) -> None:
    for _ in range(2):
        status, _, payload = call(raw_app, echo(note="bad", ns=ns))
        assert (status, error_code(payload)) == ("500 Internal Server Error", "SP-900")
        assert etree.fromstring(payload).tag == f"{{{ns}}}Envelope"
    assert "violates the contract" in caplog.text


def test_any_xml_methods_keep_contract_and_method_faults(raw_app: ContractApplication) -> None:
    assert error_code(call(raw_app, echo(n="abc"))[2]) == "SP-105"
    assert error_code(call(raw_app, soap(f'<g:Echo xmlns:g="{TNS}"/>'))[2]) == "SP-105"
    assert RECEIVED == []  # a request outside the contract never reaches the method
    status, _, payload = call(raw_app, echo(note="platform"))
    assert (status, error_code(payload)) == ("400 Bad Request", "SP-301")


def test_soap11_application_renders_soap11_faults(contract: Path) -> None:
    app11 = contract_application(
        [EchoService], tns=TNS, name="Glue11", wsdl_path=contract, soap_version=11
    )
    status, headers, payload = call(
        app11, echo(n="x", ns=SOAP11_ENV_NS), CONTENT_TYPE="text/xml; charset=utf-8"
    )
    assert status == "500 Internal Server Error"
    assert headers["Content-Type"] == "text/xml; charset=utf-8"
    root = etree.fromstring(payload)
    assert root.findtext(f".//{{{SOAP11_ENV_NS}}}Fault/faultcode") == "soap:Client"
    assert error_code(payload) == "SP-105"
    ok_status, _, ok = call(app11, echo("1", ns=SOAP11_ENV_NS))
    assert ok_status == "200 OK"
    assert etree.fromstring(ok).tag == f"{{{SOAP11_ENV_NS}}}Envelope"


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (PlatformFault(NoAgreement()), NoAgreement),
        (NoAgreement(), NoAgreement),
        (SchemaValidationError(b"bytes text"), SchemaViolation),
        (ResourceNotFoundError("x"), UnknownOperation),
        (RequestTooLongError(), RequestTooLarge),
        (RequestNotAllowed(), RequestError),
        (Fault("Client.XMLSyntaxError", "x"), MalformedXml),
        (Fault("Client.SoapError", "x"), NotSoapEnvelope),
        (Fault("Client.Whatever", "x"), RequestError),
        (Fault("Server", "x"), ServicePlatformError),
        (KeyError("x"), ServicePlatformError),
    ],
)
def test_platform_error_mapping(exc: BaseException, expected: type[ServicePlatformError]) -> None:
    assert type(platform_error(exc)) is expected


# --- contract documents ----------------------------------------------------------------------


def test_wsdl_is_the_hand_written_one_with_rewritten_links(app: ContractApplication) -> None:
    status, headers, payload = call(app, method="GET", query="wsdl")
    assert status == "200 OK"
    assert headers["Content-Type"] == "text/xml; charset=utf-8"
    root = etree.fromstring(payload)
    assert root.findtext("{http://schemas.xmlsoap.org/wsdl/}documentation") == "glue test contract"
    base = "http://glue.example:8080/service/Glue/1"
    links = sorted(
        value
        for element in root.iter()
        for name, value in element.attrib.items()
        if name in ("location", "schemaLocation", "URI")
    )
    assert links == [
        "#Local",
        base,
        f"{base}?wsdl=policy/p.wsdl",
        f"{base}?wsdl=policy/p.wsdl#P",
        f"{base}?xsd=types/echo.xsd",
    ]


@pytest.mark.parametrize(
    ("query", "status", "marker"),
    [
        ("WSDL", "200 OK", b"glue test contract"),
        ("wsdl=glue.wsdl", "200 OK", b"glue test contract"),
        ("wsdl=policy/p.wsdl", "200 OK", b"urn:glue:policy"),
        ("xsd=types/echo.xsd", "200 OK", b"EchoResponse"),
        ("xsd=types%2Fecho.xsd", "200 OK", b"EchoResponse"),
        ("xsd=../../etc/passwd", "404 Not Found", b"not found"),
        ("xsd=types/other.xsd", "404 Not Found", b"not found"),
    ],
)
def test_document_requests(
    app: ContractApplication, query: str, status: str, marker: bytes
) -> None:
    got, _, payload = call(app, method="GET", query=query)
    assert got == status
    assert marker in payload


def test_documents_are_cached_per_base_url(contract: Path) -> None:
    documents = ContractDocuments(contract)
    first = documents.render("http://a/x")
    assert documents.render("http://a/x") is first
    for n in range(20):
        documents.render(f"http://h{n}/x")
    assert documents.render("http://a/x") is not first  # evicted, rendered again
    assert documents.keys == {"glue.wsdl", "types/echo.xsd", "policy/p.wsdl"}


def test_public_url_wins_for_the_address(contract: Path) -> None:
    documents = ContractDocuments(contract, public_url="https://public.example/service/Glue/1")
    main = etree.fromstring(documents.render("http://internal:1/x")["glue.wsdl"])
    address = main.find(".//{http://schemas.xmlsoap.org/wsdl/soap12/}address")
    assert address is not None
    assert address.get("location") == "https://public.example/service/Glue/1"


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({"HTTP_HOST": "a.example"}, "http://a.example/p"),
        ({"HTTP_HOST": "[::1]:9000"}, "http://[::1]:9000/p"),
        ({"HTTP_HOST": 'evil"><x'}, "http://server.local:8080/p"),
        ({}, "http://server.local:8080/p"),
        ({"SERVER_PORT": "80"}, "http://server.local/p"),
        ({"SCRIPT_NAME": "/root", "PATH_INFO": "/a b"}, "http://server.local:8080/root/a%20b"),
    ],
)
def test_request_base_url(environ: dict[str, str], expected: str) -> None:
    base = {
        "wsgi.url_scheme": "http",
        "SERVER_NAME": "server.local",
        "SERVER_PORT": "8080",
        "PATH_INFO": "/p",
    }
    assert request_base_url({**base, **environ}) == expected


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ('location="policy/p.wsdl"', 'location="http://elsewhere/p.wsdl"', "relative path"),
        ('location="policy/p.wsdl"', 'location="/etc/p.wsdl"', "relative path"),
        ('location="policy/p.wsdl"', 'location="../p.wsdl"', "not a file beside"),
        ('location="policy/p.wsdl"', 'location="policy/missing.wsdl"', "not a file beside"),
    ],
)
def test_references_must_stay_inside_the_contract(
    tmp_path: Path, old: str, new: str, message: str
) -> None:
    (tmp_path / "p.wsdl").write_text(POLICY)
    path = write_contract(tmp_path / "c", WSDL.replace(old, new))
    with pytest.raises(ConfigurationError, match=message):
        ContractDocuments(path)


def test_schema_needs_one_file_per_namespace(tmp_path: Path) -> None:
    twice = WSDL.replace(
        '<xsd:include schemaLocation="types/echo.xsd"/>',
        '<xsd:include schemaLocation="types/echo.xsd"/><xsd:include schemaLocation="types/b.xsd"/>',
    )
    path = write_contract(tmp_path, twice)
    (tmp_path / "types" / "b.xsd").write_text(XSD)
    with pytest.raises(ConfigurationError, match="two files"):
        ContractDocuments(path).build_schema()


def test_schema_refuses_inline_declarations(tmp_path: Path) -> None:
    inline = WSDL.replace(
        '<xsd:include schemaLocation="types/echo.xsd"/>',
        '<xsd:element name="Inline" type="xsd:string"/>',
    )
    with pytest.raises(ConfigurationError, match="only include or import"):
        ContractDocuments(write_contract(tmp_path, inline)).build_schema()


def test_unreadable_contract(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="cannot be read"):
        ContractDocuments(tmp_path / "missing.wsdl")
    broken = tmp_path / "broken.wsdl"
    broken.write_text("<wsdl")
    with pytest.raises(ConfigurationError, match="cannot be read"):
        ContractDocuments(broken)


# --- spyne's events --------------------------------------------------------------------------


def test_event_managers_are_lean_and_still_fire_every_listener(app: ContractApplication) -> None:
    server = app.spyne_apps[12]
    spyne_app = server.app
    owners = [server, spyne_app, spyne_app.in_protocol, spyne_app.out_protocol, EchoService]
    assert all(type(owner.event_manager) is LeanEventManager for owner in owners)
    fired: list[str] = []
    listeners = [
        (server, "wsgi_return"),
        (spyne_app, "method_call"),
        (spyne_app.in_protocol, "after_deserialize"),
        (spyne_app.out_protocol, "before_serialize"),
        (EchoService, "method_return_object"),  # through the method descriptor
    ]
    for owner, event in listeners:
        owner.event_manager.add_listener(event, lambda ctx, e=event: fired.append(e))
    try:
        status, _, _ = call(app, echo("1"))
    finally:
        for owner, event in listeners:
            owner.event_manager.del_listener(event)
    assert status == "200 OK"
    assert sorted(fired) == sorted(event for _, event in listeners)


def test_lean_event_manager_calls_handlers_in_order_with_their_arguments() -> None:
    manager = LeanEventManager(None)
    seen: list[tuple[str, Any, tuple[Any, ...], dict[str, Any]]] = []
    manager.add_listener("e", lambda ctx, *a, **k: seen.append(("first", ctx, a, k)))
    manager.add_listener("e", lambda ctx, *a, **k: seen.append(("second", ctx, a, k)))
    manager.fire_event("other", "ctx")
    manager.fire_event("e", "ctx", 1, x=2)
    assert seen == [("first", "ctx", (1,), {"x": 2}), ("second", "ctx", (1,), {"x": 2})]


def test_spyne_does_not_rebuild_the_request_url_of_a_post(
    app: ContractApplication, monkeypatch: pytest.MonkeyPatch
) -> None:
    import spyne.server.wsgi

    def unused(environ: Any) -> str:
        raise AssertionError("spyne rebuilt the URL")

    monkeypatch.setattr(spyne.server.wsgi, "_reconstruct_url", unused)
    status, _, payload = call(app, echo("2"))
    assert status == "200 OK"
    assert etree.fromstring(payload).findtext(f".//{{{TNS}}}n") == "3"


# --- no reference cycles left behind ------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (echo(), None),
        (echo(note="platform"), "SP-301"),
        (echo(note="crash"), "SP-900"),
        (echo(note="bad-return"), "SP-900"),
        (echo(n="x"), "SP-105"),
        (soap('<g:Unknown xmlns:g="urn:glue:test"/>'), "SP-106"),
        (b"<s:Envelope", "SP-101"),
    ],
    ids=["answer", "platform-fault", "crash", "bad-return", "schema", "unknown", "malformed"],
)
def test_a_call_leaves_no_cyclic_garbage(
    app: ContractApplication, body: bytes, code: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Without the front (no PlatformCall): spyne's contexts and the errors' tracebacks are
    # released by the glue itself once the answer is complete.
    # pytest keeps every log record, and a logged exception's traceback would keep the call
    # reachable (so not garbage, whatever the glue does); a server's handlers keep none.
    monkeypatch.setattr(logging.getLogger("serviceplatform.soap.spyne_glue"), "disabled", True)
    for _ in range(2):  # the first calls fill spyne's caches
        assert error_code(call(app, body)[2]) == code
    was_enabled = gc.isenabled()
    gc.enable()
    gc.collect()
    gc.garbage.clear()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        _, _, payload = call(app, body)
        gc.collect()
        garbage = list(gc.garbage)
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        if not was_enabled:
            gc.disable()
    assert error_code(payload) == code
    assert garbage == [], sorted({type(o).__name__ for o in garbage})
