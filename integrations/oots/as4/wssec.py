"""WS-Security plumbing of AS4: the namespaces and algorithm URIs, the ``wsse:Security`` header,
``wsu:Id``, the X.509 ``BinarySecurityToken`` and the token references that point at it.

eDelivery AS4 1.15 (§1.4.2.6, §1.4.5) fixes the algorithms; this module names them once for
``signature`` and ``encryption``. The values are the ones a real Domibus message carries
(``docs/AS4.md`` §1).
"""

from __future__ import annotations

import base64
import binascii
import uuid
from typing import Final

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from lxml import etree

from integrations.oots.as4.errors import As4PolicyViolation
from integrations.oots.as4.model import EBMS_NS
from integrations.oots.as4.soap import SOAP12_NS, q

WSSE_NS: Final = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
WSU_NS: Final = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
WSSE11_NS: Final = "http://docs.oasis-open.org/wss/oasis-wss-wssecurity-secext-1.1.xsd"
DS_NS: Final = "http://www.w3.org/2000/09/xmldsig#"
XENC_NS: Final = "http://www.w3.org/2001/04/xmlenc#"
XENC11_NS: Final = "http://www.w3.org/2009/xmlenc11#"
EC_NS: Final = "http://www.w3.org/2001/10/xml-exc-c14n#"

X509V3: Final = (
    "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-x509-token-profile-1.0#X509v3"
)
SKI: Final = (
    "http://docs.oasis-open.org/wss/2004/01/"
    "oasis-200401-wss-x509-token-profile-1.0#X509SubjectKeyIdentifier"
)
BASE64_BINARY: Final = (
    "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-soap-message-security-1.0#Base64Binary"
)
ENCRYPTED_KEY_TOKEN: Final = (
    "http://docs.oasis-open.org/wss/oasis-wss-soap-message-security-1.1#EncryptedKey"
)

EXC_C14N: Final = "http://www.w3.org/2001/10/xml-exc-c14n#"
RSA_SHA256: Final = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
SHA256: Final = "http://www.w3.org/2001/04/xmlenc#sha256"
_SWA: Final = "http://docs.oasis-open.org/wss/oasis-wss-SwAProfile-1.1#"
SWA_CONTENT_SIGNATURE: Final = _SWA + "Attachment-Content-Signature-Transform"
SWA_CIPHERTEXT: Final = _SWA + "Attachment-Ciphertext-Transform"
SWA_CONTENT_ONLY: Final = _SWA + "Attachment-Content-Only"
AES128_GCM: Final = "http://www.w3.org/2009/xmlenc11#aes128-gcm"
RSA_OAEP: Final = "http://www.w3.org/2009/xmlenc11#rsa-oaep"
MGF1_SHA256: Final = "http://www.w3.org/2009/xmlenc11#mgf1sha256"

NSMAP: Final = {
    "wsse": WSSE_NS,
    "wsu": WSU_NS,
    "ds": DS_NS,
    "xenc": XENC_NS,
    "xenc11": XENC11_NS,
    "ec": EC_NS,
    "wsse11": WSSE11_NS,
}
WSU_ID: Final = q(WSU_NS, "Id")


def new_id(prefix: str) -> str:
    """A fresh ``wsu:Id`` / ``Id`` value (an NCName: starts with a letter)."""
    return f"{prefix}-{uuid.uuid4()}"


def envelope_parts(root: etree._Element) -> tuple[etree._Element, etree._Element]:
    """The ``soap:Header`` and ``soap:Body`` of an envelope (a header is added when absent)."""
    header = root.find(q(SOAP12_NS, "Header"))
    body = root.find(q(SOAP12_NS, "Body"))
    if body is None:
        raise As4PolicyViolation("the envelope has no Body")
    if header is None:
        header = etree.Element(q(SOAP12_NS, "Header"))
        body.addprevious(header)
    return header, body


def messaging_of(header: etree._Element) -> etree._Element | None:
    """The ``eb:Messaging`` block of a SOAP header."""
    return header.find(q(EBMS_NS, "Messaging"))


def security_header(root: etree._Element, *, create: bool) -> etree._Element | None:
    """The one ``wsse:Security`` header (created, ``mustUnderstand``, when asked and absent)."""
    header, _ = envelope_parts(root)
    found = header.findall(q(WSSE_NS, "Security"))
    if len(found) > 1:
        raise As4PolicyViolation("the message has more than one wsse:Security header")
    if found:
        return found[0]
    if not create:
        return None
    security = etree.Element(q(WSSE_NS, "Security"), nsmap={"wsse": WSSE_NS, "wsu": WSU_NS})
    security.set(q(SOAP12_NS, "mustUnderstand"), "true")
    header.insert(0, security)
    return security


def ensure_wsu_id(element: etree._Element, prefix: str) -> str:
    """The element's ``wsu:Id``, set to a fresh one when it has none."""
    current = element.get(WSU_ID)
    if current:
        return current
    value = new_id(prefix)
    element.set(WSU_ID, value)
    return value


