"""AS4 payload encryption (integrations/oots/as4/encryption.py), and libxmlsec as its peer."""

from __future__ import annotations

import base64
import copy

import pytest
import xmlsec
from lxml import etree

from integrations.oots.as4.encryption import (
    DecryptionKey,
    decrypt_attachments,
    encrypt_attachments,
)
from integrations.oots.as4.errors import As4DecryptionFailed, As4PolicyViolation
from integrations.oots.as4.mime import MimePart
from integrations.oots.as4.soap import serialize
from integrations.oots.as4.wssec import (
    AES128_GCM,
    DS_NS,
    MGF1_SHA256,
    RSA_OAEP,
    SHA256,
    SWA_CIPHERTEXT,
    SWA_CONTENT_ONLY,
    XENC11_NS,
    XENC_NS,
)
from tests.as4_material import key_pem, party, user_envelope

NS = {"xenc": XENC_NS, "ds": DS_NS, "xenc11": XENC11_NS}
PARTS = [
    MimePart("p1@oots.eu", "application/gzip", b"\x1f\x8b compressed request" * 50),
    MimePart("p2@oots.eu", "application/pdf", b"%PDF-1.7 evidence"),
]


def _key(name: str) -> DecryptionKey:
    return DecryptionKey(party(name).key, party(name).cert)


def _encrypted() -> tuple[etree._Element, list[MimePart]]:
    root = user_envelope()
    parts = encrypt_attachments(root, PARTS, party("AP_DE_01").cert)
    return etree.fromstring(serialize(root)), parts


def test_round_trip_and_wire_format() -> None:
    root, parts = _encrypted()
    assert [p.content_id for p in parts] == ["p1@oots.eu", "p2@oots.eu"]
    assert {p.content_type for p in parts} == {"application/octet-stream"}
    assert all(PARTS[0].content[:20] not in p.content for p in parts)
    assert [len(p.content) for p in parts] == [len(p.content) + 28 for p in PARTS]
    encrypted_key = root.find(".//xenc:EncryptedKey", NS)
    assert encrypted_key is not None
    method = encrypted_key.find("xenc:EncryptionMethod", NS)
    assert method is not None and method.get("Algorithm") == RSA_OAEP
    assert method.find("ds:DigestMethod", NS).get("Algorithm") == SHA256  # type: ignore[union-attr]
    assert method.find("xenc11:MGF", NS).get("Algorithm") == MGF1_SHA256  # type: ignore[union-attr]
    datas = root.findall(".//xenc:EncryptedData", NS)
    assert [d.get("MimeType") for d in datas] == ["application/gzip", "application/pdf"]
    assert {d.get("Type") for d in datas} == {SWA_CONTENT_ONLY}
    assert {d.find("xenc:EncryptionMethod", NS).get("Algorithm") for d in datas} == {AES128_GCM}  # type: ignore[union-attr]
    refs = [d.find("xenc:CipherData/xenc:CipherReference", NS) for d in datas]
    assert [r.get("URI") for r in refs] == ["cid:p1@oots.eu", "cid:p2@oots.eu"]  # type: ignore[union-attr]
    assert {r.find("xenc:Transforms/ds:Transform", NS).get("Algorithm") for r in refs} == {  # type: ignore[union-attr]
        SWA_CIPHERTEXT
    }
    assert decrypt_attachments(root, parts, _key("AP_DE_01")) == PARTS


def test_libxmlsec_decrypts_the_key_and_the_payload() -> None:
    """libxmlsec (python-xmlsec) as an independent XML Encryption 1.1 implementation: it unwraps
    the EncryptedKey (RSA-OAEP, SHA-256, MGF1-SHA256) and decrypts a payload (AES-128-GCM)."""
    root, parts = _encrypted()
    encrypted_key = copy.deepcopy(root.find(".//xenc:EncryptedKey", NS))
    assert encrypted_key is not None
    # libxmlsec cannot follow the WS-Security token reference: it is given the key directly.
    encrypted_key.remove(encrypted_key.find("ds:KeyInfo", NS))  # type: ignore[arg-type]
    manager = xmlsec.KeysManager()
    manager.add_key(xmlsec.Key.from_memory(key_pem("AP_DE_01"), xmlsec.constants.KeyDataFormatPem))
    context = xmlsec.EncryptionContext(manager)
    session_key = context.decrypt(encrypted_key)
    assert isinstance(session_key, bytes) and len(session_key) == 16

    data = etree.Element(f"{{{XENC_NS}}}EncryptedData", nsmap={"xenc": XENC_NS})
    etree.SubElement(data, f"{{{XENC_NS}}}EncryptionMethod", Algorithm=AES128_GCM)
    cipher_data = etree.SubElement(data, f"{{{XENC_NS}}}CipherData")
    value = etree.SubElement(cipher_data, f"{{{XENC_NS}}}CipherValue")
    value.text = base64.b64encode(parts[1].content).decode()
    context = xmlsec.EncryptionContext()
    context.key = xmlsec.Key.from_binary_data(xmlsec.constants.KeyDataAes, session_key)
    assert context.decrypt(data) == PARTS[1].content


def test_a_tampered_payload_fails() -> None:
    root, parts = _encrypted()
    forged = bytearray(parts[1].content)
    forged[-20] ^= 1
    parts[1] = MimePart(parts[1].content_id, parts[1].content_type, bytes(forged))
    with pytest.raises(As4DecryptionFailed, match="was changed") as raised:
        decrypt_attachments(root, parts, _key("AP_DE_01"))
    assert raised.value.ebms_code == "EBMS:0102" and raised.value.code == "SP-784"


def test_encrypted_for_another_certificate_fails() -> None:
    root, parts = _encrypted()
    with pytest.raises(As4DecryptionFailed, match="encrypted for CN=AP_DE_01"):
        decrypt_attachments(root, parts, _key("AP_DK_01"))


def test_the_right_certificate_with_another_key_fails() -> None:
    root, parts = _encrypted()
    wrong = DecryptionKey(party("AP_DK_01").key, party("AP_DE_01").cert)
    with pytest.raises(As4DecryptionFailed, match="does not decrypt"):
        decrypt_attachments(root, parts, wrong)


def test_an_unencrypted_attachment_is_refused() -> None:
    root, parts = _encrypted()
    extra = MimePart("p3@oots.eu", "application/pdf", b"plain")
    with pytest.raises(As4PolicyViolation, match=r"p3@oots\.eu is not encrypted"):
        decrypt_attachments(root, [*parts, extra], _key("AP_DE_01"))
    with pytest.raises(As4PolicyViolation, match="0 encrypted keys"):
        decrypt_attachments(user_envelope(), [extra], _key("AP_DE_01"))


def test_other_key_transport_algorithms_are_refused() -> None:
    root, parts = _encrypted()
    mgf = root.find(".//xenc11:MGF", NS)
    assert mgf is not None
    mgf.set("Algorithm", "http://www.w3.org/2009/xmlenc11#mgf1sha1")
    with pytest.raises(As4PolicyViolation, match="MGF1-SHA256"):
        decrypt_attachments(root, parts, _key("AP_DE_01"))
