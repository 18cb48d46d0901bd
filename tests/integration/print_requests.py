"""SF1600 Print request bodies (spoergTilmelding, afsendBrev) and the official schema to check.

The bodies follow the official contract's element order and namespaces; the official schema
is built from ``../shared/conformance/kombit/sf1600`` (never from the project's copy).
"""

from __future__ import annotations

import base64
import tempfile
from functools import cache
from pathlib import Path

from lxml import etree

from integrations.sf2250.sf1600.service import TNS
from tests.official_schemas import schema_files, wrapped_schema

CONFORMANCE = Path(__file__).resolve().parents[2].parent / "shared" / "conformance"
SF1600 = CONFORMANCE / "kombit" / "sf1600"
FJERNPRINT = "urn:oio:fjernprint:1.0.0"
DKAL = "urn:oio:dkal:1.0.0"
ADIR = "urn:oio:adir:dagpenge:2009.07.01"
SAGDOK = "urn:oio:sagdok:3.0.0"
AUTHCTX = "http://serviceplatformen.dk/xml/schemas/AuthorityContext/1/"

_NSMAP = {"t": TNS, "fp": FJERNPRINT, "d": DKAL, "a": ADIR, "s": SAGDOK, "ac": AUTHCTX}


def _el(parent: etree._Element, ns: str, local: str, text: str | None = None) -> etree._Element:
    element = etree.SubElement(parent, f"{{{ns}}}{local}")
    if text is not None:
        element.text = text
    return element


def _authority(root: etree._Element, municipality_cvr: str | None) -> None:
    if municipality_cvr is not None:
        context = _el(root, AUTHCTX, "AuthorityContext")
        _el(context, AUTHCTX, "MunicipalityCVR", municipality_cvr)


def _identity(parent: etree._Element, local: str, cpr: str | None, cvr: str | None) -> None:
    identity = _el(parent, DKAL, local)
    if cpr is not None:
        _el(identity, ADIR, "CPRnummerIdentifikator", cpr)
    if cvr is not None:
        _el(identity, ADIR, "CVRnummerIdentifikator", cvr)


def spoerg(
    cpr: str | None = "0101901234", cvr: str | None = None, municipality_cvr: str | None = None
) -> etree._Element:
    root = etree.Element(f"{{{TNS}}}PrintSpoergTilmeldingRequest", nsmap=_NSMAP)
    _authority(root, municipality_cvr)
    request = _el(root, TNS, "TilmeldingRequest")
    _identity(request, "SlutbrugerIdentitet", cpr, cvr)
    return root


def afsend(
    text: str = "Husk din tid hos tandlægen i morgen kl. 10.",
    *,
    afsendelse_id: str,
    cpr: str | None = "0101901234",
    cvr: str | None = None,
    kanalvalg: str = "D",
    prioritet: str = "D",
    filformat: str = "TXT",
    municipality_cvr: str | None = None,
    titel: str | None = "Påmindelse",
    content: bytes | None = None,
) -> etree._Element:
    root = etree.Element(f"{{{TNS}}}PrintAfsendBrevRequest", nsmap=_NSMAP)
    _authority(root, municipality_cvr)
    body = _el(root, TNS, "BrevSPBody")
    _el(body, TNS, "Kanalvalg", kanalvalg)
    _el(body, TNS, "Prioritet", prioritet)
    forsendelse = _el(body, TNS, "ForsendelseI")
    _el(forsendelse, FJERNPRINT, "AfsendelseIdentifikator", afsendelse_id)
    if cpr is not None or cvr is not None:
        modtager = _el(forsendelse, FJERNPRINT, "ForsendelseModtager")
        _identity(modtager, "AfsendelseModtager", cpr, cvr)
    _el(forsendelse, DKAL, "FilformatNavn", filformat)
    data = content if content is not None else text.encode("utf-8")
    _el(forsendelse, DKAL, "MeddelelseIndholdData", base64.b64encode(data).decode("ascii"))
    dokument = _el(forsendelse, FJERNPRINT, "DokumentParametre")
    if titel is not None:
        _el(dokument, SAGDOK, "TitelTekst", titel)
    return root


@cache
def official_schema() -> etree.XMLSchema:
    """The official SF1600 message schema (see ``tests/official_schemas.py``)."""
    directory = Path(tempfile.mkdtemp(prefix="sf1600-official-"))
    return wrapped_schema(schema_files(SF1600 / "wsdl" / "token" / "PrintService.wsdl"), directory)
