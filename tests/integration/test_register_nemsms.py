"""The simulated NemSMS register over real mutual TLS: resources, errors and test hooks."""

from __future__ import annotations

import socket
import ssl
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from lxml import etree

from serviceplatform.sandbox.nemsms_register import NemSmsRegister
from serviceplatform.sandbox.pki import PLATFORM_REGISTER_SUBJECT, Pki, ensure_pki, parse_subject
from serviceplatform.sandbox.register_state import FEJL_NS, REGISTER_NS

SYSID = "REG-1"
CPR = "0101901234"
CVR = "29189846"
STAMDATA = b'<SlutbrugerStamdata xmlns="urn:oio:nemsms:1.0"><Navn>Test</Navn></SlutbrugerStamdata>'
TILMELD = (
    b'<Myndighedstilmelding xmlns="urn:oio:nemsms:1.0">'
    b"<TilmeldingIndikator>true</TilmeldingIndikator></Myndighedstilmelding>"
)


@pytest.fixture(scope="module")
def tpki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return ensure_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def reg(tpki: Pki) -> Iterator[NemSmsRegister]:
    with NemSmsRegister(
        server_cert=tpki.nemsms_server_cert,
        server_key=tpki.nemsms_server_key,
        client_ca=tpki.ca_cert,
        known_sysids={SYSID, "REG-2"},
        list_part_size=2,
    ) as running:
        yield running


@pytest.fixture()
def hooks(reg: NemSmsRegister) -> Iterator[requests.Session]:
    session = requests.Session()
    session.trust_env = False
    session.delete(f"{reg.control_url}/requests", timeout=5).raise_for_status()
    session.post(f"{reg.control_url}/faults", json={"status": 503, "count": 0}, timeout=5)
    yield session
    session.close()


@pytest.fixture()
def client(tpki: Pki, hooks: requests.Session) -> Iterator[requests.Session]:
    session = requests.Session()
    session.trust_env = False
    session.verify = str(tpki.ca_cert)
    session.cert = (str(tpki.platform_register_cert), str(tpki.platform_register_key))
    yield session
    session.close()


def fejl(answer: requests.Response) -> tuple[str, str]:
    root = etree.fromstring(answer.content)
    assert root.tag == f"{{{FEJL_NS}}}Fejl"
    return (
        root.findtext(f"{{{FEJL_NS}}}FejlKode") or "",
        root.findtext(f"{{{FEJL_NS}}}FejlTekst") or "",
    )


def recorded(hooks: requests.Session, reg: NemSmsRegister) -> list[dict[str, Any]]:
    answer = hooks.get(f"{reg.control_url}/requests", timeout=5)
    answer.raise_for_status()
    data: list[dict[str, Any]] = answer.json()
    return data


def raw_tls_attempt(
    reg: NemSmsRegister, tpki: Pki, cert: tuple[Path, Path] | None
) -> bytes | Exception:
    """Handshake, send one request and read: the bytes that came back, or the error."""
    context = ssl.create_default_context(cafile=str(tpki.ca_cert))
    if cert is not None:
        context.load_cert_chain(str(cert[0]), str(cert[1]))
    port = int(reg.base_url.rsplit(":", 1)[1])
    try:
        with (
            socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
            context.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
        ):
            tls.sendall(
                f"GET /register/{SYSID}/slutbrugerliste HTTP/1.1\r\nHost: x\r\n\r\n".encode()
            )
            return tls.recv(100)
    except (OSError, ssl.SSLError) as exc:
        return exc


def stats(hooks: requests.Session, reg: NemSmsRegister) -> dict[str, int]:
    data: dict[str, int] = hooks.get(f"{reg.control_url}/stats", timeout=5).json()
    return data


# --- mutual TLS -----------------------------------------------------------------------------


def handshake_failures_reach(hooks, reg, expected: int) -> bool:
    """The server counts a refused handshake in its own thread, maybe after the client saw it."""
    deadline = time.monotonic() + 5
    while stats(hooks, reg)["handshake_failures"] < expected and time.monotonic() < deadline:
        time.sleep(0.02)
    return bool(stats(hooks, reg)["handshake_failures"] == expected)


def test_client_without_certificate_is_refused(reg, tpki, hooks):
    failures = stats(hooks, reg)["handshake_failures"]
    outcome = raw_tls_attempt(reg, tpki, None)
    # Refused in the handshake (TLS 1.2) or by an alert on the first read (TLS 1.3).
    assert isinstance(outcome, OSError), outcome
    assert handshake_failures_reach(hooks, reg, failures + 1)
    assert recorded(hooks, reg) == []


