"""Which SOAP version a refused request is answered in.

A SOAP 1.1 client (WCF ``basicHttpBinding``, for one) refuses a SOAP 1.2 fault as a content
type mismatch, so a refusal must speak the request's version even when the request is too
broken to say it. In order:

1. the namespace of a parsed ``Envelope`` (even one refused afterwards, such as an empty
   ``Body``): the request's own version, whatever the port offers;
2. else the HTTP binding's mark of the version: ``Content-Type: text/xml`` is SOAP 1.1,
   ``application/soap+xml`` SOAP 1.2; failing that, which of the two envelope namespaces
   the bytes name (a truncated envelope still names its namespace) -- believed only when
   the port offers that version;
3. else the port's declared versions (``SoapService.soap_versions``) decide: the oldest,
   since a port that offers SOAP 1.1 is one SOAP 1.1 clients call.
"""

from __future__ import annotations

from typing import Final

from lxml import etree

from serviceplatform.soap.envelope import SOAP11_ENV_NS, SOAP12_ENV_NS, envelope_version

_BY_MEDIA_TYPE: Final = {"text/xml": 11, "application/soap+xml": 12}
#: How far into the body the envelope namespace is looked for: it is on the root element.
_SNIFF_BYTES: Final = 4096


def fault_version(
    declared: frozenset[int],
    *,
    root: etree._Element | None = None,
    content_type: str = "",
    body: bytes = b"",
) -> int:
    """The SOAP version (11 or 12) to answer a refused request in (see the module docstring)."""
    if root is not None:
        version = envelope_version(root)
        if version is not None:
            return version
    hinted = _from_content_type(content_type) or _from_bytes(body[:_SNIFF_BYTES])
    if hinted is not None and hinted in declared:
        return hinted
    return min(declared) if declared else 12


def _from_content_type(content_type: str) -> int | None:
    return _BY_MEDIA_TYPE.get(content_type.split(";", 1)[0].strip().lower())


def _from_bytes(head: bytes) -> int | None:
    soap11 = SOAP11_ENV_NS.encode() in head
    soap12 = SOAP12_ENV_NS.encode() in head
    if soap11 != soap12:
        return 11 if soap11 else 12
    return None
