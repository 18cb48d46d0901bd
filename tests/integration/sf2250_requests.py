"""SF2250 request bodies and answer readers shared by the integration tests."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import requests
from lxml import etree

from integrations.sf2250.service import TNS, WSDL_PATH

DKAL = "urn:oio:dkal:1.0.0"
SAGDOK = "urn:oio:sagdok:3.0.0"
SPF = "http://serviceplatformen.dk/xml/schemas/ServiceplatformFault/1/"
SOAP12 = "http://www.w3.org/2003/05/soap-envelope"
CONFORMANCE = Path(__file__).resolve().parents[2] / ".." / "shared" / "conformance"


def _subject(cpr: str | None, cvr: str | None) -> str:
    inner = f"<t:CPR-nr>{cpr}</t:CPR-nr>" if cpr is not None else ""
    inner += f"<t:CVR-nr>{cvr}</t:CVR-nr>" if cvr is not None else ""
    return f"<t:CPRCVR>{inner}</t:CPRCVR>"


def opdater(cpr: str | None = "0101901234", cvr: str | None = None) -> etree._Element:
    return etree.fromstring(
        f'<t:OpdaterBorgerNemSMSRequest xmlns:t="{TNS}" xmlns:d="{DKAL}">'
        f"{_subject(cpr, cvr)}<d:SlutbrugerStamdata><d:Navn>Anne Hansen</d:Navn>"
        "<d:MobiltelefonNummer>12345678</d:MobiltelefonNummer></d:SlutbrugerStamdata>"
        "</t:OpdaterBorgerNemSMSRequest>"
    )


def tilmeld(cpr: str | None = "0101901234", cvr: str | None = None) -> etree._Element:
    return etree.fromstring(
        f'<t:TilmeldNemSMSRequest xmlns:t="{TNS}" xmlns:d="{DKAL}">{_subject(cpr, cvr)}'
        "<d:Myndighedstilmelding><d:TilmeldingIndikator>true</d:TilmeldingIndikator>"
        "</d:Myndighedstilmelding></t:TilmeldNemSMSRequest>"
    )


@cache
def contract_schema() -> etree.XMLSchema:
    """The schema of the hand-written contract (the message XSD the WSDL includes)."""
    return etree.XMLSchema(etree.parse(str(WSDL_PATH.parent / "VedligeholdTilmeldingMsg.xsd")))


@cache
def fault_schema() -> etree.XMLSchema:
    path = CONFORMANCE / "kombit" / "sf1600" / "sp" / "ServiceplatformFault_1.xsd"
    return etree.XMLSchema(etree.parse(str(path)))


def body_child(answer: requests.Response) -> etree._Element:
    root = etree.fromstring(answer.content)
    body = root.find(f"{{{SOAP12}}}Body")
    assert body is not None, answer.text
    return body[0]


def status_code(answer: requests.Response) -> int:
    child = body_child(answer)
    contract_schema().assertValid(child)
    return int(child.findtext(f".//{{{SAGDOK}}}StatusKode") or "-1")


def fault_code(answer: requests.Response) -> str:
    """The platform fault's ErrorCode, after checking the detail against the official schema."""
    child = body_child(answer)
    assert etree.QName(child).localname == "Fault", answer.text
    detail = child.find(f".//{{{SPF}}}ServiceplatformFault")
    assert detail is not None, answer.text
    fault_schema().assertValid(detail)
    return detail.findtext(f".//{{{SPF}}}ErrorCode") or ""
