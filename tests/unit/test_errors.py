"""The error tree: unique codes, and a documented catalogue that lists every one."""

from __future__ import annotations

from pathlib import Path

from serviceplatform.errors import (
    ServicePlatformError,
    TokenExpired,
    UpstreamUnavailable,
    all_error_classes,
    check_codes,
    rebuild_error,
)

DOCS = Path(__file__).resolve().parents[2] / "docs" / "faults.md"


def test_codes_are_unique() -> None:
    codes = [cls.code for cls in all_error_classes()]
    assert len(codes) == len(set(codes)), sorted(c for c in codes if codes.count(c) > 1)


def test_the_integrations_classes_are_in_the_tree_within_their_ranges() -> None:
    # The core names none of them: they are found through the registry.
    by_code = {cls.code: cls.__module__ for cls in all_error_classes()}
    assert by_code["SP-501"] == "integrations.sf2250.errors"
    assert by_code["SP-522"] == "integrations.sf2250.errors"
    assert by_code["SP-700"] == "integrations.oots.errors"
    assert by_code["SP-745"] == "integrations.oots.errors"
    integration_codes = sorted(c for c, m in by_code.items() if m.startswith("integrations."))
    assert by_code["SP-523"] == "integrations.sf2250.errors"
    assert len(integration_codes) == 44  # 14 of SF2250/SF1600/SF1601, 30 of OOTS
    assert check_codes() == []


def test_every_code_is_documented() -> None:
    text = DOCS.read_text(encoding="utf-8")
    missing = [cls.code for cls in all_error_classes() if f"`{cls.code}`" not in text]
    assert missing == []


def test_error_text_carries_detail() -> None:
    error = TokenExpired("NotOnOrAfter 2026-11-22T17:00:00Z")
    assert error.error_text == "The SAML assertion has expired: NotOnOrAfter 2026-11-22T17:00:00Z"
    assert isinstance(error, ServicePlatformError)
    assert error.client_fault and not error.retryable


def test_upstream_error_keeps_status() -> None:
    error = UpstreamUnavailable("503 twice", status=503)
    assert error.status == 503 and error.retryable and not error.client_fault


def test_liberty_fault_code_in_both_soap_versions() -> None:
    from lxml import etree

    from serviceplatform.errors import FrameworkVersionMismatch, NoAgreement
    from serviceplatform.soap.faults import fault_envelope

    soap11 = etree.fromstring(fault_envelope(FrameworkVersionMismatch(), 11))
    code = soap11.find(".//faultcode")
    assert code is not None and code.text == "sub:FrameworkVersionMismatch"
    assert code.nsmap["sub"] == "urn:liberty:sb:2006-08"
    plain = etree.fromstring(fault_envelope(NoAgreement(), 12))
    assert plain.find(".//{*}Subcode") is None


def test_rebuild_error_is_the_inverse_of_error_text() -> None:
    for error_class in all_error_classes():
        for detail in (None, "the peer said: no", "x"):
            original = error_class(detail)
            rebuilt = rebuild_error(original.code, original.error_text)
            assert type(rebuilt) is error_class
            assert rebuilt.detail == detail
            assert rebuilt.error_text == original.error_text


def test_rebuild_error_of_an_unknown_code_or_foreign_text() -> None:
    unknown = rebuild_error("SP-999", "something odd")
    assert type(unknown) is ServicePlatformError and unknown.detail == "something odd"
    assert rebuild_error(None, None).detail is None
    # A text that does not start with the class text is kept whole as the detail.
    foreign = rebuild_error(TokenExpired.code, "expired yesterday")
    assert type(foreign) is TokenExpired and foreign.detail == "expired yesterday"
