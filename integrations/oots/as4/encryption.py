"""AS4 payload encryption: every payload part AES-128-GCM, the key RSA-OAEP for the recipient.

eDelivery AS4 1.15 §1.4.2.6 with the Domibus suite ``Basic128GCMSha256MgfSha256`` (AS4.md §1):

- one fresh AES-128 key per message; each payload part (and only those: the SOAP header is never
  encrypted) becomes ``IV(12) || ciphertext || tag(16)`` (XML Encryption 1.1 AES-GCM layout, no
  additional data) and is sent as ``application/octet-stream``;
- an ``xenc:EncryptedData`` per part: ``Type=…#Attachment-Content-Only``, ``MimeType`` = the
  part's type before encryption (``application/gzip`` when compressed), ``CipherReference`` to
  the ``cid:`` with the ``Attachment-Ciphertext-Transform``, ``KeyInfo`` pointing at the key;
- one ``xenc:EncryptedKey``: ``xmlenc11#rsa-oaep`` with ``ds:DigestMethod`` SHA-256 and
  ``xenc11:MGF`` ``mgf1sha256``, the recipient's certificate referenced as a
  ``BinarySecurityToken`` (as Domibus does), and a ``ReferenceList`` of the ``EncryptedData``.

The XML is written by hand and the crypto done with ``cryptography``: libxmlsec has no notion of
``CipherReference`` to a MIME part nor of the SwA transforms. libxmlsec itself decrypts the
``EncryptedKey`` and the AES-GCM ciphertext this module writes
(``tests/unit/test_as4_encryption.py``).

Decryption accepts exactly these algorithms (anything else is ``As4PolicyViolation``,
``EBMS:0103``), requires every attachment to be encrypted, and fails with
``As4DecryptionFailed`` (``EBMS:0102``) when the key was made for another certificate or a
ciphertext was changed (the GCM tag does not verify).
"""

from __future__ import annotations

import base64
import binascii
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from cryptography import x509
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from lxml import etree

from integrations.oots.as4.errors import As4DecryptionFailed, As4PolicyViolation
from integrations.oots.as4.mime import OCTET_STREAM, MimePart, cid_url, content_id_of
from integrations.oots.as4.soap import q
from integrations.oots.as4.wssec import (
    AES128_GCM,
    DS_NS,
    ENCRYPTED_KEY_TOKEN,
    MGF1_SHA256,
    RSA_OAEP,
    SHA256,
    SWA_CIPHERTEXT,
    SWA_CONTENT_ONLY,
    WSSE11_NS,
    WSSE_NS,
    XENC11_NS,
    XENC_NS,
    binary_security_token,
    new_id,
    resolve_token,
    security_header,
    token_reference,
)

_IV_BYTES: Final = 12
_TAG_BYTES: Final = 16
_KEY_BYTES: Final = 16
_NS: Final = {"xenc": XENC_NS, "ds": DS_NS, "xenc11": XENC11_NS, "wsse": WSSE_NS}


@dataclass(frozen=True)
class DecryptionKey:
    """The access point's private key and the certificate partners encrypt for."""

    private_key: rsa.RSAPrivateKey
    certificate: x509.Certificate


def _oaep() -> padding.OAEP:
    return padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None)


def _xenc(parent: etree._Element, local: str, **attrib: str) -> etree._Element:
    return etree.SubElement(parent, q(XENC_NS, local), attrib)


def _encrypted_data(part: MimePart, data_id: str, key_id: str) -> etree._Element:
    data = etree.Element(
        q(XENC_NS, "EncryptedData"),
        {"Id": data_id, "MimeType": part.media_type, "Type": SWA_CONTENT_ONLY},
        nsmap={"xenc": XENC_NS},
    )
    _xenc(data, "EncryptionMethod", Algorithm=AES128_GCM)
    key_info = etree.SubElement(data, q(DS_NS, "KeyInfo"), nsmap={"ds": DS_NS})
    reference = etree.SubElement(
        key_info,
        q(WSSE_NS, "SecurityTokenReference"),
        {q(WSSE11_NS, "TokenType"): ENCRYPTED_KEY_TOKEN},
        nsmap={"wsse": WSSE_NS, "wsse11": WSSE11_NS},
    )
    etree.SubElement(reference, q(WSSE_NS, "Reference"), URI=f"#{key_id}")
    cipher_reference = _xenc(_xenc(data, "CipherData"), "CipherReference")
    cipher_reference.set("URI", cid_url(part.content_id))
    transforms = _xenc(cipher_reference, "Transforms")
    etree.SubElement(transforms, q(DS_NS, "Transform"), Algorithm=SWA_CIPHERTEXT)
    return data


