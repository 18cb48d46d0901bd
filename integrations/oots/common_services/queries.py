"""The three common-services queries: ids, parameters, and their checked, hashable form.

RegRep 4 REST binding (TDD 3.1.4 and 3.2.4): ``GET <service>/rest/search?queryId=<id>&<name>=
<value>...``. A ``Query`` is the service it goes to (``eb`` or ``dsd``), its id and its
parameters in a fixed order; it is also the cache key, so two calls asking the same thing hit
the same entry whatever order the caller gave the attributes in.

Values are checked here, before anything leaves the platform: a country that is not an ISO
3166-1 alpha-2 code, an empty identifier, a control character, or an attribute that would
overwrite one of the query's own parameters is the caller's mistake
(``CommonServicesQueryInvalid``), not something to ask the common services about.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final, Literal

from integrations.oots.errors import CommonServicesQueryInvalid

QUERY_REQUIREMENTS: Final = (
    "urn:fdc:oots:eb:ebxml-regrep:queries:requirements-by-procedure-and-jurisdiction"
)
QUERY_EVIDENCE_TYPES: Final = (
    "urn:fdc:oots:eb:ebxml-regrep:queries:evidence-types-by-requirement-and-jurisdiction"
)
QUERY_DATA_SERVICES: Final = (
    "urn:fdc:oots:dsd:ebxml-regrep:queries:dataservices-by-evidencetype-and-jurisdiction"
)

#: Parameters of the DSD query that the additional attributes must not replace.
_RESERVED: Final = frozenset(
    {"queryId", "evidence-type-classification", "country-code", "specification"}
)
_COUNTRY: Final = re.compile(r"[A-Z]{2}")
#: Procedure codes of the ``Procedures`` code list: ``T3``, ``R1``, ``AM1``, ``00``, ``X10``.
_PROCEDURE: Final = re.compile(r"[A-Za-z0-9_-]{1,32}")
#: Attribute names: ``jurisdiction-admin-l2``, ``jurisdiction-context-id``, ``evidence-type-id``
#: or a classification concept's identifier (a UUID in the TDD).
_ATTRIBUTE: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}")
_MAX_VALUE: Final = 1024

Service = Literal["eb", "dsd"]


@dataclass(frozen=True)
class Query:
    """One query: where it goes, its id, its parameters (name, value) in sending order."""

    service: Service
    query_id: str
    params: tuple[tuple[str, str], ...]

    def url_params(self) -> list[tuple[str, str]]:
        """``queryId`` first, then the parameters (``requests`` encodes them)."""
        return [("queryId", self.query_id), *self.params]

    def param(self, name: str) -> str | None:
        return next((value for key, value in self.params if key == name), None)


def requirements_query(procedure_id: str | None, country: str | None) -> Query:
    """EB: the requirements of a procedure as implemented in a country (both optional)."""
    params: list[tuple[str, str]] = []
    if procedure_id is not None:
        procedure = procedure_id.strip()
        if not _PROCEDURE.fullmatch(procedure):
            raise CommonServicesQueryInvalid(f"procedure-id {procedure_id!r} is not a code")
        params.append(("procedure-id", procedure))
    if country is not None:
        params.append(("country-code", _country(country)))
    return Query("eb", QUERY_REQUIREMENTS, tuple(params))


def evidence_types_query(requirement_id: str, country: str | None = None) -> Query:
    """EB: the evidence types that prove a requirement (in one provider country)."""
    params = [("requirement-id", _value("requirement-id", requirement_id))]
    if country is not None:
        params.append(("country-code", _country(country)))
    return Query("eb", QUERY_EVIDENCE_TYPES, tuple(params))


def data_services_query(
    evidence_type_classification: str,
    country: str,
    *,
    specification: str | None = None,
    attributes: Mapping[str, str] | None = None,
) -> Query:
    """DSD: the providers of an evidence type in a country.

    ``specification`` narrows to access services conforming to an EDM version
    (``oots-edm:v2.0``); ``attributes`` are the user's additional attributes
    (``jurisdiction-admin-l2``, ``jurisdiction-context-id``, classification answers), sent
    sorted by name.
    """
    params = [
        (
            "evidence-type-classification",
            _value("evidence-type-classification", evidence_type_classification),
        ),
        ("country-code", _country(country)),
    ]
    if specification is not None:
        params.append(("specification", _value("specification", specification)))
    extra: list[tuple[str, str]] = []
    for name, value in (attributes or {}).items():
        key = name.strip()
        if not _ATTRIBUTE.fullmatch(key):
            raise CommonServicesQueryInvalid(f"attribute name {name!r} is not a parameter name")
        if key in _RESERVED:
            raise CommonServicesQueryInvalid(f"attribute {key!r} would replace a query parameter")
        extra.append((key, _value(key, value)))
    names = [key for key, _ in extra]
    if len(set(names)) != len(names):
        raise CommonServicesQueryInvalid("an attribute is given twice")
    return Query("dsd", QUERY_DATA_SERVICES, tuple(params + sorted(extra)))


def attribute_parameter(jurisdiction_level: str) -> str:
    """The DSD query parameter that carries an answer at ``jurisdiction_level``.

    The SDG address levels: ``AdminUnitLevel2`` holds NUTS codes, ``AdminUnitLevel3`` LAU
    codes, so a ``NUTS1``/``NUTS2``/``NUTS3`` determination is answered as
    ``jurisdiction-admin-l2`` and a ``LAU`` one as ``jurisdiction-admin-l3`` (the TDD's second
    DSD request). Older samples write the level as a URL ending in the code; it is read from
    the last segment. An unknown level falls back to ``jurisdiction-admin-l2``.
    """
    code = re.split(r"[/:#]", jurisdiction_level.strip())[-1].upper()
    return "jurisdiction-admin-l3" if code == "LAU" else "jurisdiction-admin-l2"


def _country(value: str) -> str:
    # Case is forgiven ("fi"); anything else that is not two letters is refused.
    country = value.strip().upper() if isinstance(value, str) else ""
    if not _COUNTRY.fullmatch(country):
        raise CommonServicesQueryInvalid(f"country {value!r} is not an ISO 3166-1 alpha-2 code")
    return country


def _value(name: str, value: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise CommonServicesQueryInvalid(f"{name} is empty")
    text = value.strip()
    if len(text) > _MAX_VALUE:
        raise CommonServicesQueryInvalid(f"{name} is longer than {_MAX_VALUE} characters")
    if any(ord(char) < 0x20 or ord(char) == 0x7F for char in text):
        raise CommonServicesQueryInvalid(f"{name} contains a control character")
    return text


__all__ = [
    "QUERY_DATA_SERVICES",
    "QUERY_EVIDENCE_TYPES",
    "QUERY_REQUIREMENTS",
    "Query",
    "Service",
    "attribute_parameter",
    "data_services_query",
    "evidence_types_query",
    "requirements_query",
]
