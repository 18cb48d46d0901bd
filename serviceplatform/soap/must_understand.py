"""The SOAP processing model's one rule before anything else: ``mustUnderstand``.

A header block addressed to the platform (no role/actor, or the "next" or
"ultimateReceiver" one) and marked ``mustUnderstand`` must be processed or the whole message
refused with the MustUnderstand fault (SOAP 1.2 part 1 section 5.4.8; SOAP 1.1 section 4.2.3):
a sender that marks a header so relies on it being honoured, and silently ignoring it is
how a caller's requirement is dropped. The marks are ``true``/``1`` in SOAP 1.2
(``xs:boolean``) and ``1`` in SOAP 1.1. The platform processes the Liberty ``Framework``,
the WS-Addressing headers it checks, ``wsse:Security`` and KOMBIT's ``RequestHeader``.
"""

from __future__ import annotations

from typing import Final

from lxml import etree

from serviceplatform.errors import HeaderNotUnderstood
from serviceplatform.security.wire import PROCESSED_HEADERS
from serviceplatform.soap.envelope import SOAP11_ENV_NS, SOAP12_ENV_NS, ParsedEnvelope

#: The header blocks the platform processes.
UNDERSTOOD: Final = PROCESSED_HEADERS
_MARKED: Final = {12: frozenset({"true", "1"}), 11: frozenset({"1"})}
#: Roles (SOAP 1.2 ``role``, SOAP 1.1 ``actor``) the platform plays; no attribute means the
#: ultimate receiver, which the platform is.
_OUR_ROLES: Final = {
    12: frozenset(
        {
            "http://www.w3.org/2003/05/soap-envelope/role/next",
            "http://www.w3.org/2003/05/soap-envelope/role/ultimateReceiver",
        }
    ),
    11: frozenset({"http://schemas.xmlsoap.org/soap/actor/next"}),
}
_ROLE_ATTRIBUTE: Final = {12: f"{{{SOAP12_ENV_NS}}}role", 11: f"{{{SOAP11_ENV_NS}}}actor"}


def check_must_understand(parsed: ParsedEnvelope, understood: frozenset[str] = UNDERSTOOD) -> None:
    """Raise ``HeaderNotUnderstood`` for the first header block of ``parsed`` addressed to
    the platform, marked ``mustUnderstand``, and not in ``understood``."""
    if parsed.header is None:
        return
    version = parsed.soap_version
    must = f"{{{parsed.soap_ns}}}mustUnderstand"
    for block in parsed.header:
        if not isinstance(block.tag, str) or block.tag in understood:
            continue
        if (block.get(must) or "").strip() not in _MARKED[version]:
            continue
        role = block.get(_ROLE_ATTRIBUTE[version])
        if role is not None and role.strip() not in _OUR_ROLES[version]:
            continue
        raise HeaderNotUnderstood(_describe(etree.QName(block)))


def _describe(qname: etree.QName) -> str:
    name = f"{{{qname.namespace}}}{qname.localname}" if qname.namespace else qname.localname
    return name[:200]
