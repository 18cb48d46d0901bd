"""Create XML signatures with xmlsec (RSA-SHA256, exclusive c14n, SHA-256 digests).

The client side of the platform's security: the STS signature on minted assertions and the
holder-of-key signature on requests. Keys arrive as ``cryptography`` objects; their xmlsec
form is cached (a PEM round trip per message would cost more than the signature).
"""

from __future__ import annotations

import base64
import hashlib
import threading
from collections import OrderedDict
from collections.abc import Iterable
from typing import TypeAlias

import xmlsec
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from lxml import etree

from serviceplatform.security.wire import (
    ALG_EXC_C14N,
    ALG_SHA256,
    ALG_STR_TRANSFORM,
    DS_NS,
    DS_SIGNED_INFO,
    WSSE_TRANSFORMATION_PARAMETERS,
    qn,
)
from serviceplatform.security.xmldsig_verify import canonicalize

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


def add_token_reference(
    signature: etree._Element, str_id: str, token: etree._Element, key: PrivateKey
) -> None:
    """Cover ``token`` through an STR-Transform reference to ``#str_id`` in a signed signature.

    xmlsec knows no STR-Transform (WSS 1.0 section 8.3), so the reference is added after
    :func:`sign` and ``SignatureValue`` is computed again over the extended ``SignedInfo``.
    The digest is of the token's exclusive c14n, the transform's output for a SAML token.
    """
    signed_info = signature.find(DS_SIGNED_INFO)
    value = signature.find(qn(DS_NS, "SignatureValue"))
    if signed_info is None or value is None:
        raise ValueError("the signature is not signed yet")
    reference = etree.SubElement(signed_info, qn(DS_NS, "Reference"), URI=f"#{str_id}")
    transform = etree.SubElement(
        etree.SubElement(reference, qn(DS_NS, "Transforms")),
        qn(DS_NS, "Transform"),
        Algorithm=ALG_STR_TRANSFORM,
    )
    parameters = etree.SubElement(transform, WSSE_TRANSFORMATION_PARAMETERS)
    etree.SubElement(parameters, qn(DS_NS, "CanonicalizationMethod"), Algorithm=ALG_EXC_C14N)
    etree.SubElement(reference, qn(DS_NS, "DigestMethod"), Algorithm=ALG_SHA256)
    digest = hashlib.sha256(canonicalize(token)).digest()
    etree.SubElement(reference, qn(DS_NS, "DigestValue")).text = base64.b64encode(digest).decode()
    # The template's SignedInfo c14n is exclusive without an InclusiveNamespaces list.
    signed = key.sign(canonicalize(signed_info), padding.PKCS1v15(), hashes.SHA256())
    value.text = base64.b64encode(signed).decode()
