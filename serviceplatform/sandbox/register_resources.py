"""The simulated NemSMS register's OIOREST resources: the HTTPS request handler.

End users (``boks``, EP_NS2), their ``myndighedstilmelding`` (EP_NS3 sets it, EP_NS1 asks
it), SMS sendings (``afsendelse``, EP_NS4) and the paged subscription lists
(``slutbrugerliste``) of docs/nemsms-register.md, answered from a :class:`RegisterState`;
errors are ``dkal:Fejl`` documents. Every request is recorded for the test hooks, and an
injected fault (see :mod:`serviceplatform.sandbox.register_hooks`) answers in its place.

The handler stays lean because benchmarks drive hundreds of requests per second through it
over keep-alive: one lock around the state, no logging per request.
"""

from __future__ import annotations

import base64
import binascii
import math
import re
import threading
import time as time_module
import uuid
from datetime import UTC, datetime, time
from typing import ClassVar, Final
from urllib.parse import unquote, urlsplit
from zoneinfo import ZoneInfo

from cryptography import x509
from lxml import etree

from serviceplatform.sandbox.httpserver import QuietHandler
from serviceplatform.sandbox.register_lists import CVR_OFFSET, StoredList
from serviceplatform.sandbox.register_state import (
    CPR,
    FEJL_NS,
    REGISTER_NS,
    SYSID,
    XML_TYPE,
    EndUser,
    ListSnapshot,
    RegisterFault,
    RegisterState,
    Sending,
    Subject,
    fejl_xml,
    iso_utc,
    parse_end_user,
)

__all__ = ["register_handler"]

_BOKS = re.compile(r"/register/([^/]+)/boks/([^/]+)")
_TILMELDING = re.compile(r"/register/([^/]+)/boks/([^/]+)/myndighedstilmelding")
_LIST = re.compile(r"/register/([^/]+)/slutbrugerliste")
_LIST_REF = re.compile(r"/register/([^/]+)/slutbrugerliste/([^/]+)")
_LIST_PART = re.compile(r"/register/([^/]+)/slutbrugerliste/([^/]+)/dele/([^/]+)")
#: One entry of a list part, from its code (``register_lists``).
_CPR_ENTRY = "<Slutbruger><CPR>%010d</CPR></Slutbruger>"
_CVR_ENTRY = "<Slutbruger><CVR>%08d</CVR></Slutbruger>"
_AFSENDELSE = re.compile(r"/register/([^/]+)/afsendelse/([^/]+)")
_SNAPSHOTS_KEPT = 100
#: The list of a SysID the hook never set.
_EMPTY: Final = StoredList([], [])

#: Namespaces of the Digital Post sending format (``dkal:Afsendelse``).
DKAL: Final = FEJL_NS
ADIR: Final = "urn:oio:adir:dagpenge:2009.07.01"
#: ``dkal:MeddelelseIdentifikatorType``: the sender's id of one sending.
MESSAGE_ID: Final = re.compile(r"[a-zA-Z0-9\-._~]{1,30}")
CVR_DIGITS: Final = re.compile(r"[0-9]{8}")
BASE64: Final = re.compile(r"(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?")
SMS_MAX_CHARACTERS: Final = 160
SMS_FILE_FORMAT: Final = "TXT"
DANISH_TIME: Final = ZoneInfo("Europe/Copenhagen")
SENDING_OPENS: Final = time(8, 0)
SENDING_CLOSES: Final = time(22, 0)


def register_handler(state: RegisterState) -> type[QuietHandler]:
    """A handler class serving the register's resources from ``state``."""
    return type("RegisterHandler", (_RegisterHandler,), {"state": state})


_parsers = threading.local()


def _parse_xml(body: bytes, root_name: str, namespace: str | None = None) -> etree._Element:
    """The body's root element; ``namespace`` None accepts the local name in any namespace."""
    parser = getattr(_parsers, "parser", None)
    if parser is None:
        # lxml parsers must not be shared between threads; one per handler thread.
        parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
        _parsers.parser = parser
    try:
        root = etree.fromstring(body, parser)
    except etree.XMLSyntaxError as exc:
        raise RegisterFault(400, 1002, f"the body is not well-formed XML ({exc.msg})") from None
    name = etree.QName(root)
    if name.localname != root_name or (namespace is not None and name.namespace != namespace):
        expected = root_name if namespace is None else f"{{{namespace}}}{root_name}"
        raise RegisterFault(400, 1002, f"the body's root element must be {expected}")
    return root


