"""Outward certificates in real calls: an expired one is a clear fault before any TLS, and a
certificate imported into the store is used by the running platform on the next call.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509

from serviceplatform.outbound.certstore import CertificateStore
from serviceplatform.sandbox.nemsms_register import NemSmsRegister
from serviceplatform.sandbox.pki import (
    PLATFORM_REGISTER_SUBJECT,
    Pki,
    issue_certificate,
    load_ca,
)
from serviceplatform.sandbox.runner import REGISTER_CERT_ALIAS
from tests.integration.conftest import (
    CaseSystem,
    RegisterHooks,
    make_settings,
    post,
    start_platform,
)
from tests.integration.sf2250_requests import fault_code, opdater, status_code

OTHER_CPR = "0202804321"


def test_expired_certificate_gives_sp421_then_an_imported_one_works_without_restart(
    tmp_path: Path,
    pki: Pki,
    register: NemSmsRegister,
    case_system: CaseSystem,
    hooks: RegisterHooks,
) -> None:
    settings = make_settings(tmp_path, pki, register.base_url)
    directory = settings.path(settings.certificates.directory)
    # An expired certificate for the same subject, from the sandbox CA the register trusts:
    # the register would refuse it in the handshake; the platform must not get that far.
    now = datetime.now(UTC)
    issue_certificate(
        load_ca(pki.ca_cert, pki.ca_key),
        PLATFORM_REGISTER_SUBJECT,
        not_before=now - timedelta(days=400),
        not_after=now - timedelta(days=2),
        path_prefix=directory / REGISTER_CERT_ALIAS,
    )
    platform = start_platform(settings)
    try:
        handshakes = hooks.connections()
        answer = post(
            platform.sf2250_url, case_system.envelope(opdater(OTHER_CPR), platform.sf2250_url)
        )
        assert answer.status_code == 500
        assert fault_code(answer) == "SP-421"
        assert f"certificate '{REGISTER_CERT_ALIAS}' expired on" in answer.text
        assert hooks.requests() == []
        assert hooks.connections() == handshakes  # refused before any TLS handshake
        assert platform.platform.audit.tail(1)[0].error_code == "SP-421"

        # The administrator imports a valid certificate (as `certs import --replace` does),
        # through a store of its own: the running platform is not told anything.
        info = CertificateStore(directory).import_pem(
            REGISTER_CERT_ALIAS,
            pki.platform_register_cert.read_bytes(),
            pki.platform_register_key.read_bytes(),
            replace=True,
        )
        assert info.usable and not info.expired

        answer = post(
            platform.sf2250_url, case_system.envelope(opdater(OTHER_CPR), platform.sf2250_url)
        )
        assert answer.status_code == 200, answer.text
        assert status_code(answer) == 20
        seen = hooks.requests()
        assert len(seen) == 1
        valid = x509.load_pem_x509_certificate(pki.platform_register_cert.read_bytes())
        assert seen[0]["client_subject"] == valid.subject.rfc4514_string()
    finally:
        platform.stop()
