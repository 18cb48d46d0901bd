"""An OOTS partner access point made of the PyPI package ``as4`` (0.2.0), run as its own process.

Runs in ``.venv-as4peer`` (``tests/as4_peer/requirements.txt``), never in the platform's venv:
``as4`` needs ``cryptography<47``. ``tests/integration/test_as4_peer_interop.py`` starts it:

- ``serve CONFIG``: an HTTP endpoint on 127.0.0.1 (first stdout line: ``{"port": N}``) that
  receives the platform's push with ``as4``'s own parser (MIME, signature over Messaging, Body and
  every ``cid:``, decryption, capped decompression; signer pinned to the platform's certificate)
  and answers ``as4``'s signed receipt or error signal; one JSON line per message on stdout;
- ``send CONFIG``: builds an OOTS ``ExecuteQueryResponse`` with ``as4``, POSTs it to the
  platform, checks the platform's receipt (signature, ``RefToMessageId``, NRR references =
  what ``as4`` signed) and prints one JSON line.

Only the Peppol profile of ``as4`` is public, so this file is the small OOTS profile: the
message is ``as4``'s Peppol message with the Peppol-only parts replaced, namely the OOTS
UserMessage (no AgreementRef, service ``QueryManager`` of type
``urn:oasis:names:tc:ebcore:ebrs:ebms:binding:1.0``, the OOTS action, the gateway role instead
of initiator/responder, the OOTS party id type, ``originalSender``/``finalRecipient`` with
their EAS types, ``MimeType`` ``application/x-ebrs+xml``), the RegRep payload sent as it is
instead of SBDH-wrapped, and on receipt the generic ``AS4Message`` checks instead of Peppol's
party-type and SBDH checks; the MIME unpacking takes the SOAP part and every
``application/octet-stream`` part (Peppol's takes one).

Not type-checked with the platform (``as4`` is not importable there); see pyproject's mypy
override.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import sys
import urllib.request
from datetime import UTC, datetime
from email import policy
from email.parser import BytesParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from as4 import (
    AS4BaseCredentials,
    AS4ExternalParty,
    AS4InternalCredentials,
    AS4InternalParty,
    AS4LocalPrivateKey,
    AS4PartyIdentity,
    AS4Profile,
    AS4ReceivingExchange,
    AS4References,
    AS4SendingExchange,
    SecurityPolicy,
    pinned_certificates,
)
from as4.core.message import AS4Message
from as4.core.receipt import AS4Receipt
from as4.models.common import NAMESPACES
from as4.models.ebms.message_info import MessageId, MessageInfo, Timestamp
from as4.models.ebms.user_message import (
    Action,
    CollaborationInfo,
    ConversationId,
    MessageProperties,
    PartInfo,
    PartProperties,
    PartyFrom,
    PartyId,
    PartyInfo,
    PartyTo,
    PayloadInfo,
    Property,
    Role,
    Service,
    UserMessage,
)
from as4.profiles.peppol.message import PeppolAS4Message
from as4.utils.cipher_handler import CipherHandler
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from pydantic import BaseModel, ConfigDict

OOTS_PARTY_TYPE = "urn:oasis:names:tc:ebcore:partyid-type:unregistered:oots"
GATEWAY_ROLE = "http://sdg.europa.eu/edelivery/gateway"
OOTS_SERVICE = "QueryManager"
OOTS_SERVICE_TYPE = "urn:oasis:names:tc:ebcore:ebrs:ebms:binding:1.0"
EBRS_MIME = "application/x-ebrs+xml"


class OotsBuilderArgs(BaseModel):
    model_config = ConfigDict(arbitrary_types_allowed=True)

    namespace_map: dict[str, str] = NAMESPACES
    action: str
    original_sender: tuple[str, str]
    final_recipient: tuple[str, str]


class OotsAS4Message(PeppolAS4Message):
    """``as4``'s message with the OOTS UserMessage and no SBDH (see the module docstring)."""

    @classmethod
    def process(
        cls,
        fields: dict[str, Any],
        parse_context: Any,
        soap_envelope_element: Any,
        mime_attachments: dict[str, bytes],
    ) -> dict[str, Any]:
        return AS4Message.process.__func__(
            cls, fields, parse_context, soap_envelope_element, mime_attachments
        )

    @classmethod
    def get_user_message(
        cls,
        local_party: AS4InternalParty,
        remote_party: AS4ExternalParty,
        builder_args: Any,
        references: AS4References,
    ) -> UserMessage:
        def party(kind: type, identity: AS4PartyIdentity) -> Any:
            return kind(
                party_id=PartyId(value=identity.party_id, type_value=identity.party_type),
                role=Role(value=GATEWAY_ROLE),
            )

        properties = [
            Property(
                name="originalSender",
                value=builder_args.original_sender[0],
                property_type=builder_args.original_sender[1],
            ),
            Property(
                name="finalRecipient",
                value=builder_args.final_recipient[0],
                property_type=builder_args.final_recipient[1],
            ),
        ]
        part_properties = PartProperties(
            properties=[
                Property(name="MimeType", value=EBRS_MIME),
                Property(name="CompressionType", value="application/gzip"),
            ]
        )
        return UserMessage(
            message_info=MessageInfo(
                timestamp=Timestamp(value=datetime.now(UTC)),
                message_id=MessageId(value=references.message_id),
            ),
            party_info=PartyInfo(
                party_from=party(PartyFrom, local_party.identity),
                party_to=party(PartyTo, remote_party.identity),
            ),
            collaboration_info=CollaborationInfo(
                service=Service(value=OOTS_SERVICE, type_value=OOTS_SERVICE_TYPE),
                action=Action(value=builder_args.action),
                conversation_id=ConversationId(value=references.conversation_id),
            ),
            message_properties=MessageProperties(properties=properties),
            payload_info=PayloadInfo(
                part_info=[
                    PartInfo(part_properties=part_properties, href=f"cid:{attachment}")
                    for attachment in references.attachment_id_encrypted_data_id_map
                ]
            ),
        )

    @classmethod
    def build_message(
        cls,
        payload: bytes,
        *,
        local_party: AS4InternalParty,
        remote_party: AS4ExternalParty,
        builder_args: Any,
        references: AS4References,
    ) -> OotsAS4Message:
        compressed = gzip.compress(payload)
        session_key, encrypted = CipherHandler.encrypt_payload(compressed)
        wrapped_key = remote_party.credentials.rsa_public_key.encrypt(
            session_key,
            padding.OAEP(
                mgf=padding.MGF1(algorithm=hashes.SHA256()), algorithm=hashes.SHA256(), label=b""
            ),
        )
        attachment_id, _ = references.encrypted_data_attachment_mapping()
        envelope = cls.get_soap_envelope(
            local_party,
            remote_party,
            builder_args,
            references,
            wrapped_key,
            compressed_payloads={attachment_id: compressed},
        )
        return cls(
            soap_envelope=envelope,
            message_id=references.message_id,
            messaging_id=references.messaging_id,
            mime_attachments={attachment_id: encrypted},
            decrypted_data={attachment_id: payload},
        )


