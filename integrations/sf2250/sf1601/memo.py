"""A MeMo ``Message`` of type NEMSMS inside a ``kombi_request``: what SF1601 is sent.

The rules are those of ``../shared/docs/SF1601.md`` §4 (the MeMo XSD facts):

- namespace ``https://DigitalPost.dk/MeMo-1``, elements qualified; ``memoVersion`` required;
- ``MessageHeader`` children in schema order: messageType, messageUUID, label, notification,
  mandatory, legalNotification, Sender, Recipient (the optional ones this message leaves out
  keep their places empty);
- ``messageType`` ``NEMSMS``; ``messageUUID`` a version-4 UUID; ``label`` at most 256;
  ``notification`` (the SMS text) not empty and at most 150 characters;
- ``Sender``: senderID (the authority's CVR), idType ``CVR``, label (required);
  ``Recipient``: recipientID (CPR 10 or CVR 8 characters), idType ``CPR``/``CVR``;
- no ``MessageBody``: the NemSMS sample carries the header only (**U** in the digest).

Chosen where the digest is uncertain (constants here, easy to change): ``MEMO_VERSION`` 1.2
(D12 removed ``memoSchVersion``; ``mandatory`` and ``legalNotification`` are still written,
``false``, which 1.1 requires and 1.2 allows), and no body for an SMS.
``build_memo`` refuses what breaks a rule with ``MemoRuleBroken`` (a programming or input
error caught before any outward call); the 150-character SMS limit has its own business
error (SP-510) raised by the handler before this.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import Final

from lxml import etree

MEMO_NS: Final = "https://DigitalPost.dk/MeMo-1"
MEMO_VERSION: Final = "1.2"
NEMSMS: Final = "NEMSMS"
KOMBI_NEMSMS: Final = "NemSMS"
#: MeMo's limit for ``notification``.
NOTIFICATION_MAX: Final = 150
TEXT_MAX: Final = 256
_UUID4: Final = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")
_ID: Final = {"CPR": re.compile(r"\d{10}"), "CVR": re.compile(r"\d{8}")}
#: The header's children in schema order, as written.
HEADER_ORDER: Final = (
    "messageType",
    "messageUUID",
    "label",
    "notification",
    "mandatory",
    "legalNotification",
    "Sender",
    "Recipient",
)


class MemoRuleBroken(ValueError):
    """What was to be sent breaks a MeMo rule; nothing is sent."""


@dataclass(frozen=True)
class NemSmsMemo:
    message_uuid: str
    #: The SMS text (MeMo ``notification``).
    text: str
    #: MeMo ``label``: the message's title.
    label: str
    sender_cvr: str
    sender_label: str
    #: ``CPR`` or ``CVR``.
    recipient_kind: str
    recipient_id: str


def new_message_uuid() -> str:
    """A fresh version-4 UUID (lower case), as MeMo's pattern demands."""
    return str(uuid.uuid4())


def _q(local: str) -> str:
    return f"{{{MEMO_NS}}}{local}"


def check_memo(memo: NemSmsMemo) -> None:
    """Every rule of the module docstring; ``MemoRuleBroken`` names the first broken one."""
    if not _UUID4.fullmatch(memo.message_uuid):
        raise MemoRuleBroken("messageUUID must be a version-4 UUID in lower case")
    if not memo.text.strip():
        raise MemoRuleBroken("notification must not be empty for a NEMSMS message")
    if len(memo.text) > NOTIFICATION_MAX:
        raise MemoRuleBroken(f"notification is at most {NOTIFICATION_MAX} characters")
    for name, value in (("label", memo.label), ("Sender/label", memo.sender_label)):
        if not value.strip() or len(value) > TEXT_MAX:
            raise MemoRuleBroken(f"{name} must be 1-{TEXT_MAX} characters")
    if not _ID["CVR"].fullmatch(memo.sender_cvr):
        raise MemoRuleBroken("senderID must be a CVR number of 8 digits")
    pattern = _ID.get(memo.recipient_kind)
    if pattern is None or not pattern.fullmatch(memo.recipient_id):
        raise MemoRuleBroken("recipientID must be a CPR (10) or CVR (8) number of its idType")


def build_memo(memo: NemSmsMemo) -> etree._Element:
    """The ``memo:Message`` element (checked by ``check_memo`` first)."""
    check_memo(memo)
    message = etree.Element(_q("Message"), {"memoVersion": MEMO_VERSION}, nsmap={"memo": MEMO_NS})
    header = etree.SubElement(message, _q("MessageHeader"))
    for name, value in (
        ("messageType", NEMSMS),
        ("messageUUID", memo.message_uuid),
        ("label", memo.label),
        ("notification", memo.text),
        ("mandatory", "false"),
        ("legalNotification", "false"),
    ):
        etree.SubElement(header, _q(name)).text = value
    sender = etree.SubElement(header, _q("Sender"))
    etree.SubElement(sender, _q("senderID")).text = memo.sender_cvr
    etree.SubElement(sender, _q("idType")).text = "CVR"
    etree.SubElement(sender, _q("label")).text = memo.sender_label
    recipient = etree.SubElement(header, _q("Recipient"))
    etree.SubElement(recipient, _q("recipientID")).text = memo.recipient_id
    etree.SubElement(recipient, _q("idType")).text = memo.recipient_kind
    return message


def kombi_request(memo: NemSmsMemo) -> bytes:
    """The body of ``POST /service/KombiPostAfsend_1/kombi``: KombiValgKode NemSMS + MeMo."""
    root = etree.Element("kombi_request")
    etree.SubElement(root, "KombiValgKode").text = KOMBI_NEMSMS
    root.append(build_memo(memo))
    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8"))
