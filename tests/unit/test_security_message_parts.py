"""``read_message``: which header parts are read, and which missing, repeated or malformed part
is refused with which error (without signatures: the structure is checked before any crypto)."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from lxml import etree

from serviceplatform.errors import (
    AddressingHeaderMissing,
    FrameworkVersionMismatch,
    NotSoapEnvelope,
    SecurityHeaderMissing,
    ServicePlatformError,
)
from serviceplatform.security.message import read_message
from serviceplatform.security.wire import (
    DS_SIGNATURE,
    RH_TRANSACTION_UUID,
    SAML_ASSERTION,
    SBF_FRAMEWORK,
    SBF_PROFILE_ATTR,
    SOAP11_NS,
    SOAP12_NS,
    WSA_ACTION,
    WSA_MESSAGE_ID,
    WSA_REPLY_TO,
    WSA_TO,
    WSSE_SECURITY,
    WSU_TIMESTAMP,
)

ENVELOPE = """\
<s:Envelope xmlns:s="{soap}" xmlns:wsa="http://www.w3.org/2005/08/addressing"
    xmlns:sbf="urn:liberty:sb:2006-08" xmlns:sbfp="urn:liberty:sb:profile"
    xmlns:wsse="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
    xmlns:wsu="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
    xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" xmlns:ds="http://www.w3.org/2000/09/xmldsig#"
    xmlns:rh="http://kombit.dk/xml/schemas/RequestHeader/1/">
  <s:Header>
    <sbf:Framework version="2.0" sbfp:profile="urn:liberty:sb:profile:basic"/>
    <wsa:Action>urn:action</wsa:Action>
    <wsa:MessageID>urn:uuid:m-1</wsa:MessageID>
    <wsa:To>https://sp.example/service</wsa:To>
    <wsa:ReplyTo><wsa:Address>urn:reply</wsa:Address></wsa:ReplyTo>
    <rh:RequestHeader><rh:TransactionUUID>tx-1</rh:TransactionUUID></rh:RequestHeader>
    <wsse:Security>
      <wsu:Timestamp>
        <wsu:Created>2026-12-06T10:00:00+01:00</wsu:Created>
        <wsu:Expires>2026-12-06T09:05:00Z</wsu:Expires>
      </wsu:Timestamp>
      <saml:Assertion ID="a-1"/>
      <ds:Signature/>
    </wsse:Security>
  </s:Header>
  <s:Body/>
