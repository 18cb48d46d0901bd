"""Round trips with an independent AS4 implementation: the PyPI package ``as4`` as the partner.

``as4`` runs in its own venv (``.venv-as4peer``, made by ``make .venv-as4peer/.installed`` from
``tests/as4_peer/requirements.txt``: it needs ``cryptography<47``) as a separate process
(``tests/as4_peer/oots_peer.py``, the small OOTS profile over ``as4``'s Peppol message):

- the platform's sender pushes an OOTS request to it; ``as4`` verifies the signature (Messaging,
  Body and the ``cid:`` payload with the SwA transform), decrypts, decompresses, and its signed
  receipt passes the platform's receipt check (NRR references = what the platform signed);
- ``as4`` pushes an OOTS answer to the platform's receiving endpoint; the platform verifies,
  decrypts, stores, and ``as4`` verifies the platform's receipt against what it signed;
- a message from ``as4`` signed with a certificate the platform does not know is refused with an
  ``eb:Error`` that ``as4`` reads as such.
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Final

import pytest

from integrations.oots.as4.model import ACTION_RESPONSE
from integrations.oots.as4.receiver import As4ReceiverApp
from integrations.oots.as4.sender import As4Sender
from tests.as4_material import de_partner, dk_access_point, key_pem, party
from tests.oots_domibus_material import REEL_CONVERSATION, outgoing, regrep_request
from tests.wsgi_serving import LocalWsgiServer

ROOT: Final = Path(__file__).resolve().parents[2]
PEER_PYTHON: Final = ROOT / ".venv-as4peer" / "bin" / "python"
PEER: Final = ROOT / "tests" / "as4_peer" / "oots_peer.py"


def _peer_python() -> str:
    if not PEER_PYTHON.exists():
        pytest.fail(
            f"{PEER_PYTHON} is missing: run `make .venv-as4peer/.installed` (make test does)",
            pytrace=False,
        )
    return str(PEER_PYTHON)


def _config(tmp_path: Path, me: str, partner: str, **extra: Any) -> Path:
    files = {}
    for name, data in (
        ("cert", party(me).pem),
        ("key", key_pem(me)),
        ("partner_cert", party(partner).pem),
    ):
        path = tmp_path / f"{me}-{name}.pem"
        path.write_bytes(data)
        files[name] = str(path)
    config = tmp_path / f"{me}-config.json"
    config.write_text(json.dumps({"party_id": me, "partner_id": partner, **files, **extra}))
    return config


@contextmanager
def german_peer(tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    process = subprocess.Popen(
        [_peer_python(), str(PEER), "serve", str(_config(tmp_path, "AP_DE_01", "AP_DK_01"))],
        stdout=subprocess.PIPE,
        stderr=sys.stderr,
        text=True,
    )
    try:
        assert process.stdout is not None
        port = json.loads(process.stdout.readline())["port"]
        yield f"http://127.0.0.1:{port}/as4", process
    finally:
        process.kill()
        process.wait(10)


def test_the_platform_pushes_to_as4_and_verifies_its_receipt(tmp_path: Path) -> None:
    with german_peer(tmp_path) as (url, process):
        sender = As4Sender(
            dk_access_point(), {"AP_DE_01": de_partner(url)}, sleep=lambda s: pytest.fail("retried")
        )
        result = sender.send(outgoing())
        assert process.stdout is not None
        seen = json.loads(process.stdout.readline())
    assert result.attempts == 1 and result.receipt_message_id
    assert seen["state"] == "received" and seen["error"] is None
    assert seen["message_id"] == outgoing().message_id
    assert seen["signer"] == party("AP_DK_01").cert.subject.rfc4514_string()
    # as4 checked the payload reference with the SwA transform and decompressed the payload.
    assert outgoing().payload_id in seen["references"]
    (payload,) = seen["payloads"].values()
    assert base64.b64decode(payload) == regrep_request()


def _send_from_as4(tmp_path: Path, url: str, signer: str = "AP_DE_01") -> dict[str, Any]:
    payload = tmp_path / "answer.xml"
    payload.write_bytes(regrep_request())
    config = _config(
        tmp_path,
        signer,
        "AP_DK_01",
        url=url,
        payload=str(payload),
        action=ACTION_RESPONSE,
        message_id="as4-peer-answer-1@oots.eu",
        conversation_id=str(REEL_CONVERSATION),
        original_sender=["DE73524311", "urn:cef.eu:names:identifier:EAS:9930"],
        final_recipient=["29189846", "urn:cef.eu:names:identifier:EAS:0184"],
    )
    if signer != "AP_DE_01":
        # A stranger's key and certificate under the German party id.
        data = json.loads(config.read_text())
        data["party_id"] = "AP_DE_01"
        config.write_text(json.dumps(data))
    done = subprocess.run(
        [_peer_python(), str(PEER), "send", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


class Store:
    def __init__(self) -> None:
        self.messages: list[Any] = []

    def store(self, message: Any) -> bool:
        self.messages.append(message)
        return True


def test_as4_pushes_to_the_platform_and_verifies_its_receipt(tmp_path: Path) -> None:
    store = Store()
    app = As4ReceiverApp(dk_access_point(), {"AP_DE_01": de_partner()}, store)
    with LocalWsgiServer(app) as server:
        result = _send_from_as4(tmp_path, server.base_url + "/as4")
    assert result.get("error") is None, result
    assert result["status"] == 200 and result["state"] == "acknowledged"
    (message,) = store.messages
    assert message.message_id == "as4-peer-answer-1@oots.eu"
    assert message.action == ACTION_RESPONSE and message.body == regrep_request()
    assert message.conversation_id == str(REEL_CONVERSATION)


def test_a_stranger_signing_for_the_partner_gets_an_error_signal(tmp_path: Path) -> None:
    store = Store()
    app = As4ReceiverApp(dk_access_point(), {"AP_DE_01": de_partner()}, store)
    with LocalWsgiServer(app) as server:
        result = _send_from_as4(tmp_path, server.base_url + "/as4", signer="AP_FR_01")
    assert result["status"] == 500 and result["state"] == "rejected"
    assert result["ebms_error"] == "EBMS:0101"
    assert store.messages == []