def test_client_with_certificate_from_another_ca_is_refused(reg, tpki, hooks, tmp_path):
    foreign = ensure_pki(tmp_path / "foreign")
    failures = stats(hooks, reg)["handshake_failures"]
    outcome = raw_tls_attempt(
        reg, tpki, (foreign.platform_register_cert, foreign.platform_register_key)
    )
    # Refused in the handshake (TLS 1.2) or by an alert on the first read (TLS 1.3).
    assert isinstance(outcome, OSError), outcome
    assert handshake_failures_reach(hooks, reg, failures + 1)
    assert recorded(hooks, reg) == []


def test_client_with_sandbox_certificate_is_served(reg, tpki, hooks):
    outcome = raw_tls_attempt(reg, tpki, (tpki.platform_register_cert, tpki.platform_register_key))
    assert isinstance(outcome, bytes) and outcome.startswith(b"HTTP/1.1 200")


# --- resources ------------------------------------------------------------------------------


def test_put_boks_creates_then_updates(reg, client):
    url = f"{reg.base_url}/register/{SYSID}/boks/{CPR}"
    assert client.put(url, data=STAMDATA, timeout=5).status_code == 201
    assert client.put(url, data=STAMDATA, timeout=5).status_code == 200


@pytest.mark.parametrize("identifier", [f":{CVR}", CVR])
def test_put_boks_accepts_both_cvr_forms(reg, client, hooks, identifier):
    base = f"{reg.base_url}/register/{SYSID}/boks/{identifier}"
    assert client.put(base, data=STAMDATA, timeout=5).status_code in (200, 201)
    assert client.put(f"{base}/myndighedstilmelding", data=TILMELD, timeout=5).status_code == 200
    state = hooks.get(f"{reg.control_url}/endusers/{CVR}", timeout=5).json()
    assert state == {"kind": "cvr", "tilmeldt": True}


def test_myndighedstilmelding_sets_the_indicator(reg, client, hooks):
    cpr = "0202902345"
    base = f"{reg.base_url}/register/{SYSID}/boks/{cpr}"
    client.put(base, data=STAMDATA, timeout=5).raise_for_status()
    off = TILMELD.replace(b">true<", b">false<")
    assert client.put(f"{base}/myndighedstilmelding", data=off, timeout=5).status_code == 200
    assert hooks.get(f"{reg.control_url}/endusers/{cpr}", timeout=5).json()["tilmeldt"] is False


def test_myndighedstilmelding_requires_existing_end_user(reg, client):
    url = f"{reg.base_url}/register/{SYSID}/boks/3112991234/myndighedstilmelding"
    answer = client.put(url, data=TILMELD, timeout=5)
    assert answer.status_code == 404
    assert fejl(answer)[0] == "3001"


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "code"),
    [
        ("PUT", f"/register/{SYSID}/boks/12345", STAMDATA, 400, "1001"),
        ("PUT", f"/register/{SYSID}/boks/{CPR}", b"<SlutbrugerStamdata>", 400, "1002"),
        ("PUT", f"/register/{SYSID}/boks/{CPR}", b"<Andet/>", 400, "1002"),
        (
            "PUT",
            f"/register/{SYSID}/boks/{CPR}/myndighedstilmelding",
            b"<Myndighedstilmelding/>",
            400,
            "1003",
        ),
        ("PUT", f"/register/bad%20id/boks/{CPR}", STAMDATA, 400, "1004"),
        ("PUT", f"/register/UNKNOWN/boks/{CPR}", STAMDATA, 403, "2001"),
        ("PUT", "/register/nothing/here", STAMDATA, 404, "3002"),
        ("DELETE", f"/register/{SYSID}/boks/{CPR}", b"", 405, "4001"),
        ("DELETE", f"/register/{SYSID}/boks/{CPR}/myndighedstilmelding", b"", 405, "4001"),
        ("GET", f"/register/{SYSID}/afsendelse/abc-1", b"", 405, "4001"),
        ("PUT", f"/register/{SYSID}/slutbrugerliste", b"", 405, "4001"),
    ],
)
def test_errors_answer_with_fejl(reg, client, hooks, method, path, body, status, code):
    answer = client.request(method, reg.base_url + path, data=body, timeout=5)
    assert answer.status_code == status
    assert fejl(answer)[0] == code
    assert answer.headers["Content-Type"].startswith("application/xml")
    if status == 405:
        assert answer.headers["Allow"]
    assert len(recorded(hooks, reg)) == 1


