"""``KombitWsse`` inside zeep's own request pipeline: what zeep would send is accepted."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from lxml import etree
from zeep import Client
from zeep.transports import Transport

from serviceplatform.client.request_signer import KombitWsse, mint_assertion
from serviceplatform.security.replay import MemoryReplayCache
from serviceplatform.security.validator import SecurityPolicy, TokenValidator
from serviceplatform.security.wire import parse_instant
from tests.unit.test_security_roundtrip import make_identity

AUDIENCE = "http://entityid.test.example/service/ping/1"
ENDPOINT = "https://sp.test.example/service/Ping/1"
SOAP_ACTION = "urn:test:ping/Ping"

WSDL = """<?xml version="1.0" encoding="utf-8"?>
<wsdl:definitions xmlns:wsdl="http://schemas.xmlsoap.org/wsdl/"
    xmlns:soap12="http://schemas.xmlsoap.org/wsdl/soap12/"
    xmlns:soap="http://schemas.xmlsoap.org/wsdl/soap/"
    xmlns:xs="http://www.w3.org/2001/XMLSchema"
    xmlns:tns="urn:test:ping" targetNamespace="urn:test:ping">
  <wsdl:types>
    <xs:schema targetNamespace="urn:test:ping" elementFormDefault="qualified">
      <xs:element name="Ping"><xs:complexType><xs:sequence>
        <xs:element name="Text" type="xs:string"/>
      </xs:sequence></xs:complexType></xs:element>
      <xs:element name="Pong"><xs:complexType><xs:sequence>
        <xs:element name="Text" type="xs:string"/>
      </xs:sequence></xs:complexType></xs:element>
    </xs:schema>
  </wsdl:types>
  <wsdl:message name="PingIn"><wsdl:part name="body" element="tns:Ping"/></wsdl:message>
  <wsdl:message name="PingOut"><wsdl:part name="body" element="tns:Pong"/></wsdl:message>
  <wsdl:portType name="PingPort">
    <wsdl:operation name="Ping">
      <wsdl:input message="tns:PingIn"/><wsdl:output message="tns:PingOut"/>
    </wsdl:operation>
  </wsdl:portType>
  <wsdl:binding name="Soap12" type="tns:PingPort">
    <soap12:binding style="document" transport="http://schemas.xmlsoap.org/soap/http"/>
    <wsdl:operation name="Ping">
      <soap12:operation soapAction="urn:test:ping/Ping"/>
      <wsdl:input><soap12:body use="literal"/></wsdl:input>
      <wsdl:output><soap12:body use="literal"/></wsdl:output>
    </wsdl:operation>
  </wsdl:binding>
  <wsdl:binding name="Soap11" type="tns:PingPort">
    <soap:binding style="document" transport="http://schemas.xmlsoap.org/soap/http"/>
    <wsdl:operation name="Ping">
      <soap:operation soapAction="urn:test:ping/Ping"/>
      <wsdl:input><soap:body use="literal"/></wsdl:input>
      <wsdl:output><soap:body use="literal"/></wsdl:output>
    </wsdl:operation>
  </wsdl:binding>
  <wsdl:service name="PingService">
    <wsdl:port name="Soap12" binding="tns:Soap12">
      <soap12:address location="https://sp.test.example/service/Ping/1"/>
    </wsdl:port>
    <wsdl:port name="Soap11" binding="tns:Soap11">
      <soap:address location="https://sp.test.example/service/Ping/1"/>
    </wsdl:port>
  </wsdl:service>