def _sysid(raw: str, state: RegisterState) -> str:
    sysid = unquote(raw)
    if not SYSID.fullmatch(sysid):
        raise RegisterFault(400, 1004, "malformed SysID")
    if state.known_sysids is not None and sysid not in state.known_sysids:
        raise RegisterFault(403, 2001, f"SysID {sysid} is not known to the register")
    return sysid


def _boolean(root: etree._Element) -> bool:
    for element in root.iter():
        text = (element.text or "").strip()
        if text in ("true", "false"):
            return text == "true"
    raise RegisterFault(400, 1003, "Myndighedstilmelding carries no true/false indicator")


def _tilmelding_xml(subscribed: bool) -> bytes:
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<dkal:Myndighedstilmelding xmlns:dkal="{DKAL}">'
        f"<dkal:TilmeldingIndikator>{'true' if subscribed else 'false'}</dkal:TilmeldingIndikator>"
        "</dkal:Myndighedstilmelding>"
    ).encode()


def _unknown_end_user() -> RegisterFault:
    return RegisterFault(404, 3001, "the end user does not exist in the register")


def _message_id(raw: str) -> str:
    message_id = unquote(raw)
    if not MESSAGE_ID.fullmatch(message_id):
        raise RegisterFault(
            400, 1005, "the sending id must be 1-30 characters of A-Z a-z 0-9 - . _ ~"
        )
    return message_id


def _children(root: etree._Element, name: str, namespace: str = DKAL) -> list[etree._Element]:
    return list(root.iterchildren(f"{{{namespace}}}{name}"))


def _recipient(root: etree._Element) -> Subject:
    """The one CPR or CVR number in ``AfsendelseModtager``; ``RegisterFault`` 1001 otherwise."""
    found: list[Subject] = []
    elements = 0
    for holder in _children(root, "AfsendelseModtager"):
        for element in holder.iterchildren("*"):
            elements += 1
            text = (element.text or "").strip()
            if element.tag == f"{{{ADIR}}}CPRnummerIdentifikator" and CPR.fullmatch(text):
                found.append(("cpr", text))
            elif element.tag == f"{{{ADIR}}}CVRnummerIdentifikator" and CVR_DIGITS.fullmatch(text):
                found.append(("cvr", text))
    if len(found) != 1 or elements != 1:
        raise RegisterFault(
            400,
            1001,
            "AfsendelseModtager must hold exactly one adir:CPRnummerIdentifikator (10 digits) "
            "or adir:CVRnummerIdentifikator (8 digits)",
        )
    return found[0]


def _sms_text(root: etree._Element) -> str:
    """The decoded ``MeddelelseIndholdData``; ``RegisterFault`` 1008 unless it is 1-160
    characters of base64-encoded UTF-8."""
    data = _children(root, "MeddelelseIndholdData")
    if len(data) != 1:
        raise RegisterFault(400, 1008, "the sending needs exactly one MeddelelseIndholdData")
    # xs:base64Binary allows whitespace between the characters, nothing else outside the
    # alphabet, and padding only to a whole number of quadruples.
    encoded = "".join((data[0].text or "").split())
    try:
        if not BASE64.fullmatch(encoded):
            raise ValueError("not base64")
        text = base64.b64decode(encoded, validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        raise RegisterFault(
            400, 1008, "MeddelelseIndholdData is not base64 of UTF-8 text"
        ) from None
    if not 1 <= len(text) <= SMS_MAX_CHARACTERS:
        raise RegisterFault(
            400, 1008, f"an SMS holds 1 to {SMS_MAX_CHARACTERS} characters, not {len(text)}"
        )
    return text


def _within_sending_hours(now: datetime) -> bool:
    local = now.astimezone(DANISH_TIME).time()
    return SENDING_OPENS <= local < SENDING_CLOSES


def _afsendelse_xml(message_id: str, sent_at: datetime) -> bytes:
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<dkal:Afsendelse xmlns:dkal="{DKAL}">'
        f"<dkal:MeddelelseIdentifikator>{message_id}</dkal:MeddelelseIdentifikator>"
        "<dkal:AfsendelseTilstandNavn>fremsendt</dkal:AfsendelseTilstandNavn>"
        f"<dkal:AfsendelseDatoTid>{iso_utc(sent_at, seconds=True)}</dkal:AfsendelseDatoTid>"
        "</dkal:Afsendelse>"
    ).encode()


