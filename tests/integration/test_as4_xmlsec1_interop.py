"""The AS4 signature against an independent implementation: Debian's ``xmlsec1`` command.

``xmlsec1`` (libxmlsec1 over OpenSSL) verifies what ``integrations.oots.as4.signature`` signs,
and signs a template that the platform then verifies. ``xmlsec1`` resolves ``#id`` references
through ``--id-attr`` and cannot apply the SwA attachment transform, so these envelopes carry
the references it understands: ``eb:Messaging`` and the Body (exactly what a receipt signs);
the attachment references are covered by the unit tests and the ``as4`` peer tests.
``tests/servers.sh`` installs ``xmlsec1`` (package ``xmlsec1``).
"""

from __future__ import annotations

import base64
import subprocess
from pathlib import Path
from typing import Final

import pytest
from lxml import etree

from integrations.oots.as4.errors import As4SignatureInvalid
from integrations.oots.as4.model import EBMS_NS
from integrations.oots.as4.signature import sign_envelope, verify_envelope
from integrations.oots.as4.soap import SOAP12_NS, serialize
from integrations.oots.as4.wssec import (
    DS_NS,
    EXC_C14N,
    RSA_SHA256,
    SHA256,
    WSU_ID,
    binary_security_token,
    security_header,
    token_reference,
)
from tests.as4_material import key_pem, party, signing_key, user_envelope

XMLSEC1: Final = "/usr/bin/xmlsec1"
#: ``--id-attr``: xmlsec1 registers the (wsu:)Id attributes of these elements as XML IDs.
ID_ATTRS: Final = [
    "--id-attr:Id",
    f"{EBMS_NS}:Messaging",
    "--id-attr:Id",
    f"{SOAP12_NS}:Body",
]


def _xmlsec1(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([XMLSEC1, *args], capture_output=True, text=True, check=False)


def _write(tmp_path: Path, name: str, data: bytes) -> str:
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


def test_xmlsec1_verifies_a_platform_signature(tmp_path: Path) -> None:
    root = user_envelope()
    sign_envelope(root, {}, signing_key("AP_DK_01"))
    cert = _write(tmp_path, "cert.pem", party("AP_DK_01").pem)
    signed = _write(tmp_path, "signed.xml", serialize(root))
    done = _xmlsec1("--verify", "--pubkey-cert-pem", cert, *ID_ATTRS, signed)
    assert done.returncode == 0, done.stderr
    assert "SignedInfo References (ok/all): 2/2" in done.stdout + done.stderr

    # The same bytes with one header value changed: xmlsec1 refuses them.
    forged = _write(
        tmp_path,
        "forged.xml",
        serialize(root).replace(b"ExecuteQueryRequest", b"ExecuteQueryResponse"),
    )
    refused = _xmlsec1("--verify", "--pubkey-cert-pem", cert, *ID_ATTRS, forged)
    assert refused.returncode != 0
    # ... and so does the signature checked against another partner's certificate.
    other = _write(tmp_path, "other.pem", party("AP_DE_01").pem)
    assert _xmlsec1("--verify", "--pubkey-cert-pem", other, *ID_ATTRS, signed).returncode != 0


def _template() -> etree._Element:
    """An envelope with the AS4 signature template xmlsec1 fills in (the KeyInfo keeps the
    WS-Security token reference, which xmlsec1 leaves alone)."""
    root = user_envelope()
    header = root.find(f"{{{SOAP12_NS}}}Header")
    body = root.find(f"{{{SOAP12_NS}}}Body")
    assert header is not None and body is not None
    messaging = header.find(f"{{{EBMS_NS}}}Messaging")
    assert messaging is not None
    messaging.set(WSU_ID, "Messaging-x1")
    body.set(WSU_ID, "Body-x1")
    security = security_header(root, create=True)
    assert security is not None
    security.append(binary_security_token(party("AP_DE_01").cert, "X509-x1"))
    ds = f"{{{DS_NS}}}"
    signature = etree.SubElement(security, ds + "Signature", nsmap={"ds": DS_NS})
    signed_info = etree.SubElement(signature, ds + "SignedInfo")
    etree.SubElement(signed_info, ds + "CanonicalizationMethod", Algorithm=EXC_C14N)
    etree.SubElement(signed_info, ds + "SignatureMethod", Algorithm=RSA_SHA256)
    for uri in ("#Messaging-x1", "#Body-x1"):
        reference = etree.SubElement(signed_info, ds + "Reference", URI=uri)
        transforms = etree.SubElement(reference, ds + "Transforms")
        etree.SubElement(transforms, ds + "Transform", Algorithm=EXC_C14N)
        etree.SubElement(reference, ds + "DigestMethod", Algorithm=SHA256)
        etree.SubElement(reference, ds + "DigestValue")
    etree.SubElement(signature, ds + "SignatureValue")
    key_info = etree.SubElement(signature, ds + "KeyInfo")
    key_info.append(token_reference("X509-x1"))
    return root


def test_the_platform_verifies_an_xmlsec1_signature(tmp_path: Path) -> None:
    template = _write(tmp_path, "template.xml", serialize(_template()))
    key = _write(tmp_path, "key.pem", key_pem("AP_DE_01"))
    out = tmp_path / "signed.xml"
    done = _xmlsec1("--sign", "--privkey-pem", key, *ID_ATTRS, "--output", str(out), template)
    assert done.returncode == 0, done.stderr
    signed = etree.fromstring(out.read_bytes())
    value = signed.findtext(f".//{{{DS_NS}}}SignatureValue")
    assert value and len(base64.b64decode(value)) == 256

    verified = verify_envelope(signed, {}, (party("AP_DE_01").cert,))
    assert verified.certificate == party("AP_DE_01").cert
    assert [r.uri for r in verified.references] == ["#Messaging-x1", "#Body-x1"]
    # Not the configured partner's certificate: refused.
    with pytest.raises(As4SignatureInvalid):
        verify_envelope(signed, {}, (party("AP_DK_01").cert,))
