"""A simulated NemSMS register: OIOREST over mutual TLS, plus the sandbox's test hooks.

The register listens on HTTPS and requires a client certificate from the sandbox CA, as the
real one requires the platform's FOCES certificate. It keeps end users and subscription
lists in memory and answers errors with ``dkal:Fejl`` documents. A second, plain-HTTP server
on loopback serves the test hooks of SANDBOX.md (``/_sandbox/requests``, ``subscriptions``,
``faults``) over the same state. Resources, codes and formats: ``docs/nemsms-register.md``.

The handlers stay lean because benchmarks drive hundreds of requests per second through
them over keep-alive: one lock around the state, no logging per request.
"""

from __future__ import annotations

import json
import math
import re
import threading
import uuid
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, ClassVar, Self
from urllib.parse import unquote, urlsplit
from xml.sax.saxutils import escape

from cryptography import x509
from lxml import etree

from serviceplatform.sandbox.httpserver import (
    QuietHandler,
    ServerThread,
    ThreadedServer,
    server_tls_context,
)

FEJL_NS = "urn:oio:dkal:1.0.0"
REGISTER_NS = "urn:sandbox:nemsms:register:1.0"
XML_TYPE = "application/xml; charset=utf-8"

_SYSID = re.compile(r"[A-Za-z0-9._-]{1,64}")
_CPR = re.compile(r"[0-9]{10}")
_CVR = re.compile(r":?([0-9]{8})")
_BOKS = re.compile(r"/register/([^/]+)/boks/([^/]+)")
_TILMELDING = re.compile(r"/register/([^/]+)/boks/([^/]+)/myndighedstilmelding")
_LIST = re.compile(r"/register/([^/]+)/slutbrugerliste")
_LIST_REF = re.compile(r"/register/([^/]+)/slutbrugerliste/([^/]+)")
_LIST_PART = re.compile(r"/register/([^/]+)/slutbrugerliste/([^/]+)/dele/([^/]+)")
_SNAPSHOTS_KEPT = 100

#: An end user's key: ("cpr", 10 digits) or ("cvr", 8 digits).
Subject = tuple[str, str]


class RegisterFault(Exception):
    """A register error answer: HTTP status plus the ``dkal:Fejl`` code and text."""

    def __init__(
        self, status: int, code: int, text: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(text)
        self.status, self.code, self.text = status, code, text
        self.headers = headers or {}


def fejl_xml(code: int, text: str) -> bytes:
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<dkal:Fejl xmlns:dkal="{FEJL_NS}">'
        f"<dkal:FejlKode>{code}</dkal:FejlKode><dkal:FejlTekst>{escape(text)}</dkal:FejlTekst>"
        "</dkal:Fejl>"
    ).encode()


@dataclass
class EndUser:
    stamdata: bytes
    #: Last ``Myndighedstilmelding`` value; None until one was received.
    tilmeldt: bool | None = None


@dataclass(frozen=True)
class ListSnapshot:
    sysid: str
    entries: tuple[Subject, ...]


class RegisterState:
    """Everything both servers share; every access holds ``lock``."""

    def __init__(self, known_sysids: set[str] | None, max_recorded: int, part_size: int) -> None:
        self.lock = threading.Lock()
        self.known_sysids = frozenset(known_sysids) if known_sysids is not None else None
        self.part_size = part_size
        self.requests: deque[dict[str, Any]] = deque(maxlen=max_recorded)
        self.requests_received = 0
        self.users: dict[Subject, EndUser] = {}
        self.subscriptions: dict[str, tuple[list[str], list[str]]] = {}
        self.snapshots: dict[str, ListSnapshot] = {}
        self.fault: int | str | None = None
        self.fault_remaining = 0

    def record(self, entry: dict[str, Any]) -> int | str | None:
        """Remember one register request; return the fault it must answer with, if any."""
        with self.lock:
            self.requests.append(entry)
            self.requests_received += 1
            if self.fault_remaining > 0:
                self.fault_remaining -= 1
                return self.fault
            return None


# --- parsing --------------------------------------------------------------------------------

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
    if not _SYSID.fullmatch(sysid):
        raise RegisterFault(400, 1004, "malformed SysID")
    if state.known_sysids is not None and sysid not in state.known_sysids:
        raise RegisterFault(403, 2001, f"SysID {sysid} is not known to the register")
    return sysid


def _subject(raw: str) -> Subject:
    value = unquote(raw)
    if _CPR.fullmatch(value):
        return ("cpr", value)
    match = _CVR.fullmatch(value)
    if match:
        return ("cvr", match.group(1))
    raise RegisterFault(400, 1001, "the end user must be a CPR (10 digits) or CVR (8 digits)")


def _boolean(root: etree._Element) -> bool:
    for element in root.iter():
        text = (element.text or "").strip()
        if text in ("true", "false"):
            return text == "true"
    raise RegisterFault(400, 1003, "Myndighedstilmelding carries no true/false indicator")


def _subject_entries(state: RegisterState, sysid: str) -> tuple[Subject, ...]:
    cprs, cvrs = state.subscriptions.get(sysid, ([], []))
    return tuple(("cpr", n) for n in cprs) + tuple(("cvr", n) for n in cvrs)


# --- the register ---------------------------------------------------------------------------


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
            subject = _subject(match[2])
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
            subject = _subject(match[2])
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


# --- the test hooks -------------------------------------------------------------------------


