"""The simulated NemSMS register's OIOREST resources: the HTTPS request handler.

End users (``boks``), their ``myndighedstilmelding`` and the paged subscription lists
(``slutbrugerliste``) of docs/nemsms-register.md, answered from a :class:`RegisterState`;
errors are ``dkal:Fejl`` documents. Every request is recorded for the test hooks, and an
injected fault (see :mod:`serviceplatform.sandbox.register_hooks`) answers in its place.

The handler stays lean because benchmarks drive hundreds of requests per second through it
over keep-alive: one lock around the state, no logging per request.
"""

from __future__ import annotations

import math
import re
import threading
import uuid
from datetime import UTC, datetime
from typing import ClassVar
from urllib.parse import unquote, urlsplit

from cryptography import x509
from lxml import etree

from serviceplatform.sandbox.httpserver import QuietHandler
from serviceplatform.sandbox.register_state import (
    REGISTER_NS,
    SYSID,
    XML_TYPE,
    EndUser,
    ListSnapshot,
    RegisterFault,
    RegisterState,
    Subject,
    fejl_xml,
    parse_end_user,
)

__all__ = ["register_handler"]

_BOKS = re.compile(r"/register/([^/]+)/boks/([^/]+)")
_TILMELDING = re.compile(r"/register/([^/]+)/boks/([^/]+)/myndighedstilmelding")
_LIST = re.compile(r"/register/([^/]+)/slutbrugerliste")
_LIST_REF = re.compile(r"/register/([^/]+)/slutbrugerliste/([^/]+)")
_LIST_PART = re.compile(r"/register/([^/]+)/slutbrugerliste/([^/]+)/dele/([^/]+)")
_SNAPSHOTS_KEPT = 100


def register_handler(state: RegisterState) -> type[QuietHandler]:
    """A handler class serving the register's resources from ``state``."""
    return type("RegisterHandler", (_RegisterHandler,), {"state": state})


_parsers = threading.local()


def _parse_xml(body: bytes, root_name: str) -> etree._Element:
    parser = getattr(_parsers, "parser", None)
    if parser is None:
        # lxml parsers must not be shared between threads; one per handler thread.
        parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
        _parsers.parser = parser
    try:
        root = etree.fromstring(body, parser)
    except etree.XMLSyntaxError as exc:
        raise RegisterFault(400, 1002, f"the body is not well-formed XML ({exc.msg})") from None
    if etree.QName(root).localname != root_name:
        raise RegisterFault(400, 1002, f"the body's root element must be {root_name}")
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


def _subject_entries(state: RegisterState, sysid: str) -> tuple[Subject, ...]:
    cprs, cvrs = state.subscriptions.get(sysid, ([], []))
    return tuple(("cpr", n) for n in cprs) + tuple(("cvr", n) for n in cvrs)


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
        if fault == "reset":
            self.drop()
            return
        if isinstance(fault, int):
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
            self._method("PUT")
            _sysid(match[1], state)  # end users are global; the SysID only has to be valid
            subject = parse_end_user(match[2])
            tilmeldt = _boolean(_parse_xml(body, "Myndighedstilmelding"))
            with state.lock:
                user = state.users.get(subject)
                if user is None:
                    raise RegisterFault(404, 3001, "the end user does not exist in the register")
                user.tilmeldt = tilmeldt
            return 200, b"", {}
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

    def _list_reference(self, sysid: str) -> bytes:
        state = self.state
        ref = str(uuid.uuid4())
        with state.lock:
            entries = _subject_entries(state, sysid)
            state.snapshots[ref] = ListSnapshot(sysid, entries)
            while len(state.snapshots) > _SNAPSHOTS_KEPT:
                del state.snapshots[next(iter(state.snapshots))]
        parts = math.ceil(len(entries) / state.part_size)
        return (
            f'<?xml version="1.0" encoding="UTF-8"?>\n'
            f'<SlutbrugerlisteReference xmlns="{REGISTER_NS}">'
            f"<ReferenceId>{ref}</ReferenceId><AntalDele>{parts}</AntalDele>"
            f"<AntalSlutbrugere>{len(entries)}</AntalSlutbrugere></SlutbrugerlisteReference>"
        ).encode()

    def _list_part(self, sysid: str, ref: str, raw_number: str) -> bytes:
        state = self.state
        with state.lock:
            snapshot = state.snapshots.get(ref)
        if snapshot is None or snapshot.sysid != sysid:
            raise RegisterFault(404, 3003, "unknown list reference")
        parts = math.ceil(len(snapshot.entries) / state.part_size)
        if not raw_number.isdigit() or not 1 <= int(raw_number) <= parts:
            raise RegisterFault(404, 3003, f"the list has parts 1 to {parts}")
        number = int(raw_number)
        chunk = snapshot.entries[(number - 1) * state.part_size : number * state.part_size]
        items = "".join(
            f"<Slutbruger><{kind.upper()}>{value}</{kind.upper()}></Slutbruger>"
            for kind, value in chunk
        )
        return (
            f'<?xml version="1.0" encoding="UTF-8"?>\n'
            f'<SlutbrugerDelliste xmlns="{REGISTER_NS}"><ReferenceId>{ref}</ReferenceId>'
            f"<DelNummer>{number}</DelNummer><AntalDele>{parts}</AntalDele>{items}"
            "</SlutbrugerDelliste>"
        ).encode()
