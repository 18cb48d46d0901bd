"""The OOTS message of eDelivery AS4, apart from any gateway that carries it.

- ``model``: ``OutgoingAs4`` / ``ReceivedAs4`` and their parts, the ebMS namespace and the
  header values OOTS fixes, generated ids and timestamps (plain data);
- ``ebms``: the ``eb:Messaging`` header, built and read back;
- ``soap``: the SOAP 1.2 envelope plumbing the bindings share (hardened parsing, reading by
  namespace URI, the platform error of a malformed request).

The native access point (``docs/oots-as4.md``) is built of: ``mime`` (SwA multipart),
``compression``, ``wssec``, ``signature``, ``encryption``, ``usermessage`` (pack/unpack),
``signals`` (receipt, ``eb:Error``), ``transport`` (the one HTTP call), ``sender``,
``receiver`` (the WSGI endpoint), ``access_point`` (``As4Gateway``), ``settings``, ``app``
(built from the platform), ``commands`` and ``errors`` (SP-780..SP-793).

A gateway moves these messages: ``integrations.oots.gateway`` is the Protocol the exchange
talks to, ``integrations.oots.domibus`` its Domibus WS plugin implementation.
"""

from integrations.oots.as4.ebms import build_messaging
from integrations.oots.as4.model import (
    ACTION_EXCEPTION,
    ACTION_REQUEST,
    ACTION_RESPONSE,
    ANSWER_ACTIONS,
    EBMS_NS,
    EBRS_MIME,
    GATEWAY_ROLE,
    OOTS_PARTY_TYPE,
    OOTS_SERVICE,
    OOTS_SERVICE_TYPE,
    Attachment,
    OutgoingAs4,
    Property,
    ReceivedAs4,
    ReceivedPayload,
    TypedId,
    format_timestamp,
)

__all__ = [
    "ACTION_EXCEPTION",
    "ACTION_REQUEST",
    "ACTION_RESPONSE",
    "ANSWER_ACTIONS",
    "EBMS_NS",
    "EBRS_MIME",
    "GATEWAY_ROLE",
    "OOTS_PARTY_TYPE",
    "OOTS_SERVICE",
    "OOTS_SERVICE_TYPE",
    "Attachment",
    "OutgoingAs4",
    "Property",
    "ReceivedAs4",
    "ReceivedPayload",
    "TypedId",
    "build_messaging",
    "format_timestamp",
]
