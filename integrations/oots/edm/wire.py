"""Namespaces, safe parsing and slot helpers shared by the request and response modules.

Everything here binds XPath to namespace *URIs*, never to the prefixes a document happens to
use: the real Domibus captures in ``oots-edm-2.0/incoming/reel/`` show the same namespace under
different prefixes from one message to the next (``ns3:`` in one, ``ns5:`` in another), and
the hand-made corpus beside them writes ``xlink`` as ``ns7``. ``xsi:type`` values are QNames,
so they are resolved through the element's in-scope namespaces as well.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Final

from lxml import etree

from integrations.oots.edm.errors import EdmParseError

QUERY_NS: Final = "urn:oasis:names:tc:ebxml-regrep:xsd:query:4.0"
RIM_NS: Final = "urn:oasis:names:tc:ebxml-regrep:xsd:rim:4.0"
RS_NS: Final = "urn:oasis:names:tc:ebxml-regrep:xsd:rs:4.0"
SDG_NS: Final = "http://data.europa.eu/p4s"
XSI_NS: Final = "http://www.w3.org/2001/XMLSchema-instance"
XLINK_NS: Final = "http://www.w3.org/1999/xlink"
XML_NS: Final = "http://www.w3.org/XML/1998/namespace"

#: The prefixes the platform writes (readers never rely on them).
NSMAP: Final[dict[str, str]] = {
    "query": QUERY_NS,
    "rim": RIM_NS,
    "rs": RS_NS,
    "sdg": SDG_NS,
    "xsi": XSI_NS,
    "xlink": XLINK_NS,
}

XSI_TYPE: Final = f"{{{XSI_NS}}}type"
XML_LANG: Final = f"{{{XML_NS}}}lang"

SET_COLLECTION: Final = "urn:oasis:names:tc:ebxml-regrep:CollectionType:Set"
STATUS_SUCCESS: Final = "urn:oasis:names:tc:ebxml-regrep:ResponseStatusType:Success"
STATUS_FAILURE: Final = "urn:oasis:names:tc:ebxml-regrep:ResponseStatusType:Failure"

_PARSER: Final = etree.XMLParser(
    resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False
)


def q(namespace: str, local: str) -> str:
    """Clark notation ``{namespace}local``."""
    return f"{{{namespace}}}{local}"


def parse_document(body: bytes, *, expected: str) -> etree._Element:
    """The root of ``body``, which must be well-formed, DTD-free and a ``query:{expected}``."""
    try:
        root = etree.fromstring(body, _PARSER)
    except etree.XMLSyntaxError as exc:
        raise EdmParseError(f"not well-formed XML: {exc}") from exc
    # lxml reports any DOCTYPE, internal subset or not, as an internal DTD object.
    if root.getroottree().docinfo.internalDTD is not None:
        raise EdmParseError("a document type declaration is not accepted")
    if root.tag != q(QUERY_NS, expected):
        raise EdmParseError(f"root element is {root.tag}, expected {{{QUERY_NS}}}{expected}")
    return root


def text(element: etree._Element | None) -> str | None:
    """The element's text with whitespace collapsed (``xs:normalizedString`` reading), or None.

    The official samples wrap identifiers and URIs over several lines
    (``<sdg:Identifier>\\n  https://...\\n</sdg:Identifier>``); collapsing makes them usable.
    """
    if element is None:
        return None
    collapsed = " ".join("".join(str(part) for part in element.itertext()).split())
    return collapsed or None


def required_text(element: etree._Element | None, what: str) -> str:
    value = text(element)
    if value is None:
        raise EdmParseError(f"{what} is missing or empty")
    return value


def children(element: etree._Element, namespace: str, local: str) -> Iterator[etree._Element]:
    """Direct children named ``{namespace}local``."""
    return element.iterchildren(q(namespace, local))


def child(element: etree._Element | None, namespace: str, local: str) -> etree._Element | None:
    if element is None:
        return None
    return next(children(element, namespace, local), None)


def slot(parent: etree._Element, name: str) -> etree._Element | None:
    """The direct ``rim:Slot`` child named ``name``."""
    for candidate in children(parent, RIM_NS, "Slot"):
        if candidate.get("name") == name:
            return candidate
    return None


def slot_value(parent: etree._Element, name: str) -> etree._Element | None:
    """The ``rim:SlotValue`` of the direct slot ``name``."""
    return child(slot(parent, name), RIM_NS, "SlotValue")


def slot_string(parent: etree._Element, name: str) -> str | None:
    """A ``StringValueType``/``DateTimeValueType``/``BooleanValueType`` slot's ``rim:Value``."""
    return text(child(slot_value(parent, name), RIM_NS, "Value"))


def slot_elements(
    parent: etree._Element, name: str, namespace: str, local: str
) -> list[etree._Element]:
    """The ``{namespace}local`` values of an ``AnyValueType`` or ``CollectionValueType`` slot.

    An ``AnyValueType`` slot holds its element directly in ``rim:SlotValue``; a collection
    holds one per ``rim:Element``. Both shapes occur for the same slot between messages
    (``EvidenceProvider`` is ``AnyValueType`` in requests and a collection in responses), so
    both are read wherever they appear.
    """
    value = slot_value(parent, name)
    if value is None:
        return []
    found = list(children(value, namespace, local))
    for element in children(value, RIM_NS, "Element"):
        found.extend(children(element, namespace, local))
    return found


def localized_strings(value: etree._Element | None) -> list[tuple[str, str | None]]:
    """``(value, xml:lang)`` of each ``rim:LocalizedString`` of an ``InternationalStringValueType``.

    The ``xml:lang`` attribute is read from the XML namespace and, failing that, from *any*
    namespace: the v1.2 two-step exchange writes ``xsi:lang`` (an attribute the XSI namespace
    does not define) where the RegRep schema has ``xml:lang``.
    """
    if value is None:
        return []
    found: list[tuple[str, str | None]] = []
    for localized in value.iter(q(RIM_NS, "LocalizedString")):
        content = localized.get("value")
        if content is None:
            continue
        found.append((" ".join(content.split()), lang_of(localized)))
    return found


def lang_of(element: etree._Element) -> str | None:
    lang = element.get(XML_LANG)
    if lang is None:
        for attribute, attribute_value in element.attrib.items():
            if str(attribute).endswith("}lang"):
                return str(attribute_value)
    return lang


def resolve_qname(element: etree._Element, qname: str | None) -> tuple[str | None, str] | None:
    """``(namespace URI, local name)`` of a QName attribute value such as ``xsi:type``.

    The prefix is resolved through ``element``'s in-scope namespaces; a prefix that is not
    declared (the hand-made corpus has such files) gives namespace None rather than an error.
    """
    if qname is None:
        return None
    qname = qname.strip()
    if ":" in qname:
        prefix, local = qname.split(":", 1)
        return element.nsmap.get(prefix), local
    return element.nsmap.get(None), qname


def xsi_type(element: etree._Element) -> tuple[str | None, str] | None:
    return resolve_qname(element, element.get(XSI_TYPE))
