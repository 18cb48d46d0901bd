"""SF2250 outward: the OIOREST calls to the NemSMS register (EP_NS2, EP_NS3). Pure, no I/O.

Paths, as integration description SF2250 sections 3.2.4.2 and 3.2.5.2 give them:

* EP_NS2 ``PUT /register/{sysid}/boks/{cpr}`` with the CPR number as ``xxxxxxxxxx`` or, for
  a company, ``PUT /register/{sysid}/boks/:{cvr}``: the description writes the CVR form of
  this endpoint as ``":xxxxxxxx"`` with a leading colon;
* EP_NS3 ``PUT /register/{sysid}/boks/{cpr|cvr}/myndighedstilmelding``, where the description
  writes the CVR form as plain ``"xxxxxxxx"``.

The two forms differ in the source and are followed literally; if the register turns out to
use one form for both, only :func:`subject_segment` changes. A colon is a legal character
in a path segment (RFC 3986 ``pchar``) and is sent unescaped; the SysID is percent-encoded.

Bodies are the OIOXML documents of the contract (``wsdl/sf2250/oio``), namespace
``urn:oio:dkal:1.0.0``; errors come back as ``dkal:Fejl{FejlKode, FejlTekst}``.
"""

from __future__ import annotations

from typing import Final, Literal
from urllib.parse import quote

from lxml import etree

from integrations.sf2250.messages import SlutbrugerStamdata, Subject
from serviceplatform.errors import ServicePlatformError
from serviceplatform.soap.envelope import parse_xml

DKAL_NS: Final = "urn:oio:dkal:1.0.0"
CONTENT_TYPE: Final = "application/xml; charset=utf-8"

#: The longest error document read; a register error is a few hundred bytes.
_MAX_ERROR_BYTES: Final = 64 * 1024

Endpoint = Literal["EP_NS2", "EP_NS3"]


def subject_segment(subject: Subject, endpoint: Endpoint) -> str:
    """The ``{cpr}``/``{cvr}`` path segment of ``endpoint`` (see the module docstring)."""
    if subject.kind == "cvr" and endpoint == "EP_NS2":
        return ":" + quote(subject.number, safe="")
    return quote(subject.number, safe="")


def register_path_boks(sysid: str, subject: Subject) -> str:
    """EP_NS2 Opdater_borger_NS: ``/register/{sysid}/boks/{cpr | :cvr}``."""
    return f"/register/{quote(sysid, safe='')}/boks/{subject_segment(subject, 'EP_NS2')}"


def register_path_myndighedstilmelding(sysid: str, subject: Subject) -> str:
    """EP_NS3 Tilmeld_NemSMS_NS: ``/register/{sysid}/boks/{cpr | cvr}/myndighedstilmelding``."""
    segment = subject_segment(subject, "EP_NS3")
    return f"/register/{quote(sysid, safe='')}/boks/{segment}/myndighedstilmelding"


def _dkal(parent: etree._Element | None, local: str, text: str | None = None) -> etree._Element:
    tag = f"{{{DKAL_NS}}}{local}"
    if parent is None:
        element = etree.Element(tag, nsmap={"dkal": DKAL_NS})
    else:
        element = etree.SubElement(parent, tag)
    if text is not None:
        element.text = text
    return element


def _document(root: etree._Element) -> bytes:
    return etree.tostring(root, encoding="UTF-8", xml_declaration=True)


def stamdata_body(stamdata: SlutbrugerStamdata) -> bytes:
    """The EP_NS2 body: ``dkal:SlutbrugerStamdata`` as in ``oio/SlutbrugerStamdata.xsd``."""
    root = _dkal(None, "SlutbrugerStamdata")
    if stamdata.navn is not None:
        _dkal(root, "Navn", stamdata.navn)
    _dkal(root, "MobiltelefonNummer", stamdata.mobiltelefon_nummer)
    if stamdata.email_adresse is not None:
        _dkal(root, "EmailAdresse", stamdata.email_adresse)
    return _document(root)


def myndighedstilmelding_body(tilmeld: bool) -> bytes:
    """The EP_NS3 body: ``dkal:Myndighedstilmelding/TilmeldingIndikator`` true or false."""
    root = _dkal(None, "Myndighedstilmelding")
    _dkal(root, "TilmeldingIndikator", "true" if tilmeld else "false")
    return _document(root)


def parse_register_error(body: bytes) -> tuple[int | None, str | None]:
    """``(FejlKode, FejlTekst)`` of a ``dkal:Fejl`` error document; ``(None, None)`` if none.

    Never raises: the register's error body is a courtesy, and an unreadable one must not
    hide the HTTP status that the caller maps to a platform error. A code outside the
    documented range 1000-9999 is dropped; the text is cut to 500 characters.
    """
    try:
        root = parse_xml(body, max_bytes=_MAX_ERROR_BYTES)
    except ServicePlatformError:
        return None, None
    if root.tag != f"{{{DKAL_NS}}}Fejl":
        return None, None
    code_text = (root.findtext(f"{{{DKAL_NS}}}FejlKode") or "").strip()
    code = int(code_text) if code_text.isascii() and code_text.isdigit() else None
    if code is not None and not 1000 <= code <= 9999:
        code = None
    text = root.findtext(f"{{{DKAL_NS}}}FejlTekst")
    text = text.strip()[:500] if text and text.strip() else None
    return code, text
