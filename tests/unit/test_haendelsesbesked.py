"""The NemSMS subscription event message is valid against KOMBIT's official envelope schema.

``Beskedkuvert.xsd`` (read from ``shared/conformance/kombit/beskedfordeler`` and nowhere
else) imports every namespace from one file each, so libxml2 loads it as it is; KOMBIT's own
example message validating under the same loading proves the loader.
"""

from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Final

import pytest
from lxml import etree

from integrations.sf2250.haendelsesbesked import (
    DATA_NS,
    KUVERT_NS,
    SAGDOK_NS,
    MessageVocabulary,
    SubscriptionChange,
    besked_id,
    build_message,
    registrering_id,
)
from integrations.sf2250.settings import SubscriptionSettings

BESKEDFORDELER: Final = (
    Path(__file__).resolve().parents[2].parent
    / "shared"
    / "conformance"
    / "kombit"
    / "beskedfordeler"
)
SCHEMA_PATH: Final = BESKEDFORDELER / "xsd" / "Beskedkuvert.xsd"
EXAMPLE_PATH: Final = BESKEDFORDELER / "example_messages" / "externTestBesked.xml"
_PARSER: Final = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)

NS: Final = {"b": KUVERT_NS, "sd": SAGDOK_NS, "d": DATA_NS}
AUTHORITY: Final = "29189846"
CPR: Final = "0101901234"
CVR: Final = "25052943"
SUMMER: Final = date(2024, 7, 1)
WINTER: Final = date(2024, 1, 15)
CREATED: Final = datetime(2024, 7, 1, 0, 30, 5, 123456, tzinfo=UTC)
VOCABULARY: Final = MessageVocabulary.from_settings(SubscriptionSettings())


@pytest.fixture(scope="module")
def schema() -> etree.XMLSchema:
    # Missing conformance files fail the test: never skipped.
    assert SCHEMA_PATH.is_file(), f"official schema missing: {SCHEMA_PATH}"
    return etree.XMLSchema(etree.parse(str(SCHEMA_PATH), _PARSER))


def change(
    kind: str = "cpr", number: str = CPR, action: str = "tilmeldt", day: date = SUMMER
) -> SubscriptionChange:
    return SubscriptionChange(
        authority_cvr=AUTHORITY,
        list_date=day,
        kind=kind,  # type: ignore[arg-type]
        number=number,
        change=action,  # type: ignore[arg-type]
    )


def parsed(message: bytes) -> etree._Element:
    return etree.fromstring(message, _PARSER)


def text(root: etree._Element, path: str) -> str:
    found = root.xpath(path, namespaces=NS)
    assert isinstance(found, list)
    assert len(found) == 1, f"{path}: {len(found)} matches"
    value = found[0]
    assert isinstance(value, etree._Element)
    assert value.text is not None
    return value.text


def assert_valid(schema: etree.XMLSchema, document: etree._Element) -> None:
    assert schema.validate(document), str(schema.error_log)


ALL_CASES: Final = [
    ("cpr", CPR, "tilmeldt"),
    ("cpr", CPR, "afmeldt"),
    ("cvr", CVR, "tilmeldt"),
    ("cvr", CVR, "afmeldt"),
]


def test_the_schema_loading_accepts_kombits_example(schema: etree.XMLSchema) -> None:
    assert EXAMPLE_PATH.is_file(), f"official example missing: {EXAMPLE_PATH}"
    assert_valid(schema, etree.parse(str(EXAMPLE_PATH), _PARSER).getroot())


def test_the_schema_loading_refuses_a_broken_message(schema: etree.XMLSchema) -> None:
    root = parsed(build_message(change(), VOCABULARY, created_at=CREATED))
    # BeskedVersion before BeskedId: the order the schema demands is broken.
    root.insert(0, root[1])
    assert not schema.validate(root)