def binary_security_token(certificate: x509.Certificate, token_id: str) -> etree._Element:
    """A ``wsse:BinarySecurityToken`` holding ``certificate`` (X509v3, base64 DER)."""
    token = etree.Element(
        q(WSSE_NS, "BinarySecurityToken"),
        {"EncodingType": BASE64_BINARY, "ValueType": X509V3, WSU_ID: token_id},
        nsmap={"wsse": WSSE_NS, "wsu": WSU_NS},
    )
    der = certificate.public_bytes(serialization.Encoding.DER)
    token.text = base64.b64encode(der).decode("ascii")
    return token


def token_reference(token_id: str) -> etree._Element:
    """``wsse:SecurityTokenReference`` pointing at the ``BinarySecurityToken`` ``token_id``."""
    reference = etree.Element(q(WSSE_NS, "SecurityTokenReference"), nsmap={"wsse": WSSE_NS})
    etree.SubElement(reference, q(WSSE_NS, "Reference"), URI=f"#{token_id}", ValueType=X509V3)
    return reference


def _find_by_wsu_id(root: etree._Element, value: str) -> list[etree._Element]:
    return [el for el in root.iter() if isinstance(el.tag, str) and el.get(WSU_ID) == value]


def _token_certificate(token: etree._Element) -> x509.Certificate:
    value_type = token.get("ValueType")
    if value_type != X509V3:
        raise As4PolicyViolation(f"the security token is {value_type!r}, not an X509v3 token")
    try:
        der = base64.b64decode("".join((token.text or "").split()), validate=True)
        return x509.load_der_x509_certificate(der)
    except (binascii.Error, ValueError) as exc:
        raise As4PolicyViolation("the BinarySecurityToken is not an X.509 certificate") from exc


def subject_key_identifier(certificate: x509.Certificate) -> bytes:
    """The certificate's SKI: its extension, else the SHA-1 of the key (RFC 5280 method 1)."""
    try:
        ext = certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
        return ext.value.digest
    except x509.ExtensionNotFound:
        return x509.SubjectKeyIdentifier.from_public_key(certificate.public_key()).digest


def resolve_token(
    root: etree._Element, key_info: etree._Element | None, candidates: tuple[x509.Certificate, ...]
) -> x509.Certificate:
    """The certificate a ``KeyInfo`` names: a BST by reference (the AS4 default), else an SKI
    or ``X509IssuerSerial`` matched against ``candidates`` (AS4 §1.4.5: receivers SHOULD)."""
    if key_info is None:
        raise As4PolicyViolation("the signature or key has no KeyInfo")
    reference = key_info.find(f"{q(WSSE_NS, 'SecurityTokenReference')}/{q(WSSE_NS, 'Reference')}")
    if reference is not None:
        uri = reference.get("URI", "")
        if not uri.startswith("#"):
            raise As4PolicyViolation(f"the token reference {uri!r} is not a local reference")
        tokens = _find_by_wsu_id(root, uri[1:])
        if len(tokens) != 1 or tokens[0].tag != q(WSSE_NS, "BinarySecurityToken"):
            raise As4PolicyViolation(f"the token reference {uri!r} names no single token")
        return _token_certificate(tokens[0])
    identifier = key_info.find(
        f"{q(WSSE_NS, 'SecurityTokenReference')}/{q(WSSE_NS, 'KeyIdentifier')}"
    )
    if identifier is not None and identifier.get("ValueType") == SKI:
        try:
            wanted = base64.b64decode("".join((identifier.text or "").split()), validate=True)
        except (binascii.Error, ValueError) as exc:
            raise As4PolicyViolation("the SubjectKeyIdentifier is not base64") from exc
        for certificate in candidates:
            if subject_key_identifier(certificate) == wanted:
                return certificate
        raise As4PolicyViolation("the SubjectKeyIdentifier names no known certificate")
    serial = key_info.find(f".//{q(DS_NS, 'X509IssuerSerial')}")
    if serial is not None:
        number = (serial.findtext(q(DS_NS, "X509SerialNumber")) or "").strip()
        issuer = (serial.findtext(q(DS_NS, "X509IssuerName")) or "").strip()
        for certificate in candidates:
            if str(certificate.serial_number) == number and _same_name(issuer, certificate.issuer):
                return certificate
        raise As4PolicyViolation("the X509IssuerSerial names no known certificate")
    raise As4PolicyViolation("the KeyInfo names no certificate in a way AS4 allows")


def _same_name(written: str, name: x509.Name) -> bool:
    """An ``X509IssuerName`` (RFC 4514 text, as toolkits write it) equals ``name``; compared
    as parsed names, so spacing and attribute-type spelling do not matter."""
    try:
        return x509.Name.from_rfc4514_string(written) == name
    except ValueError:
        return False


def elements_by_wsu_id(root: etree._Element, value: str) -> list[etree._Element]:
    """Every element whose ``wsu:Id`` is ``value`` (more than one is a wrapping attempt)."""
    return _find_by_wsu_id(root, value)
