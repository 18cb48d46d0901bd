"""SF2250 outward for the Print operations: EP_NS1 and EP_NS4 over OIOREST. Pure, no I/O.

The integration description points to SF1600's Digital Post endpoints for both (EP_DP1,
EP_DP2) and their wire format is not public, so this module is the one place that knows it
(see ``docs/nemsms-register.md``):

* EP_NS1 Spoerg_tilmelding_NS: ``GET /register/{nemsms sysid}/boks/{cpr|cvr}/myndighedstilmelding``
  answers ``dkal:Myndighedstilmelding/TilmeldingIndikator``; 404 (an end user the register
  does not know) means "not subscribed".
* EP_NS4 Afsend_brev_NS: ``PUT /register/{afsender sysid}/afsendelse/{MeddelelseIdentifikator}``
  with the Digital Post sending document ``dkal:Afsendelse``; the register answers the same
  document type with ``AfsendelseTilstandNavn``. The PUT carries the sending's id in the path,
  so repeating it is harmless: the register answers the first result again.

``MeddelelseIdentifikator`` allows ``[a-zA-Z0-9-._~]{1,30}`` while the caller's
``AfsendelseIdentifikator`` is any 1-38 characters: an id that fits is used as is, any other is
replaced by a fixed hash of it, so a repeated call always maps to the same id.
"""

from __future__ import annotations

import base64
import hashlib
import re
from dataclasses import dataclass
from typing import Final
from urllib.parse import quote

from lxml import etree

from integrations.sf2250.mapping import DKAL_NS, subject_segment
from integrations.sf2250.messages import Subject
from serviceplatform.errors import ServicePlatformError, UpstreamBadResponse
from serviceplatform.soap.envelope import parse_xml

ADIR_NS: Final = "urn:oio:adir:dagpenge:2009.07.01"
MEDDELELSE_ID: Final = re.compile(r"[a-zA-Z0-9\-._~]{1,30}")
#: ``MeddelelseTitelTekst`` is at most 50 characters; NemSMS shows no title anyway.
MAX_TITLE: Final = 50
DEFAULT_TITLE: Final = "NemSMS"
_MAX_ANSWER_BYTES: Final = 64 * 1024
#: Register states that mean the SMS was accepted for delivery.
ACCEPTED_STATES: Final = frozenset({"fremsendt", "planlagt", "afventer"})


def meddelelse_id(afsendelse_id: str) -> str:
    """The register's message id for the caller's sending id (see the module docstring)."""
    if MEDDELELSE_ID.fullmatch(afsendelse_id):
        return afsendelse_id
    return "h-" + hashlib.sha256(afsendelse_id.encode("utf-8")).hexdigest()[:28]


def tilmelding_path(sysid: str, subject: Subject) -> str:
    """EP_NS1: the subject's ``myndighedstilmelding`` resource under the NemSMS SysID."""
    segment = subject_segment(subject, "EP_NS3")
    return f"/register/{quote(sysid, safe='')}/boks/{segment}/myndighedstilmelding"


def afsendelse_path(sysid: str, message_id: str) -> str:
    """EP_NS4: the sending resource under the Afsendersystem SysID."""
    return f"/register/{quote(sysid, safe='')}/afsendelse/{quote(message_id, safe='')}"


def _dkal(parent: etree._Element, local: str, text: str) -> None:
    etree.SubElement(parent, f"{{{DKAL_NS}}}{local}").text = text


def afsendelse_body(
    *,
    message_id: str,
    recipient: Subject,
    text: str,
    titel: str | None,
    indholdstype: int | None,
) -> bytes:
    """The EP_NS4 body: ``dkal:Afsendelse`` as the Digital Post schema orders its children."""
    root = etree.Element(f"{{{DKAL_NS}}}Afsendelse", nsmap={"dkal": DKAL_NS, "adir": ADIR_NS})
    _dkal(root, "MeddelelseIdentifikator", message_id)
    receiver = etree.SubElement(root, f"{{{DKAL_NS}}}AfsendelseModtager")
    local = "CPRnummerIdentifikator" if recipient.kind == "cpr" else "CVRnummerIdentifikator"
    etree.SubElement(receiver, f"{{{ADIR_NS}}}{local}").text = recipient.number
    if indholdstype is not None:
        _dkal(root, "MeddelelseIndholdstypeIdentifikator", str(indholdstype))
    title = (titel or "").strip()[:MAX_TITLE] or DEFAULT_TITLE
    _dkal(root, "MeddelelseTitelTekst", title)
    _dkal(root, "MeddelelseIndholdData", base64.b64encode(text.encode("utf-8")).decode("ascii"))
    _dkal(root, "FilformatNavn", "TXT")
    return etree.tostring(root, encoding="UTF-8", xml_declaration=True)


def _answer(body: bytes, root_name: str) -> etree._Element:
    try:
        root = parse_xml(body, max_bytes=_MAX_ANSWER_BYTES)
    except ServicePlatformError:
        raise UpstreamBadResponse(f"the register's {root_name} answer is not XML") from None
    if root.tag != f"{{{DKAL_NS}}}{root_name}":
        raise UpstreamBadResponse(f"the register answered {root.tag}, not dkal:{root_name}")
    return root


def parse_tilmelding(body: bytes) -> bool:
    """``TilmeldingIndikator`` of an EP_NS1 answer; ``UpstreamBadResponse`` if unreadable."""
    root = _answer(body, "Myndighedstilmelding")
    value = (root.findtext(f"{{{DKAL_NS}}}TilmeldingIndikator") or "").strip().lower()
    if value in ("true", "1"):
        return True
    if value in ("false", "0"):
        return False
    raise UpstreamBadResponse("the register's TilmeldingIndikator is not a boolean")


@dataclass(frozen=True)
class SendingReceipt:
    """What the register answered to EP_NS4."""

    message_id: str
    state: str
    sent_at: str | None

    @property
    def accepted(self) -> bool:
        return self.state in ACCEPTED_STATES


def parse_afsendelse(body: bytes) -> SendingReceipt:
    root = _answer(body, "Afsendelse")
    message_id = (root.findtext(f"{{{DKAL_NS}}}MeddelelseIdentifikator") or "").strip()
    state = (root.findtext(f"{{{DKAL_NS}}}AfsendelseTilstandNavn") or "").strip()
    if not message_id or not state:
        raise UpstreamBadResponse("the register's Afsendelse answer lacks id or state")
    sent_at = (root.findtext(f"{{{DKAL_NS}}}AfsendelseDatoTid") or "").strip() or None
    return SendingReceipt(message_id=message_id, state=state, sent_at=sent_at)