@pytest.mark.parametrize(("kind", "number", "action"), ALL_CASES)
def test_message_is_valid_and_carries_the_change(
    schema: etree.XMLSchema, kind: str, number: str, action: str
) -> None:
    subject = change(kind, number, action)
    message = build_message(subject, VOCABULARY, created_at=CREATED)
    assert message.startswith(b"<?xml version='1.0' encoding='UTF-8'?>")
    root = parsed(message)
    assert_valid(schema, root)

    assert root.tag == f"{{{KUVERT_NS}}}Haendelsesbesked"
    assert text(root, "b:BeskedId/sd:UUIDIdentifikator") == besked_id(subject)
    assert text(root, "b:BeskedVersion") == "1.0"
    f = "b:Beskedkuvert/b:Filtreringsdata"
    assert text(root, f"{f}/b:Beskedtype/sd:UUIDIdentifikator") == VOCABULARY.message_type_uuid
    assert text(root, f"{f}/b:BeskedAnsvarligAktoer/sd:UUIDIdentifikator") == VOCABULARY.actor_uuid
    authority_urn = f"urn:oio:cvr-nr:{AUTHORITY}"
    subject_urn = f"urn:oio:{kind}-nr:{number}"
    object_type = (
        VOCABULARY.person_object_type_uuid if kind == "cpr" else VOCABULARY.company_object_type_uuid
    )
    assert text(root, f"{f}/b:TilladtModtager/sd:URNIdentifikator") == authority_urn
    assert text(root, f"{f}/b:RelateretObjekt/b:ObjektId/sd:URNIdentifikator") == subject_urn
    assert text(root, f"{f}/b:RelateretObjekt/b:ObjektType/sd:UUIDIdentifikator") == object_type

    r = f"{f}/b:ObjektRegistrering"
    assert text(root, f"{r}/b:ObjektRegistreringId/sd:UUIDIdentifikator") == registrering_id(
        subject
    )
    assert text(root, f"{r}/b:RegistreringsAktoer/sd:UUIDIdentifikator") == VOCABULARY.actor_uuid
    assert text(root, f"{r}/b:Registreringstidspunkt/sd:TidsstempelDatoTid") == (
        "2024-07-01T00:30:05Z"
    )
    assert text(root, f"{r}/b:ObjektAnsvarligMyndighed/sd:URNIdentifikator") == authority_urn
    assert text(root, f"{r}/b:ObjektId/sd:URNIdentifikator") == subject_urn
    assert text(root, f"{r}/b:ObjektType/sd:UUIDIdentifikator") == object_type
    handling = (
        VOCABULARY.subscribed_action_uuid
        if action == "tilmeldt"
        else VOCABULARY.unsubscribed_action_uuid
    )
    assert text(root, f"{r}/b:ObjektHandling/sd:UUIDIdentifikator") == handling

    lev = "b:Beskedkuvert/b:Leveranceinformation"
    assert text(root, f"{lev}/b:Dannelsestidspunkt/sd:TidsstempelDatoTid") == (
        "2024-07-01T00:30:05Z"
    )
    assert (
        text(root, f"{lev}/b:Sikkerhedsklassificering/sd:UUIDIdentifikator")
        == "44f4108b-26d4-46de-a90f-35e35b55b8d8"
    )

    d = "b:Beskeddata/d:NemSMSTilmeldingHaendelse"
    assert text(root, f"{d}/d:Myndighed") == AUTHORITY
    assert text(root, f"{d}/d:Slutbruger/d:{kind.upper()}") == number
    assert len(root.xpath(f"{d}/d:Slutbruger/*", namespaces=NS)) == 1  # type: ignore[arg-type]
    assert text(root, f"{d}/d:Handling") == action
    assert text(root, f"{d}/d:ListeDato") == "2024-07-01"


@pytest.mark.parametrize(
    ("day", "expected"),
    [
        (SUMMER, "2024-07-01T00:00:00+02:00"),
        (WINTER, "2024-01-15T00:00:00+01:00"),
        # The days the clock changes (at 02:00/03:00): midnight keeps the day's first offset.
        (date(2024, 3, 31), "2024-03-31T00:00:00+01:00"),
        (date(2024, 10, 27), "2024-10-27T00:00:00+02:00"),
    ],
)
def test_gyldighed_fra_is_danish_midnight_of_the_list_date(
    schema: etree.XMLSchema, day: date, expected: str
) -> None:
    root = parsed(build_message(change(day=day), VOCABULARY, created_at=CREATED))
    assert_valid(schema, root)
    written = text(root, "b:Beskedkuvert/b:GyldighedFra/sd:TidsstempelDatoTid")
    assert written == expected
    instant = datetime.fromisoformat(written)
    offset = timedelta(hours=2 if day.month in (4, 5, 6, 7, 8, 9, 10) else 1)
    assert instant == datetime(day.year, day.month, day.day, tzinfo=timezone(offset))