class OotsAS4Profile(AS4Profile):
    @classmethod
    def get_profile_name(cls) -> str:
        return "oots"

    @classmethod
    def message_class(cls) -> type[OotsAS4Message]:
        return OotsAS4Message

    @classmethod
    def receipt_class(cls) -> type[AS4Receipt]:
        return AS4Receipt

    @classmethod
    def unpack_message(cls, payload: bytes) -> tuple[bytes, dict[str, bytes]]:
        message = BytesParser(policy=policy.default).parsebytes(payload)
        soap: bytes | None = None
        parts: dict[str, bytes] = {}
        for part in message.iter_parts():
            content = part.get_payload(decode=True)
            if part.get_content_type() == "application/soap+xml" and soap is None:
                soap = content
            else:
                parts[str(part.get("content-id", "")).strip().strip("<>")] = content
        if soap is None:
            raise ValueError("no SOAP part")
        return soap, parts

    @classmethod
    def parse_receipt(cls, payload: bytes, expected_signer: x509.Certificate) -> AS4Receipt:
        return AS4Receipt.parse(payload, expected_signer)

    @classmethod
    def build_message(
        cls,
        payload: bytes,
        *,
        local_party: AS4InternalParty,
        remote_party: AS4ExternalParty,
        builder_args: Any,
        references: AS4References | None = None,
    ) -> OotsAS4Message:
        return OotsAS4Message.build_message(
            payload,
            local_party=local_party,
            remote_party=remote_party,
            builder_args=builder_args,
            references=references or AS4References(),
        )