class _ControlHandler(QuietHandler):
    state: ClassVar[RegisterState]
    stats: ClassVar[Any]

    def _serve(self) -> None:
        body = self.read_body()
        if body is None:
            return
        path = urlsplit(self.path).path
        if not path.startswith("/_sandbox/"):
            self.send_json(404, {"error": "the test hooks live under /_sandbox/"})
            return
        try:
            data = json.loads(body) if body else None
            status, answer = self._route(path.removeprefix("/_sandbox/"), data)
        except (ValueError, TypeError, KeyError) as exc:
            status, answer = 400, {"error": str(exc)}
        self.send_json(status, answer)

    do_GET = do_PUT = do_POST = do_DELETE = _serve  # noqa: N815 - dispatch names

    def _route(self, path: str, data: Any) -> tuple[int, Any]:
        state, verb = self.state, self.command
        if path == "requests" and verb in ("GET", "DELETE"):
            with state.lock:
                entries = list(state.requests)
                if verb == "DELETE":
                    state.requests.clear()
            return (200, entries) if verb == "GET" else (200, {"deleted": len(entries)})
        if path == "faults" and verb == "POST":
            fault, count = _fault(data)
            with state.lock:
                state.fault, state.fault_remaining = fault, count
            return 200, {"status": fault, "count": count}
        if path == "faults" and verb == "GET":
            with state.lock:
                return 200, {"status": state.fault, "count": state.fault_remaining}
        if path.startswith("subscriptions/") and verb in ("PUT", "GET"):
            sysid = unquote(path.removeprefix("subscriptions/"))
            if not _SYSID.fullmatch(sysid):
                raise ValueError("malformed SysID")
            with state.lock:
                if verb == "PUT":
                    state.subscriptions[sysid] = _subscription_list(data)
                cprs, cvrs = state.subscriptions.get(sysid, ([], []))
                return 200, {"cpr": list(cprs), "cvr": list(cvrs)}
        if path.startswith("endusers/") and verb == "GET":
            subject = _subject(path.removeprefix("endusers/"))
            with state.lock:
                user = state.users.get(subject)
                if user is None:
                    return 404, {"error": "no such end user"}
                return 200, {"kind": subject[0], "tilmeldt": user.tilmeldt}
        if path == "stats" and verb == "GET":
            return 200, self.stats()
        return 404, {"error": f"no hook {verb} /_sandbox/{path}"}


def _fault(data: Any) -> tuple[int | str, int]:
    if not isinstance(data, dict):
        raise ValueError('expected {"status": 503 | "reset", "count": n}')
    status, count = data.get("status"), data.get("count", 1)
    if not isinstance(count, int) or isinstance(count, bool) or count < 0:
        raise ValueError("count must be a whole number >= 0")
    if status == "reset" or (isinstance(status, int) and 100 <= status <= 599):
        return status, count
    raise ValueError('status must be an HTTP status (100-599) or "reset"')


def _subscription_list(data: Any) -> tuple[list[str], list[str]]:
    if not isinstance(data, dict) or set(data) - {"cpr", "cvr"}:
        raise ValueError('expected {"cpr": [...], "cvr": [...]}')
    cprs, cvrs = data.get("cpr", []), data.get("cvr", [])
    if not all(isinstance(v, str) and _CPR.fullmatch(v) for v in cprs):
        raise ValueError("every cpr must be 10 digits")
    if not all(isinstance(v, str) and _CVR.fullmatch(v) for v in cvrs):
        raise ValueError("every cvr must be 8 digits")
    return list(cprs), [v.removeprefix(":") for v in cvrs]


# --- the two servers together ---------------------------------------------------------------


class NemSmsRegister:
    """The register (HTTPS, client certificate required) and its hooks (HTTP, loopback)."""

    def __init__(
        self,
        *,
        server_cert: Path,
        server_key: Path,
        client_ca: Path,
        host: str = "127.0.0.1",
        port: int = 0,
        control_port: int = 0,
        known_sysids: set[str] | None = None,
        max_recorded: int = 100_000,
        list_part_size: int = 1000,
    ) -> None:
        self.state = RegisterState(known_sysids, max_recorded, list_part_size)
        context = server_tls_context(server_cert, server_key, client_ca)
        register = type("RegisterHandler", (_RegisterHandler,), {"state": self.state})
        control = type(
            "ControlHandler", (_ControlHandler,), {"state": self.state, "stats": self.stats}
        )
        self._host = host
        self._register = ServerThread(
            ThreadedServer((host, port), register, ssl_context=context), "nemsms-register"
        )
        # The hooks change the register's state: never reachable from outside the machine.
        self._control = ServerThread(
            ThreadedServer(("127.0.0.1", control_port), control), "nemsms-register-hooks"
        )
        self._started = False

    @property
    def base_url(self) -> str:
        return f"https://{self._host}:{self._register.port}"

    @property
    def control_url(self) -> str:
        return f"http://127.0.0.1:{self._control.port}/_sandbox"

    @property
    def connections_accepted(self) -> int:
        """TLS connections whose handshake succeeded (each may carry many requests)."""
        return self._register.server.connections_accepted

    def stats(self) -> dict[str, int]:
        server, state = self._register.server, self.state
        with state.lock:
            return {
                "connections_accepted": server.connections_accepted,
                "handshake_failures": server.handshake_failures,
                "requests_received": state.requests_received,
                "end_users": len(state.users),
            }

    def start(self) -> None:
        if not self._started:
            self._register.start()
            self._control.start()
            self._started = True

    def stop(self) -> None:
        self._register.stop()
        self._control.stop()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