def test_created_at_is_written_in_utc(schema: etree.XMLSchema) -> None:
    danish = datetime(2024, 1, 15, 2, 0, tzinfo=timezone(timedelta(hours=1)))
    root = parsed(build_message(change(day=WINTER), VOCABULARY, created_at=danish))
    assert_valid(schema, root)
    path = "b:Beskedkuvert/b:Leveranceinformation/b:Dannelsestidspunkt/sd:TidsstempelDatoTid"
    assert text(root, path) == "2024-01-15T01:00:00Z"


def test_a_naive_created_at_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        build_message(change(), VOCABULARY, created_at=datetime(2024, 7, 1, 0, 30))


def test_ids_stay_the_ones_earlier_releases_gave() -> None:
    """A night re-run after an upgrade must find its messages by the same ids (the outbox
    ignores a known id): these values come from the ids' definition, ``json.dumps`` of the
    name list with compact separators, as releases before this test computed them."""
    subject = SubscriptionChange(
        authority_cvr="29189846",
        list_date=date(2026, 11, 17),
        kind="cpr",
        number="0101901234",
        change="tilmeldt",
    )
    assert besked_id(subject) == "fe194a4c-1e46-59e7-8c9e-9c6320d66aeb"
    assert registrering_id(subject) == "b5737dc7-fe5c-55aa-abd1-fdb34efdfd48"


def test_ids_are_canonical_uuids_deterministic_and_distinct() -> None:
    subject = change()
    ids = {besked_id(subject), registrering_id(subject)}
    assert len(ids) == 2
    for value in ids:
        assert str(uuid.UUID(value)) == value
        assert uuid.UUID(value).version == 5
    again = change()
    assert besked_id(again) == besked_id(subject)
    assert registrering_id(again) == registrering_id(subject)


def test_every_field_changes_the_ids() -> None:
    base = change()
    variants = [
        dataclasses.replace(base, authority_cvr="25052943"),
        dataclasses.replace(base, list_date=date(2024, 7, 2)),
        dataclasses.replace(base, kind="cvr", number="01019012"),
        dataclasses.replace(base, number="0101901235"),
        dataclasses.replace(base, change="afmeldt"),
    ]
    seen = {besked_id(base), registrering_id(base)}
    for variant in variants:
        seen |= {besked_id(variant), registrering_id(variant)}
    assert len(seen) == 2 * (len(variants) + 1)


def test_a_rerun_gives_the_same_bytes() -> None:
    first = build_message(change(), VOCABULARY, created_at=CREATED)
    assert build_message(change(), VOCABULARY, created_at=CREATED) == first


def test_repr_masks_a_cpr_number_but_not_a_cvr_number() -> None:
    person = change()
    assert CPR not in repr(person)
    assert CPR not in str(person)
    assert "010190****" in repr(person)
    company = change("cvr", CVR)
    assert f"number='{CVR}'" in repr(company)


@pytest.mark.parametrize(
    "fields",
    [
        {"authority_cvr": "2918984"},
        {"authority_cvr": "2918984x"},
        {"number": "010190123"},
        {"number": "01019O1234"},
        {"kind": "cvr"},  # a CPR number is not a CVR number
        {"kind": "p"},
        {"change": "slettet"},
        {"list_date": datetime(2024, 7, 1, 12, 0)},
    ],
)
def test_malformed_changes_are_refused_without_the_number(fields: dict[str, object]) -> None:
    with pytest.raises(ValueError) as raised:
        dataclasses.replace(change(), **fields)  # type: ignore[arg-type]
    assert CPR not in str(raised.value)


def test_vocabulary_from_settings_and_canonical_uuids() -> None:
    settings = SubscriptionSettings(
        message_type_uuid="5A0BB4A4-7C4B-4C59-9D3A-6F3F2B6A1C01",
        actor_uuid="D92BB9C2-D826-4028-8FB5-D8B88B4377D4",
    )
    vocabulary = MessageVocabulary.from_settings(settings)
    assert vocabulary.message_type_uuid == "5a0bb4a4-7c4b-4c59-9d3a-6f3f2b6a1c01"
    assert vocabulary.actor_uuid == "d92bb9c2-d826-4028-8fb5-d8b88b4377d4"
    assert vocabulary.person_object_type_uuid == "ce7fcf97-a8a2-447a-8690-d38aa0f6e23c"
    assert vocabulary.security_classification_uuid == "44f4108b-26d4-46de-a90f-35e35b55b8d8"
    assert vocabulary.subscribed_action_uuid != vocabulary.unsubscribed_action_uuid
    with pytest.raises(ValueError, match="actor_uuid"):
        MessageVocabulary(message_type_uuid=vocabulary.message_type_uuid, actor_uuid="platform")
