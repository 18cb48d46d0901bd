"""The verifier's edges of the accepted signature shape, and the signer's key cache and ids.

Signatures here are written by hand (lxml) when the shape is the point, and made by xmlsec
when the verifier must agree with an independent signer.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator

import pytest
import xmlsec
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from lxml import etree

from serviceplatform.security import xmldsig_create
from serviceplatform.security.wire import (
    ALG_EXC_C14N,
    ALG_RSA_SHA256,
    ALG_SHA256,
    ALG_STR_TRANSFORM,
    DS_NS,
    EXC_C14N_NS,
    WSSE_TRANSFORMATION_PARAMETERS,
)
from serviceplatform.security.xmldsig_verify import (
    MAX_REFERENCES,
    SignatureFormatError,
    digest_matches,
    parse_signature,
    signature_value_valid,
)
from tests.unit.test_security_roundtrip import make_identity

DS = f"{{{DS_NS}}}"
WSU = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
DIGEST = base64.b64encode(b"\x01" * 32).decode()


@pytest.fixture(scope="module")
def key() -> RSAPrivateKey:
    return make_identity("shapes")[0]


def _reference(
    uri: str = "#item",
    *,
    transforms: tuple[str, ...] = (ALG_EXC_C14N,),
    digest: str = DIGEST,
    tags: tuple[str, str, str] = ("Transforms", "DigestMethod", "DigestValue"),
) -> etree._Element:
    reference = etree.Element(DS + "Reference", URI=uri)
    holder = etree.SubElement(reference, DS + tags[0])
    for algorithm in transforms:
        etree.SubElement(holder, DS + "Transform", Algorithm=algorithm)
    etree.SubElement(reference, DS + tags[1], Algorithm=ALG_SHA256)
    etree.SubElement(reference, DS + tags[2]).text = digest
    return reference


def _signature(
    references: list[etree._Element] | None = None,
    *,
    value: str | None = "AAAA",
    signed_info_tag: str = "SignedInfo",
    c14n_tag: str = "CanonicalizationMethod",
    method_tag: str = "SignatureMethod",
) -> etree._Element:
    signature = etree.Element(DS + "Signature", nsmap={"ds": DS_NS})
    info = etree.SubElement(signature, DS + signed_info_tag)
    etree.SubElement(info, DS + c14n_tag, Algorithm=ALG_EXC_C14N)
    etree.SubElement(info, DS + method_tag, Algorithm=ALG_RSA_SHA256)
    for reference in [_reference()] if references is None else references:
        info.append(reference)
    etree.SubElement(signature, DS + "SignatureValue").text = value
    return signature


def test_the_hand_written_shape_is_accepted() -> None:
    signature = _signature()
    parsed = parse_signature(signature, allow_enveloped=False)
    assert parsed.element is signature
    assert parsed.value == base64.b64decode("AAAA")
    assert parsed.references[0].target_id == "item"


# --- the Signature and its SignedInfo --------------------------------------------------


def test_signed_info_must_be_named_so() -> None:
    with pytest.raises(SignatureFormatError, match="does not start with ds:SignedInfo"):
        parse_signature(_signature(signed_info_tag="Other"), allow_enveloped=False)


@pytest.mark.parametrize(
    ("c14n_tag", "method_tag"),
    [("Other", "SignatureMethod"), ("CanonicalizationMethod", "Other")],
)
def test_signed_info_children_must_be_named_so(c14n_tag: str, method_tag: str) -> None:
    # The misnamed element carries the accepted algorithm: only its name is wrong.
    signature = _signature(c14n_tag=c14n_tag, method_tag=method_tag)
    with pytest.raises(SignatureFormatError, match="CanonicalizationMethod, SignatureMethod"):
        parse_signature(signature, allow_enveloped=False)


def test_up_to_max_references_are_accepted_and_one_more_is_refused() -> None:
    most = _signature([_reference(f"#r{i}") for i in range(MAX_REFERENCES)])
    assert len(parse_signature(most, allow_enveloped=False).references) == MAX_REFERENCES
    too_many = _signature([_reference(f"#r{i}") for i in range(MAX_REFERENCES + 1)])
    with pytest.raises(SignatureFormatError, match="too many references"):
        parse_signature(too_many, allow_enveloped=False)


def test_comments_between_elements_are_skipped() -> None:
    signature = _signature()
    signature.insert(1, etree.Comment(" between "))
    signature[0].insert(0, etree.Comment(" in SignedInfo "))
    signature[0][-1].insert(0, etree.Comment(" in Reference "))
    parsed = parse_signature(signature, allow_enveloped=False)
    assert parsed.references[0].digest == b"\x01" * 32


def test_signature_value_must_be_strict_base64_and_may_be_empty() -> None:
    with pytest.raises(SignatureFormatError, match="SignatureValue is not base64"):
        parse_signature(_signature(value="AA!AA"), allow_enveloped=False)
    assert parse_signature(_signature(value=None), allow_enveloped=False).value == b""


def test_str_transform_is_refused_unless_allowed() -> None:
    reference = _reference("#str", transforms=(ALG_STR_TRANSFORM,))
    parameters = etree.SubElement(reference[0][0], WSSE_TRANSFORMATION_PARAMETERS)
    etree.SubElement(parameters, DS + "CanonicalizationMethod", Algorithm=ALG_EXC_C14N)
    with pytest.raises(SignatureFormatError, match="STR-Transform"):
        parse_signature(_signature([reference]), allow_enveloped=False)
    parsed = parse_signature(
        _signature([reference]), allow_enveloped=False, allow_str_transform=True
    )
    assert parsed.references[0].token_reference


def test_str_transform_needs_one_c14n_method_named_in_the_fault() -> None:
    reference = _reference("#str", transforms=(ALG_STR_TRANSFORM,))
    parameters = etree.SubElement(reference[0][0], WSSE_TRANSFORMATION_PARAMETERS)
    for _ in range(2):
        etree.SubElement(parameters, DS + "CanonicalizationMethod", Algorithm=ALG_EXC_C14N)
    with pytest.raises(SignatureFormatError, match="STR-Transform of #str must name one"):
        parse_signature(_signature([reference]), allow_enveloped=False, allow_str_transform=True)
    bare = _reference("#str", transforms=(ALG_STR_TRANSFORM,))
    with pytest.raises(SignatureFormatError, match="STR-Transform of #str needs"):
        parse_signature(_signature([bare]), allow_enveloped=False, allow_str_transform=True)


# --- references --------------------------------------------------------------------------


@pytest.mark.parametrize("uri", ["item", "#a#b", "#", "#xpointer(id('a'))", None])
def test_only_a_bare_same_document_id_is_accepted(uri: str | None) -> None:
    reference = _reference()
    if uri is None:
        del reference.attrib["URI"]
    else:
        reference.set("URI", uri)
    with pytest.raises(SignatureFormatError, match="is not a same-document id"):
        parse_signature(_signature([reference]), allow_enveloped=False)


def test_reference_children_must_be_named_so() -> None:
    # The right count and algorithms, but DigestMethod misnamed.
    reference = _reference(tags=("Transforms", "Other", "DigestValue"))
    with pytest.raises(SignatureFormatError, match="not Transforms, DigestMethod, DigestValue"):
        parse_signature(_signature([reference]), allow_enveloped=False)


def test_digest_value_must_be_strict_base64_named_in_the_fault() -> None:
    reference = _reference(digest=DIGEST[:8] + "!" + DIGEST[8:])
    with pytest.raises(SignatureFormatError, match="DigestValue is not base64"):
        parse_signature(_signature([reference]), allow_enveloped=False)


def test_line_wrapped_base64_values_are_read_as_the_unwrapped_ones() -> None:
    # Signers may wrap base64 (xmlsec does at 64 columns): not the strict fast path, the same bytes.
    value = base64.b64encode(b"\x02" * 256).decode()
    wrapped = "\n".join(value[i : i + 64] for i in range(0, len(value), 64))
    reference = _reference(digest=f"\n  {DIGEST[:20]}\n  {DIGEST[20:]}\n")
    parsed = parse_signature(_signature([reference], value=wrapped), allow_enveloped=False)
    assert parsed.references[0].digest == b"\x01" * 32
    assert parsed.value == b"\x02" * 256


@pytest.mark.parametrize(
    "digest",
    [
        DIGEST[:43] + "=AAAA",  # data after the padding
        DIGEST[:43],  # cut short, padding missing
        DIGEST.replace("A", "-", 1),  # the URL-safe alphabet
    ],
)
def test_digest_value_that_is_not_plain_base64_is_refused(digest: str) -> None:
    reference = _reference(digest=digest)
    with pytest.raises(SignatureFormatError, match="DigestValue is not base64"):
        parse_signature(_signature([reference]), allow_enveloped=False)


def test_a_digest_of_the_wrong_length_is_refused() -> None:
    reference = _reference(digest=base64.b64encode(b"\x01" * 20).decode())
    with pytest.raises(SignatureFormatError, match="digest of the wrong length"):
        parse_signature(_signature([reference]), allow_enveloped=False)


def test_processing_instructions_between_elements_are_skipped() -> None:
    signature = _signature()
    reference = signature[0][-1]
    reference.insert(1, etree.ProcessingInstruction("pi", "in Reference"))
    reference[0].insert(0, etree.ProcessingInstruction("pi", "in Transforms"))
    reference[0][-1].append(etree.Comment(" in the c14n Transform "))
    parsed = parse_signature(signature, allow_enveloped=False)
    assert parsed.references[0].digest == b"\x01" * 32
    assert parsed.references[0].inclusive_prefixes is None


def test_an_element_beside_a_comment_in_a_reference_is_still_refused() -> None:
    # The comment is skipped; the extra element is not.
    reference = _reference()
    reference.insert(1, etree.Comment(" skipped "))
    etree.SubElement(reference, DS + "Object")
    with pytest.raises(SignatureFormatError, match="not Transforms, DigestMethod, DigestValue"):
        parse_signature(_signature([reference]), allow_enveloped=False)


def test_inclusive_namespaces_without_prefix_list_is_an_empty_list() -> None:
    reference = _reference()
    etree.SubElement(reference[0][0], f"{{{EXC_C14N_NS}}}InclusiveNamespaces")
    parsed = parse_signature(_signature([reference]), allow_enveloped=False)
    assert parsed.references[0].inclusive_prefixes == ()


def test_two_inclusive_namespaces_are_refused() -> None:
    reference = _reference()
    for prefixes in ("a", "b"):
        etree.SubElement(
            reference[0][0], f"{{{EXC_C14N_NS}}}InclusiveNamespaces", PrefixList=prefixes
        )
    with pytest.raises(SignatureFormatError, match="unexpected content"):
        parse_signature(_signature([reference]), allow_enveloped=False)


def test_a_target_c14n_cannot_canonicalize_does_not_match() -> None:
    # A relative namespace URI has no canonical form (libxml2's c14n refuses it): no match,
    # and no error escapes.
    target = etree.fromstring(b'<r xmlns:p="relative" Id="item"><p:b/></r>')
    signature = _signature()
    parsed = parse_signature(signature, allow_enveloped=False)
    assert not digest_matches(parsed.references[0], target, signature)


# --- the enveloped transform against xmlsec, the signature at every place ----------------


@pytest.mark.parametrize(
    "document",
    [
        b'<r ID="root"><s/><a>one</a></r>',  # first child, no text before it
        b'<r ID="root">lead<s/><a>one</a></r>',  # first child after text
        b'<r ID="root"><a>one</a><s/><b/></r>',  # after an element without a tail
        b'<r ID="root"><a>one</a>mid<s/><b/></r>',  # after an element with a tail
    ],
)
def test_enveloped_signature_anywhere_keeps_the_text_after_it(
    key: RSAPrivateKey, document: bytes
) -> None:
    root = etree.fromstring(document)
    placeholder = root.find("s")
    assert placeholder is not None
    index = root.index(placeholder)
    root.remove(placeholder)
    signature = xmldsig_create.new_signature(root, index=index)
    signature.tail = " after "
    xmldsig_create.add_reference(signature, "root", enveloped=True)
    xmldsig_create.sign(signature, xmldsig_create.xmlsec_key(key), [(root, "ID", None)])

    parsed = parse_signature(signature, allow_enveloped=True)
    assert parsed.references[0].enveloped
    assert digest_matches(parsed.references[0], root, signature)
    assert signature_value_valid(parsed, key.public_key())


def test_enveloped_signature_must_be_a_child_of_its_target(key: RSAPrivateKey) -> None:
    root = etree.fromstring(b'<r ID="root"><a Id="a">one</a></r>')
    signature = xmldsig_create.new_signature(root)
    xmldsig_create.add_reference(signature, "root", enveloped=True)
    xmldsig_create.sign(signature, xmldsig_create.xmlsec_key(key), [(root, "ID", None)])
    parsed = parse_signature(signature, allow_enveloped=True)
    with pytest.raises(SignatureFormatError, match="must be a child"):
        digest_matches(parsed.references[0], root[0], signature)


# --- SignedInfo c14n with an InclusiveNamespaces list, signed by xmlsec -----------------


def test_signed_info_inclusive_prefixes_are_used_for_the_value(key: RSAPrivateKey) -> None:
    root = etree.fromstring(b'<r xmlns:extra="urn:extra"><a Id="a">one</a></r>')
    signature = xmldsig_create.new_signature(root)
    c14n = signature[0][0]
    assert c14n.tag == DS + "CanonicalizationMethod"
    xmlsec.template.transform_add_c14n_inclusive_namespaces(c14n, "extra")
    xmldsig_create.add_reference(signature, "a")
    xmldsig_create.sign(signature, xmldsig_create.xmlsec_key(key), [(root[0], "Id", None)])

    parsed = parse_signature(signature, allow_enveloped=False)
    assert parsed.c14n_prefixes == ("extra",)
    assert signature_value_valid(parsed, key.public_key())


# --- the signer ----------------------------------------------------------------------------


def test_new_signature_uses_the_ds_prefix() -> None:
    # The captured KOMBIT messages write the signature as ds:; so does the platform.
    root = etree.Element("r")
    signature = xmldsig_create.new_signature(root)
    assert signature.prefix == "ds"
    assert {element.prefix for element in signature.iter()} == {"ds"}


def test_sign_resolves_the_id_in_the_namespace_it_is_given(key: RSAPrivateKey) -> None:
    # An element with both an unqualified Id and a wsu:Id: the reference names the wsu:Id.
    root = etree.fromstring(
        f'<r xmlns:wsu="{WSU}"><a Id="plain" wsu:Id="qualified">one</a></r>'.encode()
    )
    signature = xmldsig_create.new_signature(root)
    xmldsig_create.add_reference(signature, "qualified")
    xmldsig_create.sign(signature, xmldsig_create.xmlsec_key(key), [(root[0], "Id", WSU)])
    parsed = parse_signature(signature, allow_enveloped=False)
    assert digest_matches(parsed.references[0], root[0], signature)
    assert signature_value_valid(parsed, key.public_key())


def test_token_reference_needs_a_signature_value(key: RSAPrivateKey) -> None:
    root = etree.Element("r")
    signature = xmldsig_create.new_signature(root)
    value = signature.find(DS + "SignatureValue")
    assert value is not None
    signature.remove(value)
    with pytest.raises(ValueError, match="not signed yet"):
        xmldsig_create.add_token_reference(signature, "str", etree.Element("t"), key)


def test_token_reference_digests_the_token(key: RSAPrivateKey) -> None:
    root = etree.fromstring(b'<r><a Id="a">one</a></r>')
    token = etree.fromstring(b'<t xmlns="urn:t" ID="tok"><v>1</v></t>')
    signature = xmldsig_create.new_signature(root)
    xmldsig_create.add_reference(signature, "a")
    xmldsig_create.sign(signature, xmldsig_create.xmlsec_key(key), [(root[0], "Id", None)])
    xmldsig_create.add_token_reference(signature, "str", token, key)

    parsed = parse_signature(signature, allow_enveloped=False, allow_str_transform=True)
    token_reference = parsed.references[-1]
    assert token_reference.token_reference and token_reference.target_id == "str"
    expected = hashlib.sha256(etree.tostring(token, method="c14n", exclusive=True)).digest()
    assert token_reference.digest == expected
    assert signature_value_valid(parsed, key.public_key())


@pytest.fixture
def empty_key_cache() -> Iterator[None]:
    saved = list(xmldsig_create._keys.items())
    xmldsig_create._keys.clear()
    yield
    xmldsig_create._keys.clear()
    xmldsig_create._keys.update(saved)


def _small_key() -> RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=1024)


@pytest.mark.usefixtures("empty_key_cache")
def test_key_cache_returns_the_loaded_key_per_key_and_certificate() -> None:
    first, first_cert = make_identity("cache one")[:2]
    second = _small_key()
    loaded = xmldsig_create.xmlsec_key(first)
    assert xmldsig_create.xmlsec_key(first) is loaded
    other = xmldsig_create.xmlsec_key(second)
    assert other is not loaded
    assert xmldsig_create.xmlsec_key(first) is loaded
    assert xmldsig_create.xmlsec_key(second) is other
    with_cert = xmldsig_create.xmlsec_key(first, first_cert)
    assert with_cert is not loaded
    assert xmldsig_create.xmlsec_key(first, first_cert) is with_cert


@pytest.mark.usefixtures("empty_key_cache")
def test_key_cache_keeps_the_newest_keys_and_drops_the_oldest() -> None:
    keys = [_small_key() for _ in range(33)]
    loaded = [xmldsig_create.xmlsec_key(k) for k in keys[:32]]
    # 32 fit: the oldest is still cached (and becomes the newest by this use).
    assert xmldsig_create.xmlsec_key(keys[0]) is loaded[0]
    xmldsig_create.xmlsec_key(keys[32])
    # The least recently used (keys[1]) went; keys[0] and the newest stay.
    assert xmldsig_create.xmlsec_key(keys[0]) is loaded[0]
    assert xmldsig_create.xmlsec_key(keys[31]) is loaded[31]
    assert xmldsig_create.xmlsec_key(keys[1]) is not loaded[1]
