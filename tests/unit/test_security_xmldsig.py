"""The signature verifier checked against xmlsec-made signatures, and its refusals."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
import xmlsec
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey, RSAPublicKey
from lxml import etree

from serviceplatform.security import xmldsig_create
from serviceplatform.security.wire import DS_SIGNATURE, format_instant, parse_instant
from serviceplatform.security.xmldsig_verify import (
    SignatureFormatError,
    digest_matches,
    parse_signature,
    signature_value_valid,
)
from tests.unit.test_security_roundtrip import make_identity

DS = "http://www.w3.org/2000/09/xmldsig#"


@pytest.fixture(scope="module")
def key() -> RSAPrivateKey:
    return make_identity("signer")[0]


def _document() -> etree._Element:
    # Pretty-printed on purpose: the text after the enveloped signature must stay digested.
    return etree.fromstring(
        b'<r:Root xmlns:r="urn:root" xmlns:unused="urn:unused" ID="root">\n'
        b'  <r:Item Id="item" xmlns:q="urn:q" q:kind="a">one</r:Item>\n'
        b"  <!-- comments are not signed -->\n"
        b"  <r:Other>two</r:Other>\n"
        b"</r:Root>"
    )


def _sign(
    root: etree._Element,
    key: RSAPrivateKey,
    target: etree._Element,
    *,
    enveloped: bool,
    prefixes: str | None = None,
) -> etree._Element:
    signature = xmldsig_create.new_signature(root, index=1)
    signature.tail = "\n  "
    reference = xmlsec.template.add_reference(
        signature, xmlsec.constants.TransformSha256, uri=f"#{target.get('ID') or target.get('Id')}"
    )
    if enveloped:
        xmlsec.template.add_transform(reference, xmlsec.constants.TransformEnveloped)
    transform = xmlsec.template.add_transform(reference, xmlsec.constants.TransformExclC14N)
    if prefixes:
        xmlsec.template.transform_add_c14n_inclusive_namespaces(transform, prefixes)
    attribute = "ID" if target.get("ID") else "Id"
    xmldsig_create.sign(signature, xmldsig_create.xmlsec_key(key), [(target, attribute, None)])
    return signature


def _public(key: RSAPrivateKey) -> RSAPublicKey:
    return key.public_key()


def test_enveloped_signature_by_xmlsec_verifies(key: RSAPrivateKey) -> None:
    root = _document()
    signature = _sign(root, key, root, enveloped=True)
    parsed = parse_signature(signature, allow_enveloped=True)

    assert parsed.references[0].target_id == "root"
    assert digest_matches(parsed.references[0], root, signature)
    assert signature_value_valid(parsed, _public(key))
    assert root.find(DS_SIGNATURE) is signature  # the request's tree is left as it was

    root[-1].text = "changed"
    assert not digest_matches(parsed.references[0], root, signature)


def test_inclusive_namespace_prefixes_are_honoured(key: RSAPrivateKey) -> None:
    root = _document()
    item = root[0]
    signature = _sign(root, key, item, enveloped=False, prefixes="unused")
    parsed = parse_signature(signature, allow_enveloped=False)

    assert parsed.references[0].inclusive_prefixes == ("unused",)
    assert digest_matches(parsed.references[0], item, signature)
    assert signature_value_valid(parsed, _public(key))


def test_value_made_by_another_key_is_not_valid(key: RSAPrivateKey) -> None:
    root = _document()
    signature = _sign(root, key, root, enveloped=True)
    parsed = parse_signature(signature, allow_enveloped=True)
    assert not signature_value_valid(parsed, make_identity("someone else")[0].public_key())


def test_enveloped_transform_is_refused_where_not_allowed(key: RSAPrivateKey) -> None:
    root = _document()
    signature = _sign(root, key, root, enveloped=True)
    with pytest.raises(SignatureFormatError):
        parse_signature(signature, allow_enveloped=False)


@pytest.mark.parametrize(
    ("path", "attribute", "value"),
    [
        (
            "ds:SignedInfo/ds:CanonicalizationMethod",
            "Algorithm",
            "http://www.w3.org/TR/2001/REC-xml-c14n-20010315",
        ),
        ("ds:SignedInfo/ds:Reference", "URI", ""),
        ("ds:SignedInfo/ds:Reference", "URI", "#xpointer(/)"),
        (
            "ds:SignedInfo/ds:Reference/ds:Transforms/ds:Transform[2]",
            "Algorithm",
            "http://www.w3.org/TR/1999/REC-xpath-19991116",
        ),
    ],
)
def test_other_shapes_are_refused(
    key: RSAPrivateKey, path: str, attribute: str, value: str
) -> None:
    root = _document()
    signature = _sign(root, key, root, enveloped=True)
    found = signature.xpath(path, namespaces={"ds": DS})
    assert isinstance(found, list) and isinstance(found[0], etree._Element)
    found[0].set(attribute, value)
    with pytest.raises(SignatureFormatError):
        parse_signature(signature, allow_enveloped=True)


def test_garbage_signature_value_is_refused(key: RSAPrivateKey) -> None:
    root = _document()
    signature = _sign(root, key, root, enveloped=True)
    value = signature.find(f"{{{DS}}}SignatureValue")
    assert value is not None
    value.text = "not base64!"
    with pytest.raises(SignatureFormatError):
        parse_signature(signature, allow_enveloped=True)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-22T09:00:00Z", datetime(2026, 11, 22, 9, 0, tzinfo=UTC)),
        ("2026-11-22T10:00:00.123+01:00", datetime(2026, 11, 22, 9, 0, 0, 123000, tzinfo=UTC)),
        (" 2026-11-22T09:00:00Z\n", datetime(2026, 11, 22, 9, 0, tzinfo=UTC)),
        ("2026-11-22T09:00:00", None),
        ("yesterday", None),
        ("", None),
        (None, None),
    ],
)
def test_parse_instant(text: str | None, expected: datetime | None) -> None:
    assert parse_instant(text) == expected


def test_format_instant_is_utc_with_z() -> None:
    local = datetime(2026, 11, 22, 10, 0, 30, 999, tzinfo=timezone(timedelta(hours=1)))
    assert format_instant(local) == "2026-11-22T09:00:30Z"
    with pytest.raises(ValueError):
        format_instant(datetime(2026, 11, 22, 9, 0))
