"""A simulated SF1601 (Afsend post) host: the access-token service and the two operations.

Over HTTPS with a client certificate from the sandbox CA, as ``exttest.serviceplatformen.dk``:

- ``POST /service/AccessTokenService_1/token`` (form ``saml-token``): exchanges an assertion
  the simulated STS issued (``IssuedTokens``), still valid and bound to the calling
  certificate, for an opaque access token bound to the same certificate and entity ID;
- ``GET /service/PostForespoerg_1/{nemsms|digitalpost}?cprNumber=|cvrNumber=``:
  ``{"result": bool}`` from the recipients the ``recipients`` hook set;
- ``POST /service/KombiPostAfsend_1/kombi``: a ``kombi_request`` with ``KombiValgKode`` and a
  MeMo ``Message``; answers a ``kombi_response`` (``AdvisTekst`` ``received``) and records the
  message once per ``messageUUID`` (hook ``sent``).

Each operation needs ``Authorization: Holder-of-key <access token>`` with a token issued for
the operation's entity ID, not expired, and bound to the calling certificate (else 401), plus
``x-TransaktionsId`` (a UUID) and ``x-TransaktionsTid`` (UTC, ending in ``Z``) (else 400).

Choices where the digest says uncertain (easy to change here): error bodies are JSON
``{"FejlKode", "FejlTekst"}`` (HAD's guess); a repeated ``messageUUID`` is answered as the
first one and not recorded again; a NEMSMS MeMo is checked for what the digest lists (the
namespace, header order, a version-4 UUID, a non-empty ``notification`` of at most 150).
Hooks: ``kombi_hooks.py`` plus ``PUT recipients`` ``{"nemsms": [...], "digitalpost": [...]}``
and ``GET``/``DELETE sent``; fault targets ``service`` (the operations) and ``exchange``.
"""

from __future__ import annotations

import base64
import binascii
import re
import secrets
import time
import uuid
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar, Final
from urllib.parse import parse_qs, urlsplit

from cryptography.hazmat.primitives.serialization import Encoding
from lxml import etree

from serviceplatform.sandbox.httpserver import (
    QuietHandler,
    ServerGroup,
    ServerThread,
    ThreadedServer,
    server_tls_context,
)
from serviceplatform.sandbox.kombi_hooks import PeerState, peer_hooks
from serviceplatform.sandbox.kombi_sts import (
    ENTITY_KOMBIPOSTAFSEND,
    ENTITY_POSTFORESPOERG,
    Grant,
    IssuedTokens,
    calling_certificate,
    fingerprint,
)

EXCHANGE_PATH: Final = "/service/AccessTokenService_1/token"
FORESPOERG_PREFIX: Final = "/service/PostForespoerg_1/"
KOMBI_PATH: Final = "/service/KombiPostAfsend_1/kombi"
ACCESS_LIFETIME: Final = 3600.0
MEMO_NS: Final = "https://DigitalPost.dk/MeMo-1"
KOMBI_CHOICES: Final = frozenset({"Digital Post", "NemSMS", "Fysisk Post", "Automatisk Valg"})
#: The MeMo header's children in schema order (digest §4); ``?`` marks optional ones.
HEADER_ORDER: Final = (
    "messageType",
    "messageUUID",
    "messageID?",
    "messageCode?",
    "label",
    "notification?",
    "additionalNotification?",
    "reply?",
    "replyByDateTime?",
    "doNotDeliverUntilDate?",
    "mandatory?",
    "legalNotification?",
    "postType?",
    "Sender",
    "Recipient",
    "ContentData?",
    "ForwardData?",
    "ReplyData?",
)
_UUID4: Final = re.compile(
    r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}", re.I
)
_PARSER: Final = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
_IDENTIFIER: Final = {"cprNumber": re.compile(r"\d{10}"), "cvrNumber": re.compile(r"\d{8}")}


class Refused(Exception):
    """An answer other than success: HTTP status, FejlKode, FejlTekst."""

    def __init__(self, status: int, code: str, text: str) -> None:
        super().__init__(text)
        self.status, self.code, self.text = status, code, text


