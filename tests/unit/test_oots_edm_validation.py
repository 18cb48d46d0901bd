"""Every request the platform builds validates against the official schemas and EDM Schematron.

Schemas (``oots-edm-1.0/xsd``): RegRep 4 ``query.xsd`` (which brings ``rim``/``rs``) and the
SDG profile ``SDG-GenericMetadataProfile-v1.0.0.xsd`` for the ``sdg:`` content of
``AnyValueType`` slots (``processContents="lax"``: an element is checked when its namespace
is loaded). The RegRep files import ``xml``, ``xlink`` and WS-Addressing without a location,
and the SDG file imports RegRep from ``http://docs.oasis-open.org/...``; libxml2 honours only
the first import of a namespace, so one wrapper schema imports every namespace from the local
files first, and the remote imports are then skipped (no network).

Schematron (``oots-edm-1.0/sch/EDM-REQ-S.sch`` and ``EDM-REQ-C.sch``, the rules for a
QueryRequest): the files declare ``queryBinding="xslt2"``, which lxml's ISO Schematron (an
XSLT 1.0 skeleton) refuses outright. The only XPath 2.0 construct in them is ``matches()``
(14 of the 101 asserts: ``R-EDM-REQ-S004``, ``C002``, ``C005``, ``C008``, ``C019``, ``C026``,
``C027``, ``C034``, ``C035``, ``C039``, ``C043``, ``C050``, ``C061``, ``C064``). The tests run
the rules through ``lxml.isoschematron`` after one mechanical translation: the binding becomes
``exslt`` and ``matches(`` becomes EXSLT ``regexp:test(`` (lxml implements it with Python's
``re``). Both are unanchored searches with flag ``i``, and the patterns use only classes,
counts and ``^``/``$``, which mean the same in both dialects. A test checks no other XPath 2.0
function is left, another that the translated rules accept the official v1.0 request and
catch what they must. So all 101 asserts run.

Rules that do not apply to a v1.2/v2.0 request, and are therefore allowed to fail:

- ``R-EDM-REQ-C001`` pins ``SpecificationIdentifier`` to ``oots-edm:v1.0`` (these rules are the
  v1.0 release); the tests check it *does* fail (the rules ran) and check the version directly.
- ``R-EDM-REQ-S022`` (``Procedure`` must be ``InternationalStringValueType``) at v2.0, where the
  slot became a ``StringValueType`` (``request.py``, difference 2).
- ``R-EDM-REQ-S019`` (no slots beyond the v1.0 list) for a v2.0 request with ``ReturnLocation``.
- ``R-EDM-REQ-C027``/``C034``/``C035`` pin the Semantic Repository host
  ``https://sr.oots.tech.europa.eu/``, which the v1.2/v2.0 samples and the live acceptance DSD
  no longer use (``sr.oots.tech.ec.europa.eu``, ``sr.acc.oots.tech.ec.europa.eu``). A separate
  test builds requests with the old host, where they must pass.

``info``/``warning`` asserts are reported, not failures (``R-EDM-REQ-S008``/``S014`` "MAY be
present" fail by design when a slot is absent); our requests trip no warning.
"""

from __future__ import annotations

import functools
import re
from dataclasses import replace
from pathlib import Path
from typing import Any, Final

import lxml.isoschematron as isoschematron  # type: ignore[import-not-found]  # no stubs
import pytest
from lxml import etree

from integrations.oots.edm import EdmVersion, EvidenceRequest, build_query_request
from tests.unit.test_oots_edm_samples import (
    EDM_1_0,
    EDM_2_0,
    SAMPLES_1_0,
    SR_V1_0,
    TWO_STEP,
    all_requests,
    evidence_type,
    first_request,
    requirement,
)

XSD: Final = EDM_1_0 / "xsd"
SCH: Final = EDM_1_0 / "sch"
SCH_NS: Final = "http://purl.oclc.org/dsdl/schematron"
SVRL_NS: Final = "http://purl.oclc.org/dsdl/svrl"
EXSLT_REGEXP: Final = "http://exslt.org/regular-expressions"
REQUEST_RULES: Final = ("EDM-REQ-S.sch", "EDM-REQ-C.sch")
_PARSER: Final = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)

