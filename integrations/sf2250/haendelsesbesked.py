"""The Beskedfordeler event message (``Haendelsesbesked``) for one NemSMS subscription change.

Every night the platform diffs each authority's NemSMS subscription list against yesterday's;
every CPR or CVR number that became subscribed (``tilmeldt``) or unsubscribed (``afmeldt``) is
one :class:`SubscriptionChange`, and :func:`build_message` turns it into one message for the
message distributor (Beskedfordeler), valid against KOMBIT's ``Beskedkuvert.xsd`` (namespace
``urn:oio:besked:kuvert:1.0``). Case systems subscribe with filters on the message type
("NemSMS tilmelding") and on the CPR/CVR number in ``RelateretObjekt``/``ObjektRegistrering``.

Identifiers
-----------
``BeskedId`` and ``ObjektRegistreringId`` are UUID version 5 (:func:`uuid.uuid5`) in the
namespace :data:`ID_NAMESPACE` (a random UUID fixed once for this platform) of the JSON text
``["<purpose>","<authority CVR>","<list date ISO>","<kind>","<number>","<change>"]`` (no
spaces), with the purposes ``besked`` and ``objektregistrering``. A re-run of the same list
date yields the same ids, so Beskedfordeler and the subscribers can recognise a message sent
twice; any differing field gives other ids. The recipe is a contract: changing the namespace
or the text changes every id. The ids are derived from the CPR number without a secret, so
anybody who knows the authority and the date can find the CPR number behind an id by trying
every possible number: treat the ids as personal data, like the message they identify.

Times
-----
``TidsstempelDatoTid`` is an ``xs:dateTime``, so a time zone is optional. KOMBIT's example
leaves it out (an ambiguous local time); this module always writes one. ``created_at``
(``Registreringstidspunkt`` and ``Dannelsestidspunkt``) must be timezone-aware and is written
in UTC with whole seconds and ``Z`` (``2024-07-01T00:30:00Z``). ``GyldighedFra`` is the list
date at 00:00 Danish time written with its offset (``2024-07-01T00:00:00+02:00`` in summer,
``+01:00`` in winter): midnight always exists in ``Europe/Copenhagen``, whose clock changes at
02:00 and 03:00. For the whole document to be the same byte for byte on a re-run, the caller
passes as ``created_at`` the run time stored with the list date's snapshot, not the clock.

Vocabulary
----------
Beskedfordeler's classification values (message types, business objects, actions, security
classifications) are administered by KOMBIT and mostly not public. :class:`MessageVocabulary`
holds them; its defaults are:

* ``person_object_type_uuid`` ``ce7fcf97-a8a2-447a-8690-d38aa0f6e23c``: the "Person" business
  object of the classification "forretningsobjekter", from KOMBIT's example message;
* ``security_classification_uuid`` ``44f4108b-26d4-46de-a90f-35e35b55b8d8``: "fortrolige
  personoplysninger" of the classification "sikkerhedsklassificeringer", from the example;
* ``company_object_type_uuid``, ``subscribed_action_uuid`` and ``unsubscribed_action_uuid``:
  random UUIDs of ours, **placeholders** until KOMBIT has given the real values (the
  "Virksomhed" business object and the actions "tilmeldt"/"afmeldt" on the business objects,
  ``ObjektHandling``); configure them before production;
* ``message_type_uuid`` and ``actor_uuid`` have no default here;
  :meth:`MessageVocabulary.from_settings` takes them from ``SubscriptionSettings``.

Designed by us where KOMBIT publishes nothing: the ids above, the placeholder UUIDs, and the
business data in ``Beskeddata``, a small document in the namespace :data:`DATA_NS`::

    <NemSMSTilmeldingHaendelse xmlns="urn:serviceplatform:nemsms:tilmelding:1.0">
      <Myndighed>29189846</Myndighed>
      <Slutbruger><CPR>0101901234</CPR></Slutbruger>   (or <CVR>...</CVR>)
      <Handling>tilmeldt</Handling>                      (or afmeldt)
      <ListeDato>2024-07-01</ListeDato>
    </NemSMSTilmeldingHaendelse>

The envelope schema does not check ``Beskeddata`` (``xs:any`` with ``processContents="skip"``)
nor that ``UUIDIdentifikator`` holds a UUID (it is an ``xs:string``); this module checks the
vocabulary's UUIDs itself and writes them in canonical lowercase form.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from dataclasses import dataclass, fields
from datetime import UTC, date, datetime, time
from typing import Final, Literal, get_args
from zoneinfo import ZoneInfo

from lxml import etree

from integrations.sf2250.settings import SubscriptionSettings
from serviceplatform.logmask import mask_cpr

Change = Literal["tilmeldt", "afmeldt"]
SubjectKind = Literal["cpr", "cvr"]

KUVERT_NS: Final = "urn:oio:besked:kuvert:1.0"
SAGDOK_NS: Final = "urn:oio:sagdok:3.0.0"
#: The namespace of our ``Beskeddata`` document.
DATA_NS: Final = "urn:serviceplatform:nemsms:tilmelding:1.0"
BESKED_VERSION: Final = "1.0"
DANISH_TIME: Final = ZoneInfo("Europe/Copenhagen")

#: The uuid5 namespace of the message ids; fixed for good (see the module docstring).
ID_NAMESPACE: Final = uuid.UUID("e38381c5-b13a-42b9-bd75-1104af01f5b0")

#: "Person" of the classification "forretningsobjekter" (KOMBIT's example message).
PERSON_OBJECT_TYPE_UUID: Final = "ce7fcf97-a8a2-447a-8690-d38aa0f6e23c"
#: Placeholder of ours for the company business object; the real value is KOMBIT's.
COMPANY_OBJECT_TYPE_UUID: Final = "762ab416-a6eb-41e3-88f7-08906c43cf66"
#: Placeholder of ours for the action "tilmeldt" (``ObjektHandling``); the real value is KOMBIT's.
SUBSCRIBED_ACTION_UUID: Final = "7102e45b-87a6-435f-ac9b-8a1904aaafb7"
#: Placeholder of ours for the action "afmeldt" (``ObjektHandling``); the real value is KOMBIT's.
UNSUBSCRIBED_ACTION_UUID: Final = "03932925-cdff-4ca4-9233-b8c989f56fab"
#: "Fortrolige personoplysninger" of "sikkerhedsklassificeringer" (KOMBIT's example message).
SECURITY_CLASSIFICATION_UUID: Final = "44f4108b-26d4-46de-a90f-35e35b55b8d8"

_NUMBER_LENGTH: Final[dict[str, int]] = {"cpr": 10, "cvr": 8}


def _is_ascii_digits(value: object, length: int) -> bool:
    return isinstance(value, str) and len(value) == length and value.isascii() and value.isdigit()


@dataclass(frozen=True, repr=False)
class SubscriptionChange:
    """One end user whose NemSMS subscription with one authority changed on ``list_date``.

    Only the form is checked (ASCII digits, 10 for CPR and 8 for CVR), as it goes into URNs;
    the CPR date and the CVR check digit are for whoever reads the subscription list.
    """

    authority_cvr: str
    list_date: date
    kind: SubjectKind
    number: str
    change: Change

    def __post_init__(self) -> None:
        if not _is_ascii_digits(self.authority_cvr, 8):
            raise ValueError("authority_cvr must be 8 ASCII digits")
        if isinstance(self.list_date, datetime) or not isinstance(self.list_date, date):
            raise ValueError("list_date must be a datetime.date")
        if self.kind not in get_args(SubjectKind):
            raise ValueError(f"kind must be one of {get_args(SubjectKind)}")
        if not _is_ascii_digits(self.number, _NUMBER_LENGTH[self.kind]):
            # Never the number itself in the message: it may be a CPR number.
            raise ValueError(f"number must be {_NUMBER_LENGTH[self.kind]} ASCII digits")
        if self.change not in get_args(Change):
            raise ValueError(f"change must be one of {get_args(Change)}")

    def __repr__(self) -> str:
        number = mask_cpr(self.number) if self.kind == "cpr" else self.number
        return (
            f"SubscriptionChange(authority_cvr={self.authority_cvr!r}, "
            f"list_date={self.list_date!r}, kind={self.kind!r}, number={number!r}, "
            f"change={self.change!r})"
        )


#: One encoder for every id: ``json.dumps`` with separators builds a new one per call, which
#: was a fifth of building a national night's messages.
_NAME_ENCODER: Final = json.JSONEncoder(separators=(",", ":"))
_NAMESPACE_BYTES: Final = ID_NAMESPACE.bytes


def _uuid5_text(name: str) -> str:
    """``str(uuid.uuid5(ID_NAMESPACE, name))`` without the ``UUID`` object in between, whose
    construction and formatting were most of building a night's messages (two ids each)."""
    digest = bytearray(hashlib.sha1(_NAMESPACE_BYTES + name.encode()).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x50  # version 5
    digest[8] = (digest[8] & 0x3F) | 0x80  # the RFC 4122 variant
    hexed = digest.hex()
    return f"{hexed[:8]}-{hexed[8:12]}-{hexed[12:16]}-{hexed[16:20]}-{hexed[20:]}"


def _derived_id(purpose: str, change: SubscriptionChange) -> str:
    name = _NAME_ENCODER.encode(
        [
            purpose,
            change.authority_cvr,
            change.list_date.isoformat(),
            change.kind,
            change.number,
            change.change,
        ]
    )
    return _uuid5_text(name)


def besked_id(change: SubscriptionChange) -> str:
    """``BeskedId``: the same for the same change on a re-run (see the module docstring)."""
    return _derived_id("besked", change)


def registrering_id(change: SubscriptionChange) -> str:
    """``ObjektRegistreringId``: like :func:`besked_id`, with another purpose, so another id."""
    return _derived_id("objektregistrering", change)


@dataclass(frozen=True)
class MessageVocabulary:
    """Beskedfordeler's classification UUIDs the message uses (see the module docstring).

    Every value must be a UUID; it is kept in canonical lowercase form.
    """

    #: Message type "NemSMS tilmelding" (``Beskedtype``).
    message_type_uuid: str
    #: The platform: ``BeskedAnsvarligAktoer`` and ``RegistreringsAktoer``.
    actor_uuid: str
    #: ``ObjektType`` of a CPR number: "Person" (from KOMBIT's example).
    person_object_type_uuid: str = PERSON_OBJECT_TYPE_UUID
    #: ``ObjektType`` of a CVR number: placeholder until KOMBIT's classification value is known.
    company_object_type_uuid: str = COMPANY_OBJECT_TYPE_UUID
    #: ``ObjektHandling`` of ``tilmeldt``: placeholder of ours.
    subscribed_action_uuid: str = SUBSCRIBED_ACTION_UUID
    #: ``ObjektHandling`` of ``afmeldt``: placeholder of ours.
    unsubscribed_action_uuid: str = UNSUBSCRIBED_ACTION_UUID
    #: ``Sikkerhedsklassificering``: "fortrolige personoplysninger" (from KOMBIT's example).
    security_classification_uuid: str = SECURITY_CLASSIFICATION_UUID

    def __post_init__(self) -> None:
        for field in fields(self):
            name = field.name
            value = getattr(self, name)
            try:
                canonical = str(uuid.UUID(value))
            except (TypeError, ValueError, AttributeError) as error:
                raise ValueError(f"{name} is not a UUID: {value!r}") from error
            object.__setattr__(self, name, canonical)

    @classmethod
    def from_settings(cls, settings: SubscriptionSettings) -> MessageVocabulary:
        """The message type and actor from the settings; the other values' defaults."""
        return cls(message_type_uuid=settings.message_type_uuid, actor_uuid=settings.actor_uuid)


def _utc_timestamp(value: datetime) -> str:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("created_at must be timezone-aware")
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="seconds") + "Z"


