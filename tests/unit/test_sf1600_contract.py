"""The hand-written SF1600 Print contract (``wsdl/sf1600``) equals Serviceplatformen's official one.

The official contract (``shared/conformance/kombit/sf1600``, read here and nowhere else) spreads
its schemas over about a hundred files and imports one namespace from many of them, which
libxml2 cannot load (it honours only the first import of a namespace). Ours has one file per
namespace. The tests prove that the two define the same thing:

* every global schema component reachable from the messages is defined with the same name,
  namespace and canonical definition in both (and ours defines nothing else);
* zeep sees the same operations, signatures and types in both WSDLs; ours adds a SOAP 1.2
  port after the SOAP 1.1 one;
* sample requests, answers and faults are valid or invalid alike under both schemas.

Nothing here touches the network: zeep's session refuses every HTTP request.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable, Iterator, Mapping
from functools import cache
from pathlib import Path
from typing import Any, Final

import pytest
import requests
import requests.adapters
import zeep
from lxml import etree
from zeep.transports import Transport

from serviceplatform.soap.contract_docs import ContractDocuments
from tests.official_schemas import parse, schema_files, wrapped_schema

PROJECT: Final = Path(__file__).resolve().parents[2]
CONTRACT: Final = PROJECT / "wsdl" / "sf1600"
OUR_WSDL: Final = CONTRACT / "PrintService.wsdl"
OFFICIAL: Final = (
    Path(__file__).resolve().parents[2].parent / "shared" / "conformance" / "kombit" / "sf1600"
)
OFFICIAL_WSDL: Final = OFFICIAL / "wsdl" / "token" / "PrintService.wsdl"

WSDL_NS: Final = "http://schemas.xmlsoap.org/wsdl/"
XSD_NS: Final = "http://www.w3.org/2001/XMLSchema"
SOAP11_NS: Final = "http://schemas.xmlsoap.org/wsdl/soap/"
SOAP12_NS: Final = "http://schemas.xmlsoap.org/wsdl/soap12/"
TNS: Final = "http://serviceplatformen.dk/xml/wsdl/soap11/Print/Print/2/"
INVCTX: Final = "http://serviceplatformen.dk/xml/schemas/InvocationContext/1/"
AUTHCTX: Final = "http://serviceplatformen.dk/xml/schemas/AuthorityContext/1/"
CALLCTX: Final = "http://serviceplatformen.dk/xml/schemas/CallContext/1/"
SPF: Final = "http://serviceplatformen.dk/xml/schemas/ServiceplatformFault/1/"
FJERNPRINT: Final = "urn:oio:fjernprint:1.0.0"
DKAL: Final = "urn:oio:dkal:1.0.0"
SAGDOK: Final = "urn:oio:sagdok:3.0.0"
ADIR: Final = "urn:oio:adir:dagpenge:2009.07.01"
DKCC2003: Final = "http://rep.oio.dk/ebxml/xml/schemas/dkcc/2003/02/13/"
DKCC0315: Final = "http://rep.oio.dk/ebxml/xml/schemas/dkcc/2005/03/15/"
ITST: Final = "http://rep.oio.dk/itst.dk/xml/schemas/2006/01/17/"
ADDRESS: Final = "https://localhost:8080/service/Print/Print/2"
OPERATIONS: Final = ("afsendBrev", "spoergTilmelding")

#: Where each namespace of our contract is defined: exactly one file per namespace.
NAMESPACE_FILES: Final = {
    TNS: "PrintServiceMsg.xsd",
    INVCTX: "sp/InvocationContext_1.xsd",
    AUTHCTX: "sp/AuthorityContext_1.xsd",
    CALLCTX: "sp/CallContext_1.xsd",
    SPF: "sp/ServiceplatformFault_1.xsd",
    FJERNPRINT: "oio/fjernprint.xsd",
    DKAL: "oio/dkal.xsd",
    SAGDOK: "oio/sagdok.xsd",
    ADIR: "oio/adir-dagpenge.xsd",
    "http://rep.oio.dk/cpr.dk/xml/schemas/core/2005/03/18/": "oio/cpr-2005-03-18.xsd",
    "http://rep.oio.dk/cpr.dk/xml/schemas/core/2005/05/19/": "oio/cpr-2005-05-19.xsd",
    "http://rep.oio.dk/cvr.dk/xml/schemas/2005/03/22/": "oio/cvr-2005-03-22.xsd",
    DKCC2003: "oio/dkcc-2003-02-13.xsd",
    DKCC0315: "oio/dkcc-2005-03-15.xsd",
    "http://rep.oio.dk/ebxml/xml/schemas/dkcc/2005/05/13/": "oio/dkcc-2005-05-13.xsd",
    "http://rep.oio.dk/ebxml/xml/schemas/dkcc/2005/05/19/": "oio/dkcc-2005-05-19.xsd",
    ITST: "oio/itst-2006-01-17.xsd",
    "http://rep.oio.dk/xkom.dk/xml/schemas/2005/03/15/": "oio/xkom-2005-03-15.xsd",
}

# --- canonical schema components -------------------------------------------------------------

#: (namespace, kind, name) of a global schema component.
Key = tuple[str, str, str]
#: A definition without annotations, comments or whitespace: (tag, sorted attributes, children).
Canon = tuple[str, tuple[tuple[str, str], ...], tuple["Canon", ...]]

KINDS: Final = frozenset(
    {"element", "attribute", "complexType", "simpleType", "group", "attributeGroup"}
)
QNAME_ATTRIBUTES: Final = frozenset({"type", "ref", "base", "itemType", "substitutionGroup"})
QNAME_LIST_ATTRIBUTES: Final = frozenset({"memberTypes"})
DEFAULT_OCCURS: Final = frozenset({("minOccurs", "1"), ("maxOccurs", "1")})
TYPE_KINDS: Final = ("complexType", "simpleType")
ANNOTATION: Final = f"{{{XSD_NS}}}annotation"


def resolve_qname(element: etree._Element, value: str) -> str:
    """``prefix:local`` (or ``local``, the default namespace) as ``{namespace}local``."""
    prefix, _, local = value.strip().rpartition(":")
    namespace = element.nsmap.get(prefix or None)
    assert namespace is not None or not prefix, f"undeclared prefix in {value!r}"
    return f"{{{namespace or ''}}}{local}"


def canonical(element: etree._Element, extra: Iterable[tuple[str, str]] = ()) -> Canon:
    """The definition as a comparable value.

    Drops annotations, comments, processing instructions and whitespace; writes every
    QName-valued attribute as ``{namespace}local``; drops ``minOccurs``/``maxOccurs`` of 1
    (the default); sorts the attributes. Tags of XML Schema are their local name.
    """
    attributes = list(extra)
    for name in map(str, element.keys()):
        value = element.get(name, "")
        if name in QNAME_ATTRIBUTES:
            value = resolve_qname(element, value)
        elif name in QNAME_LIST_ATTRIBUTES:
            value = " ".join(resolve_qname(element, item) for item in value.split())
        elif (name, value) in DEFAULT_OCCURS:
            continue
        attributes.append((name, value))
    children: list[Canon] = []
    for child in element:
        if isinstance(child.tag, str) and child.tag != ANNOTATION:
            children.append(canonical(child))
    texts = [element.text, *(child.tail for child in element)]
    assert not "".join(text or "" for text in texts).strip(), f"text in {element.tag}"
    qname = etree.QName(element)
    tag = qname.localname if qname.namespace == XSD_NS else qname.text
    return tag, tuple(sorted(attributes)), tuple(children)


def components(files: Mapping[Path, etree._Element]) -> dict[Key, Canon]:
    """Every global component of the files, canonical; the same key must mean the same."""
    found: dict[Key, Canon] = {}
    for path, root in sorted(files.items()):
        namespace = root.get("targetNamespace", "")
        forms = [
            ("@elementFormDefault", root.get("elementFormDefault", "unqualified")),
            ("@attributeFormDefault", root.get("attributeFormDefault", "unqualified")),
        ]
        for child in root:
            if not isinstance(child.tag, str):
                continue
            qname = etree.QName(child)
            if qname.namespace != XSD_NS or qname.localname not in KINDS:
                continue
            key = (namespace, qname.localname, child.get("name", ""))
            definition = canonical(child, forms)
            assert found.setdefault(key, definition) == definition, f"{key} differs in {path}"
    return found


def references(node: Canon) -> Iterator[tuple[tuple[str, ...], str]]:
    """(possible kinds, ``{namespace}local``) of every component the definition refers to."""
    tag, attributes, children = node
    for name, value in attributes:
        if name == "ref":
            yield (tag,), value
        elif name in ("type", "base", "itemType"):
            yield TYPE_KINDS, value
        elif name == "memberTypes":
            for item in value.split():
                yield TYPE_KINDS, item
        elif name == "substitutionGroup":
            yield ("element",), value
    for child in children:
        yield from references(child)


def reachable(found: Mapping[Key, Canon], roots: Iterable[Key]) -> dict[Key, Canon]:
    """The components reachable from ``roots``; every reference must resolve."""
    result: dict[Key, Canon] = {}
    pending = list(roots)
    while pending:
        key = pending.pop()
        if key in result:
            continue
        assert key in found, f"{key} is not defined"
        result[key] = found[key]
        for kinds, qname in references(found[key]):
            namespace, _, local = qname[1:].partition("}")
            if namespace == XSD_NS:
                continue
            targets = [
                (namespace, kind, local) for kind in kinds if (namespace, kind, local) in found
            ]
            assert targets, f"{key} refers to {qname}, which is not defined"
            pending += targets
    return result


def message_parts(wsdl: Path) -> dict[str, tuple[tuple[str, str], ...]]:
    """WSDL message name -> (part name, ``{ns}element``) of each part."""
    return {
        message.get("name", ""): tuple(
            (part.get("name", ""), resolve_qname(part, part.get("element", "")))
            for part in message.iterfind(f"{{{WSDL_NS}}}part")
        )
        for message in parse(wsdl).iterfind(f"{{{WSDL_NS}}}message")
    }


def roots_of(wsdl: Path) -> set[Key]:
    """The element of every message part: four messages, dkal:Fejl, spf:ServiceplatformFault."""
    keys = set()
    for parts in message_parts(wsdl).values():
        for _, element in parts:
            namespace, _, local = element[1:].partition("}")
            keys.add((namespace, "element", local))
    return keys


@cache
def official_components() -> dict[Key, Canon]:
    return reachable(components(schema_files(OFFICIAL_WSDL)), roots_of(OFFICIAL_WSDL))


@cache
def our_all_components() -> dict[Key, Canon]:
    return components(schema_files(OUR_WSDL))


def test_canonical_form_ignores_spelling_but_not_meaning() -> None:
    def one(text: str) -> Canon:
        return canonical(etree.fromstring(text))

    xsd = f'xmlns="{XSD_NS}" xmlns:x="{XSD_NS}" xmlns:a="urn:a" xmlns:b="urn:a"'
    same = [
        f'<element {xsd} name="E" type="string" minOccurs="1"/>',
        f'<x:element {xsd} type="x:string" name="E"><!-- c --><x:annotation/></x:element>',
    ]
    assert one(same[0]) == one(same[1])
    assert one(f'<element {xsd} ref="a:E"/>') == one(f'<element {xsd} ref="b:E"/>')
    facet = '<simpleType {0}><restriction base="string"><maxLength value="{1}"/></restriction>'
    assert one(facet.format(xsd, 38) + "</simpleType>") != one(
        facet.format(xsd, 39) + "</simpleType>"
    )
    assert one(f'<element {xsd} ref="a:E"/>') != one(f'<element {xsd} ref="a:E" minOccurs="0"/>')


# --- our contract loads ----------------------------------------------------------------------


@cache
def our_schema() -> etree.XMLSchema:
    return ContractDocuments(OUR_WSDL).build_schema()


def test_our_schemas_load_with_the_platform_loader() -> None:
    documents = ContractDocuments(OUR_WSDL)
    assert documents.keys == {"PrintService.wsdl", "policies.wsdl", *NAMESPACE_FILES.values()}
    assert isinstance(our_schema(), etree.XMLSchema)


def test_each_namespace_comes_from_exactly_one_file() -> None:
    files = schema_files(OUR_WSDL)
    defined = {
        path.relative_to(CONTRACT).as_posix(): root.get("targetNamespace")
        for path, root in files.items()
    }
    assert defined == {file: namespace for namespace, file in NAMESPACE_FILES.items()}
    for path, root in files.items():  # every import names the one file of its namespace
        for imported in root.iterchildren(f"{{{XSD_NS}}}import"):
            target = (path.parent / imported.get("schemaLocation", "")).resolve()
            assert target == CONTRACT / NAMESPACE_FILES[imported.get("namespace", "")], path
        assert not list(root.iterchildren(f"{{{XSD_NS}}}include")), f"{path} includes a file"


def test_every_schema_file_compiles_alone() -> None:
    found = sorted(CONTRACT.rglob("*.xsd"))
    # Exactly the schemas the served contract names, so an empty or moved directory fails
    # here instead of passing with nothing checked.
    served = {key for key in ContractDocuments(OUR_WSDL).keys if key.endswith(".xsd")}
    assert served and {path.relative_to(CONTRACT).as_posix() for path in found} == served
    for path in found:
        etree.XMLSchema(parse(path))  # raises XMLSchemaParseError when broken


def test_readme_names_every_file() -> None:
    readme = (CONTRACT / "README.md").read_text()
    missing = sorted(key for key in ContractDocuments(OUR_WSDL).keys if f"`{key}`" not in readme)
    assert missing == []


# --- the components equal the official ones --------------------------------------------------


def test_the_messages_are_the_official_ones() -> None:
    assert message_parts(OUR_WSDL) == message_parts(OFFICIAL_WSDL)
    assert roots_of(OUR_WSDL) == {
        (TNS, "element", "PrintAfsendBrevRequest"),
        (TNS, "element", "PrintAfsendBrevResponse"),
        (TNS, "element", "PrintSpoergTilmeldingRequest"),
        (TNS, "element", "PrintSpoergTilmeldingResponse"),
        (DKAL, "element", "Fejl"),
        (SPF, "element", "ServiceplatformFault"),
    }


def test_reachable_components_equal_the_official_ones() -> None:
    official = official_components()
    ours = reachable(our_all_components(), roots_of(OUR_WSDL))
    assert sorted(official.keys() - ours.keys()) == [], "missing in ours"
    assert sorted(ours.keys() - official.keys()) == [], "not in the official contract"
    assert sorted(key for key in official if official[key] != ours[key]) == [], "differ"
    assert {namespace for namespace, _, _ in ours} == set(NAMESPACE_FILES)
    assert len(ours) > 150  # the comparison is not vacuous


def test_our_schemas_define_nothing_unreachable() -> None:
    everything = our_all_components()
    assert sorted(everything.keys() - reachable(everything, roots_of(OUR_WSDL)).keys()) == []


# --- the WSDL --------------------------------------------------------------------------------


def _operations(binding: etree._Element, soap_ns: str) -> dict[str, str]:
    return {
        operation.get("name", ""): operation.find(f"{{{soap_ns}}}operation").get("soapAction", "")  # type: ignore[union-attr]
        for operation in binding.iterfind(f"{{{WSDL_NS}}}operation")
    }


def _binding(root: etree._Element, name: str) -> etree._Element:
    binding = root.find(f"{{{WSDL_NS}}}binding[@name='{name}']")
    assert binding is not None, name
    return binding


def _port_type(root: etree._Element) -> dict[str, tuple[str, ...]]:
    result = {}
    for operation in root.iterfind(
        f"{{{WSDL_NS}}}portType[@name='PrintPortType']/{{{WSDL_NS}}}operation"
    ):
        result[operation.get("name", "")] = tuple(
            f"{etree.QName(child).localname} {child.get('name', '')} "
            + resolve_qname(child, child.get("message", ""))
            for child in operation
            if isinstance(child.tag, str) and etree.QName(child).localname != "documentation"
        )
    return result


def test_wsdl_has_the_official_port_type_binding_and_service_plus_soap12() -> None:
    ours, official = parse(OUR_WSDL), parse(OFFICIAL_WSDL)
    assert ours.get("targetNamespace") == official.get("targetNamespace") == TNS
    assert _port_type(ours) == _port_type(official)
    assert set(_port_type(ours)) == set(OPERATIONS)
    soap11 = _operations(_binding(official, "Print"), SOAP11_NS)
    assert _operations(_binding(ours, "Print"), SOAP11_NS) == soap11
    assert _operations(_binding(ours, "Print12"), SOAP12_NS) == soap11
    assert soap11 == {name: TNS + name for name in OPERATIONS}
    for name, soap_ns in (("Print", SOAP11_NS), ("Print12", SOAP12_NS)):
        binding = _binding(ours, name)
        assert binding.find(f"{{{soap_ns}}}binding").get("style") == "document"  # type: ignore[union-attr]
        assert {body.get("use") for body in binding.iter(f"{{{soap_ns}}}body")} == {"literal"}
        faults = {fault.get("name") for fault in binding.iter(f"{{{soap_ns}}}fault")}
        assert faults == {"ServiceplatformFault", "SP_FejlFault"}
        policy = "{http://www.w3.org/ns/ws-policy}PolicyReference"
        assert binding.find(policy).get("URI") == "policies.wsdl#ServiceplatformBindingPolicy"  # type: ignore[union-attr]
    ports = [
        (port.get("name"), port.get("binding"), port[0].tag, port[0].get("location"))
        for port in ours.iterfind(f"{{{WSDL_NS}}}service[@name='Print']/{{{WSDL_NS}}}port")
    ]
    assert ports == [
        ("Print", "tns:Print", f"{{{SOAP11_NS}}}address", ADDRESS),
        ("Print12", "tns:Print12", f"{{{SOAP12_NS}}}address", ADDRESS),
    ]
    imports = [
        (i.get("namespace"), i.get("location")) for i in ours.iterfind(f"{{{WSDL_NS}}}import")
    ]
    assert imports == [
        (i.get("namespace"), i.get("location")) for i in official.iterfind(f"{{{WSDL_NS}}}import")
    ]


def test_policy_is_the_official_token_policy() -> None:
    def policies(path: Path) -> tuple[str | None, list[Canon]]:
        root = parse(path)
        found = root.iterfind("{http://schemas.xmlsoap.org/ws/2004/09/policy}Policy")
        return root.get("targetNamespace"), [canonical(policy) for policy in found]

    ours = policies(CONTRACT / "policies.wsdl")
    assert ours == policies(OFFICIAL / "wsdl" / "token" / "policies.wsdl")
    assert len(ours[1]) == 3


# --- zeep ------------------------------------------------------------------------------------


class _NoNetwork(requests.adapters.BaseAdapter):
    """Refuses every request: the contracts must load from files alone."""

    def send(
        self, request: requests.PreparedRequest, *args: Any, **kwargs: Any
    ) -> requests.Response:
        raise AssertionError(f"network access to {request.url}")

    def close(self) -> None:
        pass


@cache
def zeep_client(wsdl: Path) -> Any:
    session = requests.Session()
    session.trust_env = False
    session.mount("http://", _NoNetwork())
    session.mount("https://", _NoNetwork())
    transport = Transport(session=session)  # type: ignore[no-untyped-call]
    settings = zeep.Settings(strict=True)
    return zeep.Client(str(wsdl), settings=settings, transport=transport)  # type: ignore[no-untyped-call]


@pytest.mark.parametrize("operation", OPERATIONS)
def test_zeep_signatures_equal_the_official_ones(operation: str) -> None:
    ours = zeep_client(OUR_WSDL).service._binding._operations[operation]
    official = zeep_client(OFFICIAL_WSDL).service._binding._operations[operation]
    assert ours.input.signature() == official.input.signature()
    assert ours.output.signature() == official.output.signature()
    assert ours.soapaction == official.soapaction == TNS + operation
    assert (
        sorted(ours.faults) == sorted(official.faults) == ["SP_FejlFault", "ServiceplatformFault"]
    )


def _zeep_signature(client: Any, key: Key) -> str:
    """zeep's signature of a component, its prefixes (which differ per client) resolved."""
    namespace, kind, name = key
    types = client.wsdl.types
    if kind == "element":
        signature: str = types.get_element(f"{{{namespace}}}{name}").signature(schema=types)
    else:
        signature = types.get_type(f"{{{namespace}}}{name}").signature(schema=types)
    prefixes: dict[str, str] = types.prefix_map

    def resolve(match: re.Match[str]) -> str:
        prefix = match.group(1)
        return f"{{{prefixes[prefix]}}}" if prefix in prefixes else match.group(0)

    return re.sub(r"\b([A-Za-z_][\w.-]*):(?=[A-Za-z_])", resolve, signature)


