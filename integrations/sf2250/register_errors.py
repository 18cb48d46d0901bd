"""How the NemSMS register's error answers read: ``dkal:Fejl`` turned into a fault's detail.

The register answers a refusal with ``<dkal:Fejl><FejlKode/><FejlTekst/></dkal:Fejl>``. The
outbound seam chooses the platform error by the HTTP status (``outbound/translate.py``); this
hook only supplies the detail (``FejlKode 3001: ukendt slutbruger``). Every request to the
register carries ``REGISTER_ANSWERS`` as its ``answer_check``.
"""

from __future__ import annotations

from typing import Final

from lxml import etree

from serviceplatform.outbound.translate import AnswerCheck, raw_error_text, status_check


def parse_fejl(body: bytes) -> str | None:
    """``FejlKode n: FejlTekst`` from a ``dkal:Fejl`` body; otherwise the raw text, trimmed."""
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
    try:
        root = etree.fromstring(body, parser)
    except etree.XMLSyntaxError:
        return raw_error_text(body)
    if etree.QName(root).localname != "Fejl":
        return raw_error_text(body)
    fields = {etree.QName(child).localname: (child.text or "").strip() for child in root}
    code, text = fields.get("FejlKode", ""), fields.get("FejlTekst", "")
    if code and text:
        return f"FejlKode {code}: {text}"
    return text or (f"FejlKode {code}" if code else None)


#: The register's answers: the status classes, the detail from ``dkal:Fejl``.
REGISTER_ANSWERS: Final[AnswerCheck] = status_check(parse_fejl)