def danish_midnight(day: date) -> datetime:
    """00:00 Danish time on ``day`` (``GyldighedFra``)."""
    return datetime.combine(day, time(0, 0), tzinfo=DANISH_TIME)


def _kuvert(parent: etree._Element, name: str) -> etree._Element:
    return etree.SubElement(parent, f"{{{KUVERT_NS}}}{name}")


def _unik_id(parent: etree._Element, name: str, *, uuid_value: str = "", urn: str = "") -> None:
    """``sd:UnikIdType`` (or ``AktoerType``): a UUID or a URN."""
    element = _kuvert(parent, name)
    if uuid_value:
        etree.SubElement(element, f"{{{SAGDOK_NS}}}UUIDIdentifikator").text = uuid_value
    else:
        etree.SubElement(element, f"{{{SAGDOK_NS}}}URNIdentifikator").text = urn


def _tidspunkt(parent: etree._Element, name: str, timestamp: str) -> None:
    element = _kuvert(parent, name)
    etree.SubElement(element, f"{{{SAGDOK_NS}}}TidsstempelDatoTid").text = timestamp


def _data(change: SubscriptionChange) -> etree._Element:
    # A default namespace (None); lxml-stubs types nsmap keys as str only.
    default_ns = {None: DATA_NS}
    root = etree.Element(
        f"{{{DATA_NS}}}NemSMSTilmeldingHaendelse",
        nsmap=default_ns,  # type: ignore[arg-type]
    )
    etree.SubElement(root, f"{{{DATA_NS}}}Myndighed").text = change.authority_cvr
    slutbruger = etree.SubElement(root, f"{{{DATA_NS}}}Slutbruger")
    etree.SubElement(slutbruger, f"{{{DATA_NS}}}{change.kind.upper()}").text = change.number
    etree.SubElement(root, f"{{{DATA_NS}}}Handling").text = change.change
    etree.SubElement(root, f"{{{DATA_NS}}}ListeDato").text = change.list_date.isoformat()
    return root