def test_zeep_sees_the_same_types_and_elements() -> None:
    ours, official = zeep_client(OUR_WSDL), zeep_client(OFFICIAL_WSDL)
    keys = sorted(key for key in official_components() if key[1] in ("element", *TYPE_KINDS))
    differ = [key for key in keys if _zeep_signature(ours, key) != _zeep_signature(official, key)]
    assert differ == []


def test_zeep_takes_soap11_first_and_binds_soap12_on_request() -> None:
    client = zeep_client(OUR_WSDL)
    assert type(client.service._binding).__name__ == "Soap11Binding"
    assert client.service._binding_options["address"] == ADDRESS
    soap12 = client.bind("Print", "Print12")
    assert type(soap12._binding).__name__ == "Soap12Binding"
    assert soap12._binding_options["address"] == ADDRESS
    for operation in OPERATIONS:
        assert soap12._binding._operations[operation].soapaction == TNS + operation
    official = zeep_client(OFFICIAL_WSDL)
    assert type(official.service._binding).__name__ == "Soap11Binding"


# --- sample instances under both schemas -----------------------------------------------------


@pytest.fixture(scope="module")
def official_schema(tmp_path_factory: pytest.TempPathFactory) -> etree.XMLSchema:
    """The official schemas, loadable by libxml2 despite their many imports per namespace.

    One wrapper per namespace includes all official files of that namespace; a top wrapper
    imports the namespace wrappers, the imported namespaces first, so that when a file
    imports a namespace from one of its files, the namespace is already complete (libxml2
    skips any later import of a namespace it has).
    """
    directory = tmp_path_factory.mktemp("sf1600-official")
    return wrapped_schema(schema_files(OFFICIAL_WSDL), directory)


