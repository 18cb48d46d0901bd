"""An OOTS user message on the AS4 wire: packed (compress, sign, encrypt, MIME) and unpacked.

``pack_user_message`` turns an ``OutgoingAs4`` into the HTTP body of a one-way push, in the
order AS4 §1.4.3.1 and §1.4.2.6 prescribe: the ``eb:Messaging`` header (``ebms.build_messaging``)
in a SOAP 1.2 envelope with an empty Body; each payload gzipped (its ``PartInfo`` gains
``CompressionType=application/gzip``, ``MimeType`` keeps the original type); the envelope and the
compressed parts signed; the parts encrypted for the partner; everything as one SwA
``multipart/related`` message. It keeps the signed references, which the partner's receipt
must repeat.

``unpack_user_message`` is the inverse on the receiving side: MIME -> SOAP (hardened parser) ->
decrypt with the access point's key -> verify against the partner's certificate -> check that
every part is named by a ``PartInfo`` and the other way round -> decompress with a size cap ->
``ReceivedAs4``. Every failure is an ``As4*`` error carrying its ``EBMS:00xx`` code.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

from cryptography import x509
from lxml import etree

from integrations.oots.as4 import compression
from integrations.oots.as4.ebms import (
    UserMessageHeader,
    build_messaging,
    read_user_message,
    received_message,
)
from integrations.oots.as4.encryption import (
    DecryptionKey,
    decrypt_attachments,
    encrypt_attachments,
)
from integrations.oots.as4.errors import As4HeaderInvalid, As4MessageMalformed
from integrations.oots.as4.mime import (
    MimePart,
    RelatedMessage,
    build_related,
    content_id_of,
    new_part_id,
    parse_related,
)
from integrations.oots.as4.model import (
    EBMS_NS,
    EBRS_MIME,
    GATEWAY_ROLE,
    MIME_TYPE_PROPERTY,
    OOTS_PARTY_TYPE,
    OutgoingAs4,
    ReceivedAs4,
    ReceivedPayload,
    format_timestamp,
    new_message_id,
)
from integrations.oots.as4.signature import (
    SignedReference,
    SigningKey,
    VerifiedSignature,
    sign_envelope,
    verify_envelope,
)
from integrations.oots.as4.soap import (
    Malformed,
    find_child,
    find_children,
    new_envelope,
    parse_envelope,
    q,
    serialize,
    sub,
)
from integrations.oots.as4.wssec import envelope_parts, messaging_of

SOAP_PART_TYPE: Final = "application/soap+xml; charset=UTF-8"
_EB: Final = (EBMS_NS,)
#: ebMS 3 §5.2.2.9: the test service and action, answered with a receipt and never delivered.
TEST_SERVICE: Final = EBMS_NS.rstrip("/") + "/service"
TEST_ACTION: Final = EBMS_NS.rstrip("/") + "/test"


@dataclass(frozen=True)
class PackedMessage:
    """A user message ready to POST: its ``Content-Type`` and body, and what was signed."""

    message_id: str
    content_type: str
    body: bytes
    references: tuple[SignedReference, ...]


def _mark_compressed(messaging: etree._Element, href: str) -> None:
    for part in messaging.iter(q(EBMS_NS, "PartInfo")):
        if part.get("href") == href:
            properties = part.find(q(EBMS_NS, "PartProperties"))
            assert properties is not None
            prop = sub(properties, q(EBMS_NS, "Property"), compression.GZIP)
            prop.set("name", compression.COMPRESSION_TYPE)


def pack_user_message(
    message: OutgoingAs4,
    signing: SigningKey,
    recipient: x509.Certificate,
    *,
    compress: bool = True,
) -> PackedMessage:
    """``message`` compressed, signed with ``signing``, encrypted for ``recipient``."""
    root, header, _ = new_envelope()
    messaging = build_messaging(message)
    header.append(messaging)
    payloads = [
        (message.payload_id, EBRS_MIME, message.payload),
        *((a.content_id, a.mime_type, a.content) for a in message.attachments),
    ]
    parts: list[MimePart] = []
    for href, mime_type, content in payloads:
        if compress:
            _mark_compressed(messaging, href)
            parts.append(
                MimePart(content_id_of(href), compression.GZIP, compression.compress(content))
            )
        else:
            parts.append(MimePart(content_id_of(href), mime_type, content))
    references = sign_envelope(root, {p.content_id: p.content for p in parts}, signing)
    encrypted = encrypt_attachments(root, parts, recipient)
    soap = MimePart(new_part_id(), SOAP_PART_TYPE, serialize(root))
    content_type, body = build_related(soap, encrypted)
    return PackedMessage(message.message_id, content_type, body, references)


def _test_messaging(
    message_id: str, from_party: str, to_party: str, party_type: str
) -> etree._Element:
    messaging = etree.Element(q(EBMS_NS, "Messaging"), nsmap={"eb": EBMS_NS})
    user = sub(messaging, q(EBMS_NS, "UserMessage"))
    info = sub(user, q(EBMS_NS, "MessageInfo"))
    sub(info, q(EBMS_NS, "Timestamp"), format_timestamp(datetime.now(UTC)))
    sub(info, q(EBMS_NS, "MessageId"), message_id)
    parties = sub(user, q(EBMS_NS, "PartyInfo"))
    for local, party in (("From", from_party), ("To", to_party)):
        element = sub(parties, q(EBMS_NS, local))
        sub(element, q(EBMS_NS, "PartyId"), party, type=party_type)
        sub(element, q(EBMS_NS, "Role"), GATEWAY_ROLE)
    collaboration = sub(user, q(EBMS_NS, "CollaborationInfo"))
    sub(collaboration, q(EBMS_NS, "Service"), TEST_SERVICE)
    sub(collaboration, q(EBMS_NS, "Action"), TEST_ACTION)
    sub(collaboration, q(EBMS_NS, "ConversationId"), str(uuid.uuid4()))
    return messaging


def pack_test_message(
    from_party: str, to_party: str, signing: SigningKey, *, party_type: str = OOTS_PARTY_TYPE
) -> PackedMessage:
    """The ebMS test message (no payload: nothing to encrypt), signed: what a partner answers
    with a receipt and never delivers; ``serviceplatform as4 ping`` in the making."""
    message_id = new_message_id()
    root, header, _ = new_envelope()
    header.append(_test_messaging(message_id, from_party, to_party, party_type))
    references = sign_envelope(root, {}, signing)
    soap = MimePart(new_part_id(), SOAP_PART_TYPE, serialize(root))
    content_type, body = build_related(soap, [])
    return PackedMessage(message_id, content_type, body, references)


# --- receiving -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class OpenedMessage:
    """A received SwA message whose SOAP part is parsed, nothing checked yet."""

    root: etree._Element
    related: RelatedMessage

    @property
    def messaging(self) -> etree._Element:
        header, _ = envelope_parts(self.root)
        messaging = messaging_of(header)
        if messaging is None:
            raise As4MessageMalformed("the SOAP header has no eb:Messaging")
        return messaging

    def user_header(self) -> UserMessageHeader:
        """The ``UserMessage`` header (``As4HeaderInvalid`` when a signal or unreadable)."""
        try:
            return read_user_message(self.messaging, _EB)
        except Malformed as exc:
            raise As4HeaderInvalid(str(exc)) from exc


def open_message(content_type: str, body: bytes) -> OpenedMessage:
    """Split the MIME message and parse its SOAP part (no DTD, no entities, no network)."""
    related = parse_related(content_type, body)
    try:
        root = parse_envelope(related.root.content)
    except Malformed as exc:
        raise As4MessageMalformed(f"the SOAP part: {exc}") from exc
    return OpenedMessage(root, related)


@dataclass(frozen=True)
class UnpackedMessage:
    header: UserMessageHeader
    message: ReceivedAs4
    signature: VerifiedSignature


def _part_properties(messaging: etree._Element) -> dict[str, dict[str, str]]:
    """``PartInfo/@href`` (lower case) -> its part properties."""
    found: dict[str, dict[str, str]] = {}
    user = find_child(messaging, "UserMessage", _EB)
    payload_info = find_child(user, "PayloadInfo", _EB)
    for part in find_children(payload_info, "PartInfo", _EB) if payload_info is not None else ():
        href = (part.get("href") or "").strip()
        if not href.lower().startswith("cid:"):
            raise As4MessageMalformed(f"PartInfo {href!r} is not a MIME part (cid:)")
        properties = find_child(part, "PartProperties", _EB)
        values = {
            p.get("name", ""): (p.text or "").strip()
            for p in (find_children(properties, "Property", _EB) if properties is not None else ())
        }
        found[content_id_of(href).lower()] = values
    return found


def unpack_user_message(
    opened: OpenedMessage,
    *,
    sender_certificates: tuple[x509.Certificate, ...],
    decryption: DecryptionKey,
    max_bytes: int = compression.DEFAULT_MAX_BYTES,
) -> UnpackedMessage:
    """Decrypt, verify, decompress; see the module docstring."""
    header = opened.user_header()
    decrypted = decrypt_attachments(opened.root, opened.related.attachments, decryption)
    signature = verify_envelope(
        opened.root, {p.content_id: p.content for p in decrypted}, sender_certificates
    )
    properties = _part_properties(opened.messaging)
    by_id = {p.content_id.lower(): p for p in decrypted}
    if set(by_id) != set(properties):
        extra = sorted(set(by_id) ^ set(properties))
        raise As4MessageMalformed(f"PayloadInfo and the MIME parts differ on {extra[0]}")
    payloads: list[ReceivedPayload] = []
    allowance = max_bytes
    for content_id, values in properties.items():
        part = by_id[content_id]
        content = part.content
        kind = values.get(compression.COMPRESSION_TYPE)
        if kind is not None:
            if kind != compression.GZIP:
                raise As4MessageMalformed(f"CompressionType {kind!r} is not application/gzip")
            content = compression.decompress(content, max(allowance, 0))
        allowance -= len(content)
        mime_type = values.get(MIME_TYPE_PROPERTY) or part.media_type
        payloads.append(ReceivedPayload(f"cid:{part.content_id}", mime_type, content))
    return UnpackedMessage(header, received_message(header, tuple(payloads)), signature)