class _RegisterHandler(QuietHandler):
    state: ClassVar[RegisterState]

    def _serve(self) -> None:
        body = self.read_body()
        if body is None:
            return
        fault = self.state.record(
            {
                "method": self.command,
                "path": self.path,
                "client_subject": self._client_subject(),
                "body": body.decode("utf-8", "replace"),
                "received_at": datetime.now(UTC).isoformat(timespec="milliseconds"),
            }
        )
        if isinstance(fault, float):
            time_module.sleep(fault)  # a slow register: the answer follows after the delay
        elif fault == "reset":
            self.drop()
            return
        elif isinstance(fault, int):
            self.send_body(fault, fejl_xml(9001, f"injected fault (HTTP {fault})"), XML_TYPE)
            return
        try:
            status, answer, headers = self._route(urlsplit(self.path).path, body)
        except RegisterFault as err:
            status, answer, headers = err.status, fejl_xml(err.code, err.text), err.headers
        self.send_body(status, answer, XML_TYPE, headers)

    # http.server dispatches on do_<METHOD>; every method goes through the same router.
    do_GET = do_PUT = do_POST = do_DELETE = do_PATCH = _serve  # noqa: N815

    def _client_subject(self) -> str | None:
        cached: str | None = getattr(self, "_subject_cache", None)
        if cached is None:
            der = self.connection.getpeercert(binary_form=True)
            if der:
                cached = x509.load_der_x509_certificate(der).subject.rfc4514_string()
                self._subject_cache = cached
        return cached

    def _method(self, *allowed: str) -> None:
        if self.command not in allowed:
            text = f"method {self.command} is not allowed here"
            raise RegisterFault(405, 4001, text, {"Allow": ", ".join(allowed)})

    def _route(self, path: str, body: bytes) -> tuple[int, bytes, dict[str, str]]:
        state = self.state
        if match := _TILMELDING.fullmatch(path):
            self._method("GET", "PUT")
            # End users are global; for PUT the SysID only has to be valid, for GET it also
            # names the subscription list to look in.
            sysid = _sysid(match[1], state)
            subject = parse_end_user(match[2])
            if self.command == "GET":
                with state.lock:
                    subscribed = state.subscription(sysid, subject)
                if subscribed is None:
                    raise _unknown_end_user()
                return 200, _tilmelding_xml(subscribed), {}
            tilmeldt = _boolean(_parse_xml(body, "Myndighedstilmelding"))
            with state.lock:
                user = state.users.get(subject)
                if user is None:
                    raise _unknown_end_user()
                user.tilmeldt = tilmeldt
            return 200, b"", {}
        if match := _AFSENDELSE.fullmatch(path):
            self._method("PUT")
            return self._afsendelse(_sysid(match[1], state), match[2], body)
        if match := _BOKS.fullmatch(path):
            self._method("PUT")
            _sysid(match[1], state)
            subject = parse_end_user(match[2])
            _parse_xml(body, "SlutbrugerStamdata")
            with state.lock:
                user = state.users.get(subject)
                if user is None:
                    state.users[subject] = EndUser(body)
                    return 201, b"", {}
                user.stamdata = body
            return 200, b"", {}
        if match := _LIST.fullmatch(path):
            self._method("GET")
            return 200, self._list_reference(_sysid(match[1], state)), {}
        if match := _LIST_PART.fullmatch(path):
            self._method("GET")
            return 200, self._list_part(_sysid(match[1], state), match[2], match[3]), {}
        if match := _LIST_REF.fullmatch(path):
            self._method("DELETE")
            sysid = _sysid(match[1], state)
            with state.lock:
                snapshot = state.snapshots.get(match[2])
                if snapshot is None or snapshot.sysid != sysid:
                    raise RegisterFault(404, 3003, "unknown list reference")
                del state.snapshots[match[2]]
            return 204, b"", {}
        raise RegisterFault(404, 3002, "no such register resource")

    def _afsendelse(
        self, sysid: str, raw_id: str, body: bytes
    ) -> tuple[int, bytes, dict[str, str]]:
        """EP_NS4 *Afsend_SMS_NS*: validate, then send once per (SysID, id)."""
        state = self.state
        message_id = _message_id(raw_id)
        root = _parse_xml(body, "Afsendelse", DKAL)
        ids = _children(root, "MeddelelseIdentifikator")
        if len(ids) != 1 or (ids[0].text or "").strip() != message_id:
            raise RegisterFault(
                400, 1006, "MeddelelseIdentifikator must be present and equal the id in the path"
            )
        recipient = _recipient(root)
        formats = _children(root, "FilformatNavn")
        if len(formats) != 1 or (formats[0].text or "").strip() != SMS_FILE_FORMAT:
            raise RegisterFault(400, 1007, f"NemSMS sends only FilformatNavn {SMS_FILE_FORMAT}")
        text = _sms_text(root)
        titles = _children(root, "MeddelelseTitelTekst")
        title = (titles[0].text or "") if titles else None
        with state.lock:
            # A repeat of an accepted sending is answered before the time and subscription
            # checks: the SMS went out already, whatever the hour or the subscription now.
            earlier = state.sendings.get((sysid, message_id))
            if earlier is not None:
                if (earlier.recipient, earlier.title, earlier.text) != (recipient, title, text):
                    raise RegisterFault(
                        409,
                        3005,
                        "this sending id was accepted before with another recipient or content",
                    )
                return 200, earlier.answer, {}
            now = state.now()
            if not _within_sending_hours(now):
                raise RegisterFault(400, 1009, "NemSMS sends only between 08:00 and 22:00")
            subscribed = state.subscription(sysid, recipient)
            if subscribed is None:
                raise _unknown_end_user()
            if not subscribed:
                raise RegisterFault(
                    409, 3004, f"the recipient is not subscribed to NemSMS from SysID {sysid}"
                )
            answer = _afsendelse_xml(message_id, now)
            state.remember(Sending(sysid, message_id, recipient, title, text, now, answer))
        return 201, answer, {}

    def _list_reference(self, sysid: str) -> bytes:
        """A reference to today's list: one snapshot per (SysID, list date, list set).

        A client that gave up waiting and asks again gets the same reference, instead of the
        register taking (and holding) another snapshot of a national list per attempt.
        """
        state = self.state
        with state.snapshot_lock:
            with state.lock:
                listed = state.lists.get(sysid, _EMPTY)
                day = state.list_date()
                key = (sysid, day, id(listed))
                ref = state.list_references.get(key)
                snapshot = state.snapshots.get(ref) if ref is not None else None
            if snapshot is None:
                ref = str(uuid.uuid4())
                # Outside the state lock: a sorted national list takes seconds to prepare.
                snapshot = ListSnapshot(sysid, listed.view(day, f"{sysid}:{day}:{ref}"), day)
                with state.lock:
                    # Keyed by id(): the list object stays alive in its snapshot meanwhile.
                    state.list_references[key] = ref
                    state.snapshots[ref] = snapshot
                    while len(state.snapshots) > _SNAPSHOTS_KEPT:
                        del state.snapshots[next(iter(state.snapshots))]
                    for known in [
                        k for k, r in state.list_references.items() if r not in state.snapshots
                    ]:
                        del state.list_references[known]
        assert ref is not None
        count = snapshot.entries.count
        parts = math.ceil(count / state.part_size)
        return (
            f'<?xml version="1.0" encoding="UTF-8"?>\n'
            f'<SlutbrugerlisteReference xmlns="{REGISTER_NS}">'
            f"<ReferenceId>{ref}</ReferenceId><AntalDele>{parts}</AntalDele>"
            f"<AntalSlutbrugere>{count}</AntalSlutbrugere></SlutbrugerlisteReference>"
        ).encode()

    def _list_part(self, sysid: str, ref: str, raw_number: str) -> bytes:
        state = self.state
        with state.lock:
            snapshot = state.snapshots.get(ref)
        if snapshot is None or snapshot.sysid != sysid:
            raise RegisterFault(404, 3003, "unknown list reference")
        parts = math.ceil(snapshot.entries.count / state.part_size)
        if not raw_number.isdigit() or not 1 <= int(raw_number) <= parts:
            raise RegisterFault(404, 3003, f"the list has parts 1 to {parts}")
        number = int(raw_number)
        codes = snapshot.entries.codes((number - 1) * state.part_size, number * state.part_size)
        items = "".join(
            [
                _CPR_ENTRY % code if code < CVR_OFFSET else _CVR_ENTRY % (code - CVR_OFFSET)
                for code in codes
            ]
        )
        return (
            f'<?xml version="1.0" encoding="UTF-8"?>\n'
            f'<SlutbrugerDelliste xmlns="{REGISTER_NS}"><ReferenceId>{ref}</ReferenceId>'
            f"<DelNummer>{number}</DelNummer><AntalDele>{parts}</AntalDele>{items}"
            "</SlutbrugerDelliste>"
        ).encode()
