"""The OOTS Exchange Data Model (EDM) evidence messages, v1.2 and v2.0: pure, no I/O.

- ``model``: the request (``EvidenceRequest``) and its outcomes (``Evidence``,
  ``PreviewRequired``, ``EdmError``), ``EdmVersion`` and ``choose_version``;
- ``request``: ``build_query_request`` and ``parse_query_request`` (``query:QueryRequest``);
- ``response``: ``parse_query_response`` (``query:QueryResponse``);
- ``errors``: the ``EDM:ERR`` code table and the library's exceptions;
- ``sdg`` and ``wire``: the SDG elements and the namespace-bound XML helpers underneath.

The AS4/Domibus transport (ebMS headers, WS plugin envelopes, attachments on the wire) is not
here: this package turns model objects into RegRep bodies and back. ``docs/oots-edm.md`` is the
overview.
"""

from integrations.oots.edm.errors import (
    EDM_ERROR_CODES,
    EdmErrorCode,
    EdmParseError,
    UnsupportedEdmVersion,
)
from integrations.oots.edm.model import (
    Address,
    Agent,
    EdmError,
    EdmVersion,
    Evidence,
    EvidenceMetadata,
    EvidenceProvider,
    EvidenceRequest,
    IntermediaryPlatform,
    LegalIdentifier,
    LegalPerson,
    LocalizedText,
    NaturalPerson,
    PreviewRequired,
    ProviderClassification,
    QueryOutcome,
    RequestedEvidenceType,
    Requester,
    Requirement,
    choose_version,
)
from integrations.oots.edm.request import build_query_request, parse_query_request
from integrations.oots.edm.response import parse_query_response

__all__ = [
    "EDM_ERROR_CODES",
    "Address",
    "Agent",
    "EdmError",
    "EdmErrorCode",
    "EdmParseError",
    "EdmVersion",
    "Evidence",
    "EvidenceMetadata",
    "EvidenceProvider",
    "EvidenceRequest",
    "IntermediaryPlatform",
    "LegalIdentifier",
    "LegalPerson",
    "LocalizedText",
    "NaturalPerson",
    "PreviewRequired",
    "ProviderClassification",
    "QueryOutcome",
    "RequestedEvidenceType",
    "Requester",
    "Requirement",
    "UnsupportedEdmVersion",
    "build_query_request",
    "choose_version",
    "parse_query_request",
    "parse_query_response",
]