PREFIXES: Final = {
    "p": TNS,
    "inv": INVCTX,
    "auth": AUTHCTX,
    "call": CALLCTX,
    "spf": SPF,
    "fp": FJERNPRINT,
    "dkal": DKAL,
    "sd": SAGDOK,
    "adir": ADIR,
    "dkcc": DKCC2003,
    "dkcc0315": DKCC0315,
    "itst": ITST,
}
XMLNS: Final = " ".join(f'xmlns:{prefix}="{ns}"' for prefix, ns in PREFIXES.items())
CONTENT: Final = base64.b64encode("Kære borger\nDette er en test.\n".encode()).decode()
CPR: Final = "<adir:CPRnummerIdentifikator>0101901234</adir:CPRnummerIdentifikator>"
CVR: Final = "<adir:CVRnummerIdentifikator>29189846</adir:CVRnummerIdentifikator>"
UUIDS: Final = (
    "<inv:ServiceAgreementUUID>0d9a3e04-3b1f-4c57-9d4a-1a2b3c4d5e6f</inv:ServiceAgreementUUID>"
    "<inv:UserSystemUUID>1e8b2f15-4c2a-4d68-8e5b-2b3c4d5e6f70</inv:UserSystemUUID>"
    "<inv:UserUUID>2f7c3a26-5d3b-4e79-9f6c-3c4d5e6f7081</inv:UserUUID>"
    "<inv:ServiceUUID>fd885b8b-4a3f-46cb-b367-6c9dda1c78f6</inv:ServiceUUID>"
)