def build_message(
    change: SubscriptionChange, vocabulary: MessageVocabulary, *, created_at: datetime
) -> bytes:
    """The ``Haendelsesbesked`` of ``change``: UTF-8 with an XML declaration.

    ``created_at`` (timezone-aware, else ``ValueError``) is the registration and creation
    time; pass the run time stored with the list date's snapshot so a re-run gives the same
    bytes.
    """
    created = _utc_timestamp(created_at)
    authority = f"urn:oio:cvr-nr:{change.authority_cvr}"
    subject = f"urn:oio:{change.kind}-nr:{change.number}"
    object_type = (
        vocabulary.person_object_type_uuid
        if change.kind == "cpr"
        else vocabulary.company_object_type_uuid
    )
    action = (
        vocabulary.subscribed_action_uuid
        if change.change == "tilmeldt"
        else vocabulary.unsubscribed_action_uuid
    )

    root = etree.Element(
        f"{{{KUVERT_NS}}}Haendelsesbesked", nsmap={"besked": KUVERT_NS, "sd": SAGDOK_NS}
    )
    _unik_id(root, "BeskedId", uuid_value=besked_id(change))
    _kuvert(root, "BeskedVersion").text = BESKED_VERSION
    kuvert = _kuvert(root, "Beskedkuvert")

    filtrering = _kuvert(kuvert, "Filtreringsdata")
    _unik_id(filtrering, "Beskedtype", uuid_value=vocabulary.message_type_uuid)
    _unik_id(filtrering, "BeskedAnsvarligAktoer", uuid_value=vocabulary.actor_uuid)
    _unik_id(filtrering, "TilladtModtager", urn=authority)
    relateret = _kuvert(filtrering, "RelateretObjekt")
    _unik_id(relateret, "ObjektId", urn=subject)
    _unik_id(relateret, "ObjektType", uuid_value=object_type)
    registrering = _kuvert(filtrering, "ObjektRegistrering")
    _unik_id(registrering, "ObjektRegistreringId", uuid_value=registrering_id(change))
    _unik_id(registrering, "RegistreringsAktoer", uuid_value=vocabulary.actor_uuid)
    _tidspunkt(registrering, "Registreringstidspunkt", created)
    _unik_id(registrering, "ObjektAnsvarligMyndighed", urn=authority)
    _unik_id(registrering, "ObjektId", urn=subject)
    _unik_id(registrering, "ObjektType", uuid_value=object_type)
    _unik_id(registrering, "ObjektHandling", uuid_value=action)

    levering = _kuvert(kuvert, "Leveranceinformation")
    _tidspunkt(levering, "Dannelsestidspunkt", created)
    _unik_id(
        levering, "Sikkerhedsklassificering", uuid_value=vocabulary.security_classification_uuid
    )
    _tidspunkt(kuvert, "GyldighedFra", danish_midnight(change.list_date).isoformat())

    _kuvert(root, "Beskeddata").append(_data(change))
    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8"))


