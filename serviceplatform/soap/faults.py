"""The one renderer of platform faults: every SOAP fault the platform sends comes from here.

A ``ServicePlatformError`` becomes a SOAP Fault whose detail is the platform fault
``ServiceplatformFault/ErrorList/Error{ErrorCode, ErrorText}``
(namespace ``http://serviceplatformen.dk/xml/schemas/ServiceplatformFault/1/``):

* SOAP 1.2: ``Code/Value`` ``Sender`` (the caller's fault, ``error.client_fault``) or
  ``Receiver``; ``Reason/Text`` with ``xml:lang="en"``; ``Detail``.
* SOAP 1.1: ``faultcode`` ``Client`` or ``Server``; ``faultstring``; ``detail``.
* An error whose standard prescribes a fault code (Liberty's ``FrameworkVersionMismatch``)
  carries it as the SOAP 1.2 ``Subcode`` and as the SOAP 1.1 ``faultcode``.

HTTP status: SOAP 1.1 sends every fault with 500 (SOAP 1.1 section 6.2). SOAP 1.2's HTTP
binding (part 2, section 7.5.2.2 and table 23) sends ``Sender`` faults with 400 and all other
faults with 500; we follow it, so a 400 tells a caller "do not repeat this request unchanged".
Both are answered with a full envelope, never with a bare status or a stack trace.

The texts come from the error tree only (class text plus the ``detail`` the raiser chose).
Characters XML 1.0 cannot carry are replaced, so no error text can break the envelope.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from lxml import etree

from serviceplatform.errors import ServicePlatformError
from serviceplatform.soap.envelope import SOAP11_ENV_NS, SOAP12_ENV_NS

SPF_NS: Final = "http://serviceplatformen.dk/xml/schemas/ServiceplatformFault/1/"
XML_NS: Final = "http://www.w3.org/XML/1998/namespace"

CONTENT_TYPES: Final[dict[int, str]] = {
    11: "text/xml; charset=utf-8",
    12: "application/soap+xml; charset=utf-8",
}

_STATUS_TEXT: Final[dict[int, str]] = {400: "400 Bad Request", 500: "500 Internal Server Error"}

# XML 1.0 Char production: everything else (most C0 controls, lone surrogates, U+FFFE/FFFF)
# makes lxml refuse the text, so it is replaced before it gets there.
_NOT_XML_CHAR = re.compile("[^\u0009\u000a\u000d\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")

#: The longest ErrorText sent; longer texts are cut (a fault is not a place for documents).
MAX_TEXT_CHARS: Final = 1000


@dataclass(frozen=True)
class FaultResponse:
    """A fault ready for the wire: WSGI status line, headers and body."""

    status: str
    headers: list[tuple[str, str]]
    body: bytes

    @property
    def status_code(self) -> int:
        return int(self.status.split(" ", 1)[0])


def fault_http_status(error: ServicePlatformError, soap_version: int) -> int:
    """400 for a SOAP 1.2 ``Sender`` fault, 500 otherwise (see the module docstring)."""
    _check_version(soap_version)
    # SOAP 1.2 part 2 table 23: MustUnderstand (any prescribed code) is a 500, not a 400.
    return 400 if soap_version == 12 and error.client_fault and error.soap_code is None else 500


def clean_text(text: str) -> str:
    """``text`` made safe for an XML text node and cut to ``MAX_TEXT_CHARS``."""
    cleaned = _NOT_XML_CHAR.sub("\ufffd", text)
    if len(cleaned) > MAX_TEXT_CHARS:
        cleaned = cleaned[: MAX_TEXT_CHARS - 1] + "\u2026"
    return cleaned


def platform_fault_element(
    errors: ServicePlatformError | list[ServicePlatformError],
) -> etree._Element:
    """``spf:ServiceplatformFault`` with one ``Error`` per error, for use as fault detail."""
    error_list = errors if isinstance(errors, list) else [errors]
    fault = etree.Element(f"{{{SPF_NS}}}ServiceplatformFault", nsmap={"spf": SPF_NS})
    listing = etree.SubElement(fault, f"{{{SPF_NS}}}ErrorList")
    for error in error_list:
        item = etree.SubElement(listing, f"{{{SPF_NS}}}Error")
        etree.SubElement(item, f"{{{SPF_NS}}}ErrorCode").text = clean_text(error.code)
        etree.SubElement(item, f"{{{SPF_NS}}}ErrorText").text = clean_text(error.error_text)
    return fault


def fault_envelope(error: ServicePlatformError, soap_version: int) -> bytes:
    """The complete SOAP 1.1 or 1.2 envelope (UTF-8, with declaration) carrying ``error``."""
    return serialize_envelope(fault_envelope_element(error, soap_version))


def serialize_envelope(envelope: etree._Element) -> bytes:
    """How every platform envelope is written: UTF-8 with an XML declaration."""
    return etree.tostring(envelope, encoding="UTF-8", xml_declaration=True)


def fault_envelope_element(error: ServicePlatformError, soap_version: int) -> etree._Element:
    """The fault envelope of :func:`fault_envelope` as a tree (for spyne's output path)."""
    _check_version(soap_version)
    reason = clean_text(error.error_text)
    if soap_version == 12:
        env = etree.Element(f"{{{SOAP12_ENV_NS}}}Envelope", nsmap={"soap": SOAP12_ENV_NS})
        fault = etree.SubElement(etree.SubElement(env, f"{{{SOAP12_ENV_NS}}}Body"), _q12("Fault"))
        code = etree.SubElement(fault, _q12("Code"))
        value = "soap:Sender" if error.client_fault else "soap:Receiver"
        if error.soap_code is not None:
            value = f"soap:{error.soap_code}"
        etree.SubElement(code, _q12("Value")).text = value
        if error.soap_subcode is not None:
            namespace, local = error.soap_subcode
            subcode = etree.SubElement(code, _q12("Subcode"))
            etree.SubElement(subcode, _q12("Value"), nsmap={"sub": namespace}).text = f"sub:{local}"
        text = etree.SubElement(etree.SubElement(fault, _q12("Reason")), _q12("Text"))
        text.set(f"{{{XML_NS}}}lang", "en")
        text.text = reason
        etree.SubElement(fault, _q12("Detail")).append(platform_fault_element(error))
    else:
        env = etree.Element(f"{{{SOAP11_ENV_NS}}}Envelope", nsmap={"soap": SOAP11_ENV_NS})
        body = etree.SubElement(env, f"{{{SOAP11_ENV_NS}}}Body")
        fault = etree.SubElement(body, f"{{{SOAP11_ENV_NS}}}Fault")
        # SOAP 1.1 fault children are unqualified; a prescribed code replaces Client/Server.
        if error.soap_subcode is not None:
            namespace, local = error.soap_subcode
            etree.SubElement(fault, "faultcode", nsmap={"sub": namespace}).text = f"sub:{local}"
        elif error.soap_code is not None:
            etree.SubElement(fault, "faultcode").text = f"soap:{error.soap_code}"
        else:
            etree.SubElement(fault, "faultcode").text = (
                "soap:Client" if error.client_fault else "soap:Server"
            )
        etree.SubElement(fault, "faultstring").text = reason
        etree.SubElement(fault, "detail").append(platform_fault_element(error))
    return env


def fault_response(error: ServicePlatformError, soap_version: int) -> FaultResponse:
    """``error`` as a complete HTTP answer (status per ``fault_http_status``)."""
    body = fault_envelope(error, soap_version)
    status = fault_http_status(error, soap_version)
    headers = [
        ("Content-Type", CONTENT_TYPES[soap_version]),
        ("Content-Length", str(len(body))),
    ]
    return FaultResponse(status=_STATUS_TEXT[status], headers=headers, body=body)


def _q12(local: str) -> str:
    return f"{{{SOAP12_ENV_NS}}}{local}"


def _check_version(soap_version: int) -> None:
    if soap_version not in CONTENT_TYPES:
        raise ValueError(f"SOAP version must be 11 or 12, not {soap_version!r}")
