"""The client side of the KOMBIT security model: sign a SOAP request as the token's holder of key.

``sign_envelope`` puts into an envelope's ``Header`` what the validator checks: the Liberty
``sbf:Framework``, WS-Addressing ``Action``/``MessageID``/``ReplyTo``/``To``, the KOMBIT
``RequestHeader``, and ``wsse:Security`` with a ``Timestamp``, the assertion and a signature
(exclusive c14n, RSA-SHA256, SHA-256) over Body and those headers, whose KeyInfo names the
assertion (``SecurityTokenReference/KeyIdentifier``, value type ``#SAMLID``). The shape is
that of the conformance vector ``security-test-vector/request.xml``, plus what the platform's
policy ``require_token_binding`` asks and the vector lacks: the signature also covers the
assertion, by default as KOMBIT's own clients do, through an STR-Transform reference to that
``SecurityTokenReference`` (``token_binding="str-transform"``); ``"id"`` references the
assertion's ``ID`` directly instead.

``KombitWsse`` is the same as a zeep ``wsse=`` plugin. ``mint_assertion`` (from ``token_minter``) is
re-exported here so a client needs one import.

Test knobs, for building refused messages on purpose (defaults build a correct message):

* ``covered``: the parts the signature references (names from :data:`PARTS`);
* ``omit``: parts not added to the message at all (and so not signed either);
* ``token_binding="none"``: the assertion is not covered (the vector's shape, which the
  platform refuses unless its policy allows it).

A message signed with a key other than the holder's needs no knob: pass that key as
``holder_key``.
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Callable, Collection, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Literal, TypeAlias

from lxml import etree

from serviceplatform.client.token_minter import mint_assertion
from serviceplatform.security import xmldsig_create
from serviceplatform.security.wire import (
    REQUEST_HEADER_NS,
    RH_REQUEST_HEADER,
    RH_TRANSACTION_UUID,
    SAML_ASSERTION,
    SAML_TOKEN_TYPE,
    SAMLID_VALUE_TYPE,
    SBF_FRAMEWORK,
    SBF_NS,
    SBF_PROFILE_ATTR,
    SBF_PROFILE_BASIC,
    SBF_PROFILE_NS,
    SBF_VERSION,
    SOAP11_NS,
    SOAP12_NS,
    SOAP_NS_BY_VERSION,
    WSA_ACTION,
    WSA_ADDRESS,
    WSA_ANONYMOUS,
    WSA_MESSAGE_ID,
    WSA_NS,
    WSA_REPLY_TO,
    WSA_TO,
    WSSE11_NS,
    WSSE11_TOKEN_TYPE,
    WSSE_KEY_IDENTIFIER,
    WSSE_NS,
    WSSE_SECURITY,
    WSSE_STR,
    WSU_CREATED,
    WSU_EXPIRES,
    WSU_ID,
    WSU_NS,
    WSU_TIMESTAMP,
    format_instant,
    qn,
)
from serviceplatform.security.xmldsig_create import PrivateKey

#: The signable parts and the wsu:Id each gets (unless it has one already).
PARTS: Final[Mapping[str, str]] = {
    "Body": "_body",
    "Framework": "_fw",
    "Action": "_act",
    "MessageID": "_mid",
    "ReplyTo": "_rt",
    "To": "_to",
    "Timestamp": "_ts",
}
#: How the signature covers the token: see the module docstring.
TokenBinding: TypeAlias = Literal["str-transform", "id", "none"]
#: The wsu:Id of the KeyInfo's SecurityTokenReference that the STR-Transform reference names.
_STR_ID: Final = "_str"

#: Header elements that ``sign_envelope`` replaces when the envelope already has them.
_REPLACED: Final = frozenset(
    {
        SBF_FRAMEWORK,
        WSA_ACTION,
        WSA_MESSAGE_ID,
        WSA_REPLY_TO,
        WSA_TO,
        RH_REQUEST_HEADER,
        WSSE_SECURITY,
    }
)

# Declared once on envelopes built here, so the headers need no declarations of their own.
_PREFIXES: Final = {
    "sbf": SBF_NS,
    "wsa": WSA_NS,
    "wsse": WSSE_NS,
    "wsse11": WSSE11_NS,
    "wsu": WSU_NS,
    "rh": REQUEST_HEADER_NS,
}

__all__ = [
    "PARTS",
    "KombitWsse",
    "TokenBinding",
    "build_signed_envelope",
    "mint_assertion",
    "sign_envelope",
]


def sign_envelope(
    envelope: etree._Element,
    *,
    assertion: etree._Element,
    holder_key: PrivateKey,
    to: str,
    action: str,
    message_id: str | None = None,
    now: datetime | None = None,
    timestamp_ttl: timedelta = timedelta(minutes=5),
    transaction_uuid: str | None = None,
    covered: Sequence[str] | None = None,
    omit: Collection[str] = (),
    token_binding: TokenBinding = "str-transform",
) -> etree._Element:
    """Add the KOMBIT security headers to ``envelope`` and sign it; returns ``envelope``.

    ``assertion`` is copied into the message (the same token serves many messages).
    ``covered`` and ``omit`` are test knobs (see the module docstring); ``omit`` also accepts
    ``"RequestHeader"``. ``token_binding`` chooses how the signature covers the assertion.
    Raises ValueError for an envelope without a SOAP Body.
    """
    unknown = (set(covered or ()) | set(omit)) - set(PARTS) - {"RequestHeader"}
    if unknown:
        raise ValueError(f"unknown parts: {sorted(unknown)}")
    if token_binding not in ("str-transform", "id", "none"):
        raise ValueError(f"unknown token binding {token_binding!r}")
    if assertion.tag != SAML_ASSERTION or not assertion.get("ID"):
        raise ValueError("the token is not a saml:Assertion with an ID")
    soap_ns = etree.QName(envelope).namespace
    if soap_ns not in (SOAP11_NS, SOAP12_NS):
        raise ValueError("not a SOAP 1.1 or 1.2 Envelope")
    body = envelope.find(qn(soap_ns, "Body"))
    if body is None:
        raise ValueError("the envelope has no Body")
    header = _fresh_header(envelope, soap_ns)
    now = now or datetime.now(UTC)
    must_understand = {qn(soap_ns, "mustUnderstand"): "1"}
    parts = _add_headers(
        header,
        must_understand,
        omit,
        action=action,
        to=to,
        message_id=message_id or f"urn:uuid:{uuid.uuid4()}",
        transaction_uuid=transaction_uuid or str(uuid.uuid4()),
    )
    parts["Body"] = body
    security = etree.SubElement(
        header, WSSE_SECURITY, must_understand, nsmap=_missing(header, wsse=WSSE_NS, wsu=WSU_NS)
    )
    if "Timestamp" not in omit:
        timestamp = etree.SubElement(security, WSU_TIMESTAMP)
        etree.SubElement(timestamp, WSU_CREATED).text = format_instant(now)
        etree.SubElement(timestamp, WSU_EXPIRES).text = format_instant(now + timestamp_ttl)
        parts["Timestamp"] = timestamp
    token = copy.deepcopy(assertion)
    security.append(token)

    signature = xmldsig_create.new_signature(security)
    ids: list[tuple[etree._Element, str, str | None]] = []
    for name in covered if covered is not None else PARTS:
        part = parts.get(name)
        if part is None:
            continue
        part_id = part.get(WSU_ID) or PARTS[name]
        part.set(WSU_ID, part_id)
        xmldsig_create.add_reference(signature, part_id)
        ids.append((part, "Id", WSU_NS))
    token_reference = _token_reference(xmldsig_create.key_info(signature), token)
    token_id = token.get("ID") or ""
    if token_binding == "id":
        xmldsig_create.add_reference(signature, token_id)
        ids.append((token, "ID", None))
    xmldsig_create.sign(signature, xmldsig_create.xmlsec_key(holder_key), ids)
    if token_binding == "str-transform":
        token_reference.set(WSU_ID, _STR_ID)
        xmldsig_create.add_token_reference(signature, _STR_ID, token, holder_key)
    return envelope


def build_signed_envelope(
    body_child: etree._Element, *, soap_version: int = 12, **signing: Any
) -> bytes:
    """A new SOAP envelope around ``body_child`` (copied), signed by :func:`sign_envelope`.

    ``signing`` takes the keyword arguments of :func:`sign_envelope`. Returns UTF-8 bytes
    with an XML declaration.
    """
    soap_ns = SOAP_NS_BY_VERSION.get(soap_version)
    if soap_ns is None:
        raise ValueError(f"SOAP version {soap_version} is not 11 or 12")
    envelope = etree.Element(qn(soap_ns, "Envelope"), nsmap={"s": soap_ns, **_PREFIXES})
    etree.SubElement(envelope, qn(soap_ns, "Header"))
    etree.SubElement(envelope, qn(soap_ns, "Body")).append(copy.deepcopy(body_child))
    sign_envelope(envelope, **signing)
    return etree.tostring(envelope, xml_declaration=True, encoding="utf-8")


class KombitWsse:
    """A zeep ``wsse=`` plugin: signs every request with :func:`sign_envelope`.

    The WS-Addressing ``Action`` is ``action_for(body element)`` when given, else the one
    zeep's WS-Addressing plugin put in the header, else the operation's SOAP action (from
    zeep's HTTP headers), else ``{namespace}/{name}`` of the body element. Responses are not
    signed by the platform, so ``verify`` checks nothing.
    """

    def __init__(
        self,
        *,
        assertion: etree._Element,
        holder_key: PrivateKey,
        to: str,
        action_for: Callable[[etree._Element], str] | None = None,
        token_binding: TokenBinding = "str-transform",
    ) -> None:
        self.assertion = assertion
        self.holder_key = holder_key
        self.to = to
        self.action_for = action_for
        self.token_binding: TokenBinding = token_binding

    def apply(
        self, envelope: etree._Element, headers: dict[str, str]
    ) -> tuple[etree._Element, dict[str, str]]:
        action = self._action(envelope, headers)
        sign_envelope(
            envelope,
            assertion=self.assertion,
            holder_key=self.holder_key,
            to=self.to,
            action=action,
            token_binding=self.token_binding,
        )
        return envelope, headers

    def verify(self, envelope: etree._Element) -> None:
        return None

    def _action(self, envelope: etree._Element, headers: Mapping[str, str]) -> str:
        soap_ns = etree.QName(envelope).namespace or SOAP12_NS
        body = envelope.find(qn(soap_ns, "Body"))
        child = next(iter(body), None) if body is not None else None
        if self.action_for is not None and child is not None:
            return self.action_for(child)
        # zeep's own WS-Addressing plugin (WSDLs with wsam:Action) has already chosen one.
        existing = (envelope.findtext(f"{qn(soap_ns, 'Header')}/{WSA_ACTION}") or "").strip()
        if existing:
            return existing
        soap_action = _soap_action(headers)
        if soap_action:
            return soap_action
        if child is None or not isinstance(child.tag, str):
            raise ValueError("cannot derive a WS-Addressing Action: the Body is empty")
        name = etree.QName(child)
        return f"{(name.namespace or '').rstrip('/')}/{name.localname}"


def _soap_action(headers: Mapping[str, str]) -> str | None:
    """The SOAP action zeep put in the HTTP headers (1.1: SOAPAction; 1.2: Content-Type)."""
    for name, value in headers.items():
        if name.lower() == "soapaction":
            return value.strip().strip('"') or None
        if name.lower() == "content-type":
            for parameter in value.split(";")[1:]:
                key, _, raw = parameter.strip().partition("=")
                if key.lower() == "action":
                    return raw.strip().strip('"') or None
    return None


def _fresh_header(envelope: etree._Element, soap_ns: str) -> etree._Element:
    header = envelope.find(qn(soap_ns, "Header"))
    if header is None:
        header = etree.Element(qn(soap_ns, "Header"))
        envelope.insert(0, header)
    for child in list(header):
        if child.tag in _REPLACED:
            header.remove(child)
    return header


def _add_headers(
    header: etree._Element,
    must_understand: Mapping[str, str],
    omit: Collection[str],
    *,
    action: str,
    to: str,
    message_id: str,
    transaction_uuid: str,
) -> dict[str, etree._Element]:
    """Framework, addressing and RequestHeader in the vector's order; returns the signable ones."""
    parts: dict[str, etree._Element] = {}
    if "Framework" not in omit:
        parts["Framework"] = etree.SubElement(
            header,
            SBF_FRAMEWORK,
            {"version": SBF_VERSION, SBF_PROFILE_ATTR: SBF_PROFILE_BASIC},
            nsmap=_missing(header, sbf=SBF_NS, sbfprofile=SBF_PROFILE_NS, wsu=WSU_NS),
        )
    if "Action" not in omit:
        parts["Action"] = _wsa(header, WSA_ACTION, action, must_understand)
    if "RequestHeader" not in omit:
        request_header = etree.SubElement(
            header, RH_REQUEST_HEADER, nsmap=_missing(header, rh=REQUEST_HEADER_NS)
        )
        etree.SubElement(request_header, RH_TRANSACTION_UUID).text = transaction_uuid
    if "MessageID" not in omit:
        parts["MessageID"] = _wsa(header, WSA_MESSAGE_ID, message_id)
    if "ReplyTo" not in omit:
        parts["ReplyTo"] = _wsa(header, WSA_REPLY_TO, None)
        etree.SubElement(parts["ReplyTo"], WSA_ADDRESS).text = WSA_ANONYMOUS
    if "To" not in omit:
        parts["To"] = _wsa(header, WSA_TO, to, must_understand)
    return parts


def _wsa(
    header: etree._Element, tag: str, text: str | None, attributes: Mapping[str, str] | None = None
) -> etree._Element:
    element = etree.SubElement(
        header, tag, dict(attributes or {}), nsmap=_missing(header, wsa=WSA_NS, wsu=WSU_NS)
    )
    element.text = text
    return element


def _token_reference(key_info: etree._Element, token: etree._Element) -> etree._Element:
    reference = etree.SubElement(
        key_info,
        WSSE_STR,
        {WSSE11_TOKEN_TYPE: SAML_TOKEN_TYPE},
        nsmap=_missing(key_info, wsse=WSSE_NS, wsse11=WSSE11_NS, wsu=WSU_NS),
    )
    identifier = etree.SubElement(reference, WSSE_KEY_IDENTIFIER, ValueType=SAMLID_VALUE_TYPE)
    identifier.text = token.get("ID")
    return reference


def _missing(parent: etree._Element, **prefixes: str) -> dict[str, str]:
    """The namespace declarations of ``prefixes`` not already in scope at ``parent``."""
    in_scope = set(parent.nsmap.values())
    return {prefix: ns for prefix, ns in prefixes.items() if ns not in in_scope}
