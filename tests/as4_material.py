"""Keys, certificates and envelopes of the native AS4 access point tests (unit and integration)."""

from __future__ import annotations

from functools import cache

from cryptography.hazmat.primitives import serialization
from lxml import etree

from integrations.oots.as4.ebms import build_messaging
from integrations.oots.as4.encryption import DecryptionKey
from integrations.oots.as4.model import ACTION_RESPONSE, EBMS_NS, OutgoingAs4, TypedId
from integrations.oots.as4.sender import As4Partner, LocalAccessPoint
from integrations.oots.as4.signature import SigningKey
from integrations.oots.as4.soap import new_envelope
from integrations.oots.as4.transport import HttpTarget
from tests.certificates import MadeCert, make_cert
from tests.official_schemas import XSD_NS
from tests.oots_domibus_material import CONFORMANCE, EBMS3_XSD, XML_NS, outgoing


@cache
def party(name: str) -> MadeCert:
    """The key pair of an access point; CN = its party id, as Domibus expects (AS4.md §1)."""
    return make_cert(f"CN={name},O=OOTS test,C=DK")


def signing_key(name: str) -> SigningKey:
    made = party(name)
    return SigningKey(made.key, made.cert)


def key_pem(name: str) -> bytes:
    return party(name).key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def user_envelope() -> etree._Element:
    """A SOAP 1.2 envelope with the eb:Messaging of the deterministic OOTS request, unsigned."""
    root, header, _ = new_envelope()
    header.append(build_messaging(outgoing()))
    return root


XML_XSD = CONFORMANCE / "domibus" / "ws-plugin" / "xml.xsd"
SOAP12_XSD = CONFORMANCE / "ebms3" / "soap12.xsd"
EBBP_XSD = CONFORMANCE / "ebms3" / "ebbp-signals-2.0.4.xsd"
XMLDSIG_XSD = (
    CONFORMANCE / "kombit" / "beskedfordeler" / "xsd" / "cached" / "xmldsig-core-schema.xsd"
)
XLINK_XSD = CONFORMANCE / "oots-edm-1.0" / "xsd" / "xml" / "xlink.xsd"


@cache
def envelope_schema() -> etree.XMLSchema:
    """SOAP 1.2 + the ebMS 3 header + the ebBP signals (receipt NRR) + XML-DSig, read in place
    from ``shared/conformance``: an AS4 envelope is checked as deep as these schemas reach
    (``wsse:Security`` has no schema there and is skipped by the SOAP header's lax wildcard)."""
    top = etree.Element(f"{{{XSD_NS}}}schema", nsmap={"xsd": XSD_NS})
    for namespace, location in (
        (XML_NS, XML_XSD),
        ("http://www.w3.org/2000/09/xmldsig#", XMLDSIG_XSD),
        ("http://www.w3.org/1999/xlink", XLINK_XSD),
        ("http://www.w3.org/2003/05/soap-envelope", SOAP12_XSD),
        (EBMS_NS, EBMS3_XSD),
        ("http://docs.oasis-open.org/ebxml-bp/ebbp-signals-2.0", EBBP_XSD),
    ):
        etree.SubElement(
            top, f"{{{XSD_NS}}}import", namespace=namespace, schemaLocation=location.as_uri()
        )
    return etree.XMLSchema(top)


def dk_access_point() -> LocalAccessPoint:
    """The Danish authority's access point (the platform), AP_DK_01."""
    made = party("AP_DK_01")
    return LocalAccessPoint(
        "AP_DK_01", SigningKey(made.key, made.cert), DecryptionKey(made.key, made.cert)
    )


def de_partner(url: str = "https://de.example/as4", ca_cert: str | None = None) -> As4Partner:
    """The German provider's access point, AP_DE_01, as the platform configures it."""
    cert = party("AP_DE_01").cert
    return As4Partner("AP_DE_01", HttpTarget(url, ca_cert=ca_cert), cert, cert)


def dk_partner_of_de(
    url: str = "https://dk.example/as4", ca_cert: str | None = None
) -> tuple[LocalAccessPoint, As4Partner]:
    """The same two access points seen from the German side (for messages *to* the platform)."""
    made = party("AP_DE_01")
    local = LocalAccessPoint(
        "AP_DE_01", SigningKey(made.key, made.cert), DecryptionKey(made.key, made.cert)
    )
    cert = party("AP_DK_01").cert
    return local, As4Partner("AP_DK_01", HttpTarget(url, ca_cert=ca_cert), cert, cert)


def answer(**changes: object) -> OutgoingAs4:
    """The German provider's ExecuteQueryResponse to the deterministic request."""
    values: dict[str, object] = {
        "from_party": "AP_DE_01",
        "to_party": "AP_DK_01",
        "action": ACTION_RESPONSE,
        "message_id": "0f5d8b1e-0000-4000-8000-0000000000a1@oots.eu",
        "payload_id": "cid:0f5d8b1e-0000-4000-8000-0000000000a0@oots.eu",
        "original_sender": TypedId("DE73524311", "urn:cef.eu:names:identifier:EAS:9930"),
        "final_recipient": TypedId("29189846", "urn:cef.eu:names:identifier:EAS:0184"),
    }
    values.update(changes)
    return outgoing(**values)