def authority(cvr: str = "29189846") -> str:
    return (
        f"<auth:AuthorityContext><auth:MunicipalityCVR>{cvr}</auth:MunicipalityCVR>"
        "</auth:AuthorityContext>"
    )


def forsendelse(
    *,
    identifikator: str = "brev-0001",
    modtager: str = "",
    transaktion: str = "",
    dokument: str = "<fp:DokumentParametre/>",
    after: str = "",
    tag: str = "p:ForsendelseI",
) -> str:
    """A ``ForsendelseI``; the arguments are the optional parts, in ForsendelseIType's order."""
    return (
        f"<{tag}><fp:AfsendelseIdentifikator>{identifikator}</fp:AfsendelseIdentifikator>"
        f"{modtager}<dkal:FilformatNavn>TXT</dkal:FilformatNavn>"
        f"<dkal:MeddelelseIndholdData>{CONTENT}</dkal:MeddelelseIndholdData>"
        f"{transaktion}{dokument}{after}</{tag}>"
    )


def afsend_brev(
    *, kanalvalg: str = "D", prioritet: str = "D", body: str | None = None, contexts: str = ""
) -> str:
    sending = forsendelse() if body is None else body
    return (
        f"<p:PrintAfsendBrevRequest {XMLNS}>{contexts}<p:BrevSPBody>"
        f"<p:Kanalvalg>{kanalvalg}</p:Kanalvalg><p:Prioritet>{prioritet}</p:Prioritet>"
        f"{sending}</p:BrevSPBody></p:PrintAfsendBrevRequest>"
    )


