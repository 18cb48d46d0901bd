"""The simulated Beskedfordeler's checks without a broker: a token is verified in full once.

The platform reuses one token for an authority's messages, so the simulator verifies each
distinct token text once (signature, issuer, CVR) and afterwards checks only its expiry; a
changed or forged token is another text and is verified, and refused, in full.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from lxml import etree

from serviceplatform.client.token_minter import mint_assertion
from serviceplatform.sandbox import beskedfordeler
from serviceplatform.sandbox.beskedfordeler import Refusal, SimulatedBeskedfordeler
from serviceplatform.sandbox.pki import STS_ISSUER, Pki, ensure_pki

AUDIENCE = "http://entityid.kombit.dk/service/beskedfordeler/1"
AUTHORITY = "29189846"
OTHER_AUTHORITY = "12345674"
NOW = datetime(2026, 11, 17, 1, 0, tzinfo=UTC)
KUVERT = "urn:oio:besked:kuvert:1.0"
SAGDOK = "urn:oio:sagdok:3.0.0"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return ensure_pki(tmp_path_factory.mktemp("pki"))


def _key(path: Path) -> RSAPrivateKey:
    key = load_pem_private_key(path.read_bytes(), password=None)
    assert isinstance(key, RSAPrivateKey)
    return key


def token(pki: Pki, cvr: str = AUTHORITY, *, signer: str = "sts") -> str:
    key, cert = (
        (pki.sts_key, pki.sts_cert) if signer == "sts" else (pki.client_key, pki.client_cert)
    )
    certificate = x509.load_pem_x509_certificate(cert.read_bytes())
    assertion = mint_assertion(
        sts_key=_key(key),
        sts_cert=certificate,
        issuer=STS_ISSUER,
        audience=AUDIENCE,
        authority_cvr=cvr,
        holder_cert=certificate,
        now=NOW - timedelta(minutes=5),
    )
    return etree.tostring(assertion).decode()


def body(cvr: str = AUTHORITY, besked_id: str | None = None) -> bytes:
    besked_id = besked_id or str(uuid.uuid4())
    return (
        f'<k:Haendelsesbesked xmlns:k="{KUVERT}" xmlns:s="{SAGDOK}">'
        f"<k:BeskedId><s:UUIDIdentifikator>{besked_id}</s:UUIDIdentifikator></k:BeskedId>"
        "<k:Beskedkuvert><k:Filtreringsdata><k:ObjektRegistrering>"
        "<k:ObjektAnsvarligMyndighed>"
        f"<s:URNIdentifikator>urn:oio:cvr-nr:{cvr}</s:URNIdentifikator>"
        "</k:ObjektAnsvarligMyndighed>"
        "</k:ObjektRegistrering></k:Filtreringsdata></k:Beskedkuvert>"
        "</k:Haendelsesbesked>"
    ).encode()


@pytest.fixture
def clock() -> list[datetime]:
    return [NOW]


@pytest.fixture
def simulator(pki: Pki, clock: list[datetime]) -> SimulatedBeskedfordeler:
    # Never started: judge() needs no broker.
    return SimulatedBeskedfordeler(
        "amqp://guest:guest@127.0.0.1:5672/",
        trusted_sts_cert=pki.sts_cert,
        clock=lambda: clock[0],
    )


@pytest.fixture
def verifications(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The assertion ids whose signature the simulator checked."""
    seen: list[str] = []
    signed_by = beskedfordeler._signed_by

    def counting(facts, trusted):
        seen.append(facts.assertion_id)
        return signed_by(facts, trusted)

    monkeypatch.setattr(beskedfordeler, "_signed_by", counting)
    return seen


def test_a_token_is_verified_once_for_many_messages(simulator, pki, verifications):
    text = token(pki)
    for _ in range(5):
        # Each message brings its own copy of the text, as pika decodes it.
        record = simulator.judge(body(), {"token": "".join(list(text))})
        assert record.authority_cvr == AUTHORITY
    assert len(verifications) == 1
    other = token(pki, OTHER_AUTHORITY)
    simulator.judge(body(OTHER_AUTHORITY), {"token": other})
    simulator.judge(body(OTHER_AUTHORITY), {"token": other})
    assert len(verifications) == 2


def test_the_recorded_messages_share_one_copy_of_the_token(simulator, pki):
    text = token(pki)
    first = simulator.judge(body(), {"token": "".join(list(text)), "other": "x"})
    second = simulator.judge(body(), {"token": "".join(list(text)), "other": "x"})
    assert first.headers == second.headers == {"token": text, "other": "x"}
    assert first.headers["token"] is second.headers["token"]


def test_a_changed_token_after_a_good_one_is_refused(simulator, pki, verifications):
    text = token(pki)
    simulator.judge(body(), {"token": text})
    changed = text.replace(f">{AUTHORITY}<", f">{OTHER_AUTHORITY}<")
    assert changed != text
    with pytest.raises(Refusal) as refused:
        simulator.judge(body(OTHER_AUTHORITY), {"token": changed})
    assert refused.value.status == 41
    # Verified in full, not taken for the remembered one; and refused again next time.
    assert len(verifications) == 2
    with pytest.raises(Refusal):
        simulator.judge(body(OTHER_AUTHORITY), {"token": changed})
    assert len(verifications) == 3


def test_a_forged_token_after_a_good_one_is_refused(simulator, pki):
    simulator.judge(body(), {"token": token(pki)})
    with pytest.raises(Refusal) as refused:
        simulator.judge(body(), {"token": token(pki, signer="client")})
    assert refused.value.status == 41


def test_a_remembered_token_expires(simulator, pki, clock, verifications):
    text = token(pki)
    simulator.judge(body(), {"token": text})
    clock[0] = NOW + timedelta(hours=9)
    with pytest.raises(Refusal) as refused:
        simulator.judge(body(), {"token": text})
    assert refused.value.status == 41
    assert "expired" in refused.value.text
    assert len(verifications) == 1


def test_the_body_is_checked_for_every_message_with_a_remembered_token(simulator, pki):
    text = token(pki)
    simulator.judge(body(), {"token": text})
    with pytest.raises(Refusal) as wrong_authority:
        simulator.judge(body(OTHER_AUTHORITY), {"token": text})
    assert wrong_authority.value.status == 42
    with pytest.raises(Refusal) as no_id:
        simulator.judge(body(besked_id=" "), {"token": text})
    assert no_id.value.status == 40
    with pytest.raises(Refusal) as not_xml:
        simulator.judge(body()[:-5], {"token": text})
    assert not_xml.value.status == 40


def test_the_besked_id_and_every_authority_are_read(simulator, pki):
    text = token(pki)
    besked_id = str(uuid.uuid4())
    record = simulator.judge(body(besked_id=f" {besked_id} "), {"token": text})
    assert record.besked_id == besked_id
    # A second ObjektRegistrering naming another authority is found too.
    two = body().replace(
        b"</k:Filtreringsdata>",
        b"<k:ObjektRegistrering><k:ObjektAnsvarligMyndighed><s:URNIdentifikator>"
        + f"urn:oio:cvr-nr:{OTHER_AUTHORITY}".encode()
        + b"</s:URNIdentifikator></k:ObjektAnsvarligMyndighed></k:ObjektRegistrering>"
        b"</k:Filtreringsdata>",
    )
    with pytest.raises(Refusal) as refused:
        simulator.judge(two, {"token": text})
    assert refused.value.status == 42