NOT_V1_0: Final = "R-EDM-REQ-C001"
SR_HOST_RULES: Final = frozenset({"R-EDM-REQ-C027", "R-EDM-REQ-C034", "R-EDM-REQ-C035"})
XPATH_1_FUNCTIONS: Final = frozenset(
    {
        *("boolean", "ceiling", "concat", "contains", "count", "false", "floor", "id"),
        *("lang", "last", "local-name", "name", "namespace-uri", "normalize-space", "not"),
        *("number", "position", "round", "starts-with", "string", "string-length"),
        *("substring", "substring-after", "substring-before", "sum", "translate", "true"),
        *("node", "text", "current"),
    }
)
#: XPath operators a ``name (`` scan also finds.
XPATH_OPERATORS: Final = frozenset({"and", "or", "div", "mod"})

# --- the loaders -----------------------------------------------------------------------------


@functools.cache
def edm_schema() -> etree.XMLSchema:
    imports = {
        "http://www.w3.org/XML/1998/namespace": XSD / "xml" / "xml.xsd",
        "http://www.w3.org/1999/xlink": XSD / "xml" / "xlink.xsd",
        "http://www.w3.org/2005/08/addressing": XSD / "xml" / "ws-addr.xsd",
        "urn:oasis:names:tc:ebxml-regrep:xsd:rim:4.0": XSD / "regrep4" / "rim.xsd",
        "urn:oasis:names:tc:ebxml-regrep:xsd:rs:4.0": XSD / "regrep4" / "rs.xsd",
        "urn:oasis:names:tc:ebxml-regrep:xsd:query:4.0": XSD / "regrep4" / "query.xsd",
        "http://data.europa.eu/p4s": XSD / "sdg" / "SDG-GenericMetadataProfile-v1.0.0.xsd",
    }
    xs = "http://www.w3.org/2001/XMLSchema"
    wrapper = etree.Element(f"{{{xs}}}schema", nsmap={"xs": xs})
    for namespace, path in imports.items():
        etree.SubElement(
            wrapper, f"{{{xs}}}import", namespace=namespace, schemaLocation=path.as_uri()
        )
    return etree.XMLSchema(wrapper)


def schema_errors(document: bytes) -> list[str]:
    schema = edm_schema()
    if schema.validate(etree.fromstring(document, _PARSER)):
        return []
    return str(schema.error_log).splitlines()


def translated(name: str) -> etree._ElementTree:
    """The Schematron file with ``xslt2``/``matches()`` turned into ``exslt``/``regexp:test()``."""
    tree = etree.parse(str(SCH / name), _PARSER)
    root = tree.getroot()
    assert root.get("queryBinding") == "xslt2"
    root.set("queryBinding", "exslt")
    root.insert(0, etree.Element(f"{{{SCH_NS}}}ns", prefix="regexp", uri=EXSLT_REGEXP))
    for element in root.iter(f"{{{SCH_NS}}}*"):
        for attribute in ("test", "context", "value", "select"):
            value = element.get(attribute)
            if value is not None and "matches(" in value:
                element.set(attribute, re.sub(r"\bmatches\(", "regexp:test(", value))
    return tree


@functools.cache
def schematron(name: str) -> Any:
    """The ``isoschematron.Schematron`` of one translated file (untyped: no stubs)."""
    return isoschematron.Schematron(translated(name), store_report=True)


def failed_asserts(document: bytes) -> dict[str, str | None]:
    """``{assert id: role}`` of every failed assert of the QueryRequest rules."""
    doc = etree.fromstring(document, _PARSER)
    failed: dict[str, str | None] = {}
    for name in REQUEST_RULES:
        rules = schematron(name)
        rules.validate(doc)
        for item in rules.validation_report.iter(f"{{{SVRL_NS}}}failed-assert"):
            failed[item.get("id") or f"(no id) {item.get('test')}"] = item.get("role")
    return failed


