"""The AS4 message signature: signed over ``eb:Messaging``, the Body and every attachment.

eDelivery AS4 1.15 §1.4.2.6: RSA-SHA256 (``xmldsig-more#rsa-sha256``), SHA-256 digests,
exclusive c14n; one ``ds:Reference`` per ``wsu:Id`` of ``eb:Messaging`` and ``soap:Body`` (exc-c14n
transform) and one per payload ``cid:`` with the SwA ``Attachment-Content-Signature-Transform``;
the signing certificate travels as a ``wsse:BinarySecurityToken`` the ``KeyInfo`` references.

Why not libxmlsec (python-xmlsec) for this: it cannot dereference ``cid:`` URIs nor apply the SwA
transforms, and it verifies all references of a ``SignedInfo`` at once, so a signature with
attachment references can neither be made nor checked by it. This module therefore does the few
steps of XML-DSig itself, with the libraries that implement the hard parts: lxml's exclusive
c14n (libxml2's, with ``InclusiveNamespaces``) for the XML references and ``SignedInfo``, and
``cryptography`` for SHA-256 and RSA PKCS#1 v1.5. The attachment digest (the only step no
library offers) is written once, in ``attachment_digest``: the SwA profile's Content-Signature
transform outputs the part's content octets (transfer encoding removed, MIME headers excluded);
AS4 payloads are gzip or ``application/octet-stream``, so no text canonicalisation applies.
Debian's ``xmlsec1`` verifies what this module signs, and this module verifies what ``xmlsec1``
signs (``tests/integration/test_as4_xmlsec1_interop.py``).

Verification is strict (it is the security boundary, and WSS is prone to wrapping attacks):
one ``wsse:Security`` header, one ``ds:Signature`` in it, only the algorithms above, every
``#id`` naming exactly one element, ``eb:Messaging`` (the header's) and the Body (the
envelope's) and *every* attachment covered, and the signer equal to a certificate the caller
trusts (the configured partner's). ``As4PolicyViolation`` (``EBMS:0103``) when the message does
not follow that policy, ``As4SignatureInvalid`` (``EBMS:0101``) when it does but does not verify.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from lxml import etree

from integrations.oots.as4.errors import As4PolicyViolation, As4SignatureInvalid
from integrations.oots.as4.mime import cid_url, content_id_of
from integrations.oots.as4.soap import q
from integrations.oots.as4.wssec import (
    DS_NS,
    EC_NS,
    EXC_C14N,
    RSA_SHA256,
    SHA256,
    SWA_CONTENT_SIGNATURE,
    binary_security_token,
    elements_by_wsu_id,
    ensure_wsu_id,
    envelope_parts,
    messaging_of,
    new_id,
    resolve_token,
    security_header,
    token_reference,
)

_DS: Final = {"ds": DS_NS}


@dataclass(frozen=True)
class SigningKey:
    """A private RSA key and its certificate (the certificate store's signing pair)."""

    private_key: rsa.RSAPrivateKey
    certificate: x509.Certificate


@dataclass(frozen=True)
class SignedReference:
    """One ``ds:Reference`` of a signature: its URI and base64 digest, and the element itself
    (copied into a receipt's non-repudiation information)."""

    uri: str
    digest_value: str
    element: etree._Element = field(compare=False, repr=False, hash=False)


@dataclass(frozen=True)
class VerifiedSignature:
    """What a verified signature proved: who signed, and the references it covered."""

    certificate: x509.Certificate
    references: tuple[SignedReference, ...]


def attachment_digest(content: bytes) -> str:
    """Base64 SHA-256 of an attachment under the SwA Attachment-Content-Signature-Transform."""
    return base64.b64encode(hashlib.sha256(content).digest()).decode("ascii")


def _c14n(element: etree._Element, prefixes: list[str] | None = None) -> bytes:
    return bytes(
        etree.tostring(
            element,
            method="c14n",
            exclusive=True,
            with_comments=False,
            inclusive_ns_prefixes=prefixes or None,
        )
    )


def _digest(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode("ascii")


# --- signing -------------------------------------------------------------------------------------


def _ds(parent: etree._Element, local: str, **attrib: str) -> etree._Element:
    return etree.SubElement(parent, q(DS_NS, local), attrib)


def _reference(signed_info: etree._Element, uri: str, transform: str, digest: str) -> None:
    reference = _ds(signed_info, "Reference", URI=uri)
    transforms = _ds(reference, "Transforms")
    _ds(transforms, "Transform", Algorithm=transform)
    _ds(reference, "DigestMethod", Algorithm=SHA256)
    _ds(reference, "DigestValue").text = digest


def sign_envelope(
    root: etree._Element, attachments: Mapping[str, bytes], key: SigningKey
) -> tuple[SignedReference, ...]:
    """Sign ``root`` (an envelope with ``eb:Messaging``) and ``attachments`` (content id ->
    the content as it is sent before encryption); the signature goes into ``wsse:Security``."""
    header, body = envelope_parts(root)
    messaging = messaging_of(header)
    if messaging is None:
        raise ValueError("the envelope has no eb:Messaging header to sign")
    security = security_header(root, create=True)
    assert security is not None
    token_id = new_id("X509")
    security.append(binary_security_token(key.certificate, token_id))
    signature = etree.SubElement(security, q(DS_NS, "Signature"), nsmap={"ds": DS_NS})
    signature.set("Id", new_id("SIG"))
    signed_info = _ds(signature, "SignedInfo")
    _ds(signed_info, "CanonicalizationMethod", Algorithm=EXC_C14N)
    _ds(signed_info, "SignatureMethod", Algorithm=RSA_SHA256)
    for element, prefix in ((messaging, "Messaging"), (body, "Body")):
        element_id = ensure_wsu_id(element, prefix)
        _reference(signed_info, f"#{element_id}", EXC_C14N, _digest(_c14n(element)))
    for content_id, content in attachments.items():
        _reference(
            signed_info, cid_url(content_id), SWA_CONTENT_SIGNATURE, attachment_digest(content)
        )
    value = key.private_key.sign(_c14n(signed_info), padding.PKCS1v15(), hashes.SHA256())
    _ds(signature, "SignatureValue").text = base64.b64encode(value).decode("ascii")
    key_info = _ds(signature, "KeyInfo")
    key_info.append(token_reference(token_id))
    return _read_references(signed_info)


def _read_references(signed_info: etree._Element) -> tuple[SignedReference, ...]:
    found = []
    for reference in signed_info.findall("ds:Reference", _DS):
        digest = "".join((reference.findtext("ds:DigestValue", "", _DS) or "").split())
        found.append(SignedReference(reference.get("URI", ""), digest, reference))
    return tuple(found)


# --- verifying -----------------------------------------------------------------------------------


def _c14n_method(element: etree._Element | None, what: str) -> list[str]:
    """The ``InclusiveNamespaces`` prefixes of an exc-c14n method; anything else is refused."""
    if element is None or element.get("Algorithm") != EXC_C14N:
        algorithm = None if element is None else element.get("Algorithm")
        raise As4PolicyViolation(f"{what} uses {algorithm!r}, not exclusive c14n")
    inclusive = element.find(q(EC_NS, "InclusiveNamespaces"))
    if inclusive is None:
        return []
    return [p if p != "#default" else "" for p in inclusive.get("PrefixList", "").split()]


def _only_one(root: etree._Element, element_id: str) -> etree._Element:
    found = elements_by_wsu_id(root, element_id)
    if not found:
        # xmlsec1 and some toolkits reference a plain ``Id``; accepted when it is unique too.
        found = [el for el in root.iter() if isinstance(el.tag, str) and el.get("Id") == element_id]
    if len(found) != 1:
        raise As4PolicyViolation(f"reference #{element_id} names {len(found)} elements")
    return found[0]


def _check_reference(
    root: etree._Element, reference: etree._Element, attachments: Mapping[str, bytes]
) -> tuple[str, etree._Element | str]:
    """Check one reference's digest; the covered element, or ``cid:`` content id."""
    uri = reference.get("URI", "")
    method = reference.find("ds:DigestMethod", _DS)
    if method is None or method.get("Algorithm") != SHA256:
        raise As4PolicyViolation(f"reference {uri!r} is not digested with SHA-256")
    transforms = reference.findall("ds:Transforms/ds:Transform", _DS)
    try:
        expected = base64.b64decode(
            "".join((reference.findtext("ds:DigestValue", "", _DS) or "").split()), validate=True
        )
    except (binascii.Error, ValueError) as exc:
        raise As4PolicyViolation(f"reference {uri!r} has no base64 DigestValue") from exc
    covered: etree._Element | str
    if uri.lower().startswith("cid:"):
        if [t.get("Algorithm") for t in transforms] != [SWA_CONTENT_SIGNATURE]:
            raise As4PolicyViolation(f"reference {uri!r} lacks the SwA content transform")
        content_id = content_id_of(uri)
        content = next((v for k, v in attachments.items() if k.lower() == content_id.lower()), None)
        if content is None:
            raise As4PolicyViolation(f"reference {uri!r} names no attachment")
        actual = hashlib.sha256(content).digest()
        covered = content_id.lower()
    elif uri.startswith("#") and len(uri) > 1:
        if len(transforms) != 1:
            raise As4PolicyViolation(f"reference {uri!r} must have exactly one transform")
        prefixes = _c14n_method(transforms[0], f"reference {uri!r}")
        element = _only_one(root, uri[1:])
        actual = hashlib.sha256(_c14n(element, prefixes)).digest()
        covered = element
    else:
        raise As4PolicyViolation(f"reference URI {uri!r} is neither #id nor cid:")
    if not hmac.compare_digest(actual, expected):
        raise As4SignatureInvalid(f"the digest of {uri} does not match (content changed)")
    return uri, covered


def verify_envelope(
    root: etree._Element,
    attachments: Mapping[str, bytes],
    trusted: tuple[x509.Certificate, ...],
) -> VerifiedSignature:
    """Verify the signature of ``root`` over itself and ``attachments`` (content id -> content,
    decrypted); the signer must be one of ``trusted``. See the module docstring."""
    security = security_header(root, create=False)
    if security is None:
        raise As4PolicyViolation("the message has no wsse:Security header (unsigned)")
    signatures = security.findall("ds:Signature", _DS)
    if len(signatures) != 1:
        raise As4PolicyViolation(f"the security header holds {len(signatures)} signatures")
    signature = signatures[0]
    signed_info = signature.find("ds:SignedInfo", _DS)
    if signed_info is None:
        raise As4PolicyViolation("the signature has no SignedInfo")
    prefixes = _c14n_method(signed_info.find("ds:CanonicalizationMethod", _DS), "SignedInfo")
    method = signed_info.find("ds:SignatureMethod", _DS)
    if method is None or method.get("Algorithm") != RSA_SHA256:
        raise As4PolicyViolation("the signature method is not RSA-SHA256")
    certificate = resolve_token(root, signature.find("ds:KeyInfo", _DS), trusted)
    if not any(certificate == known for known in trusted):
        subject = certificate.subject.rfc4514_string()
        raise As4SignatureInvalid(f"signed by {subject}, not by the partner's certificate")
    header, body = envelope_parts(root)
    covered = [
        _check_reference(root, r, attachments) for r in signed_info.findall("ds:Reference", _DS)
    ]
    targets = [target for _, target in covered]
    messaging = messaging_of(header)
    if messaging is None or not any(t is messaging for t in targets):
        raise As4PolicyViolation("eb:Messaging is not signed")
    if not any(t is body for t in targets):
        raise As4PolicyViolation("the SOAP Body is not signed")
    missing = [cid for cid in attachments if cid.lower() not in targets]
    if missing:
        raise As4PolicyViolation(f"attachment {missing[0]} is not signed")
    try:
        value = base64.b64decode(
            "".join((signature.findtext("ds:SignatureValue", "", _DS) or "").split()),
            validate=True,
        )
    except (binascii.Error, ValueError) as exc:
        raise As4PolicyViolation("the SignatureValue is not base64") from exc
    public_key = certificate.public_key()
    if not isinstance(public_key, rsa.RSAPublicKey):
        raise As4PolicyViolation("the signing certificate does not hold an RSA key")
    try:
        public_key.verify(value, _c14n(signed_info, prefixes), padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature as exc:
        raise As4SignatureInvalid("the signature value does not verify") from exc
    return VerifiedSignature(certificate, _read_references(signed_info))