class Sf1601State(PeerState):
    """The peer's recorded requests and faults, its recipients and the messages it took."""

    def __init__(self) -> None:
        super().__init__(("service", "exchange"), ACCESS_LIFETIME, 100_000)
        #: channel (``nemsms``/``digitalpost``) -> identifiers (CPR or CVR) registered there.
        self.recipients: dict[str, set[str]] = {"nemsms": set(), "digitalpost": set()}
        #: messageUUID -> what was sent, oldest first.
        self.sent: dict[str, dict[str, Any]] = {}


class SimulatedSf1601(ServerGroup):
    """The SF1601 host (HTTPS, client certificate required) and its hooks (HTTP, loopback)."""

    def __init__(
        self,
        *,
        server_cert: Path,
        server_key: Path,
        client_ca: Path,
        issued: IssuedTokens,
        nemsms_recipients: Iterable[str] = (),
        host: str = "127.0.0.1",
        port: int = 0,
        control_port: int = 0,
    ) -> None:
        self.issued = issued
        self.state = Sf1601State()
        self.state.recipients["nemsms"].update(nemsms_recipients)
        handler = type("Sf1601Handler", (_Handler,), {"state": self.state, "issued": issued})
        context = server_tls_context(server_cert, server_key, client_ca)
        self._host = host
        self._server = ServerThread(
            ThreadedServer((host, port), handler, ssl_context=context), "sandbox-sf1601"
        )
        hooks = peer_hooks(self.state, self.stats, self._hooks)
        self._control = ServerThread(
            ThreadedServer(("127.0.0.1", control_port), hooks), "sandbox-sf1601-hooks"
        )
        super().__init__(self._server, self._control)

    @property
    def base_url(self) -> str:
        return f"https://{self._host}:{self._server.port}"

    @property
    def control_url(self) -> str:
        return f"http://127.0.0.1:{self._control.port}/_sandbox"

    def stats(self) -> dict[str, int]:
        with self.state.lock:
            received, sent = self.state.requests_received, len(self.state.sent)
        return {
            "connections_accepted": self._server.server.connections_accepted,
            "requests_received": received,
            "access_tokens_issued": self.issued.access_tokens_issued,
            "messages_sent": sent,
        }

    def _hooks(self, verb: str, path: str, data: Any) -> tuple[int, Any] | None:
        state = self.state
        if path == "recipients" and verb in ("GET", "PUT"):
            if verb == "PUT":
                if not isinstance(data, dict) or set(data) - set(state.recipients):
                    raise ValueError('expected {"nemsms": [...], "digitalpost": [...]}')
                with state.lock:
                    for channel, values in data.items():
                        state.recipients[channel] = {str(v) for v in values}
            with state.lock:
                return 200, {k: sorted(v) for k, v in state.recipients.items()}
        if path == "sent" and verb in ("GET", "DELETE"):
            with state.lock:
                sent = list(state.sent.values())
                if verb == "DELETE":
                    state.sent.clear()
            return (200, sent) if verb == "GET" else (200, {"deleted": len(sent)})
        return None


