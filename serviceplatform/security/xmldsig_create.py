"""Create XML signatures with xmlsec (RSA-SHA256, exclusive c14n, SHA-256 digests).

The client side of the platform's security: the STS signature on minted assertions and the
holder-of-key signature on requests. Keys arrive as ``cryptography`` objects; their xmlsec
form is cached (a PEM round trip per message would cost more than the signature).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable
from typing import TypeAlias

import xmlsec
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from lxml import etree

#: The private keys the signer accepts: RSA, for RSA-SHA256.
PrivateKey: TypeAlias = RSAPrivateKey

_KEY_CACHE_SIZE = 32
# Keyed by id(); the entry holds the key object itself, so the id cannot be reused meanwhile.
_keys: OrderedDict[tuple[int, bytes], tuple[PrivateKey, xmlsec.Key]] = OrderedDict()
_keys_lock = threading.Lock()


def xmlsec_key(key: PrivateKey, cert: x509.Certificate | None = None) -> xmlsec.Key:
    """``key`` (with ``cert`` attached, for KeyInfo/X509Data) as an xmlsec key."""
    cert_der = cert.public_bytes(Encoding.DER) if cert is not None else b""
    cache_key = (id(key), cert_der)
    with _keys_lock:
        hit = _keys.get(cache_key)
        if hit is not None and hit[0] is key:
            _keys.move_to_end(cache_key)
            return hit[1]
    pem = key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    loaded = xmlsec.Key.from_memory(pem, xmlsec.constants.KeyDataFormatPem, None)
    if cert_der:
        loaded.load_cert_from_memory(cert_der, xmlsec.constants.KeyDataFormatCertDer)
    with _keys_lock:
        _keys[cache_key] = (key, loaded)
        while len(_keys) > _KEY_CACHE_SIZE:
            _keys.popitem(last=False)
    return loaded


def new_signature(parent: etree._Element, *, index: int | None = None) -> etree._Element:
    """An unsigned ``ds:Signature`` template inserted into ``parent`` (appended by default)."""
    signature = xmlsec.template.create(
        parent, xmlsec.constants.TransformExclC14N, xmlsec.constants.TransformRsaSha256, ns="ds"
    )
    if index is None:
        parent.append(signature)
    else:
        parent.insert(index, signature)
    return signature


def add_reference(signature: etree._Element, target_id: str, *, enveloped: bool = False) -> None:
    """Reference ``#target_id`` with SHA-256 over its exclusive c14n."""
    reference = xmlsec.template.add_reference(
        signature, xmlsec.constants.TransformSha256, uri=f"#{target_id}"
    )
    if enveloped:
        xmlsec.template.add_transform(reference, xmlsec.constants.TransformEnveloped)
    xmlsec.template.add_transform(reference, xmlsec.constants.TransformExclC14N)


def key_info(signature: etree._Element) -> etree._Element:
    """The signature's ``ds:KeyInfo`` (created if absent), to fill in."""
    return xmlsec.template.ensure_key_info(signature)


def sign(
    signature: etree._Element,
    key: xmlsec.Key,
    ids: Iterable[tuple[etree._Element, str, str | None]],
) -> None:
    """Compute digests and value of ``signature``; ``ids`` are (element, attribute, ns)."""
    context = xmlsec.SignatureContext()
    for element, attribute, namespace in ids:
        context.register_id(element, attribute, namespace)
    context.key = key
    try:
        context.sign(signature)
    except xmlsec.Error as exc:
        raise ValueError(f"xmlsec could not sign: {exc}") from exc
