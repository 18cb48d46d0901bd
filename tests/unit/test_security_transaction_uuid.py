"""``TransactionUUID`` reaches the security context only when the message signature covers it."""

from __future__ import annotations

import copy

import pytest
from lxml import etree

from serviceplatform.errors import MessageSignatureInvalid
from serviceplatform.security import xmldsig_create
from serviceplatform.security.wire import (
    DS_KEY_INFO,
    DS_SIGNATURE,
    RH_REQUEST_HEADER,
    RH_TRANSACTION_UUID,
    WSSE_SECURITY,
    WSU_ID,
    WSU_NS,
)
from tests.unit.test_security_roundtrip import Pki, check
from tests.unit.test_security_roundtrip import pki as pki

DS_REFERENCE = "{http://www.w3.org/2000/09/xmldsig#}Reference"


def signed_with_request_header(pki: Pki, target: str, transaction_uuid: str) -> etree._Element:
    """A request whose signature also covers ``target`` (RequestHeader or TransactionUUID):
    the signer's own references plus one, re-signed with the holder's key."""
    envelope = etree.fromstring(pki.message(transaction_uuid=transaction_uuid))
    security = next(envelope.iter(WSSE_SECURITY))
    old = security.find(DS_SIGNATURE)
    assert old is not None
    uris = [str(reference.get("URI"))[1:] for reference in old.iter(DS_REFERENCE)]
    key_reference = copy.deepcopy(old.find(DS_KEY_INFO)[0])  # type: ignore[index]
    security.remove(old)
    element = next(
        envelope.iter(RH_REQUEST_HEADER if target == "RequestHeader" else RH_TRANSACTION_UUID)
    )
    element.set(WSU_ID, "rh-1")
    signature = xmldsig_create.new_signature(security)
    for uri in [*uris, "rh-1"]:
        xmldsig_create.add_reference(signature, uri)
    xmldsig_create.key_info(signature).append(key_reference)
    ids = [(e, "Id", WSU_NS) for e in envelope.iter() if e.get(WSU_ID) is not None]
    xmldsig_create.sign(signature, xmldsig_create.xmlsec_key(pki.holder[0]), ids)
    return envelope


@pytest.mark.parametrize("target", ["RequestHeader", "TransactionUUID"])
def test_a_signed_transaction_uuid_is_used(pki: Pki, target: str) -> None:
    envelope = signed_with_request_header(pki, target, "tx-signed")
    assert check(pki, envelope).transaction_uuid == "tx-signed"


def test_an_unsigned_transaction_uuid_is_ignored_as_if_absent(pki: Pki) -> None:
    envelope = etree.fromstring(pki.message(transaction_uuid="tx-sent"))
    # Changed on the way: the signature still holds, since it never covered the value.
    next(envelope.iter(RH_TRANSACTION_UUID)).text = "tx-forged"
    assert check(pki, envelope).transaction_uuid is None


def test_a_signed_transaction_uuid_changed_after_signing_is_refused(pki: Pki) -> None:
    envelope = signed_with_request_header(pki, "RequestHeader", "tx-signed")
    next(envelope.iter(RH_TRANSACTION_UUID)).text = "tx-forged"
    with pytest.raises(MessageSignatureInvalid):
        check(pki, envelope)
