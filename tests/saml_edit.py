"""Editing a minted SAML assertion in tests: change it, then let the STS sign it again.

The minting helper writes one token shape; the tests that need another one (two audience
restrictions, none, a SubjectConfirmationData NotOnOrAfter) edit the minted token and sign
it again with the STS key, so the token is refused for what it says, not for a broken
signature.
"""

from __future__ import annotations

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from lxml import etree

from serviceplatform.security import xmldsig_create
from serviceplatform.security.wire import DS_SIGNATURE


def resign(token: etree._Element, sts_key: RSAPrivateKey, sts_cert: x509.Certificate) -> None:
    """Replace the STS signature of ``token`` (edited in place) with a fresh one."""
    old = token.find(DS_SIGNATURE)
    assert old is not None
    token.remove(old)
    signature = xmldsig_create.new_signature(token, index=1)
    xmldsig_create.add_reference(signature, str(token.get("ID")), enveloped=True)
    xmldsig_create.sign(
        signature, xmldsig_create.xmlsec_key(sts_key, sts_cert), [(token, "ID", None)]
    )