def errors_of(failed: dict[str, str | None]) -> set[str]:
    return {rule for rule, role in failed.items() if role not in ("info", "warning")}


def allowed_failures(request: EvidenceRequest) -> set[str]:
    allowed = {NOT_V1_0} | SR_HOST_RULES
    if request.version is EdmVersion.V2_0:
        allowed.add("R-EDM-REQ-S022")
    if request.return_location is not None:
        allowed.add("R-EDM-REQ-S019")
    return allowed


def assert_ids() -> dict[str, str | None]:
    """Every assert of the QueryRequest rules: ``{id: role}`` (the one id-less one included)."""
    found: dict[str, str | None] = {}
    for name in REQUEST_RULES:
        for item in etree.parse(str(SCH / name), _PARSER).iter(f"{{{SCH_NS}}}assert"):
            found[item.get("id") or f"(no id) {item.get('test')}"] = item.get("role")
    return found


BIRTH_REQUEST_1_0: Final = (
    SAMPLES_1_0
    / "2 Example for requesting a Birth Certificate - natural person"
    / "2.1 Step 1  Evidence Request - Birth - full example.xml"
)
OFFICIAL_1_0: Final = [
    BIRTH_REQUEST_1_0,
    BIRTH_REQUEST_1_0.parent / "2.2 Step 2  Evidence Response - Birth - full example.xml",
    SAMPLES_1_0
    / "4 Example for requesting an Extract of a Commercial Register"
    / "4.1 Step 1  Evidence Request  - Tax - full example.xml",
    SAMPLES_1_0
    / "3 Example for requesting Secondary Education Completion Evidence"
    / "3.2 Step 2 Error Response - Education - full example.xml",
]
BUILT: Final = all_requests()

# --- schema ----------------------------------------------------------------------------------


@pytest.mark.parametrize("path", OFFICIAL_1_0, ids=lambda p: p.name)
def test_schema_loader_accepts_the_official_samples(path: Path) -> None:
    assert schema_errors(path.read_bytes()) == []


def test_schema_checks_sdg_content() -> None:
    """The SDG schema really is applied inside ``AnyValueType`` slots (lax wildcard)."""
    broken = build_query_request(first_request(EdmVersion.V2_0)).replace(
        b"<sdg:FamilyName>", b"<sdg:Surname>x</sdg:Surname><sdg:FamilyName>"
    )
    assert any("Surname" in error for error in schema_errors(broken))


@pytest.mark.parametrize(
    ("path", "offending"),
    [
        (EDM_2_0 / "reference" / "messages" / "requete.xml", {"Description", "Language"}),
        (
            TWO_STEP / "EDM_Ferst_Request.xml",
            {"XMLSchema-instance}lang", "Description", "Nationality"},
        ),
        (
            TWO_STEP / "EDM_Second_Request.xml",
            {"XMLSchema-instance}lang", "Description", "Nationality"},
        ),
    ],
    ids=lambda v: v.name if isinstance(v, Path) else "",
)
def test_the_v1_2_and_v2_0_request_samples_fail_the_v1_0_sdg_schema(
    path: Path, offending: set[str]
) -> None:
    """Why the builder leaves these elements out (``request.py``): the samples use elements
    the SDG 1.0.0 schema in the conformance folder does not define."""
    errors = schema_errors(path.read_bytes())
    assert errors
    for error in errors:
        assert any(name in error for name in offending), error


@pytest.mark.parametrize(("name", "request_"), BUILT, ids=[name for name, _ in BUILT])
def test_built_request_validates_against_the_official_schemas(
    name: str, request_: EvidenceRequest
) -> None:
    assert schema_errors(build_query_request(request_)) == []


# --- Schematron ----------------------------------------------------------------------------


def test_lxml_refuses_the_rules_as_published() -> None:
    with pytest.raises(etree.LxmlError, match="xslt2"):
        isoschematron.Schematron(etree.parse(str(SCH / "EDM-REQ-S.sch"), _PARSER))