class _Handler(QuietHandler):
    state: ClassVar[Sf1601State]
    issued: ClassVar[IssuedTokens]

    def _serve(self) -> None:
        body = self.read_body()
        if body is None:
            return
        caller = calling_certificate(self)
        subject = caller.subject.rfc4514_string() if caller is not None else None
        path = urlsplit(self.path).path
        target = "exchange" if path == EXCHANGE_PATH else "service"
        fault = self.state.record(self, body, target, subject)
        if self.answer_injected(fault):
            return
        der = caller.public_bytes(Encoding.DER) if caller is not None else b""
        try:
            if path == EXCHANGE_PATH and self.command == "POST":
                self.send_json(200, self._exchange(body, fingerprint(der)))
            elif path.startswith(FORESPOERG_PREFIX) and self.command == "GET":
                self._authorize(ENTITY_POSTFORESPOERG, fingerprint(der))
                self.send_json(200, {"result": self._forespoerg(path)})
            elif path == KOMBI_PATH and self.command == "POST":
                self._authorize(ENTITY_KOMBIPOSTAFSEND, fingerprint(der))
                answer = self._kombi(body)
                self.send_body(200, answer, "application/xml;charset=UTF-8")
            else:
                raise Refused(404, "resource.not.found", f"no {self.command} {path}")
        except Refused as refused:
            self.send_json(refused.status, {"FejlKode": refused.code, "FejlTekst": refused.text})

    do_GET = do_POST = do_PUT = do_DELETE = _serve  # noqa: N815 - dispatch names

    # --- the access-token service -------------------------------------------------------------

    def _exchange(self, body: bytes, caller: str) -> dict[str, Any]:
        form = parse_qs(body.decode("ascii", "replace"))
        try:
            xml = base64.b64decode(form["saml-token"][0], validate=True)
            assertion_id = etree.fromstring(xml, _PARSER).get("ID")
        except (KeyError, binascii.Error, etree.XMLSyntaxError, ValueError) as exc:
            raise Refused(400, "invalid.saml.token", "saml-token is not a SAML assertion") from exc
        with self.issued.lock:
            grant = self.issued.assertions.get(str(assertion_id))
        if grant is None:
            raise Refused(401, "unknown.saml.token", "the STS did not issue this assertion")
        if grant.expires_at <= time.time():
            raise Refused(401, "expired.saml.token", "the SAML token has expired")
        if grant.certificate != caller:
            raise Refused(
                401, "wrong.certificate", "the SAML token is bound to another certificate"
            )
        with self.state.lock:
            lifetime = self.state.lifetime
        token = secrets.token_urlsafe(32)
        with self.issued.lock:
            self.issued.access_tokens[token] = Grant(
                grant.cvr, grant.entity_id, caller, time.time() + lifetime
            )
            self.issued.access_tokens_issued += 1
        return {"access_token": token, "token_type": "Holder-of-key", "expires_in": lifetime}

    # --- the operations ---------------------------------------------------------------------------

    def _authorize(self, entity_id: str, caller: str) -> Grant:
        scheme, _, token = self.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "holder-of-key" or not token:
            raise Refused(401, "missing.token", "Authorization: Holder-of-key <token> required")
        with self.issued.lock:
            grant = self.issued.access_tokens.get(token.strip())
        if grant is None or grant.expires_at <= time.time():
            raise Refused(401, "invalid.token", "the access token is unknown or has expired")
        if grant.entity_id != entity_id:
            raise Refused(401, "wrong.entity", "the access token was issued for another service")
        if grant.certificate != caller:
            raise Refused(
                401, "wrong.certificate", "the access token is bound to another certificate"
            )
        transaction = self.headers.get("x-TransaktionsId", "")
        try:
            uuid.UUID(transaction)
        except ValueError:
            raise Refused(
                400, "missing.transaktionsid", "x-TransaktionsId must be a UUID"
            ) from None
        moment = self.headers.get("x-TransaktionsTid", "")
        try:
            datetime.fromisoformat(moment)
        except ValueError:
            moment = ""
        if not moment.endswith("Z"):
            raise Refused(
                400, "missing.transaktionstid", "x-TransaktionsTid must be UTC ending in Z"
            )
        return grant

    def _forespoerg(self, path: str) -> bool:
        channel = path.removeprefix(FORESPOERG_PREFIX)
        if channel not in self.state.recipients:
            raise Refused(404, "resource.not.found", f"no PostForespoerg channel {channel!r}")
        query = parse_qs(urlsplit(self.path).query)
        found = [(key, query[key][0]) for key in _IDENTIFIER if key in query]
        if len(found) != 1 or not _IDENTIFIER[found[0][0]].fullmatch(found[0][1]):
            raise Refused(400, "invalid.query", "give one cprNumber (10 digits) or cvrNumber (8)")
        with self.state.lock:
            return found[0][1] in self.state.recipients[channel]

    def _kombi(self, body: bytes) -> bytes:
        if "xml" not in self.headers.get("Content-Type", ""):
            raise Refused(415, "unsupported.media.type", "Content-Type must be application/xml")
        try:
            root = etree.fromstring(body, _PARSER)
        except etree.XMLSyntaxError as exc:
            raise Refused(400, "invalid.xml", "the body is not XML") from exc
        if root.tag != "kombi_request":
            raise Refused(400, "invalid.request", "the root must be kombi_request")
        choice = root.findtext("KombiValgKode")
        if choice not in KOMBI_CHOICES:
            raise Refused(400, "invalid.kombivalgkode", "unknown KombiValgKode")
        message = root.find(f"{{{MEMO_NS}}}Message")
        if message is None:
            raise Refused(400, "invalid.memo", "no MeMo Message in the MeMo namespace")
        header = check_memo_header(message)
        message_uuid = header["messageUUID"]
        with self.state.lock:
            if message_uuid not in self.state.sent:
                self.state.sent[message_uuid] = {
                    "messageUUID": message_uuid,
                    "kombiValgKode": choice,
                    "messageType": header["messageType"],
                    "recipient": header["recipient"],
                    "sender": header["sender"],
                    "notification": header.get("notification"),
                    "transaktionsId": self.headers.get("x-TransaktionsId"),
                }
        return kombi_response(message_uuid)