class MessageBuilder:
    """:func:`build_message` for the many changes of one night and authority, at speed.

    A night at national scale has tens of thousands of changes, and building each document
    element by element took longer than diffing the lists. The documents of one authority,
    list date and run time differ only in the ids and the number, so each (kind, change)
    gets one document built by :func:`build_message`, and the next ones are that document
    with the ids and the number replaced: the same bytes, by construction. A template whose
    number is not found exactly where it belongs is not used (every change is then built).
    """

    def __init__(
        self,
        vocabulary: MessageVocabulary,
        *,
        authority_cvr: str,
        list_date: date,
        created_at: datetime,
    ) -> None:
        self._vocabulary = vocabulary
        self._authority_cvr = authority_cvr
        self._list_date = list_date
        self._created_at = created_at
        #: (kind, change) -> its document split at the number and the ids: text at even
        #: places, at odd places which value goes there (``number``, ``besked`` or
        #: ``registrering``); None if the document cannot be a template.
        self._templates: dict[tuple[str, str], list[str] | None] = {}
        # The ids' names (see _derived_id) up to the kind: the JSON text of ASCII digits and
        # fixed words is the words in quotes, so the rest is appended as text.
        head = f'"{authority_cvr}","{list_date.isoformat()}","'
        self._besked_head = '["besked",' + head
        self._registrering_head = '["objektregistrering",' + head
        checked = self.change("cpr", "0" * 10, "tilmeldt")  # the CVR and the date, once
        if _derived_id("besked", checked) != _uuid5_text(
            f'{self._besked_head}cpr","{checked.number}","tilmeldt"]'
        ):
            raise ValueError("the message ids' names are not plain JSON text")

    def change(self, kind: str, number: str, change: str) -> SubscriptionChange:
        return SubscriptionChange(
            authority_cvr=self._authority_cvr,
            list_date=self._list_date,
            kind=kind,  # type: ignore[arg-type]  # checked by SubscriptionChange
            number=number,
            change=change,  # type: ignore[arg-type]
        )

    def __call__(self, kind: str, number: str, change: str) -> tuple[str, str]:
        """``(BeskedId, document)`` of one change."""
        key = (kind, change)
        if key not in self._templates:
            # The first of its kind: checked as SubscriptionChange checks it (a bad kind or
            # change raises here), then its template.
            self.change(kind, number, change)
            self._templates[key] = self._template(kind, change)
        template = self._templates[key]
        if template is None:
            wanted = self.change(kind, number, change)
            body = build_message(wanted, self._vocabulary, created_at=self._created_at)
            return besked_id(wanted), body.decode("utf-8")
        if not _is_ascii_digits(number, _NUMBER_LENGTH[kind]):
            self.change(kind, number, change)  # raises the ValueError that names the field
        # The name's tail: its kind and change are known words, its number ASCII digits.
        tail = f'{kind}","{number}","{change}"]'
        identifier = _uuid5_text(self._besked_head + tail)
        values = {
            "number": number,
            "besked": identifier,
            "registrering": _uuid5_text(self._registrering_head + tail),
        }
        pieces = template.copy()
        for place in range(1, len(pieces), 2):
            pieces[place] = values[pieces[place]]
        return identifier, "".join(pieces)

    def _template(self, kind: str, change: str) -> list[str] | None:
        # A number made of one digit repeated: it may not occur elsewhere in the document.
        for digit in "97531":
            sample = self.change(kind, digit * _NUMBER_LENGTH[kind], change)
            text = build_message(sample, self._vocabulary, created_at=self._created_at).decode()
            # The number stands in the object's URN twice and once in Beskeddata; each id once.
            ids = besked_id(sample), registrering_id(sample)
            if text.count(sample.number) == 3 and all(text.count(i) == 1 for i in ids):
                names = {sample.number: "number", ids[0]: "besked", ids[1]: "registrering"}
                pieces = re.split("(" + "|".join(map(re.escape, names)) + ")", text)
                pieces[1::2] = [names[found] for found in pieces[1::2]]
                return pieces
        return None
