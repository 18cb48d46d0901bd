"""The hand-written contract's documents: the WSDL and everything it references, served by URL.

``GET ?wsdl`` serves the hand-written WSDL, ``?wsdl=<file>`` and ``?xsd=<file>`` the
documents it references, with every reference and the endpoint address rewritten to the URL
the caller used (or ``public_url``), so a client resolves them from any base URL. Only
documents reachable from the WSDL are served; they are parsed once and the rewritten bytes
cached per base URL. The same documents give the contract's XML Schema
(:meth:`ContractDocuments.build_schema`), which requests are validated against.
"""

from __future__ import annotations

import copy
import re
import threading
from collections import OrderedDict
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final
from urllib.parse import parse_qs, quote, unquote, urlsplit

from lxml import etree

from serviceplatform.errors import ConfigurationError

__all__ = ["WSDL_NS", "XSD_NS", "ContractDocuments", "request_base_url"]

WSDL_NS: Final = "http://schemas.xmlsoap.org/wsdl/"
XSD_NS: Final = "http://www.w3.org/2001/XMLSchema"
_ADDRESS_TAGS: Final = frozenset(
    f"{{{ns}}}address"
    for ns in ("http://schemas.xmlsoap.org/wsdl/soap12/", "http://schemas.xmlsoap.org/wsdl/soap/")
)
#: Element tag -> the attribute that points at another document of the contract.
_REFERENCE_ATTRIBUTES: Final = {
    f"{{{WSDL_NS}}}import": "location",
    f"{{{XSD_NS}}}import": "schemaLocation",
    f"{{{XSD_NS}}}include": "schemaLocation",
    f"{{{XSD_NS}}}redefine": "schemaLocation",
    "{http://www.w3.org/ns/ws-policy}PolicyReference": "URI",
    "{http://schemas.xmlsoap.org/ws/2004/09/policy}PolicyReference": "URI",
}
_DOC_HEADERS: Final = [("Content-Type", "text/xml; charset=utf-8")]
_HOST = re.compile(r"[A-Za-z0-9.\-]+(:[0-9]{1,5})?|\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?")
_CACHED_BASES: Final = 16


