"""How the NemSMS register's error answers read: ``dkal:Fejl`` turned into a fault's detail.

The register answers a refusal with ``<dkal:Fejl><FejlKode/><FejlTekst/></dkal:Fejl>``. The
outbound seam chooses the platform error by the HTTP status (``outbound/translate.py``); this
hook supplies the detail (``FejlKode 3001: ukendt slutbruger``) and the ``FejlKode`` itself as
the error's ``peer_code``, for the refusals that have a fault of their own
(``register_calls.send_to_register``: 400 with FejlKode 1009, outside the sending hours). Every
request to the register carries ``REGISTER_ANSWERS`` as its ``answer_check``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from lxml import etree

from serviceplatform.errors import UpstreamError
from serviceplatform.outbound.translate import AnswerCheck, error_for_status, raw_error_text

#: The register's refusal of an SMS outside NemSMS's sending hours (08:00-22:00 Danish time
#: by the register's clock): HTTP 400 with this ``FejlKode`` (docs/nemsms-register.md).
OUTSIDE_SENDING_HOURS: Final = "1009"


def _fejl(body: bytes) -> dict[str, str] | None:
    """The fields of a ``dkal:Fejl`` body by local name; None when the body is no ``Fejl``."""
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
    try:
        root = etree.fromstring(body, parser)
    except etree.XMLSyntaxError:
        return None
    if etree.QName(root).localname != "Fejl":
        return None
    return {etree.QName(child).localname: (child.text or "").strip() for child in root}


def fejl_kode(body: bytes) -> str | None:
    """The ``FejlKode`` of a ``dkal:Fejl`` body, or None."""
    fields = _fejl(body) if body else None
    return (fields or {}).get("FejlKode") or None


def parse_fejl(body: bytes) -> str | None:
    """``FejlKode n: FejlTekst`` from a ``dkal:Fejl`` body; otherwise the raw text, trimmed."""
    fields = _fejl(body)
    if fields is None:
        return raw_error_text(body)
    code, text = fields.get("FejlKode", ""), fields.get("FejlTekst", "")
    if code and text:
        return f"FejlKode {code}: {text}"
    return text or (f"FejlKode {code}" if code else None)


def _register_answers(status: int, headers: Mapping[str, str], body: bytes) -> UpstreamError | None:
    error = error_for_status(status, body, parse_fejl)
    if error is not None:
        error.peer_code = fejl_kode(body)
    return error


#: The register's answers: the status classes, the detail and ``peer_code`` from ``dkal:Fejl``.
REGISTER_ANSWERS: Final[AnswerCheck] = _register_answers