</s:Envelope>"""


def envelope(soap: str = SOAP11_NS) -> etree._Element:
    return etree.fromstring(ENVELOPE.format(soap=soap).encode())


def first(root: etree._Element, tag: str) -> etree._Element:
    return next(root.iter(tag))


def remove(root: etree._Element, tag: str) -> None:
    element = first(root, tag)
    parent = element.getparent()
    assert parent is not None
    parent.remove(element)


def repeat(root: etree._Element, tag: str) -> None:
    element = first(root, tag)
    element.addnext(etree.fromstring(etree.tostring(element)))


@pytest.mark.parametrize("soap", [SOAP11_NS, SOAP12_NS])
def test_every_part_is_read(soap: str) -> None:
    root = envelope(soap)
    parts = read_message(root)
    assert parts.envelope is root
    assert parts.body is first(root, f"{{{soap}}}Body")
    assert parts.framework is first(root, SBF_FRAMEWORK)
    assert parts.action.text == "urn:action"
    assert parts.message_id.text == "urn:uuid:m-1"
    assert parts.to.text == "https://sp.example/service"
    assert parts.reply_to is first(root, WSA_REPLY_TO)
    assert parts.transaction_uuid is first(root, RH_TRANSACTION_UUID)
    assert parts.security is first(root, WSSE_SECURITY)
    assert parts.timestamp is first(root, WSU_TIMESTAMP)
    assert parts.created.isoformat() == "2026-12-06T09:00:00+00:00"
    assert parts.expires.isoformat() == "2026-12-06T09:05:00+00:00"
    assert parts.assertion is first(root, SAML_ASSERTION)
    assert parts.signature is first(root, DS_SIGNATURE)


def test_reply_to_and_request_header_are_optional() -> None:
    root = envelope()
    remove(root, WSA_REPLY_TO)
    remove(root, RH_TRANSACTION_UUID.replace("TransactionUUID", "RequestHeader"))
    parts = read_message(root)
    assert parts.reply_to is None
    assert parts.transaction_uuid is None


@pytest.mark.parametrize("text", ["", "  \n "])
def test_an_empty_transaction_uuid_is_none(text: str) -> None:
    root = envelope()
    first(root, RH_TRANSACTION_UUID).text = text or None
    assert read_message(root).transaction_uuid is None


def test_a_request_header_without_transaction_uuid_gives_none() -> None:
    root = envelope()
    remove(root, RH_TRANSACTION_UUID)
    assert read_message(root).transaction_uuid is None


def test_the_first_of_two_request_headers_is_read() -> None:
    root = envelope()
    request_header = first(root, RH_TRANSACTION_UUID).getparent()
    assert request_header is not None
    repeat(root, request_header.tag)
    second = request_header.getnext()
    assert second is not None
    second[0].text = "tx-2"
    assert read_message(root).transaction_uuid is first(root, RH_TRANSACTION_UUID)


@pytest.mark.parametrize("soap", [SOAP11_NS, SOAP12_NS])
def test_header_and_body_of_the_other_soap_version_are_not_read(soap: str) -> None:
    # The Envelope's namespace says which Header and Body count; the other version's do not.
    other = SOAP12_NS if soap == SOAP11_NS else SOAP11_NS
    root = envelope(soap)
    for name in ("Header", "Body"):
        first(root, f"{{{soap}}}{name}").tag = f"{{{other}}}{name}"
    with pytest.raises(NotSoapEnvelope, match="at most one Header and exactly one Body"):
        read_message(root)
    root = envelope(soap)
    first(root, f"{{{soap}}}Header").tag = f"{{{other}}}Header"
    with pytest.raises(FrameworkVersionMismatch, match="found 0"):
        read_message(root)


@pytest.mark.parametrize(
    ("namespace", "name"),
    [(SOAP11_NS, "Body"), (SOAP12_NS, "Header"), ("urn:other", "Envelope")],
)
def test_a_document_element_that_is_not_a_soap_envelope_is_refused(
    namespace: str, name: str
) -> None:
    with pytest.raises(NotSoapEnvelope):
        read_message(etree.Element(f"{{{namespace}}}{name}"))


def test_a_whole_message_under_another_namespace_or_name_is_refused() -> None:
    with pytest.raises(NotSoapEnvelope):
        read_message(envelope("urn:other"))
    renamed = envelope()
    renamed.tag = f"{{{SOAP11_NS}}}Message"
    with pytest.raises(NotSoapEnvelope):
        read_message(renamed)


@pytest.mark.parametrize("part", ["Header", "Body"])
def test_a_second_header_or_body_is_refused(part: str) -> None:
    root = envelope()
    repeat(root, f"{{{SOAP11_NS}}}{part}")
    with pytest.raises(NotSoapEnvelope):
        read_message(root)


def test_a_missing_body_is_refused() -> None:
    root = envelope()
    remove(root, f"{{{SOAP11_NS}}}Body")
    with pytest.raises(NotSoapEnvelope):
        read_message(root)


def test_the_profile_may_be_unqualified() -> None:
    root = envelope()
    framework = first(root, SBF_FRAMEWORK)
    del framework.attrib[SBF_PROFILE_ATTR]
    framework.set("profile", "urn:liberty:sb:profile:basic")
    assert read_message(root).framework is framework


@pytest.mark.parametrize(
    ("attribute", "value"),
    [("version", "1.0"), (SBF_PROFILE_ATTR, "urn:liberty:sb:profile:other"), ("version", None)],
)
def test_a_wrong_framework_is_refused(attribute: str, value: str | None) -> None:
    root = envelope()
    framework = first(root, SBF_FRAMEWORK)
    if value is None:
        del framework.attrib[attribute]
    else:
        framework.set(attribute, value)
    with pytest.raises(FrameworkVersionMismatch):
        read_message(root)


REFUSALS: list[tuple[str, str, type[ServicePlatformError]]] = [
    (SBF_FRAMEWORK, "sbf:Framework", FrameworkVersionMismatch),
    (WSA_ACTION, "wsa:Action", AddressingHeaderMissing),
    (WSA_MESSAGE_ID, "wsa:MessageID", AddressingHeaderMissing),
    (WSA_TO, "wsa:To", AddressingHeaderMissing),
    (WSSE_SECURITY, "wsse:Security", SecurityHeaderMissing),
    (WSU_TIMESTAMP, "wsu:Timestamp", SecurityHeaderMissing),
    (SAML_ASSERTION, "saml:Assertion", SecurityHeaderMissing),
    (DS_SIGNATURE, "ds:Signature", SecurityHeaderMissing),
]


@pytest.mark.parametrize("change", [remove, repeat], ids=["missing", "repeated"])
@pytest.mark.parametrize(("tag", "name", "error"), REFUSALS, ids=[r[1] for r in REFUSALS])
def test_a_missing_or_repeated_part_is_refused_and_named(
    change: Callable[[etree._Element, str], None],
    tag: str,
    name: str,
    error: type[ServicePlatformError],
) -> None:
    root = envelope()
    change(root, tag)
    with pytest.raises(error) as raised:
        read_message(root)
    # The fault tells the sender which part to fix.
    assert re.search(rf"(?<![\w:]){re.escape(name)}(?![\w:])", str(raised.value.detail))


def test_a_repeated_reply_to_is_refused() -> None:
    root = envelope()
    repeat(root, WSA_REPLY_TO)
    with pytest.raises(AddressingHeaderMissing):
        read_message(root)


@pytest.mark.parametrize("tag", [WSA_ACTION, WSA_MESSAGE_ID, WSA_TO])
@pytest.mark.parametrize("text", [None, " \n "])
def test_an_empty_addressing_header_is_refused(tag: str, text: str | None) -> None:
    root = envelope()
    first(root, tag).text = text
    with pytest.raises(AddressingHeaderMissing):
        read_message(root)


@pytest.mark.parametrize("child", ["Created", "Expires"])
@pytest.mark.parametrize("value", [None, "2026-12-06T09:00:00", "soon"])
def test_a_timestamp_without_a_zoned_instant_is_refused(child: str, value: str | None) -> None:
    root = envelope()
    element = first(root, WSU_TIMESTAMP.replace("Timestamp", child))
    if value is None:
        remove(root, element.tag)
    else:
        element.text = value
    with pytest.raises(SecurityHeaderMissing):
        read_message(root)