def spoerg_tilmelding(subject: str = CPR, before: str = "", contexts: str = "") -> str:
    return (
        f"<p:PrintSpoergTilmeldingRequest {XMLNS}>{contexts}<p:TilmeldingRequest>{before}"
        f"<dkal:SlutbrugerIdentitet>{subject}</dkal:SlutbrugerIdentitet>"
        "</p:TilmeldingRequest></p:PrintSpoergTilmeldingRequest>"
    )


def fejl(code: str = "1001") -> str:
    return (
        f'<dkal:Fejl xmlns:dkal="{DKAL}"><dkal:FejlKode>{code}</dkal:FejlKode>'
        "<dkal:FejlTekst>Ukendt modtager</dkal:FejlTekst></dkal:Fejl>"
    )


TO_CPR: Final = (
    f"<fp:ForsendelseModtager><dkal:AfsendelseModtager>{CPR}</dkal:AfsendelseModtager>"
    "</fp:ForsendelseModtager>"
)
TITLE: Final = (
    "<fp:DokumentParametre><sd:TitelTekst>Besked fra kommunen</sd:TitelTekst>"
    "</fp:DokumentParametre>"
)
ADDRESSED: Final = (
    "<fp:ForsendelseModtager><dkal:AfsendelseModtager>"
    f"{CVR}</dkal:AfsendelseModtager><fp:ModtagerAdresse>"
    "<itst:PersonName>Firma ApS</itst:PersonName>"
    "<dkcc0315:StreetName>Vestergade</dkcc0315:StreetName>"
    "<dkcc:StreetBuildingIdentifier>12B</dkcc:StreetBuildingIdentifier>"
    "<dkcc:FloorIdentifier>st</dkcc:FloorIdentifier>"
    "<dkcc0315:PostCodeIdentifier>8000</dkcc0315:PostCodeIdentifier>"
    '<dkcc:CountryIdentificationCode scheme="iso3166-alpha2">DK</dkcc:CountryIdentificationCode>'
    "</fp:ModtagerAdresse></fp:ForsendelseModtager>"
)
CHANNEL_PARAMETERS: Final = (
    "<fp:KanalUafhaengigeParametreI><fp:BrugerNavn>sagsbehandler</fp:BrugerNavn>"
    "<fp:KanalKode>Fysisk Post</fp:KanalKode></fp:KanalUafhaengigeParametreI>"
    "<fp:PrintParametre><fp:SimplexDuplexKode>Duplex</fp:SimplexDuplexKode></fp:PrintParametre>"
    "<fp:DigitalPostParametre><dkal:MeddelelseIndholdstypeIdentifikator>2"
    "</dkal:MeddelelseIndholdstypeIdentifikator><fp:MedsendDokumentRegistreringIndikator>false"
    "</fp:MedsendDokumentRegistreringIndikator></fp:DigitalPostParametre>"
    "<fp:PostParametre><fp:PostKategoriKode>Prioritaire</fp:PostKategoriKode></fp:PostParametre>"
    "<fp:BilagSamling><fp:Bilag><fp:BilagNavn>bilag.txt</fp:BilagNavn>"
    "<dkal:FilformatNavn>TXT</dkal:FilformatNavn>"
    "<fp:BilagSorteringsIndeksIdentifikator>1</fp:BilagSorteringsIndeksIdentifikator>"
    f"<dkal:VedhaeftningIndholdData>{CONTENT}</dkal:VedhaeftningIndholdData>"
    "</fp:Bilag></fp:BilagSamling>"
)
TRANSACTION: Final = (
    "<fp:TransaktionsParametreI><fp:KvitteringsTypeKode>Kun fejl</fp:KvitteringsTypeKode>"
    "<fp:KvitteringsEmail>kvittering@kommune.dk</fp:KvitteringsEmail></fp:TransaktionsParametreI>"
)