def encrypt_attachments(
    root: etree._Element, parts: Sequence[MimePart], recipient: x509.Certificate
) -> list[MimePart]:
    """Encrypt ``parts`` for ``recipient``; the XML goes in front of ``wsse:Security``'s
    existing content (the signature made before). The encrypted parts are returned."""
    public_key = recipient.public_key()
    if not isinstance(public_key, rsa.RSAPublicKey):
        raise ValueError("the recipient's certificate does not hold an RSA key")
    security = security_header(root, create=True)
    assert security is not None
    session_key = AESGCM.generate_key(bit_length=8 * _KEY_BYTES)
    cipher = AESGCM(session_key)
    token_id, key_id = new_id("X509"), new_id("EK")
    encrypted_key = etree.Element(
        q(XENC_NS, "EncryptedKey"), {"Id": key_id}, nsmap={"xenc": XENC_NS, "ds": DS_NS}
    )
    method = _xenc(encrypted_key, "EncryptionMethod", Algorithm=RSA_OAEP)
    etree.SubElement(method, q(DS_NS, "DigestMethod"), Algorithm=SHA256)
    etree.SubElement(
        method, q(XENC11_NS, "MGF"), {"Algorithm": MGF1_SHA256}, nsmap={"xenc11": XENC11_NS}
    )
    etree.SubElement(encrypted_key, q(DS_NS, "KeyInfo")).append(token_reference(token_id))
    value = _xenc(_xenc(encrypted_key, "CipherData"), "CipherValue")
    value.text = base64.b64encode(public_key.encrypt(session_key, _oaep())).decode("ascii")
    references = _xenc(encrypted_key, "ReferenceList")
    blocks: list[etree._Element] = [binary_security_token(recipient, token_id), encrypted_key]
    encrypted: list[MimePart] = []
    for part in parts:
        data_id = new_id("ED")
        _xenc(references, "DataReference", URI=f"#{data_id}")
        blocks.append(_encrypted_data(part, data_id, key_id))
        iv = os.urandom(_IV_BYTES)
        encrypted.append(
            MimePart(part.content_id, OCTET_STREAM, iv + cipher.encrypt(iv, part.content, None))
        )
    for index, block in enumerate(blocks):
        security.insert(index, block)
    return encrypted


# --- decrypting ----------------------------------------------------------------------------------


def _require_key_transport(encrypted_key: etree._Element) -> None:
    method = encrypted_key.find("xenc:EncryptionMethod", _NS)
    if method is None or method.get("Algorithm") != RSA_OAEP:
        algorithm = None if method is None else method.get("Algorithm")
        raise As4PolicyViolation(f"the key transport is {algorithm!r}, not xmlenc11#rsa-oaep")
    digest = method.find("ds:DigestMethod", _NS)
    mgf = method.find("xenc11:MGF", _NS)
    if digest is None or digest.get("Algorithm") != SHA256:
        raise As4PolicyViolation("the RSA-OAEP digest is not SHA-256")
    if mgf is None or mgf.get("Algorithm") != MGF1_SHA256:
        raise As4PolicyViolation("the RSA-OAEP mask generation is not MGF1-SHA256")