def test_subscription_list_in_parts(reg, client, hooks):
    cprs = ["0101901111", "0101902222", "0101903333"]
    # Sorted: the register serves lists in random order unless asked for sorted parts.
    hooks.put(
        f"{reg.control_url}/subscriptions/REG-2",
        json={"cpr": cprs, "cvr": [f":{CVR}"], "sorted": True},
        timeout=5,
    ).raise_for_status()
    answer = client.get(f"{reg.base_url}/register/REG-2/slutbrugerliste", timeout=5)
    assert answer.status_code == 200
    root = etree.fromstring(answer.content)
    ns = {"r": REGISTER_NS}
    ref = root.findtext("r:ReferenceId", namespaces=ns)
    assert root.findtext("r:AntalDele", namespaces=ns) == "2"
    assert root.findtext("r:AntalSlutbrugere", namespaces=ns) == "4"
    seen: list[str] = []
    for number in (1, 2):
        part = client.get(
            f"{reg.base_url}/register/REG-2/slutbrugerliste/{ref}/dele/{number}", timeout=5
        )
        assert part.status_code == 200
        part_root = etree.fromstring(part.content)
        assert part_root.findtext("r:DelNummer", namespaces=ns) == str(number)
        seen += [e.text or "" for e in part_root.iterfind("r:Slutbruger/*", namespaces=ns)]
    assert seen == [*cprs, CVR]
    beyond = client.get(f"{reg.base_url}/register/REG-2/slutbrugerliste/{ref}/dele/3", timeout=5)
    assert beyond.status_code == 404
    other_sysid = client.get(
        f"{reg.base_url}/register/{SYSID}/slutbrugerliste/{ref}/dele/1", timeout=5
    )
    assert other_sysid.status_code == 404
    assert (
        client.delete(f"{reg.base_url}/register/REG-2/slutbrugerliste/{ref}", timeout=5).status_code
        == 204
    )
    gone = client.get(f"{reg.base_url}/register/REG-2/slutbrugerliste/{ref}/dele/1", timeout=5)
    assert gone.status_code == 404


def test_empty_subscription_list_has_no_parts(reg, client, hooks):
    hooks.put(f"{reg.control_url}/subscriptions/REG-2", json={"cpr": [], "cvr": []}, timeout=5)
    answer = client.get(f"{reg.base_url}/register/REG-2/slutbrugerliste", timeout=5)
    root = etree.fromstring(answer.content)
    assert root.findtext(f"{{{REGISTER_NS}}}AntalDele") == "0"
    assert root.findtext(f"{{{REGISTER_NS}}}AntalSlutbrugere") == "0"


# --- test hooks -----------------------------------------------------------------------------


def test_requests_hook_records_and_forgets(reg, client, hooks):
    client.put(f"{reg.base_url}/register/{SYSID}/boks/{CPR}", data=STAMDATA, timeout=5)
    client.get(f"{reg.base_url}/register/{SYSID}/slutbrugerliste", timeout=5)
    entries = recorded(hooks, reg)
    assert [(e["method"], e["path"]) for e in entries] == [
        ("PUT", f"/register/{SYSID}/boks/{CPR}"),
        ("GET", f"/register/{SYSID}/slutbrugerliste"),
    ]
    assert entries[0]["body"] == STAMDATA.decode()
    expected = parse_subject(PLATFORM_REGISTER_SUBJECT).rfc4514_string()
    assert {e["client_subject"] for e in entries} == {expected}
    assert entries[0]["received_at"] <= entries[1]["received_at"]
    assert hooks.delete(f"{reg.control_url}/requests", timeout=5).status_code == 200
    assert recorded(hooks, reg) == []


def test_faults_hook_answers_status_then_recovers(reg, client, hooks):
    hooks.post(
        f"{reg.control_url}/faults", json={"status": 503, "count": 2}, timeout=5
    ).raise_for_status()
    url = f"{reg.base_url}/register/{SYSID}/boks/{CPR}"
    statuses = [client.put(url, data=STAMDATA, timeout=5).status_code for _ in range(3)]
    assert statuses == [503, 503, 200] or statuses == [503, 503, 201]
    assert len(recorded(hooks, reg)) == 3


def test_faults_hook_reset_drops_the_connection(reg, client, hooks):
    hooks.post(
        f"{reg.control_url}/faults", json={"status": "reset", "count": 1}, timeout=5
    ).raise_for_status()
    with pytest.raises(requests.ConnectionError):
        client.get(f"{reg.base_url}/register/{SYSID}/slutbrugerliste", timeout=5)
    assert (
        client.get(f"{reg.base_url}/register/{SYSID}/slutbrugerliste", timeout=5).status_code == 200
    )
    assert len(recorded(hooks, reg)) == 2


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "faults", {"status": "later", "count": 1}),
        ("POST", "faults", {"status": 503, "count": -1}),
        ("PUT", "subscriptions/REG-2", {"cpr": ["123"]}),
        ("PUT", "subscriptions/REG-2", {"phone": []}),
    ],
)
def test_hooks_refuse_bad_input(reg, hooks, method, path, body):
    answer = hooks.request(method, f"{reg.control_url}/{path}", json=body, timeout=5)
    assert answer.status_code == 400
    assert "error" in answer.json()


def test_unknown_hook_is_404(reg, hooks):
    assert hooks.get(f"{reg.control_url}/nothing", timeout=5).status_code == 404
