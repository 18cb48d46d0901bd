"""ebMS 3 signal messages of AS4: the signed receipt and the ``eb:Error`` signal, built and read.

- ``build_receipt``: the synchronous answer to a user message (AS4 §1.4.3.2): a
  ``SignalMessage`` with ``RefToMessageId`` = the received MessageId and a ``Receipt`` holding
  ``ebbp:NonRepudiationInformation`` with one ``MessagePartNRInformation/ds:Reference`` per
  reference of the received signature (URI, transforms, digest copied); signed over
  ``eb:Messaging`` and the Body, never encrypted.
- ``build_error_signal``: an ``eb:Error`` (``severity="failure"``, ``origin="ebMS"``) with the
  ``EBMS:00xx`` code of the platform error; signed when a key is given (Domibus 5 treats an
  unsigned error signal as a dispatch failure).
- ``read_signal``: the ``SignalMessage`` of an answer, with its NRR references or errors.

The envelopes validate against ``ebms-header-3_0-200704.xsd``, ``ebbp-signals-2.0.4.xsd`` and
the SOAP 1.2 schema (``tests/unit/test_as4_usermessage.py``).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

from lxml import etree

from integrations.oots.as4.errors import EBMS_SHORT_DESCRIPTIONS, ebms_code_of
from integrations.oots.as4.model import EBMS_NS, format_timestamp, new_message_id
from integrations.oots.as4.signature import SignedReference, SigningKey, sign_envelope
from integrations.oots.as4.soap import (
    XML_NS,
    Malformed,
    find_child,
    new_envelope,
    q,
    serialize,
    sub,
    text_of,
)
from integrations.oots.as4.wssec import DS_NS, messaging_of
from serviceplatform.errors import ServicePlatformError

EBBP_NS: Final = "http://docs.oasis-open.org/ebxml-bp/ebbp-signals-2.0"
_EB: Final = (EBMS_NS,)


def _signal(
    ref_to_message_id: str | None, timestamp: datetime | None
) -> tuple[etree._Element, etree._Element, etree._Element]:
    root, header, _ = new_envelope()
    messaging = sub(header, q(EBMS_NS, "Messaging"))
    signal = sub(messaging, q(EBMS_NS, "SignalMessage"))
    info = sub(signal, q(EBMS_NS, "MessageInfo"))
    sub(info, q(EBMS_NS, "Timestamp"), format_timestamp(timestamp or datetime.now(UTC)))
    sub(info, q(EBMS_NS, "MessageId"), new_message_id())
    if ref_to_message_id is not None:
        sub(info, q(EBMS_NS, "RefToMessageId"), ref_to_message_id)
    return root, messaging, signal


def build_receipt(
    ref_to_message_id: str,
    references: Sequence[SignedReference],
    key: SigningKey,
    *,
    timestamp: datetime | None = None,
) -> bytes:
    """The signed non-repudiation receipt of the message ``ref_to_message_id``."""
    root, _, signal = _signal(ref_to_message_id, timestamp)
    receipt = sub(signal, q(EBMS_NS, "Receipt"))
    nri = etree.SubElement(
        receipt, q(EBBP_NS, "NonRepudiationInformation"), nsmap={"ebbp": EBBP_NS}
    )
    for reference in references:
        part = etree.SubElement(nri, q(EBBP_NS, "MessagePartNRInformation"))
        part.append(copy.deepcopy(reference.element))
    sign_envelope(root, {}, key)
    return serialize(root)


def build_error_signal(
    ref_to_message_id: str | None,
    error: ServicePlatformError,
    key: SigningKey | None,
    *,
    timestamp: datetime | None = None,
) -> bytes:
    """The ``eb:Error`` signal of ``error`` about ``ref_to_message_id`` (None: not readable)."""
    root, _, signal = _signal(ref_to_message_id, timestamp)
    code = ebms_code_of(error)
    attrib = {
        "origin": "ebMS",
        "category": "Content",
        "errorCode": code,
        "severity": "failure",
        "shortDescription": EBMS_SHORT_DESCRIPTIONS.get(code, "Other"),
    }
    if ref_to_message_id is not None:
        attrib["refToMessageInError"] = ref_to_message_id
    failure = sub(signal, q(EBMS_NS, "Error"), **attrib)
    description = sub(failure, q(EBMS_NS, "Description"), f"{error.code} {error.error_text}")
    description.set(q(XML_NS, "lang"), "en")
    if key is not None:
        sign_envelope(root, {}, key)
    return serialize(root)


# --- reading -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SignalError:
    code: str
    description: str | None
    ref_to_message_in_error: str | None


@dataclass(frozen=True)
class Signal:
    """A read ``SignalMessage``: a receipt (``nri`` references) or errors."""

    message_id: str | None
    ref_to_message_id: str | None
    is_receipt: bool
    #: ``(URI, DigestValue)`` of each ``MessagePartNRInformation/ds:Reference``.
    nri: tuple[tuple[str, str], ...]
    errors: tuple[SignalError, ...]


def read_signal(root: etree._Element) -> Signal:
    """The ``SignalMessage`` of an envelope; ``Malformed`` when it has none."""
    header = root.find(q("http://www.w3.org/2003/05/soap-envelope", "Header"))
    messaging = messaging_of(header) if header is not None else None
    signal = find_child(messaging, "SignalMessage", _EB)
    if signal is None:
        raise Malformed("the answer holds no eb:SignalMessage")
    info = find_child(signal, "MessageInfo", _EB)
    errors = tuple(
        SignalError(
            element.get("errorCode", ""),
            text_of(find_child(element, "Description", _EB)),
            element.get("refToMessageInError"),
        )
        for element in signal.iterchildren(q(EBMS_NS, "Error"))
    )
    receipt = find_child(signal, "Receipt", _EB)
    nri: list[tuple[str, str]] = []
    if receipt is not None:
        for reference in receipt.iter(q(DS_NS, "Reference")):
            digest = "".join((reference.findtext(q(DS_NS, "DigestValue")) or "").split())
            nri.append((reference.get("URI", ""), digest))
    return Signal(
        message_id=text_of(find_child(info, "MessageId", _EB)),
        ref_to_message_id=text_of(find_child(info, "RefToMessageId", _EB)),
        is_receipt=receipt is not None,
        nri=tuple(nri),
        errors=errors,
    )