def _b64(text: str | None, what: str) -> bytes:
    try:
        return base64.b64decode("".join((text or "").split()), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise As4PolicyViolation(f"{what} is not base64") from exc


def _session_key(root: etree._Element, encrypted_key: etree._Element, key: DecryptionKey) -> bytes:
    _require_key_transport(encrypted_key)
    try:
        certificate = resolve_token(root, encrypted_key.find("ds:KeyInfo", _NS), (key.certificate,))
    except As4PolicyViolation as exc:
        raise As4DecryptionFailed(f"the key was encrypted for another certificate ({exc})") from exc
    if certificate != key.certificate:
        subject = certificate.subject.rfc4514_string()
        raise As4DecryptionFailed(f"the key was encrypted for {subject}, not for this access point")
    wrapped = _b64(
        encrypted_key.findtext("xenc:CipherData/xenc:CipherValue", None, _NS), "CipherValue"
    )
    try:
        session_key = key.private_key.decrypt(wrapped, _oaep())
    except ValueError as exc:
        raise As4DecryptionFailed("the encrypted key does not decrypt with this key") from exc
    if len(session_key) != _KEY_BYTES:
        raise As4DecryptionFailed(f"the content key has {len(session_key)} bytes, not 16")
    return session_key


def _decrypt_part(data: etree._Element, cipher: AESGCM, parts: dict[str, MimePart]) -> MimePart:
    if data.get("Type") != SWA_CONTENT_ONLY:
        raise As4PolicyViolation(f"EncryptedData of Type {data.get('Type')!r} is not accepted")
    method = data.find("xenc:EncryptionMethod", _NS)
    if method is None or method.get("Algorithm") != AES128_GCM:
        raise As4PolicyViolation("a payload is not encrypted with AES-128-GCM")
    reference = data.find("xenc:CipherData/xenc:CipherReference", _NS)
    transforms = [] if reference is None else reference.findall("xenc:Transforms/ds:Transform", _NS)
    if reference is None or [t.get("Algorithm") for t in transforms] != [SWA_CIPHERTEXT]:
        raise As4PolicyViolation("EncryptedData does not reference an attachment's ciphertext")
    content_id = content_id_of(reference.get("URI", ""))
    part = parts.get(content_id.lower())
    if part is None:
        raise As4PolicyViolation(f"EncryptedData names no attachment {content_id}")
    if len(part.content) < _IV_BYTES + _TAG_BYTES:
        raise As4DecryptionFailed(f"attachment {content_id} is too short to be AES-GCM data")
    iv, sealed = part.content[:_IV_BYTES], part.content[_IV_BYTES:]
    try:
        plain = cipher.decrypt(iv, sealed, None)
    except InvalidTag as exc:
        raise As4DecryptionFailed(f"attachment {content_id} was changed (GCM tag)") from exc
    return MimePart(part.content_id, data.get("MimeType") or OCTET_STREAM, plain)


def decrypt_attachments(
    root: etree._Element, parts: Sequence[MimePart], key: DecryptionKey
) -> list[MimePart]:
    """The plaintext of every attachment, in order; see the module docstring."""
    if not parts:
        return []
    security = security_header(root, create=False)
    keys = [] if security is None else security.findall("xenc:EncryptedKey", _NS)
    if len(keys) != 1:
        raise As4PolicyViolation(f"the message has {len(keys)} encrypted keys, expected one")
    cipher = AESGCM(_session_key(root, keys[0], key))
    by_id = {part.content_id.lower(): part for part in parts}
    assert security is not None
    decrypted: dict[str, MimePart] = {}
    for reference in keys[0].findall("xenc:ReferenceList/xenc:DataReference", _NS):
        uri = reference.get("URI", "")
        found = [
            d for d in security.iter(q(XENC_NS, "EncryptedData")) if "#" + d.get("Id", "") == uri
        ]
        if len(found) != 1:
            raise As4PolicyViolation(f"data reference {uri!r} names {len(found)} EncryptedData")
        part = _decrypt_part(found[0], cipher, by_id)
        if part.content_id.lower() in decrypted:
            raise As4PolicyViolation(f"attachment {part.content_id} is encrypted twice")
        decrypted[part.content_id.lower()] = part
    missing = [p.content_id for p in parts if p.content_id.lower() not in decrypted]
    if missing:
        raise As4PolicyViolation(f"attachment {missing[0]} is not encrypted")
    return [decrypted[p.content_id.lower()] for p in parts]