VALID: Final = {
    "afsend-minimal": afsend_brev(),
    "afsend-rich": afsend_brev(
        contexts=authority(), body=forsendelse(modtager=TO_CPR, dokument=TITLE)
    ),
    "afsend-full": afsend_brev(
        kanalvalg="A",
        prioritet="M",
        contexts=f"<inv:InvocationContext>{UUIDS}</inv:InvocationContext>{authority()}"
        "<call:CallContext><call:OnBehalfOfUser>bruger</call:OnBehalfOfUser></call:CallContext>",
        body=forsendelse(
            modtager=ADDRESSED, transaktion=TRANSACTION, dokument=TITLE, after=CHANNEL_PARAMETERS
        ),
    ),
    "spoerg-cpr": spoerg_tilmelding(),
    "spoerg-cvr": spoerg_tilmelding(
        CVR,
        before="<dkal:MeddelelseIndholdstypeIdentifikator>1</dkal:MeddelelseIndholdstypeIdentifikator>",
        contexts=authority(),
    ),
    "afsend-response": f'<p:PrintAfsendBrevResponse xmlns:p="{TNS}"><p:resultat>true</p:resultat>'
    "</p:PrintAfsendBrevResponse>",
    "spoerg-response": f'<p:PrintSpoergTilmeldingResponse xmlns:p="{TNS}"><p:tilmeldt>false'
    "</p:tilmeldt></p:PrintSpoergTilmeldingResponse>",
    "fejl": fejl(),
    "serviceplatform-fault": f'<spf:ServiceplatformFault xmlns:spf="{SPF}"><spf:ErrorList>'
    "<spf:Error><spf:ErrorCode>SP-1</spf:ErrorCode><spf:ErrorText>t</spf:ErrorText></spf:Error>"
    "</spf:ErrorList></spf:ServiceplatformFault>",
}
INVALID: Final = {
    "kanalvalg-x": afsend_brev(kanalvalg="X"),
    "prioritet-x": afsend_brev(prioritet="X"),
    "no-forsendelse": afsend_brev(body=""),
    "identifikator-39-chars": afsend_brev(body=forsendelse(identifikator="x" * 39)),
    "identifikator-empty": afsend_brev(body=forsendelse(identifikator="")),
    "municipality-cvr-7-digits": afsend_brev(contexts=authority("2918984")),
    "no-dokumentparametre": afsend_brev(body=forsendelse(dokument="")),
    "forsendelse-in-fjernprint-namespace": afsend_brev(body=forsendelse(tag="fp:ForsendelseI")),
    "cpr-31-february": spoerg_tilmelding(CPR.replace("0101901234", "3102901234")),
    "cpr-and-cvr": spoerg_tilmelding(CPR + CVR),
    "cvr-9-chars": spoerg_tilmelding(CVR.replace("29189846", "291898461")),
    "fejlkode-999": fejl("999"),
}


@pytest.mark.parametrize("name", sorted(VALID))
def test_valid_under_both_schemas(name: str, official_schema: etree.XMLSchema) -> None:
    instance = etree.fromstring(VALID[name])
    assert official_schema.validate(instance), official_schema.error_log
    assert our_schema().validate(instance), our_schema().error_log


@pytest.mark.parametrize("name", sorted(INVALID))
def test_invalid_under_both_schemas(name: str, official_schema: etree.XMLSchema) -> None:
    instance = etree.fromstring(INVALID[name])
    assert not official_schema.validate(instance)
    assert not our_schema().validate(instance)
