"""Loading the official (conformance) schema sets with libxml2, for tests only.

The official SF1600 files import one namespace from many files; libxml2 honours only the
first import of a namespace, so such a set cannot be loaded as it is. ``wrapped_schema``
writes one wrapper per namespace that includes every file of it, and a top schema that
imports the wrappers, each after the namespaces it needs: when a file then imports a
namespace from one of its files, the namespace is already complete.
"""

from __future__ import annotations

import graphlib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Final

from lxml import etree

WSDL_NS: Final = "http://schemas.xmlsoap.org/wsdl/"
XSD_NS: Final = "http://www.w3.org/2001/XMLSchema"
_PARSER: Final = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)


def parse(path: Path) -> etree._Element:
    return etree.parse(str(path), _PARSER).getroot()


def _schema_locations(schema: etree._Element) -> Iterator[str]:
    for child in schema.iterchildren(f"{{{XSD_NS}}}include", f"{{{XSD_NS}}}import"):
        location = child.get("schemaLocation")
        if location:
            yield location


def schema_files(wsdl: Path) -> dict[Path, etree._Element]:
    """Every schema file the WSDL's ``types`` include or import, followed transitively."""
    pending: list[Path] = []
    for schema in parse(wsdl).iterfind(f"{{{WSDL_NS}}}types/{{{XSD_NS}}}schema"):
        pending += [(wsdl.parent / location).resolve() for location in _schema_locations(schema)]
    found: dict[Path, etree._Element] = {}
    while pending:
        path = pending.pop()
        if path in found:
            continue
        root = found[path] = parse(path)
        assert root.get("targetNamespace") is not None, f"{path}: chameleon schemas not handled"
        pending += [(path.parent / location).resolve() for location in _schema_locations(root)]
    return found


def wrapped_schema(files: Mapping[Path, etree._Element], directory: Path) -> etree.XMLSchema:
    """One XML Schema of all ``files`` (see the module docstring); wrappers go to ``directory``."""
    by_namespace: dict[str, list[Path]] = {}
    needs: dict[str, set[str]] = {}
    for path, root in files.items():
        namespace = root.get("targetNamespace", "")
        by_namespace.setdefault(namespace, []).append(path)
        imported = {i.get("namespace", "") for i in root.iterchildren(f"{{{XSD_NS}}}import")}
        needs.setdefault(namespace, set()).update(imported - {namespace})
    top = etree.Element(f"{{{XSD_NS}}}schema", nsmap={"xsd": XSD_NS})
    for number, namespace in enumerate(graphlib.TopologicalSorter(needs).static_order()):
        wrapper = etree.Element(
            f"{{{XSD_NS}}}schema", targetNamespace=namespace, nsmap={"xsd": XSD_NS}
        )
        for path in sorted(by_namespace[namespace]):
            etree.SubElement(wrapper, f"{{{XSD_NS}}}include", schemaLocation=path.as_uri())
        location = directory / f"namespace-{number}.xsd"
        etree.ElementTree(wrapper).write(str(location))
        etree.SubElement(
            top, f"{{{XSD_NS}}}import", namespace=namespace, schemaLocation=location.as_uri()
        )
    return etree.XMLSchema(top)