def check_memo_header(message: etree._Element) -> dict[str, str]:
    """The header's fields after the checks the digest lists (``Refused`` 400 otherwise)."""
    if not message.get("memoVersion"):
        raise Refused(400, "invalid.memo", "memoVersion is required")
    header = message.find(f"{{{MEMO_NS}}}MessageHeader")
    if header is None:
        raise Refused(400, "invalid.memo", "MessageHeader is required")
    names = [etree.QName(child).localname for child in header if isinstance(child.tag, str)]
    position = 0
    for name in names:
        while position < len(HEADER_ORDER) and HEADER_ORDER[position].rstrip("?") != name:
            if not HEADER_ORDER[position].endswith("?"):
                raise Refused(
                    400,
                    "invalid.memo",
                    f"MessageHeader: {name} before the required {HEADER_ORDER[position]}",
                )
            position += 1
        if position == len(HEADER_ORDER):
            raise Refused(400, "invalid.memo", f"MessageHeader: {name} out of order or unknown")
        position += 1
    missing = [n for n in HEADER_ORDER[position:] if not n.endswith("?")]
    if missing:
        raise Refused(400, "invalid.memo", f"MessageHeader: {missing[0]} is required")

    def text(path: str) -> str:
        return (header.findtext(path, namespaces={"m": MEMO_NS}) or "").strip()

    fields = {
        "messageType": text("m:messageType"),
        "messageUUID": text("m:messageUUID"),
        "sender": text("m:Sender/m:senderID"),
        "recipient": text("m:Recipient/m:recipientID"),
    }
    if fields["messageType"] not in ("DIGITALPOST", "NEMSMS"):
        raise Refused(400, "invalid.memo", "messageType must be DIGITALPOST or NEMSMS")
    if not _UUID4.fullmatch(fields["messageUUID"]):
        raise Refused(400, "invalid.memo", "messageUUID must be a version-4 UUID")
    if not text("m:Sender/m:label"):
        raise Refused(400, "invalid.memo", "Sender/label is required")
    notification = header.find(f"{{{MEMO_NS}}}notification")
    if notification is not None:
        fields["notification"] = notification.text or ""
    if fields["messageType"] == "NEMSMS":
        sms = fields.get("notification", "")
        if not sms.strip():
            raise Refused(
                400,
                "empty.notification.not.allowed",
                "Empty notification is not allowed for MeMo of the type NEMSMS",
            )
        if len(sms) > 150:
            raise Refused(400, "notification.too.long", "notification is at most 150 characters")
    return fields


def kombi_response(message_uuid: str) -> bytes:
    """A successful ``kombi_response`` (root without namespace, digest §3)."""
    root = etree.Element("kombi_response")
    etree.SubElement(root, "Result").text = "true"
    etree.SubElement(root, "TransmissionID").text = message_uuid
    advis = etree.SubElement(
        etree.SubElement(etree.SubElement(root, "HovedoplysningerSvarREST"), "SvarReaktion"),
        "Advis",
    )
    etree.SubElement(advis, "AdvisId").text = str(uuid.uuid4())
    etree.SubElement(advis, "AdvisTekst").text = "received"
    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8"))
