"""The platform fault renderer: SOAP 1.1/1.2 structure, detail schema, HTTP status."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import pytest
from lxml import etree

from serviceplatform.errors import (
    NoAgreement,
    ServicePlatformError,
    UpstreamUnavailable,
    all_error_classes,
)
from serviceplatform.soap.envelope import SOAP11_ENV_NS, SOAP12_ENV_NS
from serviceplatform.soap.faults import (
    MAX_TEXT_CHARS,
    SPF_NS,
    XML_NS,
    fault_envelope,
    fault_envelope_element,
    fault_http_status,
    fault_response,
    platform_fault_element,
    serialize_envelope,
)

PROJECT = Path(__file__).resolve().parents[2]
CONFORMANCE = PROJECT / ".." / "shared" / "conformance"
OFFICIAL_FAULT_XSD = CONFORMANCE / "kombit" / "sf1600" / "sp" / "ServiceplatformFault_1.xsd"
OUR_FAULT_XSD = PROJECT / "wsdl" / "sf2250" / "sp" / "ServiceplatformFault_1.xsd"


@cache
def schema(path: Path) -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(str(path)))


def detail_of(envelope: bytes, version: int) -> etree._Element:
    root = etree.fromstring(envelope)
    if version == 12:
        found = root.find(
            f"{{{SOAP12_ENV_NS}}}Body/{{{SOAP12_ENV_NS}}}Fault/{{{SOAP12_ENV_NS}}}Detail"
        )
    else:
        found = root.find(f"{{{SOAP11_ENV_NS}}}Body/{{{SOAP11_ENV_NS}}}Fault/detail")
    assert found is not None
    assert len(found) == 1
    return found[0]


def test_soap12_sender_fault() -> None:
    data = fault_envelope(NoAgreement("authority 29189846"), 12)
    assert data.startswith(b"<?xml version='1.0' encoding='UTF-8'?>")
    root = etree.fromstring(data)
    ns = {"s": SOAP12_ENV_NS, "spf": SPF_NS}
    assert root.findtext("s:Body/s:Fault/s:Code/s:Value", namespaces=ns) == "soap:Sender"
    text = root.find("s:Body/s:Fault/s:Reason/s:Text", namespaces=ns)
    assert text is not None
    assert text.get(f"{{{XML_NS}}}lang") == "en"
    assert text.text == NoAgreement("authority 29189846").error_text
    error = "s:Body/s:Fault/s:Detail/spf:ServiceplatformFault/spf:ErrorList/spf:Error"
    assert root.findtext(f"{error}/spf:ErrorCode", namespaces=ns) == "SP-301"
    assert root.findtext(f"{error}/spf:ErrorText", namespaces=ns) == (
        "No approved service agreement covers this authority, system and service: "
        "authority 29189846"
    )


def test_soap12_receiver_fault() -> None:
    root = etree.fromstring(fault_envelope(UpstreamUnavailable(status=503), 12))
    value = root.findtext(f".//{{{SOAP12_ENV_NS}}}Value")
    assert value == "soap:Receiver"


@pytest.mark.parametrize(
    ("error", "code"), [(NoAgreement(), "soap:Client"), (ServicePlatformError(), "soap:Server")]
)
def test_soap11_fault(error: ServicePlatformError, code: str) -> None:
    root = etree.fromstring(fault_envelope(error, 11))
    fault = root.find(f"{{{SOAP11_ENV_NS}}}Body/{{{SOAP11_ENV_NS}}}Fault")
    assert fault is not None
    assert [child.tag for child in fault] == ["faultcode", "faultstring", "detail"]
    assert fault.findtext("faultcode") == code
    assert fault.findtext("faultstring") == error.error_text


@pytest.mark.parametrize("version", [11, 12])
@pytest.mark.parametrize("error_class", all_error_classes(), ids=lambda cls: cls.code)
def test_every_error_detail_validates_against_both_fault_schemas(
    error_class: type[ServicePlatformError], version: int
) -> None:
    detail = detail_of(fault_envelope(error_class("some detail"), version), version)
    assert schema(OFFICIAL_FAULT_XSD).validate(detail), schema(OFFICIAL_FAULT_XSD).error_log
    assert schema(OUR_FAULT_XSD).validate(detail), schema(OUR_FAULT_XSD).error_log
    assert detail.findtext(f".//{{{SPF_NS}}}ErrorCode") == error_class.code


def test_several_errors_in_one_detail() -> None:
    element = platform_fault_element([NoAgreement(), ServicePlatformError()])
    codes = [e.text for e in element.iter(f"{{{SPF_NS}}}ErrorCode")]
    assert codes == ["SP-301", "SP-900"]
    assert schema(OFFICIAL_FAULT_XSD).validate(element)


def test_status_codes() -> None:
    assert fault_http_status(NoAgreement(), 12) == 400
    assert fault_http_status(ServicePlatformError(), 12) == 500
    assert fault_http_status(NoAgreement(), 11) == 500
    assert fault_http_status(ServicePlatformError(), 11) == 500


def test_fault_response() -> None:
    response = fault_response(NoAgreement(), 12)
    assert response.status == "400 Bad Request"
    assert response.status_code == 400
    headers = dict(response.headers)
    assert headers["Content-Type"] == "application/soap+xml; charset=utf-8"
    assert headers["Content-Length"] == str(len(response.body))
    assert response.body == fault_envelope(NoAgreement(), 12)
    soap11 = fault_response(ServicePlatformError(), 11)
    assert soap11.status == "500 Internal Server Error"
    assert dict(soap11.headers)["Content-Type"] == "text/xml; charset=utf-8"


def test_element_and_bytes_forms_agree() -> None:
    error = NoAgreement("x")
    for version in (11, 12):
        element = fault_envelope_element(error, version)
        assert serialize_envelope(element) == fault_envelope(error, version)


def test_text_that_xml_cannot_carry_is_replaced() -> None:
    data = fault_envelope(ServicePlatformError("bad \x00\x07 bytes \ud800 and <&>"), 12)
    text = etree.fromstring(data).findtext(f".//{{{SPF_NS}}}ErrorText")
    assert text == "Internal platform error: bad \ufffd\ufffd bytes \ufffd and <&>"


def test_long_text_is_cut() -> None:
    data = fault_envelope(ServicePlatformError("x" * 5000), 12)
    text = etree.fromstring(data).findtext(f".//{{{SPF_NS}}}ErrorText")
    assert text is not None
    assert len(text) == MAX_TEXT_CHARS
    assert text.endswith("\u2026")


def test_unknown_soap_version_is_refused() -> None:
    with pytest.raises(ValueError):
        fault_envelope(ServicePlatformError(), 13)