def _cert(path: str) -> x509.Certificate:
    return x509.load_pem_x509_certificate(Path(path).read_bytes())


def _parties(config: dict[str, Any]) -> tuple[AS4InternalParty, AS4ExternalParty]:
    key = serialization.load_pem_private_key(Path(config["key"]).read_bytes(), None)
    local = AS4InternalParty(
        identity=AS4PartyIdentity(party_id=config["party_id"], party_type=OOTS_PARTY_TYPE),
        credentials=AS4InternalCredentials(
            certificate=_cert(config["cert"]), private_key=AS4LocalPrivateKey(key)
        ),
    )
    remote = AS4ExternalParty(
        identity=AS4PartyIdentity(party_id=config["partner_id"], party_type=OOTS_PARTY_TYPE),
        credentials=AS4BaseCredentials(certificate=_cert(config["partner_cert"])),
    )
    return local, remote


def _say(record: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(record) + "\n")
    sys.stdout.flush()


def serve(config: dict[str, Any]) -> None:
    local, remote = _parties(config)
    policy_ = SecurityPolicy(
        signer_resolver=pinned_certificates(remote.credentials.certificate),
        maximum_decompressed_size=10 * 1024 * 1024,
    )

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            headers = {"Content-Type": self.headers.get("Content-Type", "")}
            exchange = AS4ReceivingExchange(profile=OotsAS4Profile, local_party=local).receive(
                request_headers=headers, request_body=body, security_policy=policy_
            )
            message = exchange.message
            error = (
                None
                if message is None or message.parse_error is None
                else repr(message.parse_error)
            )
            payloads = (
                {}
                if message is None
                else {
                    cid: base64.b64encode(content).decode()
                    for cid, content in message.decrypted_data.items()
                }
            )
            _say(
                {
                    "message_id": exchange.message_id,
                    "state": str(exchange.state),
                    "error": error,
                    "signer": None
                    if message is None or message.signer_certificate is None
                    else message.signer_certificate.subject.rfc4514_string(),
                    "references": [r.uri for r in exchange.signed_references],
                    "payloads": payloads,
                }
            )
            _, signal = exchange.build_signal()
            self.send_response(200 if exchange.successful else 500)
            self.send_header("Content-Type", "application/soap+xml; charset=UTF-8")
            self.send_header("Content-Length", str(len(signal)))
            self.end_headers()
            self.wfile.write(signal)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    _say({"port": server.server_address[1]})
    server.serve_forever()


def send(config: dict[str, Any]) -> None:
    local, remote = _parties(config)
    references = AS4References(
        message_id=config["message_id"], conversation_id=config["conversation_id"]
    )
    exchange = AS4SendingExchange(
        profile=OotsAS4Profile, local_party=local, remote_party=remote, identifiers=references
    )
    args = OotsBuilderArgs(
        action=config["action"],
        original_sender=tuple(config["original_sender"]),
        final_recipient=tuple(config["final_recipient"]),
    )
    headers, body = exchange.build(Path(config["payload"]).read_bytes(), args)
    request = urllib.request.Request(config["url"], data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            status, answer = response.status, response.read()
    except urllib.error.HTTPError as failure:
        status, answer = failure.code, failure.read()
    result: dict[str, Any] = {
        "status": status,
        "message_id": exchange.message_id,
        "body_sha256": hashlib.sha256(body).hexdigest(),
    }
    try:
        exchange.receive_signal(answer)
        result["state"] = str(exchange.state)
    except Exception as failure:
        result["state"] = str(exchange.state)
        result["error"] = repr(failure)
    if exchange.error is not None:
        result["ebms_error"] = exchange.error.error_code
    _say(result)


if __name__ == "__main__":
    mode, path = sys.argv[1], sys.argv[2]
    settings = json.loads(Path(path).read_text())
    {"serve": serve, "send": send}[mode](settings)