</wsdl:definitions>
"""


class Sent(Exception):
    """Raised by the capturing transport instead of going to the network."""


class CapturingTransport(Transport):
    def __init__(self) -> None:
        session = requests.Session()
        session.trust_env = False
        super().__init__(session=session)  # type: ignore[no-untyped-call]
        self.sent: list[tuple[str, bytes, dict[str, str]]] = []

    def post_xml(self, address: str, envelope: etree._Element, headers: dict[str, str]) -> Any:
        self.sent.append((address, etree.tostring(envelope), dict(headers)))
        raise Sent()


@pytest.fixture(scope="module")
def identities() -> dict[str, tuple[RSAPrivateKey, x509.Certificate]]:
    return {"sts": make_identity("zeep test STS"), "holder": make_identity("zeep client")}


@pytest.mark.parametrize("port", ["Soap12", "Soap11"])
def test_zeep_request_signed_by_the_plugin_is_accepted(
    tmp_path: Path,
    identities: dict[str, tuple[RSAPrivateKey, x509.Certificate]],
    port: str,
) -> None:
    sts_key, sts_cert = identities["sts"]
    holder_key, holder_cert = identities["holder"]
    wsdl = tmp_path / "ping.wsdl"
    wsdl.write_text(WSDL, encoding="utf-8")
    assertion = mint_assertion(
        sts_key=sts_key,
        sts_cert=sts_cert,
        issuer="https://sts.test.example",
        audience=AUDIENCE,
        authority_cvr="29189846",
        holder_cert=holder_cert,
        now=datetime.now(UTC),  # the plugin signs with the real clock
    )
    transport = CapturingTransport()
    client = Client(  # type: ignore[no-untyped-call]
        str(wsdl),
        transport=transport,
        wsse=KombitWsse(assertion=assertion, holder_key=holder_key, to=ENDPOINT),
        port_name=port,
    )

    with pytest.raises(Sent):
        client.service.Ping(Text="hello")

    (address, payload, _headers) = transport.sent[0]
    assert address == ENDPOINT
    policy = SecurityPolicy(trusted_sts_certs=(sts_cert,), trusted_issuers=frozenset())
    validator = TokenValidator(policy, MemoryReplayCache(), clock=_clock_after(payload))
    context = validator.validate(etree.fromstring(payload), AUDIENCE)
    assert context.action == SOAP_ACTION
    assert context.to == ENDPOINT
    assert context.authority_cvr == "29189846"


def test_action_for_overrides_the_soap_action(
    identities: dict[str, tuple[RSAPrivateKey, x509.Certificate]],
) -> None:
    sts_key, sts_cert = identities["sts"]
    holder_key, holder_cert = identities["holder"]
    assertion = mint_assertion(
        sts_key=sts_key,
        sts_cert=sts_cert,
        issuer="https://sts.test.example",
        audience=AUDIENCE,
        authority_cvr="29189846",
        holder_cert=holder_cert,
        now=datetime.now(UTC),  # the plugin signs with the real clock
    )
    unsigned = (
        b'<e:Envelope xmlns:e="http://www.w3.org/2003/05/soap-envelope">'
        b'<e:Body><p:Ping xmlns:p="urn:test:ping"/></e:Body></e:Envelope>'
    )
    envelope = etree.fromstring(unsigned)
    plugin = KombitWsse(
        assertion=assertion,
        holder_key=holder_key,
        to=ENDPOINT,
        action_for=lambda body: "urn:custom:" + etree.QName(body).localname,
    )
    signed, _ = plugin.apply(envelope, {"Content-Type": 'application/soap+xml; action="x"'})
    action = signed.findtext("{*}Header/{http://www.w3.org/2005/08/addressing}Action")
    assert action == "urn:custom:Ping"

    unnamed = KombitWsse(assertion=assertion, holder_key=holder_key, to=ENDPOINT)
    fallback, _ = unnamed.apply(etree.fromstring(unsigned), {})
    action = fallback.findtext("{*}Header/{http://www.w3.org/2005/08/addressing}Action")
    assert action == "urn:test:ping/Ping"

    # An Action zeep's WS-Addressing plugin already wrote wins over the SOAP action.
    resigned, _ = unnamed.apply(signed, {"SOAPAction": '"urn:other"'})
    actions = resigned.findall("{*}Header/{http://www.w3.org/2005/08/addressing}Action")
    assert [a.text for a in actions] == ["urn:custom:Ping"]


def _clock_after(payload: bytes) -> Callable[[], datetime]:
    """The validator's clock: a minute after the request's own Timestamp was created."""
    instant = parse_instant(etree.fromstring(payload).findtext(".//{*}Timestamp/{*}Created"))
    assert instant is not None
    return lambda: instant + timedelta(minutes=1)
