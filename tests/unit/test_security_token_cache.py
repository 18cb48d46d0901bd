"""The validator remembers assertions it verified; that must never let a changed one through."""

from __future__ import annotations

import gc
from types import FunctionType, MethodType, ModuleType
from typing import Any

import pytest
from lxml import etree

from serviceplatform.errors import TokenExpired, TokenSignatureInvalid
from serviceplatform.security import validator as validator_module
from tests.unit.test_security_roundtrip import (
    AUDIENCE,
    NOW,
    Pki,
    find,
    make_validator,
)
from tests.unit.test_security_roundtrip import pki as pki


def count_signature_checks(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls = [0]
    original = validator_module.TokenValidator._verify_assertion_signature

    def counting(self: Any, token: Any) -> None:
        calls[0] += 1
        original(self, token)

    monkeypatch.setattr(validator_module.TokenValidator, "_verify_assertion_signature", counting)
    return calls


def count_reads(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How often the validator reads an assertion's facts (``read_assertion``)."""
    from serviceplatform.security.token import read_assertion as original

    reads = [0]

    def counting(assertion: etree._Element) -> Any:
        reads[0] += 1
        return original(assertion)

    monkeypatch.setattr(validator_module, "read_assertion", counting)
    return reads


def test_reused_token_is_verified_once(pki: Pki, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = count_signature_checks(monkeypatch)
    validator = make_validator(pki)
    token = pki.token()
    for _ in range(3):
        validator.validate(etree.fromstring(pki.message(token)), AUDIENCE)
    assert calls[0] == 1


def test_changed_copy_of_a_verified_token_is_still_refused(pki: Pki) -> None:
    validator = make_validator(pki)
    token = pki.token()
    validator.validate(etree.fromstring(pki.message(token)), AUDIENCE)
    cvr = find(token, "//saml:Attribute[@Name='dk:gov:saml:attribute:CvrNumberIdentifier']/*")
    cvr.text = "12345674"
    with pytest.raises(TokenSignatureInvalid):
        validator.validate(etree.fromstring(pki.message(token)), AUDIENCE)


def test_verified_token_still_expires(pki: Pki) -> None:
    from datetime import timedelta

    now = [NOW + timedelta(minutes=1)]
    validator = make_validator(pki)
    validator._clock = lambda: now[0]
    token = pki.token()
    validator.validate(etree.fromstring(pki.message(token)), AUDIENCE)
    now[0] = NOW + timedelta(hours=9)
    with pytest.raises(TokenExpired):
        validator.validate(etree.fromstring(pki.message(token, now=now[0])), AUDIENCE)


def test_signed_to_must_name_the_endpoint_when_an_address_is_configured(pki: Pki) -> None:
    from serviceplatform.errors import AddressingHeaderMissing
    from tests.unit.test_security_roundtrip import TO

    message = pki.message()
    validator = make_validator(pki)
    with pytest.raises(AddressingHeaderMissing):
        validator.validate(etree.fromstring(message), AUDIENCE, address=TO + "/elsewhere")
    # Refused before the replay cache: the same message is still accepted where it belongs.
    context = validator.validate(etree.fromstring(message), AUDIENCE, address=TO)
    assert context.to == TO


def count_assertion_c14n(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    from serviceplatform.security import xmldsig_verify
    from serviceplatform.security.wire import SAML_ASSERTION

    calls = [0]
    original = xmldsig_verify.canonicalize

    def counting(element: etree._Element, prefixes: Any = None) -> bytes:
        if element.tag == SAML_ASSERTION:
            calls[0] += 1
        return original(element, prefixes)

    monkeypatch.setattr(xmldsig_verify, "canonicalize", counting)
    return calls


@pytest.mark.parametrize("binding", ["str-transform", "id"])
def test_reused_token_is_canonicalized_once_for_the_message_digests(
    pki: Pki, monkeypatch: pytest.MonkeyPatch, binding: str
) -> None:
    calls = count_assertion_c14n(monkeypatch)
    validator = make_validator(pki)
    token = pki.token()
    for _ in range(3):
        validator.validate(etree.fromstring(pki.message(token, token_binding=binding)), AUDIENCE)
    # Once for the STS signature (enveloped), once for the first message's reference to it.
    assert calls[0] == 2


@pytest.mark.parametrize("binding", ["str-transform", "id"])
def test_a_swap_between_two_remembered_tokens_is_still_refused(pki: Pki, binding: str) -> None:
    from serviceplatform.errors import TokenNotBound
    from tests.unit.test_security_token_binding import OTHER_CVR, swap_token

    validator = make_validator(pki)
    mine, other = pki.token(), pki.token(authority_cvr=OTHER_CVR)
    for token in (mine, other):  # both verified and digested before the swap
        validator.validate(etree.fromstring(pki.message(token, token_binding=binding)), AUDIENCE)
    envelope = swap_token(etree.fromstring(pki.message(mine, token_binding=binding)), other)
    with pytest.raises(TokenNotBound):
        validator.validate(envelope, AUDIENCE)


def test_a_reused_token_is_read_once_and_each_token_keeps_its_own_facts(
    pki: Pki, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.unit.test_security_token_binding import OTHER_CVR

    reads = count_reads(monkeypatch)
    seen: list[Any] = []
    signature_check = validator_module.TokenValidator._message_signature

    def capturing(self: Any, parts: Any, token: Any) -> Any:
        seen.append((parts.assertion, token.element, token.signature.getparent()))
        return signature_check(self, parts, token)

    monkeypatch.setattr(validator_module.TokenValidator, "_message_signature", capturing)
    validator = make_validator(pki)
    mine, other = pki.token(), pki.token(authority_cvr=OTHER_CVR)
    for _ in range(2):
        for token, cvr in ((mine, "29189846"), (other, OTHER_CVR)):
            envelope = etree.fromstring(pki.message(token))
            context = validator.validate(envelope, AUDIENCE)
            assert context.authority_cvr == cvr
            assert context.assertion_id == token.get("ID")
            # The facts name this message's elements, not those of the first message.
            assertion, element, signature_parent = seen[-1]
            assert element is assertion and signature_parent is assertion
    assert reads[0] == 2


def _elements_reachable_from(root: object) -> list[etree._Element]:
    """Every lxml element reachable from ``root`` through containers and instances' fields."""
    found: list[etree._Element] = []
    seen: set[int] = set()
    todo: list[object] = [root]
    while todo:
        item = todo.pop()
        if id(item) in seen or isinstance(item, (type, ModuleType, FunctionType, MethodType)):
            continue
        seen.add(id(item))
        if isinstance(item, etree._Element):
            found.append(item)
            continue
        todo.extend(gc.get_referents(item))
    return found


def test_remembered_tokens_keep_no_element_of_a_message(pki: Pki) -> None:
    # An element keeps its whole document alive: remembered facts holding the first message's
    # elements kept up to 1,024 parsed requests per process (the fuzz run's memory grew by
    # 134 MB over 10,000 requests with fresh tokens).
    from tests.unit.test_security_token_binding import OTHER_CVR

    validator = make_validator(pki)
    envelopes = []
    for token in (pki.token(), pki.token(authority_cvr=OTHER_CVR), pki.token()):
        envelope = etree.fromstring(pki.message(token))
        validator.validate(envelope, AUDIENCE)
        envelopes.append(envelope)  # alive, so each root keeps its one proxy object
    assert len(validator._facts) == 3
    kept = _elements_reachable_from(validator)
    assert not [e for e in kept if any(e.getroottree().getroot() is r for r in envelopes)]


def test_a_token_that_fails_its_check_is_not_remembered(
    pki: Pki, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Anyone can send a token that reads; only verified ones may take a place in the cache.
    reads = count_reads(monkeypatch)
    validator = make_validator(pki)
    token = pki.token()
    cvr = find(token, "//saml:Attribute[@Name='dk:gov:saml:attribute:CvrNumberIdentifier']/*")
    cvr.text = "12345674"  # after the STS signed it
    for _ in range(2):
        with pytest.raises(TokenSignatureInvalid):
            validator.validate(etree.fromstring(pki.message(token)), AUDIENCE)
    assert reads[0] == 2
    assert not validator._facts
