"""OOTS Dokumentation request bodies and answer readers shared by the integration tests."""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from datetime import date

import requests
from lxml import etree

from integrations.oots.service import TNS
from tests.integration.sf2250_requests import body_child
from tests.unit.test_oots_contract import contract_schema


def _element(name: str, children: list[tuple[str, object]]) -> etree._Element:
    root = etree.Element(f"{{{TNS}}}{name}", nsmap={"o": TNS})
    for child, value in children:
        _add(root, child, value)
    return root


def _add(parent: etree._Element, name: str, value: object) -> None:
    if value is None:
        return
    element = etree.SubElement(parent, f"{{{TNS}}}{name}")
    if isinstance(value, list):
        for child, inner in value:
            _add(element, child, inner)
    elif isinstance(value, bool):
        element.text = "true" if value else "false"
    else:
        element.text = str(value)


def find_bevistyper(
    procedure: str, requirement: str | None = None, country: str | None = None
) -> etree._Element:
    return _element(
        "FindBevistyperRequest",
        [("ProcedureKode", procedure), ("KravIdentifikator", requirement), ("LandeKode", country)],
    )


def _attribute(attribute: tuple[str, str, str] | None) -> object:
    """``(context id, level, value)`` as a ``YderligereAttribut``."""
    if attribute is None:
        return None
    context, level, value = attribute
    return [("KontekstIdentifikator", context), ("Niveau", level), ("Vaerdi", value)]


def find_udbydere(
    classification: str, country: str, attribute: tuple[str, str, str] | None = None
) -> etree._Element:
    return _element(
        "FindUdbydereRequest",
        [
            ("BevistypeKlassifikation", classification),
            ("LandeKode", country),
            ("YderligereAttribut", _attribute(attribute)),
        ],
    )


PERSON: list[tuple[str, object]] = [
    ("Fornavn", "Aino"),
    ("Efternavn", "Virtanen"),
    ("Foedselsdato", date(1990, 5, 17).isoformat()),
    ("EidasIdentifikator", "DK/FI/170590123A"),
]


def anmod_bevis(
    *,
    provider: str,
    classification: str,
    country: str,
    requirement: str,
    procedure: str,
    attribute: tuple[str, str, str] | None = None,
    media_type: str | None = None,
    preview: bool = True,
    company: str | None = None,
) -> etree._Element:
    subject: tuple[str, object] = (
        ("Virksomhed", [("Navn", company)]) if company else ("Person", PERSON)
    )
    return _element(
        "AnmodBevisRequest",
        [
            subject,
            ("ProcedureKode", procedure),
            ("KravIdentifikator", requirement),
            ("BevistypeKlassifikation", classification),
            ("LandeKode", country),
            ("UdbyderIdentifikator", provider),
            ("YderligereAttribut", _attribute(attribute)),
            ("Format", media_type),
            ("EksplicitAnmodning", True),
            ("ForhaandsvisningMulig", preview),
        ],
    )


def efter_forhaandsvisning(request_id: str, return_url: str | None = None) -> etree._Element:
    return _element(
        "AnmodBevisEfterForhaandsvisningRequest",
        [("AnmodningId", request_id), ("ReturAdresse", return_url)],
    )


def hent_status(request_id: str) -> etree._Element:
    return _element("HentStatusRequest", [("AnmodningId", request_id)])


def answer(response: requests.Response) -> etree._Element:
    """The body's answer element, checked against the contract."""
    assert response.status_code == 200, response.text
    child = body_child(response)
    assert contract_schema().validate(child), contract_schema().error_log
    return child


def _text(element: etree._Element, path: str) -> str | None:
    return element.findtext(path.replace("o:", f"{{{TNS}}}"))


@dataclass
class State:
    """An ``AnmodningSvarType`` answer, read."""

    request_id: str
    status: str
    provider: str
    version: str
    preview_location: str | None = None
    preview_method: str | None = None
    document: bytes | None = None
    media_type: str | None = None
    evidence_type: str | None = None
    issuer: str | None = None
    error_code: str | None = None
    edm_error_code: str | None = None
    descriptions: list[str] = field(default_factory=list)


def state(response: requests.Response) -> State:
    child = answer(response)
    document = _text(child, "o:Bevis/o:Dokument")
    return State(
        request_id=_text(child, "o:AnmodningId") or "",
        status=_text(child, "o:Status") or "",
        provider=_text(child, "o:UdbyderIdentifikator") or "",
        version=_text(child, "o:EDMVersion") or "",
        preview_location=_text(child, "o:Forhaandsvisning/o:Placering"),
        preview_method=_text(child, "o:Forhaandsvisning/o:Metode"),
        document=base64.b64decode(document) if document is not None else None,
        media_type=_text(child, "o:Bevis/o:MedieType"),
        evidence_type=_text(child, "o:Bevis/o:BevistypeKlassifikation"),
        issuer=_text(child, "o:Bevis/o:UdstedendeMyndighed/o:Identifikator"),
        error_code=_text(child, "o:Fejl/o:Fejlkode"),
        edm_error_code=_text(child, "o:Fejl/o:EDMFejlkode"),
        descriptions=[
            t.text or "" for t in child.iterfind(f".//{{{TNS}}}Forhaandsvisning//{{{TNS}}}Tekst")
        ],
    )