class ContractDocuments:
    """The hand-written WSDL and every document it references, served with rewritten links.

    All references must be relative and stay inside the WSDL's directory: the contract is
    self-contained, nothing is fetched from the network, and ``?xsd=`` can only name a
    document found by following the references (no path traversal).
    """

    def __init__(self, wsdl_path: Path, *, public_url: str | None = None) -> None:
        self.directory = wsdl_path.resolve().parent
        self.main_key = wsdl_path.name
        self.public_url = public_url
        self._trees: dict[str, etree._ElementTree] = {}
        # (document key, reference as written) -> key of the referenced document
        self._targets: dict[tuple[str, str], str] = {}
        self._load(self.main_key)
        self._rendered: OrderedDict[str, dict[str, bytes]] = OrderedDict()
        self._lock = threading.Lock()

    @property
    def keys(self) -> frozenset[str]:
        return frozenset(self._trees)

    def _load(self, key: str) -> None:
        path = self.directory / key
        parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
        try:
            tree = etree.parse(str(path), parser)
        except (OSError, etree.XMLSyntaxError) as exc:
            raise ConfigurationError(f"contract document {path} cannot be read: {exc}") from exc
        self._trees[key] = tree
        for element, attribute in _references(tree.getroot()):
            document = element.get(attribute, "").partition("#")[0]
            if not document:
                continue  # a reference inside the same document
            target = self._resolve(key, document)
            self._targets[(key, document)] = target
            if target not in self._trees:
                self._load(target)

    def _resolve(self, key: str, reference: str) -> str:
        parts = urlsplit(reference)
        if parts.scheme or parts.netloc or reference.startswith("/"):
            raise ConfigurationError(f"{key}: reference {reference!r} must be a relative path")
        path = ((self.directory / key).parent / unquote(parts.path)).resolve()
        if not path.is_relative_to(self.directory) or not path.is_file():
            raise ConfigurationError(f"{key}: {reference!r} is not a file beside the contract")
        return path.relative_to(self.directory).as_posix()

    def url_of(self, base_url: str, key: str) -> str:
        if key == self.main_key:
            return f"{base_url}?wsdl"
        kind = "wsdl" if key.endswith(".wsdl") else "xsd"
        return f"{base_url}?{kind}={quote(key, safe='/')}"

    def render(self, base_url: str) -> dict[str, bytes]:
        """Every document with its references pointing below ``base_url`` (cached)."""
        with self._lock:
            cached = self._rendered.get(base_url)
            if cached is not None:
                self._rendered.move_to_end(base_url)
                return cached
        rendered = {key: self._render_one(key, base_url) for key in self._trees}
        with self._lock:
            self._rendered[base_url] = rendered
            while len(self._rendered) > _CACHED_BASES:  # Host headers are caller-controlled
                self._rendered.popitem(last=False)
        return rendered

    def _render_one(self, key: str, base_url: str) -> bytes:
        root = copy.deepcopy(self._trees[key].getroot())
        for element, attribute in _references(root):
            document, hash_, fragment = element.get(attribute, "").partition("#")
            if document:
                url = self.url_of(base_url, self._targets[(key, document)])
                element.set(attribute, f"{url}{hash_}{fragment}")
        if key == self.main_key:
            for address in root.iter(*_ADDRESS_TAGS):
                address.set("location", self.public_url or base_url)
        return etree.tostring(root, encoding="UTF-8", xml_declaration=True)

    def answer(self, environ: dict[str, Any]) -> tuple[str, list[tuple[str, str]], bytes] | None:
        """The answer to a GET for ``?wsdl``, ``?wsdl=<file>`` or ``?xsd=<file>``; else None."""
        query = {
            name.lower(): values[0]
            for name, values in parse_qs(environ.get("QUERY_STRING", ""), True).items()
        }
        if "wsdl" in query:
            key = query["wsdl"] or self.main_key
        elif "xsd" in query:
            key = query["xsd"]
        else:
            return None
        if key not in self._trees:
            return "404 Not Found", [("Content-Type", "text/plain; charset=utf-8")], b"not found"
        body = self.render(request_base_url(environ))[key]
        return "200 OK", [*_DOC_HEADERS, ("Content-Length", str(len(body)))], body

    def build_schema(self) -> etree.XMLSchema:
        """The contract's XML Schema: every schema the WSDL's ``types`` include or import.

        The inline schemas may only include or import files (the KOMBIT style); each
        namespace must come from one file, as libxml2 honours only the first import of it.
        """
        wrapper = etree.Element(f"{{{XSD_NS}}}schema", nsmap={"xsd": XSD_NS})
        imported: dict[str, str] = {}
        types = (
            self._trees[self.main_key].getroot().iterfind(f"{{{WSDL_NS}}}types/{{{XSD_NS}}}schema")
        )
        for schema in types:
            for child in schema:
                if not isinstance(child.tag, str) or child.tag == f"{{{XSD_NS}}}annotation":
                    continue
                if child.tag == f"{{{XSD_NS}}}include":
                    namespace = schema.get("targetNamespace", "")
                elif child.tag == f"{{{XSD_NS}}}import":
                    namespace = child.get("namespace", "")
                else:
                    raise ConfigurationError("inline WSDL schemas may only include or import files")
                target = self._targets[(self.main_key, child.get("schemaLocation", ""))]
                location = (self.directory / target).as_uri()
                if imported.setdefault(namespace, location) != location:
                    raise ConfigurationError(f"namespace {namespace} comes from two files")
        for namespace, location in imported.items():
            etree.SubElement(
                wrapper, f"{{{XSD_NS}}}import", namespace=namespace, schemaLocation=location
            )
        try:
            return etree.XMLSchema(wrapper)
        except etree.XMLSchemaParseError as exc:
            raise ConfigurationError(f"the contract's schemas do not compile: {exc}") from exc


def _references(root: etree._Element) -> Iterator[tuple[etree._Element, str]]:
    for element in root.iter(*_REFERENCE_ATTRIBUTES):
        attribute = _REFERENCE_ATTRIBUTES[str(element.tag)]
        if element.get(attribute) is not None:
            yield element, attribute


def request_base_url(environ: dict[str, Any]) -> str:
    """The URL the caller used, without query: ``scheme://host[:port]/script/path``."""
    scheme = environ.get("wsgi.url_scheme", "http")
    host = environ.get("HTTP_HOST", "")
    if not _HOST.fullmatch(host):  # absent or not a plain host: do not reflect it
        host = environ.get("SERVER_NAME", "localhost")
        port = str(environ.get("SERVER_PORT", ""))
        if port and port != {"http": "80", "https": "443"}.get(scheme):
            host = f"{host}:{port}"
    path = quote(environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", ""), safe="/")
    return f"{scheme}://{host}{path}"
