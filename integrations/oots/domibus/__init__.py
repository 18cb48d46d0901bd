"""The AS4 transport of OOTS through the authority's Domibus access point (its WS plugin).

- ``envelopes``: the WS plugin and push (``BackendService``) SOAP envelopes, built and read by
  namespace URI; ``OutgoingAs4`` / ``ReceivedAs4`` and the OOTS ebMS header values;
- ``client``: ``DomibusWsClient`` (submit, pending, retrieve, acknowledge) over ``requests``;
- ``inbox``: ``DomibusInbox``, the ``oots_messages`` store (store before acknowledge,
  correlation by ConversationId and RefToMessageId) and ``collect``;
- ``push``: ``backend_push_app``, the WSGI endpoint Domibus pushes to.

``docs/oots-domibus.md`` is the overview. The RegRep bodies themselves are
``integrations.oots.edm``'s business.
"""

from integrations.oots.domibus.client import DomibusWsClient
from integrations.oots.domibus.envelopes import (
    ACTION_EXCEPTION,
    ACTION_REQUEST,
    ACTION_RESPONSE,
    EBRS_MIME,
    GATEWAY_ROLE,
    OOTS_PARTY_TYPE,
    OOTS_SERVICE,
    OOTS_SERVICE_TYPE,
    Attachment,
    OutgoingAs4,
    Property,
    PushCall,
    ReceivedAs4,
    ReceivedPayload,
    TypedId,
)
from integrations.oots.domibus.inbox import CollectReport, DomibusInbox
from integrations.oots.domibus.push import BackendPushApp, backend_push_app

__all__ = [
    "ACTION_EXCEPTION",
    "ACTION_REQUEST",
    "ACTION_RESPONSE",
    "EBRS_MIME",
    "GATEWAY_ROLE",
    "OOTS_PARTY_TYPE",
    "OOTS_SERVICE",
    "OOTS_SERVICE_TYPE",
    "Attachment",
    "BackendPushApp",
    "CollectReport",
    "DomibusInbox",
    "DomibusWsClient",
    "OutgoingAs4",
    "Property",
    "PushCall",
    "ReceivedAs4",
    "ReceivedPayload",
    "TypedId",
    "backend_push_app",
]
