"""The OOTS gateway through the authority's Domibus access point (its WS plugin).

- ``ws_plugin``: the ``WebServicePlugin.wsdl`` operations (submit, list pending, retrieve,
  mark downloaded, status): request bodies built, answers and faults read;
- ``backend_service``: Domibus' push calls (``BackendService.wsdl``) read, their replies built;
- ``client``: ``DomibusWsClient`` (submit, pending, retrieve, acknowledge, status) over
  the outbound seam (peer kind ``domibus-ws``), the Domibus implementation of
  ``integrations.oots.gateway.Gateway``;
- ``inbox``: ``DomibusInbox``, the ``oots_messages`` store (store before acknowledge,
  correlation by ConversationId and RefToMessageId) and ``collect``;
- ``push``: ``backend_push_app``, the WSGI endpoint Domibus pushes to.

The AS4 message itself (``OutgoingAs4``, ``ReceivedAs4``, the ebMS header) is
``integrations.oots.as4``'s; the RegRep bodies are ``integrations.oots.edm``'s.
``docs/oots-domibus.md`` is the overview.
"""

from integrations.oots.domibus.backend_service import PushCall
from integrations.oots.domibus.client import DomibusWsClient
from integrations.oots.domibus.inbox import CollectReport, DomibusInbox
from integrations.oots.domibus.push import BackendPushApp, backend_push_app

__all__ = [
    "BackendPushApp",
    "CollectReport",
    "DomibusInbox",
    "DomibusWsClient",
    "PushCall",
    "backend_push_app",
]
