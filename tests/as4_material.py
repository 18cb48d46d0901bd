"""Keys, certificates and envelopes of the native AS4 access point tests (unit and integration)."""

from __future__ import annotations

from functools import cache

from cryptography.hazmat.primitives import serialization
from lxml import etree

from integrations.oots.as4.ebms import build_messaging
from integrations.oots.as4.signature import SigningKey
from integrations.oots.as4.soap import new_envelope
from tests.certificates import MadeCert, make_cert
from tests.oots_domibus_material import outgoing


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
