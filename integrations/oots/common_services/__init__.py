"""The OOTS common services: Evidence Broker (EB) and Data Service Directory (DSD) queries.

- ``queries``: the three RegRep REST queries (ids, parameters, checked values; the cache key);
- ``parse``: their ``query:QueryResponse`` answers, read by namespace URI, refusals sorted
  into empty results, ``AttributeNeeded`` and platform errors;
- ``model``: ``RequirementInfo``, ``EvidenceTypeInfo``, ``ProvidersFound`` / ``ProviderInfo``,
  ``AttributeNeeded`` (frozen dataclasses);
- ``cache``: ``QueryCache``, the expiring, bounded, thread-safe answer cache (``cachetools``);
- ``client``: ``CommonServicesClient`` over the outbound seam (peer kind ``common-services``).

``docs/oots-common-services.md`` is the overview; the error codes are SP-740..SP-745.
"""

from integrations.oots.common_services.cache import QueryCache
from integrations.oots.common_services.client import CommonServicesClient
from integrations.oots.common_services.model import (
    AttributeNeeded,
    ClassificationConcept,
    Distribution,
    EvidenceTypeInfo,
    ProviderInfo,
    ProvidersAnswer,
    ProvidersFound,
    ReferenceFramework,
    RequirementInfo,
)
from integrations.oots.common_services.queries import (
    QUERY_DATA_SERVICES,
    QUERY_EVIDENCE_TYPES,
    QUERY_REQUIREMENTS,
    Query,
)
from integrations.oots.edm import LocalizedText

__all__ = [
    "QUERY_DATA_SERVICES",
    "QUERY_EVIDENCE_TYPES",
    "QUERY_REQUIREMENTS",
    "AttributeNeeded",
    "ClassificationConcept",
    "CommonServicesClient",
    "Distribution",
    "EvidenceTypeInfo",
    "LocalizedText",
    "ProviderInfo",
    "ProvidersAnswer",
    "ProvidersFound",
    "Query",
    "QueryCache",
    "ReferenceFramework",
    "RequirementInfo",
]
