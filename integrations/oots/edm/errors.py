"""EDM error codes (the ``EDMErrorCodes`` code list) and the library's own exceptions.

The table is the code list ``oots-edm-1.0/codelists/OOTS/EDMErrorCodes-CodeList.gc``
(version 2022-12): each ``EDM:ERR:000x`` code is tied to one RegRep exception type, which an
Evidence Provider writes as ``rs:Exception/@xsi:type`` (``query:QueryExceptionType`` for
``EDM:ERR:0008``) together with ``@code``. The codes are the same at EDM v1.2 and v2.0.

That file is not well-formed XML: the ``EDM:ERR:0008`` row closes its name with
``QueryRequest/SimpleValue>`` instead of ``</SimpleValue>``. Its values are transcribed here;
``tests/unit/test_oots_edm_response.py`` reads the file with a recovering parser and checks
this table against it.

Two severities exist for an evidence error response (code list ``ErrorSeverity``):
``urn:oasis:names:tc:ebxml-regrep:ErrorSeverityType:Error`` and the preview severity. The code
list at v1.0 spells the latter ``urn:sr.oots.tech.europa.eu:codes:...``; the v1.2 two-step
exchange and every v2.0 message in the conformance folder write ``urn:sr.oots.tech.ec.europa.eu:
codes:...`` (with ``ec.``). Both spellings are recognised.

Mapping a code to a platform fault is the integration's business, not this library's: it
receives an ``EdmError`` carrying the code and decides.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final

RS_NS: Final = "urn:oasis:names:tc:ebxml-regrep:xsd:rs:4.0"
QUERY_NS: Final = "urn:oasis:names:tc:ebxml-regrep:xsd:query:4.0"

SEVERITY_ERROR: Final = "urn:oasis:names:tc:ebxml-regrep:ErrorSeverityType:Error"
#: The preview severity as the v1.2 and v2.0 messages write it.
SEVERITY_PREVIEW_REQUIRED: Final = (
    "urn:sr.oots.tech.ec.europa.eu:codes:ErrorSeverity:EDMErrorResponse:PreviewRequired"
)
#: The same severity as the v1.0 ``ErrorSeverity`` code list spells it.
SEVERITY_PREVIEW_REQUIRED_V1_0: Final = (
    "urn:sr.oots.tech.europa.eu:codes:ErrorSeverity:EDMErrorResponse:PreviewRequired"
)
PREVIEW_SEVERITIES: Final = frozenset({SEVERITY_PREVIEW_REQUIRED, SEVERITY_PREVIEW_REQUIRED_V1_0})

PREVIEW_REQUIRED_CODE: Final = "EDM:ERR:0002"


@dataclass(frozen=True)
class EdmErrorCode:
    """One row of the ``EDMErrorCodes`` code list, with what it means for the requester."""

    code: str
    #: ``name-Type`` column as the code list writes it (a QName with the usual prefix).
    exception_type: str
    #: ``name-Value`` column.
    name: str
    #: What the code means for an Evidence Requester (our reading of OOTS-EDM 4.5.3).
    meaning: str

    @property
    def namespace(self) -> str:
        return QUERY_NS if self.exception_type.startswith("query:") else RS_NS

    @property
    def local_name(self) -> str:
        return self.exception_type.split(":", 1)[1]


_ROWS: Final = (
    EdmErrorCode(
        "EDM:ERR:0001",
        "rs:AuthenticationExceptionType",
        "Failed Authentication",
        "The provider could not authenticate the user or the requester.",
    ),
    EdmErrorCode(
        "EDM:ERR:0002",
        "rs:AuthorizationExceptionType",
        "Missing Authorization",
        "The provider needs the user's preview and approval on its side; with a "
        "PreviewLocation slot this is the preview answer, not a failure.",
    ),
    EdmErrorCode(
        "EDM:ERR:0003",
        "rs:InvalidRequestExceptionType",
        "Syntactically or semantically invalid request",
        "The provider rejected the request as invalid (schema, Schematron or content).",
    ),
    EdmErrorCode(
        "EDM:ERR:0004",
        "rs:ObjectNotFoundExceptionType",
        "Object not found",
        "The provider has no evidence for this subject and evidence type, or could not "
        "match the subject.",
    ),
    EdmErrorCode(
        "EDM:ERR:0005",
        "rs:TimeoutExceptionType",
        "Exceeding timeout period",
        "The exchange took too long (for example the user did not finish the preview).",
    ),
    EdmErrorCode(
        "EDM:ERR:0006",
        "rs:UnresolvedReferenceExceptionType",
        "Referenced object that cannot be resolved",
        "The request refers to something the provider cannot resolve (for example an "
        "unknown preview session).",
    ),
    EdmErrorCode(
        "EDM:ERR:0007",
        "rs:UnsupportedCapabilityExceptionType",
        "Optional feature or capability is not supported",
        "The provider does not support what was asked (format, version, option).",
    ),
    EdmErrorCode(
        "EDM:ERR:0008",
        "query:QueryExceptionType",
        "Problem during the processing of a QueryRequest",
        "The provider failed while processing the request.",
    ),
)

#: The table, by code.
EDM_ERROR_CODES: Final[Mapping[str, EdmErrorCode]] = MappingProxyType(
    {row.code: row for row in _ROWS}
)

_BY_TYPE: Final = {(row.namespace, row.local_name): row.code for row in _ROWS}
_BY_LOCAL_NAME: Final = {row.local_name: row.code for row in _ROWS}


def code_for_exception_type(namespace: str | None, local_name: str) -> str | None:
    """The EDM code of an exception type, for an ``rs:Exception`` that omits ``@code``.

    ``namespace`` None (an undeclared prefix) matches on the local name alone.
    """
    if namespace is None:
        return _BY_LOCAL_NAME.get(local_name)
    return _BY_TYPE.get((namespace, local_name))


class EdmParseError(ValueError):
    """A message this library cannot read as an EDM message (not an EDM error answer).

    An ``EdmError`` is the provider telling us something went wrong; this exception is us
    failing to read what arrived (not XML, wrong root, missing attachment, ...).
    """


class UnsupportedEdmVersion(EdmParseError):
    """A message or a Data Service Directory entry in an EDM version the platform does not speak."""
