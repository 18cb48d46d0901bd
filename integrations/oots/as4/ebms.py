"""The ebMS 3 ``eb:Messaging`` header of an OOTS user message: built, and read back.

``build_messaging`` writes the ``UserMessage`` of an ``OutgoingAs4`` in the element order of
``ebms3/ebms-header-3_0-200704.xsd`` (an ``xsd:sequence``, stricter than the Domibus WS
plugin's ``xsd:all``), so a built header validates against both schemas.
``read_user_message`` reads a ``Messaging`` header back into a ``UserMessageHeader`` whatever
namespace its children are in (ebMS-qualified in a WS plugin or AS4 header, unqualified in a
Domibus push), and ``received_message`` joins it with the payloads a binding decoded into a
``ReceivedAs4``. Where the payloads travel (MIME parts, base64 elements of a SOAP body) is the
binding's business, not this module's.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from lxml import etree

from integrations.oots.as4.model import (
    EBMS_NS,
    EBRS_MIME,
    FINAL_RECIPIENT,
    GATEWAY_ROLE,
    MIME_TYPE_PROPERTY,
    OOTS_SERVICE,
    OOTS_SERVICE_TYPE,
    ORIGINAL_SENDER,
    OutgoingAs4,
    Property,
    ReceivedAs4,
    ReceivedPayload,
    TypedId,
    format_timestamp,
)
from integrations.oots.as4.soap import (
    Malformed,
    find_child,
    find_children,
    optional_text,
    q,
    required_text,
    sub,
    text_of,
)

# --- building -----------------------------------------------------------------------------------


def _eb(
    parent: etree._Element, local: str, text: str | None = None, **attrib: str
) -> etree._Element:
    return sub(parent, q(EBMS_NS, local), text, **attrib)


def _party(parent: etree._Element, local: str, party: str, party_type: str) -> None:
    element = _eb(parent, local)
    _eb(element, "PartyId", party, type=party_type)
    _eb(element, "Role", GATEWAY_ROLE)


def _property(parent: etree._Element, prop: Property) -> None:
    attrib = {"name": prop.name}
    if prop.type is not None:
        attrib["type"] = prop.type
    _eb(parent, "Property", prop.value, **attrib)


def _part_info(parent: etree._Element, content_id: str, mime_type: str) -> None:
    part = _eb(parent, "PartInfo", href=content_id)
    properties = _eb(part, "PartProperties")
    _eb(properties, "Property", mime_type, name=MIME_TYPE_PROPERTY)


def build_messaging(message: OutgoingAs4) -> etree._Element:
    """The ``eb:Messaging`` header of ``message`` (ebMS 3 element order)."""
    messaging = etree.Element(q(EBMS_NS, "Messaging"), nsmap={"eb": EBMS_NS})
    user = _eb(messaging, "UserMessage")
    info = _eb(user, "MessageInfo")
    _eb(info, "Timestamp", format_timestamp(message.timestamp))
    _eb(info, "MessageId", message.message_id)
    if message.ref_to_message_id is not None:
        _eb(info, "RefToMessageId", message.ref_to_message_id)
    parties = _eb(user, "PartyInfo")
    _party(parties, "From", message.from_party, message.party_type)
    _party(parties, "To", message.to_party, message.party_type)
    collaboration = _eb(user, "CollaborationInfo")
    _eb(collaboration, "Service", OOTS_SERVICE, type=OOTS_SERVICE_TYPE)
    _eb(collaboration, "Action", message.action)
    _eb(collaboration, "ConversationId", str(message.conversation_id))
    properties = _eb(user, "MessageProperties")
    sender, recipient = message.original_sender, message.final_recipient
    _property(properties, Property(ORIGINAL_SENDER, sender.value, sender.type))
    _property(properties, Property(FINAL_RECIPIENT, recipient.value, recipient.type))
    for prop in message.properties:
        _property(properties, prop)
    payload_info = _eb(user, "PayloadInfo")
    _part_info(payload_info, message.payload_id, EBRS_MIME)
    for attachment in message.attachments:
        _part_info(payload_info, attachment.content_id, attachment.mime_type)
    return messaging


# --- reading ------------------------------------------------------------------------------------


def _read_timestamp(value: str | None) -> datetime | None:
    """Lenient: the timestamp is informational, an odd one must not lose a message."""
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    # Domibus writes UTC; a value without an offset is read as UTC.
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


@dataclass(frozen=True)
class UserMessageHeader:
    """The ``UserMessage`` of a ``Messaging`` header, read; the payloads come apart."""

    message_id: str
    conversation_id: str
    service: str
    service_type: str | None
    action: str
    from_party: TypedId
    from_role: str | None
    to_party: TypedId | None
    to_role: str | None
    ref_to_message_id: str | None
    timestamp: datetime | None
    properties: tuple[Property, ...]
    #: ``PartInfo/@href`` (None: the body payload) -> ``MimeType`` part property.
    parts: tuple[tuple[str | None, str | None], ...]


def _read_party(
    parent: etree._Element | None, local: str, ns: tuple[str, ...], *, required: bool
) -> tuple[TypedId | None, str | None]:
    element = find_child(parent, local, ns)
    if element is None:
        if required:
            raise Malformed(f"PartyInfo/{local} is missing")
        return None, None
    party = find_child(element, "PartyId", ns)
    if party is None:
        raise Malformed(f"{local}/PartyId is missing")
    value = required_text(party, f"{local}/PartyId")
    return TypedId(value, party.get("type")), optional_text(find_child(element, "Role", ns), "Role")


def _read_properties(parent: etree._Element | None, ns: tuple[str, ...]) -> tuple[Property, ...]:
    if parent is None:
        return ()
    found = []
    for prop in find_children(parent, "Property", ns):
        name = prop.get("name")
        if not name:
            raise Malformed("a Property has no name")
        found.append(Property(name, text_of(prop) or "", prop.get("type")))
    return tuple(found)


def read_user_message(messaging: etree._Element, ns: tuple[str, ...]) -> UserMessageHeader:
    """The ``UserMessage`` of a ``Messaging`` header whose children are in ``ns``."""
    user = find_child(messaging, "UserMessage", ns)
    if user is None:
        raise Malformed("Messaging has no UserMessage")
    info = find_child(user, "MessageInfo", ns)
    parties = find_child(user, "PartyInfo", ns)
    collaboration = find_child(user, "CollaborationInfo", ns)
    if collaboration is None:
        raise Malformed("UserMessage has no CollaborationInfo")
    service = find_child(collaboration, "Service", ns)
    from_party, from_role = _read_party(parties, "From", ns, required=True)
    to_party, to_role = _read_party(parties, "To", ns, required=False)
    if from_party is None:
        raise Malformed("PartyInfo/From is missing")
    parts: list[tuple[str | None, str | None]] = []
    payload_info = find_child(user, "PayloadInfo", ns)
    for part in find_children(payload_info, "PartInfo", ns) if payload_info is not None else ():
        properties = _read_properties(find_child(part, "PartProperties", ns), ns)
        mime = next((p.value for p in properties if p.name.lower() == "mimetype"), None)
        href = part.get("href")
        parts.append((href.strip() if href else None, mime))
    return UserMessageHeader(
        message_id=required_text(find_child(info, "MessageId", ns), "MessageInfo/MessageId"),
        conversation_id=required_text(
            find_child(collaboration, "ConversationId", ns), "CollaborationInfo/ConversationId"
        ),
        service=required_text(service, "CollaborationInfo/Service"),
        service_type=service.get("type") if service is not None else None,
        action=required_text(find_child(collaboration, "Action", ns), "CollaborationInfo/Action"),
        from_party=from_party,
        from_role=from_role,
        to_party=to_party,
        to_role=to_role,
        ref_to_message_id=optional_text(find_child(info, "RefToMessageId", ns), "RefToMessageId"),
        timestamp=_read_timestamp(text_of(find_child(info, "Timestamp", ns))),
        properties=_read_properties(find_child(user, "MessageProperties", ns), ns),
        parts=tuple(parts),
    )


def received_message(
    header: UserMessageHeader, payloads: tuple[ReceivedPayload, ...]
) -> ReceivedAs4:
    """The received message: a header read by ``read_user_message`` and its decoded payloads."""
    return ReceivedAs4(
        message_id=header.message_id,
        conversation_id=header.conversation_id,
        service=header.service,
        service_type=header.service_type,
        action=header.action,
        from_party=header.from_party,
        from_role=header.from_role,
        to_party=header.to_party,
        to_role=header.to_role,
        ref_to_message_id=header.ref_to_message_id,
        timestamp=header.timestamp,
        properties=header.properties,
        payloads=payloads,
    )