@pytest.mark.parametrize("name", REQUEST_RULES)
def test_translation_leaves_only_xpath_1_and_exslt(name: str) -> None:
    root = translated(name).getroot()
    used: set[str] = set()
    for element in root.iter(f"{{{SCH_NS}}}*"):
        for attribute in ("test", "context", "value", "select"):
            expression = re.sub(r"'[^']*'", "''", element.get(attribute) or "")
            used.update(re.findall(r"([A-Za-z][\w.:-]*)\s*\(", expression))
    assert "regexp:test" in used
    assert used - XPATH_1_FUNCTIONS - XPATH_OPERATORS == {"regexp:test"}


def test_every_request_assert_is_counted() -> None:
    ids = assert_ids()
    assert len(ids) == 101
    assert {rule for rule, role in ids.items() if role == "warning"} == {
        "R-EDM-REQ-S007",
        "R-EDM-REQ-S011",
        "R-EDM-REQ-C038",
    }
    assert {NOT_V1_0, "R-EDM-REQ-S019", "R-EDM-REQ-S022", *SR_HOST_RULES} <= ids.keys()


def test_translated_rules_accept_the_official_v1_0_request() -> None:
    failed = failed_asserts(BIRTH_REQUEST_1_0.read_bytes())
    assert errors_of(failed) == set()
    assert set(failed.values()) <= {"info"}


def test_translated_rules_catch_what_they_must() -> None:
    """Broken on purpose, including two ``matches()`` rules: the translation really runs them."""
    document = build_query_request(first_request(EdmVersion.V1_2, sr=SR_V1_0))
    broken = (
        document.replace(b'id="urn:uuid:', b'id="urn:uuid:not-a-uuid-')
        .replace(b"<sdg:LevelOfAssurance>High", b"<sdg:LevelOfAssurance>Top")
        .replace(b"<sdg:Classification>ER</sdg:Classification>", b"")
        .replace(b"<rim:Value>true</rim:Value>", b"<rim:Value>1</rim:Value>", 0)
    )
    broken = broken.replace(
        b'<rim:Slot name="PossibilityForPreview">',
        b'<rim:Slot name="PreviewLocation"><rim:SlotValue xsi:type="rim:StringValueType">'
        b"<rim:Value>http://plain.example</rim:Value></rim:SlotValue></rim:Slot>"
        b'<rim:Slot name="PossibilityForPreview">',
    )
    assert {
        "R-EDM-REQ-S004",
        "R-EDM-REQ-C005",
        "R-EDM-REQ-C013",
        "R-EDM-REQ-C037",
    } <= errors_of(failed_asserts(broken))


@pytest.mark.parametrize(("name", "request_"), BUILT, ids=[name for name, _ in BUILT])
def test_built_request_passes_the_edm_schematron(name: str, request_: EvidenceRequest) -> None:
    failed = failed_asserts(build_query_request(request_))
    assert NOT_V1_0 in failed  # the v1.0 pin: proof the rules ran on this document
    assert errors_of(failed) - allowed_failures(request_) == set()
    assert "warning" not in failed.values()


@pytest.mark.parametrize("version", list(EdmVersion))
def test_built_request_passes_the_sr_host_rules_with_the_v1_0_host(version: EdmVersion) -> None:
    request = first_request(version, sr=SR_V1_0)
    if version is EdmVersion.V1_2:  # ConformsTo and Transformation: C034, C035
        request = replace(request, evidence_type=evidence_type(SR_V1_0, transformation=True))
    failed = errors_of(failed_asserts(build_query_request(request)))
    expected = {NOT_V1_0} | ({"R-EDM-REQ-S022"} if version is EdmVersion.V2_0 else set())
    assert failed == expected


def test_requirement_identifier_rule_never_fires() -> None:
    """``R-EDM-REQ-C008`` looks for a slot named ``Requirement``; the slot is ``Requirements``,
    so the rule can neither pass nor fail on any request (its pattern, ``.../requirements/
    urn:uuid:...``, would also refuse every sample)."""
    request = replace(
        first_request(EdmVersion.V1_2),
        requirements=(replace(requirement(), identifier="not a requirement URI"),),
    )
    assert "R-EDM-REQ-C008" not in failed_asserts(build_query_request(request))
