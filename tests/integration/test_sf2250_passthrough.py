"""SF2250 VedligeholdTilmelding end to end: signed SOAP in, mutual-TLS OIOREST out, audit.

The platform's WSGI application runs on a local socket; the simulated NemSMS register runs over
HTTPS requiring a client certificate; the register's test hooks tell what went out.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from lxml import etree

from serviceplatform.client.request_signer import mint_assertion
from serviceplatform.routing.model import RouteRow
from serviceplatform.sandbox.nemsms_register import NemSmsRegister
from serviceplatform.sandbox.pki import STS_ISSUER, Pki, ensure_pki
from serviceplatform.store.repository import RoutingRepository
from tests.integration.conftest import (
    AUTHORITY,
    ENTITY_ID,
    CaseSystem,
    RegisterHooks,
    RunningPlatform,
    make_settings,
    post,
    start_platform,
    utc_now,
)
from tests.integration.sf2250_requests import fault_code, opdater, status_code, tilmeld

#: routing_tables/sf2250.csv sends this test citizen of AUTHORITY to the register's test SysID.
TEST_CPR, TEST_CPR_SYSID = "0101901234", "2250901"
OTHER_CPR, AUTHORITY_SYSID = "0202804321", "2250001"
NO_AGREEMENT, SUSPENDED = "29189862", "29189870"


def latest_audit(running: RunningPlatform) -> dict[str, object]:
    entry = running.platform.audit.tail(1)[0]
    return entry.__dict__


# --- the happy path ------------------------------------------------------------------------


def test_opdater_borger_reaches_register_with_platform_certificate(
    running: RunningPlatform, case_system: CaseSystem, hooks: RegisterHooks, pki: Pki
) -> None:
    answer = post(running.sf2250_url, case_system.envelope(opdater(OTHER_CPR), running.sf2250_url))

    assert answer.status_code == 200, answer.text
    assert status_code(answer) == 20
    seen = hooks.requests()
    assert [(r["method"], r["path"]) for r in seen] == [
        ("PUT", f"/register/{AUTHORITY_SYSID}/boks/{OTHER_CPR}")
    ]
    platform_cert = x509.load_pem_x509_certificate(pki.platform_register_cert.read_bytes())
    assert seen[0]["client_subject"] == platform_cert.subject.rfc4514_string()
    assert "MobiltelefonNummer>12345678<" in seen[0]["body"]


def test_tilmeld_nemsms_uses_subject_specific_sysid(
    running: RunningPlatform, case_system: CaseSystem, hooks: RegisterHooks
) -> None:
    # The register knows only end users created first (EP_SP2), as the seed says.
    for body in (opdater(TEST_CPR), tilmeld(TEST_CPR)):
        answer = post(running.sf2250_url, case_system.envelope(body, running.sf2250_url))
        assert answer.status_code == 200, answer.text
        assert status_code(answer) == 20
    assert [r["path"] for r in hooks.requests()] == [
        f"/register/{TEST_CPR_SYSID}/boks/{TEST_CPR}",
        f"/register/{TEST_CPR_SYSID}/boks/{TEST_CPR}/myndighedstilmelding",
    ]


def test_company_uses_cvr_path_forms_of_the_seed(
    running: RunningPlatform, case_system: CaseSystem, hooks: RegisterHooks
) -> None:
    for body in (opdater(cpr=None, cvr="29189854"), tilmeld(cpr=None, cvr="29189854")):
        answer = post(running.sf2250_url, case_system.envelope(body, running.sf2250_url))
        assert answer.status_code == 200, answer.text
    assert [r["path"] for r in hooks.requests()] == [
        f"/register/{AUTHORITY_SYSID}/boks/:29189854",
        f"/register/{AUTHORITY_SYSID}/boks/29189854/myndighedstilmelding",
    ]


def test_successful_call_leaves_one_complete_audit_record(
    running: RunningPlatform, case_system: CaseSystem, hooks: RegisterHooks
) -> None:
    message_id = "urn:uuid:2f7c1b52-2d0a-4d43-9b0e-7b7a3c1e0001"
    before = len(running.platform.audit.tail(1000))
    payload = case_system.envelope(opdater(OTHER_CPR), running.sf2250_url, message_id=message_id)
    assert post(running.sf2250_url, payload).status_code == 200

    assert len(running.platform.audit.tail(1000)) == before + 1
    record = latest_audit(running)
    assert record["message_id"] == message_id
    assert record["authority_cvr"] == AUTHORITY
    assert record["operation"] == "OpdaterBorgerNemSMS"
    assert record["service"] == "sf2250"
    assert record["subject"] == OTHER_CPR  # the audit table keeps the full CPR
    assert record["sysid"] == AUTHORITY_SYSID
    assert record["upstream_status"] in (200, 201)
    assert record["outcome"] == "ok" and record["error_code"] is None
    assert record["consumer_system"]
    assert isinstance(record["latency_ms"], float) and record["latency_ms"] > 0


# --- refused before any outward call -------------------------------------------------------

#: Each case's token arguments, made when the test runs: a time taken at collection would be
#: stale by the time a long suite reaches the test (a token "not yet valid" for ten minutes
#: after collection is valid twenty minutes later).
TOKEN_FAILURES: dict[str, tuple[Callable[[], dict[str, Any]], str]] = {
    "expired token": (lambda: {"now": utc_now() - timedelta(hours=9)}, "SP-208"),
    "token not yet valid": (lambda: {"not_before": utc_now() + timedelta(minutes=10)}, "SP-209"),
    "wrong audience": (lambda: {"audience": "http://entityid.example/other"}, "SP-210"),
}


@pytest.mark.parametrize("case", sorted(TOKEN_FAILURES))
def test_token_failures_are_refused_without_outward_call(
    case: str, running: RunningPlatform, case_system: CaseSystem, hooks: RegisterHooks
) -> None:
    make_token, code = TOKEN_FAILURES[case]
    token = make_token()
    answer = post(
        running.sf2250_url, case_system.envelope(opdater(), running.sf2250_url, token=token)
    )
    assert answer.status_code == 400
    assert fault_code(answer) == code
    assert hooks.requests() == []
    assert latest_audit(running)["error_code"] == code


def test_sts_signature_invalid(
    running: RunningPlatform, case_system: CaseSystem, hooks: RegisterHooks
) -> None:
    assertion = case_system.assertion()
    value = assertion.find(
        ".//{*}Attribute[@Name='dk:gov:saml:attribute:CvrNumberIdentifier']/{*}AttributeValue"
    )
    assert value is not None
    value.text = "29189854"  # another authority: what a forged token would try
    payload = case_system.envelope(opdater(), running.sf2250_url, assertion=assertion)
    answer = post(running.sf2250_url, payload)
    assert fault_code(answer) == "SP-207"
    assert hooks.requests() == []


def test_unknown_sts(
    running: RunningPlatform, case_system: CaseSystem, hooks: RegisterHooks, tmp_path: Path
) -> None:
    stranger = ensure_pki(tmp_path / "other-pki")
    key = load_pem_private_key(stranger.sts_key.read_bytes(), password=None)
    assert isinstance(key, rsa.RSAPrivateKey)
    assertion = case_system.assertion(
        sts_key=key, sts_cert=x509.load_pem_x509_certificate(stranger.sts_cert.read_bytes())
    )
    answer = post(
        running.sf2250_url,
        case_system.envelope(opdater(), running.sf2250_url, assertion=assertion),
    )
    assert fault_code(answer) == "SP-206"
    assert hooks.requests() == []


def test_body_tampered_after_signing(
    running: RunningPlatform, case_system: CaseSystem, hooks: RegisterHooks
) -> None:
    payload = case_system.envelope(opdater(OTHER_CPR), running.sf2250_url)
    tampered = payload.replace(b"12345678", b"87654321")
    assert tampered != payload
    answer = post(running.sf2250_url, tampered)
    assert fault_code(answer) == "SP-212"
    assert hooks.requests() == []


def test_message_signed_by_other_key_than_holder_of_key(
    running: RunningPlatform, case_system: CaseSystem, hooks: RegisterHooks
) -> None:
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    answer = post(
        running.sf2250_url,
        case_system.envelope(opdater(), running.sf2250_url, holder_key=other),
    )
    assert fault_code(answer) == "SP-214"
    assert hooks.requests() == []


def test_replayed_message_id_is_refused_and_forwarded_once(
    running: RunningPlatform, case_system: CaseSystem, hooks: RegisterHooks
) -> None:
    payload = case_system.envelope(opdater(OTHER_CPR), running.sf2250_url)
    assert post(running.sf2250_url, payload).status_code == 200
    again = post(running.sf2250_url, payload)
    assert fault_code(again) == "SP-215"
    assert len(hooks.requests()) == 1


def test_stale_timestamp(
    running: RunningPlatform, case_system: CaseSystem, hooks: RegisterHooks
) -> None:
    message_id = "urn:uuid:2f7c1b52-2d0a-4d43-9b0e-7b7a3c1e0002"
    payload = case_system.envelope(
        opdater(),
        running.sf2250_url,
        now=utc_now() - timedelta(minutes=10),
        message_id=message_id,
    )
    assert fault_code(post(running.sf2250_url, payload)) == "SP-204"
    assert hooks.requests() == []
    # Refused by the security checks: the audit record still names the MessageID as sent.
    record = latest_audit(running)
    assert record["error_code"] == "SP-204" and record["message_id"] == message_id


def test_a_document_that_is_no_envelope_is_audited_without_a_message_id(
    running: RunningPlatform, hooks: RegisterHooks
) -> None:
    wsa = "http://www.w3.org/2005/08/addressing"
    payload = (
        f'<x:Envelope xmlns:x="urn:not-soap" xmlns:wsa="{wsa}"><x:Header>'
        "<wsa:MessageID>urn:uuid:not-read</wsa:MessageID></x:Header><x:Body/></x:Envelope>"
    ).encode()
    answer = post(running.sf2250_url, payload)
    assert answer.status_code == 400
    record = latest_audit(running)
    assert record["error_code"] == fault_code(answer) and record["message_id"] is None


def test_missing_framework_header(
    running: RunningPlatform, case_system: CaseSystem, hooks: RegisterHooks
) -> None:
    payload = case_system.envelope(opdater(), running.sf2250_url, omit=("Framework",))
    answer = post(running.sf2250_url, payload)
    assert fault_code(answer) == "SP-201"
    # Liberty's prescribed fault code, as the SOAP 1.2 Subcode.
    value = etree.fromstring(answer.content).find(".//{*}Code/{*}Subcode/{*}Value")
    assert value is not None and value.text is not None
    prefix, _, local = value.text.partition(":")
    assert (value.nsmap[prefix], local) == ("urn:liberty:sb:2006-08", "FrameworkVersionMismatch")
    assert hooks.requests() == []


@pytest.mark.parametrize(("cvr", "code"), [(NO_AGREEMENT, "SP-301"), (SUSPENDED, "SP-302")])
def test_authority_without_active_agreement(
    cvr: str, code: str, running: RunningPlatform, case_system: CaseSystem, hooks: RegisterHooks
) -> None:
    payload = case_system.envelope(opdater(), running.sf2250_url, token={"cvr": cvr})
    answer = post(running.sf2250_url, payload)
    assert fault_code(answer) == code
    assert hooks.requests() == []
    record = latest_audit(running)
    assert record["authority_cvr"] == cvr and record["error_code"] == code


@pytest.mark.parametrize(
    "body",
    [opdater(cpr="0101901234", cvr="29189854"), opdater(cpr=None, cvr=None)],
    ids=["both", "neither"],
)
def test_cpr_and_cvr_both_or_neither(
    body: etree._Element, running: RunningPlatform, case_system: CaseSystem, hooks: RegisterHooks
) -> None:
    answer = post(running.sf2250_url, case_system.envelope(body, running.sf2250_url))
    assert answer.status_code == 400
    # The contract's xsd:choice refuses it, so it is a schema violation that names the field.
    assert fault_code(answer) == "SP-105"
    assert "CVR" in answer.text
    assert hooks.requests() == []


def test_invalid_cpr_date(
    running: RunningPlatform, case_system: CaseSystem, hooks: RegisterHooks
) -> None:
    payload = case_system.envelope(opdater(cpr="3102901234"), running.sf2250_url)
    assert fault_code(post(running.sf2250_url, payload)) == "SP-108"
    assert hooks.requests() == []


def test_malformed_xml(running: RunningPlatform, hooks: RegisterHooks) -> None:
    answer = post(running.sf2250_url, b"<s:Envelope xmlns:s='x'><unclosed>")
    assert answer.status_code == 400
    assert fault_code(answer) == "SP-101"
    assert b"Traceback" not in answer.content
    assert hooks.requests() == []


def test_entity_expansion_attack(running: RunningPlatform, hooks: RegisterHooks) -> None:
    lol = "".join(f'<!ENTITY l{i} "{f"&l{i - 1};" * 10}">' for i in range(1, 10))
    payload = (
        f'<?xml version="1.0"?><!DOCTYPE s:Envelope [<!ENTITY l0 "lol">{lol}]>'
        '<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Body>&l9;</s:Body>'
        "</s:Envelope>"
    ).encode()
    answer = post(running.sf2250_url, payload)
    # SP-102: the DTD is refused before any parse, so nothing was expanded.
    assert fault_code(answer) == "SP-102"
    assert hooks.requests() == []


def test_body_over_size_limit(running: RunningPlatform, hooks: RegisterHooks) -> None:
    limit = running.settings.soap.max_body_bytes
    answer = post(running.sf2250_url, b"<a>" + b"x" * limit + b"</a>")
    assert answer.status_code == 400
    assert fault_code(answer) == "SP-103"
    assert hooks.requests() == []


# --- the register misbehaves ---------------------------------------------------------------


def test_register_503_then_200_is_retried_once(
    running: RunningPlatform, case_system: CaseSystem, hooks: RegisterHooks
) -> None:
    hooks.fault(503, 1)
    answer = post(running.sf2250_url, case_system.envelope(opdater(OTHER_CPR), running.sf2250_url))
    assert answer.status_code == 200, answer.text
    assert status_code(answer) == 20
    assert len(hooks.requests()) == 2
    assert latest_audit(running)["outcome"] == "ok"


def test_register_400_is_not_retried(
    running: RunningPlatform, case_system: CaseSystem, hooks: RegisterHooks
) -> None:
    hooks.fault(400, 1)
    answer = post(running.sf2250_url, case_system.envelope(opdater(OTHER_CPR), running.sf2250_url))
    assert fault_code(answer) == "SP-405"
    assert len(hooks.requests()) == 1
    record = latest_audit(running)
    assert record["upstream_status"] == 400 and record["error_code"] == "SP-405"


def test_register_503_persisting_gives_sp404(
    running: RunningPlatform, case_system: CaseSystem, hooks: RegisterHooks
) -> None:
    hooks.fault(503, 10)
    payload = case_system.envelope(opdater(OTHER_CPR), running.sf2250_url)
    # How long it may take is the transport's budget (test_oiorest_transport.py).
    answer = post(running.sf2250_url, payload)
    assert fault_code(answer) == "SP-404"
    assert answer.status_code == 500
    hooks.fault(503, 0)


def test_register_unreachable_gives_sp401(
    tmp_path: Path, pki: Pki, case_system: CaseSystem
) -> None:
    import socket

    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        dead = f"https://127.0.0.1:{sock.getsockname()[1]}"
    platform = start_platform(make_settings(tmp_path, pki, dead))
    try:
        payload = case_system.envelope(opdater(OTHER_CPR), platform.sf2250_url)
        # How long it may take is the transport's budget (test_oiorest_transport.py).
        answer = post(platform.sf2250_url, payload)
        assert fault_code(answer) == "SP-401"
        assert latest_audit(platform)["error_code"] == "SP-401"
    finally:
        platform.stop()


# --- routing changes take effect without a restart -----------------------------------------


def test_changed_routing_table_takes_effect_on_next_call(
    running: RunningPlatform, case_system: CaseSystem, hooks: RegisterHooks
) -> None:
    repository = RoutingRepository(running.platform.db)
    original = repository.list_routes()
    changed = [
        RouteRow(r.authority_cvr, r.service, r.role, "7777001", r.subject, r.source)
        if (r.authority_cvr, r.role, r.subject) == (AUTHORITY, "register", None)
        else r
        for r in original
    ]
    repository.replace_routes(changed)
    try:
        payload = case_system.envelope(opdater(OTHER_CPR), running.sf2250_url)
        assert post(running.sf2250_url, payload).status_code == 200
        assert hooks.requests()[0]["path"] == f"/register/7777001/boks/{OTHER_CPR}"
    finally:
        repository.replace_routes(original)


# --- who may call, and what the logs show --------------------------------------------------


def test_unregistered_consumer_system_is_refused(
    running: RunningPlatform, case_system: CaseSystem, hooks: RegisterHooks, tmp_path: Path
) -> None:
    # A certificate the STS vouches for, but no consumer system of the platform is registered with.
    stranger = ensure_pki(tmp_path / "stranger")
    assertion = mint_assertion(
        sts_key=case_system.sts_key,
        sts_cert=case_system.sts_cert,
        issuer=STS_ISSUER,
        audience=ENTITY_ID,
        authority_cvr=AUTHORITY,
        holder_cert=x509.load_pem_x509_certificate(stranger.platform_register_cert.read_bytes()),
    )
    platform_key = load_pem_private_key(stranger.platform_register_key.read_bytes(), password=None)
    assert isinstance(platform_key, rsa.RSAPrivateKey)
    payload = case_system.envelope(
        opdater(), running.sf2250_url, assertion=assertion, holder_key=platform_key
    )
    answer = post(running.sf2250_url, payload)
    assert fault_code(answer) == "SP-216"
    assert hooks.requests() == []


def test_application_log_masks_cpr(
    running: RunningPlatform,
    case_system: CaseSystem,
    hooks: RegisterHooks,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    payload = case_system.envelope(opdater(OTHER_CPR), running.sf2250_url)
    assert post(running.sf2250_url, payload).status_code == 200
    text = "\n".join(record.getMessage() for record in caplog.records)
    assert f"{OTHER_CPR[:6]}****" in text
    assert OTHER_CPR not in text


def test_agreement_without_register_certificate_is_refused_before_tls(
    running: RunningPlatform, case_system: CaseSystem, hooks: RegisterHooks
) -> None:
    repository = RoutingRepository(running.platform.db)
    agreement = next(
        a
        for a in repository.list_agreements()
        if a.authority_cvr == AUTHORITY and a.service == "sf2250"
    )
    repository.upsert_agreement(replace(agreement, register_cert_alias=None))
    try:
        payload = case_system.envelope(opdater(OTHER_CPR), running.sf2250_url)
        answer = post(running.sf2250_url, payload)
        assert fault_code(answer) == "SP-420"
        assert hooks.requests() == []
    finally:
        repository.upsert_agreement(agreement)


def test_message_addressed_to_another_endpoint_is_refused(
    tmp_path: Path, pki: Pki, register: NemSmsRegister, case_system: CaseSystem
) -> None:
    settings = make_settings(tmp_path, pki, register.base_url)
    settings.soap.public_base_url = "https://sp.example.dk"
    platform = start_platform(settings)
    try:
        elsewhere = case_system.envelope(opdater(OTHER_CPR), "https://sp.example.dk/other")
        assert fault_code(post(platform.sf2250_url, elsewhere)) == "SP-202"
        here = "https://sp.example.dk/service/NemSMS/VedligeholdTilmelding/2"
        answer = post(platform.sf2250_url, case_system.envelope(opdater(OTHER_CPR), here))
        assert answer.status_code == 200, answer.text
    finally:
        platform.stop()


def test_without_a_public_base_url_wsa_to_must_name_the_address_called(
    tmp_path: Path,
    pki: Pki,
    register: NemSmsRegister,
    case_system: CaseSystem,
    hooks: RegisterHooks,
) -> None:
    """The wsa:To check is never off: without ``soap.public_base_url`` (which ``serve``
    requires anyway) the request's own address is the one its signed To must name."""
    settings = make_settings(tmp_path, pki, register.base_url)
    assert settings.soap.public_base_url == ""
    platform = start_platform(settings)
    try:
        hooks.clear()
        other_host = "https://other.example.dk/service/NemSMS/VedligeholdTilmelding/2"
        refused = post(platform.sf2250_url, case_system.envelope(opdater(OTHER_CPR), other_host))
        assert fault_code(refused) == "SP-202"
        assert hooks.requests() == []
        answer = post(
            platform.sf2250_url,
            case_system.envelope(opdater(OTHER_CPR), platform.sf2250_url),
        )
        assert answer.status_code == 200, answer.text
    finally:
        platform.stop()


def test_a_message_replayed_to_another_platform_process_is_refused(
    tmp_path: Path,
    pki: Pki,
    register: NemSmsRegister,
    case_system: CaseSystem,
    hooks: RegisterHooks,
) -> None:
    """The replay cache is the database's, shared by every process and node: two platforms
    on one database (as two gunicorn workers or two nodes are) accept a MessageID once."""
    settings = make_settings(tmp_path, pki, register.base_url)
    settings.soap.public_base_url = "https://sp.example.dk"
    first = start_platform(settings)
    second = start_platform(settings)
    try:
        to = "https://sp.example.dk/service/NemSMS/VedligeholdTilmelding/2"
        payload = case_system.envelope(opdater(OTHER_CPR), to)
        hooks.clear()
        assert post(first.sf2250_url, payload).status_code == 200
        calls = len(hooks.requests())
        assert fault_code(post(second.sf2250_url, payload)) == "SP-215"
        assert fault_code(post(first.sf2250_url, payload)) == "SP-215"
        assert len(hooks.requests()) == calls
    finally:
        second.stop()
        first.stop()
