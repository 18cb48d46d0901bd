"""SF1601's requests and answers as the digest describes them (``../shared/docs/SF1601.md`` §3).

- ``PostForespoerg``: ``GET /service/PostForespoerg_1/nemsms?cprNumber=<10>`` or
  ``?cvrNumber=<8>``, answer JSON ``{"result": bool}``;
- ``KombiPostAfsend``: ``POST /service/KombiPostAfsend_1/kombi`` with a ``kombi_request``
  (``memo.py``), answer a ``kombi_response`` whose ``AdvisTekst`` must be ``received``
  (as VAL reads it) and whose ``Result`` must be true;
- both with ``x-TransaktionsId`` (a UUID) and ``x-TransaktionsTid`` (UTC ending in ``Z``).

The query keys are marked uncertain in the digest ("almost" the documented ones): they are
the constants below.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

from lxml import etree

from integrations.sf2250.messages import Subject
from serviceplatform.errors import UpstreamBadResponse

ENTITY_POSTFORESPOERG: Final = "http://entityid.kombit.dk/service/postforespoerg/1"
ENTITY_KOMBIPOSTAFSEND: Final = "http://entityid.kombit.dk/service/kombipostafsend/1"
FORESPOERG_PATH: Final = "/service/PostForespoerg_1/nemsms"
KOMBI_PATH: Final = "/service/KombiPostAfsend_1/kombi"
QUERY_KEYS: Final = {"cpr": "cprNumber", "cvr": "cvrNumber"}
_PARSER: Final = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)


def forespoerg_path(subject: Subject) -> str:
    return f"{FORESPOERG_PATH}?{QUERY_KEYS[subject.kind]}={subject.number}"


def transaction_headers(transaction_id: str, now: datetime) -> dict[str, str]:
    return {
        "x-TransaktionsId": transaction_id,
        "x-TransaktionsTid": now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def parse_forespoerg(body: bytes) -> bool:
    try:
        result = json.loads(body)["result"]
    except (ValueError, KeyError, TypeError) as exc:
        raise UpstreamBadResponse("PostForespoerg: no JSON result") from exc
    if not isinstance(result, bool):
        raise UpstreamBadResponse("PostForespoerg: result is not true or false")
    return result


@dataclass(frozen=True)
class KombiReceipt:
    result: bool
    transmission_id: str
    advis_text: str

    @property
    def accepted(self) -> bool:
        return self.result and self.advis_text.strip().lower() == "received"


def parse_kombi_response(body: bytes) -> KombiReceipt:
    try:
        root = etree.fromstring(body, _PARSER)
    except etree.XMLSyntaxError as exc:
        raise UpstreamBadResponse("KombiPostAfsend: the answer is not XML") from exc
    if etree.QName(root).localname != "kombi_response":
        raise UpstreamBadResponse("KombiPostAfsend: the answer is not a kombi_response")
    advis = root.findtext("HovedoplysningerSvarREST/SvarReaktion/Advis/AdvisTekst") or ""
    return KombiReceipt(
        result=(root.findtext("Result") or "").strip().lower() == "true",
        transmission_id=(root.findtext("TransmissionID") or "").strip(),
        advis_text=advis,
    )
