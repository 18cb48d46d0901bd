"""SOAP 1.2 plumbing shared by every AS4 binding: envelopes built, opened and read by URI.

- building: ``new_envelope`` (``soap:Envelope`` with Header and Body), ``sub``, ``serialize``;
- opening: ``parse_envelope`` with a hardened parser (no DTD, no entities, no network) and
  ``body_child``, the one element of the Body;
- reading: ``find_children``/``find_child`` bind namespace URIs, never prefixes (the real
  Domibus 5.2.1 answers write the ebMS namespace as ``ns5:`` in the header and declare it
  again as ``ns3:`` in the body), and take a tuple of namespaces so an element a contract
  leaves unqualified is also accepted when qualified (a tolerant reader costs nothing, and no
  document is ambiguous that way); ``text_of``/``required_text``/``optional_text`` read element
  text and bound its length.

A reading problem is a ``Malformed`` (``XmlSyntax`` and ``NotEnvelope`` narrow it); each entry
point turns it into its platform error: a malformed *answer* of a gateway is the gateway's
fault (``UpstreamBadResponse``), a malformed *request* to the platform the caller's
(``request_error``: ``MalformedXml``, ``NotSoapEnvelope``, ``SchemaViolation``). No lxml
exception leaves the readers.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Final

from lxml import etree

from integrations.oots.as4.model import MAX_ID
from serviceplatform.errors import (
    MalformedXml,
    NotSoapEnvelope,
    SchemaViolation,
    ServicePlatformError,
)

SOAP12_NS: Final = "http://www.w3.org/2003/05/soap-envelope"
XML_NS: Final = "http://www.w3.org/XML/1998/namespace"

#: SOAP 1.2 over HTTP (``soapAction=""`` in the WSDLs: no ``action`` parameter).
SOAP12_CONTENT_TYPE: Final = "application/soap+xml; charset=utf-8"

# DTDs are refused outright (see ``parse_envelope``), so a huge tree cannot come from entity
# expansion; ``huge_tree`` is needed for evidence attachments larger than libxml2's 10 MB text
# limit.
_PARSER: Final = etree.XMLParser(
    resolve_entities=False, no_network=True, load_dtd=False, huge_tree=True, remove_comments=True
)


def q(namespace: str, local: str) -> str:
    """Clark notation ``{namespace}local`` (``local`` alone for no namespace)."""
    return f"{{{namespace}}}{local}" if namespace else local


def new_envelope() -> tuple[etree._Element, etree._Element, etree._Element]:
    """A SOAP 1.2 ``Envelope`` and its (empty) ``Header`` and ``Body``."""
    root = etree.Element(q(SOAP12_NS, "Envelope"), nsmap={"soap": SOAP12_NS})
    header = etree.SubElement(root, q(SOAP12_NS, "Header"))
    body = etree.SubElement(root, q(SOAP12_NS, "Body"))
    return root, header, body


def serialize(root: etree._Element) -> bytes:
    """The document as UTF-8 bytes with an XML declaration."""
    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8"))


def sub(parent: etree._Element, tag: str, text: str | None = None, **attrib: str) -> etree._Element:
    """A child ``tag`` of ``parent`` with ``text`` and attributes."""
    element = etree.SubElement(parent, tag, attrib)
    if text is not None:
        element.text = text
    return element


# --- reading ------------------------------------------------------------------------------------


class Malformed(ValueError):
    """What cannot be read; each entry point turns it into its platform error."""


class XmlSyntax(Malformed):
    """Not well-formed XML, or a document type declaration."""


class NotEnvelope(Malformed):
    """Well-formed, but not a SOAP 1.2 envelope with a Body."""


def parse_envelope(body: bytes) -> etree._Element:
    """A SOAP 1.2 envelope's root; raises ``Malformed``."""
    try:
        root = etree.fromstring(body, _PARSER)
    except etree.XMLSyntaxError as exc:
        raise XmlSyntax(f"not well-formed XML: {exc}") from exc
    if root.getroottree().docinfo.internalDTD is not None:
        raise XmlSyntax("a document type declaration is not accepted")
    if root.tag != q(SOAP12_NS, "Envelope"):
        raise NotEnvelope(f"root element is {root.tag}, expected a SOAP 1.2 Envelope")
    return root


def body_child(root: etree._Element) -> etree._Element:
    """The one element of the envelope's Body."""
    body = root.find(q(SOAP12_NS, "Body"))
    if body is None:
        raise NotEnvelope("the envelope has no Body")
    elements = [child for child in body if isinstance(child.tag, str)]
    if len(elements) != 1:
        raise Malformed(f"the Body holds {len(elements)} elements, expected one")
    return elements[0]


def find_children(
    element: etree._Element, local: str, namespaces: tuple[str, ...]
) -> Iterator[etree._Element]:
    """The children ``local`` of ``element`` in any of ``namespaces`` (``""``: unqualified)."""
    return element.iterchildren(*(q(ns, local) for ns in namespaces))


def find_child(
    element: etree._Element | None, local: str, namespaces: tuple[str, ...]
) -> etree._Element | None:
    """The first of ``find_children``, or None (also when ``element`` is None)."""
    if element is None:
        return None
    return next(find_children(element, local, namespaces), None)


def text_of(element: etree._Element | None) -> str | None:
    """The element's text stripped; None when absent or blank."""
    if element is None:
        return None
    value = "".join(str(part) for part in element.itertext()).strip()
    return value or None


def required_text(element: etree._Element | None, what: str) -> str:
    """The text of a mandatory ``max255-non-empty-string``."""
    value = text_of(element)
    if value is None:
        raise Malformed(f"{what} is missing or empty")
    if len(value) > MAX_ID:
        raise Malformed(f"{what} is longer than {MAX_ID} characters")
    return value


def optional_text(element: etree._Element | None, what: str) -> str | None:
    """As ``required_text`` when the element has text, else None."""
    return None if text_of(element) is None else required_text(element, what)


def request_error(exc: Malformed) -> ServicePlatformError:
    """The platform error of a malformed request *to* the platform (the caller's fault)."""
    if isinstance(exc, XmlSyntax):
        return MalformedXml(str(exc).removeprefix("not well-formed XML: "))
    if isinstance(exc, NotEnvelope):
        return NotSoapEnvelope(str(exc))
    return SchemaViolation(str(exc))
