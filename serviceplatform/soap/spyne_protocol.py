"""spyne's SOAP protocols, made to speak the platform's faults.

``PlatformSoap11``/``PlatformSoap12`` parse with the platform's hardened parser, validate
against the hand-written contract, and serialize every fault, from anywhere in spyne, through
:func:`~serviceplatform.soap.faults.fault_envelope_element`; ``platform_error`` maps spyne's
and everyone else's exceptions onto the platform's error tree. The WSGI side is in
:mod:`serviceplatform.soap.spyne_glue`.

A service method may also skip spyne's object model on either side. Declared with
``AnyXml`` as its (bare) argument, it receives the request's body element as it is: the
contract has validated it already, so the method reads its few values straight from the
element instead of spyne building model objects it would then copy out again. Returning a
:class:`CannedAnswer`, it answers bytes rendered once per protocol: the envelope spyne itself
would write around that body element, checked against the contract the first time.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Iterable
from typing import Any, Final

from lxml import etree
from spyne import AnyXml
from spyne.const.http import HTTP_405
from spyne.error import (
    RequestNotAllowed,
    RequestTooLongError,
    ResourceNotFoundError,
    ValidationError,
)
from spyne.model.fault import Fault
from spyne.protocol.soap import Soap11, Soap12
from spyne.protocol.xml import SchemaValidationError

from serviceplatform.call import record_error
from serviceplatform.errors import (
    MalformedXml,
    NotSoapEnvelope,
    RequestError,
    RequestTooLarge,
    SchemaViolation,
    ServicePlatformError,
    UnknownOperation,
)
from serviceplatform.soap.contract_validation import ContractValidator
from serviceplatform.soap.envelope import (
    ENVELOPE_ENVIRON_KEY,
    ParsedEnvelope,
    parse_envelope,
)
from serviceplatform.soap.faults import fault_envelope_element, fault_http_status

logger = logging.getLogger(__name__)

DEFAULT_MAX_BODY_BYTES: Final = 512 * 1024
#: Model classes whose attributes one protocol remembers (a service has a few dozen).
_CLS_ATTRS_MAX: Final = 4096
_HTTP_STATUS: Final = {400: "400 Bad Request", 500: "500 Internal Server Error"}


class CannedAnswer:
    """A service method's fixed answer: one body element, the same bytes for every call.

    ``body`` is the response element (the Body's one child) as XML. The protocol renders it
    into its envelope once, checks it against the contract the first time and then answers
    those bytes; an answer outside the contract becomes SP-900 on every call, as a response
    spyne serialized would.
    """

    __slots__ = ("element",)

    def __init__(self, body: bytes) -> None:
        self.element = etree.fromstring(body)


class PlatformFault(Fault):  # type: ignore[misc]
    """A spyne ``Fault`` carrying a ``ServicePlatformError``; rendered by ``fault_envelope``.

    Raise it (or just the ``ServicePlatformError``) from a service method.
    """

    def __init__(self, error: ServicePlatformError) -> None:
        super().__init__(
            faultcode="Client" if error.client_fault else "Server",
            faultstring=error.error_text,
        )
        self.error = error


def platform_error(exc: BaseException) -> ServicePlatformError:
    """The platform error for anything spyne may hold in ``ctx.in_error``/``ctx.out_error``."""
    if isinstance(exc, PlatformFault):
        return exc.error
    if isinstance(exc, ServicePlatformError):
        return exc
    if isinstance(exc, SchemaValidationError | ValidationError):
        return SchemaViolation("a value does not match its declared type")
    if isinstance(exc, ResourceNotFoundError):
        return UnknownOperation()
    if isinstance(exc, RequestTooLongError):
        return RequestTooLarge()
    if isinstance(exc, RequestNotAllowed):
        return RequestError("a SOAP request must be an HTTP POST")
    if isinstance(exc, Fault):
        code = str(exc.faultcode or "")
        if code.startswith("Client.XMLSyntaxError"):
            return MalformedXml()
        if code.startswith("Client.SoapError"):
            return NotSoapEnvelope()
        if code == "Client" or code.startswith("Client."):
            return RequestError()
    logger.error("unexpected %s turned into SP-900", type(exc).__name__, exc_info=exc)
    return ServicePlatformError()


class _PlatformSoapMixin:
    """What both SOAP versions change in spyne; combined with ``Soap11``/``Soap12`` below."""

    soap_version: int
    # Set by the spyne base class / the application; declared for the type checker.
    app: Any
    event_manager: Any

    def __init__(
        self,
        *args: Any,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        contract: ContractValidator | None = None,
        **kwargs: Any,
    ) -> None:
        self._cls_attrs: dict[Any, Any] = {}
        #: Each canned answer in this protocol's envelope, rendered on first use.
        self._canned: dict[CannedAnswer, bytes] = {}
        super().__init__(*args, **kwargs)
        self.max_body_bytes = max_body_bytes
        self.contract = contract

    # --- request side -----------------------------------------------------------------

    def create_in_document(self, ctx: Any, charset: str | None = None) -> None:
        transport = ctx.transport
        if transport.get_request_method() != "POST":
            transport.resp_code = HTTP_405
            transport.resp_headers["Allow"] = "GET, POST"
            raise PlatformFault(RequestError("a SOAP request must be an HTTP POST"))
        parsed = transport.req_env.get(ENVELOPE_ENVIRON_KEY)
        try:
            if not isinstance(parsed, ParsedEnvelope):
                parsed = parse_envelope(
                    self._read_body(ctx.in_string), max_bytes=self.max_body_bytes
                )
            if parsed.soap_version != self.soap_version:
                raise NotSoapEnvelope(
                    f"this service speaks SOAP 1.{self.soap_version - 10}, "
                    f"the envelope is SOAP 1.{parsed.soap_version - 10}"
                )
        except ServicePlatformError as exc:
            raise PlatformFault(exc) from exc
        # spyne expects (root, xml ids); ids only serve SOAP-encoding hrefs, unused here.
        ctx.in_document = (parsed.root, {})

    def _read_body(self, chunks: Iterable[bytes]) -> bytes:
        # A chunked request has no Content-Length: stop reading one byte past the limit.
        parts: list[bytes] = []
        size = 0
        try:
            for chunk in chunks:
                parts.append(chunk)
                size += len(chunk)
                if size > self.max_body_bytes:
                    raise RequestTooLarge(f"more than {self.max_body_bytes} bytes")
        except RequestTooLongError as exc:
            raise RequestTooLarge(f"more than {self.max_body_bytes} bytes") from exc
        return b"".join(parts)

    def decompose_incoming_envelope(self, ctx: Any, message: Any) -> None:
        parsed = ctx.transport.req_env.get(ENVELOPE_ENVIRON_KEY)
        root, _ids = ctx.in_document
        if isinstance(parsed, ParsedEnvelope) and parsed.root is root:
            # What spyne's own version finds with two XPath queries per request, read from
            # the parse: ``parse_envelope`` checked the SOAP version, at most one Header and
            # exactly one element in the Body (comments are dropped, PIs refused).
            ctx.in_document = root
            if parsed.body_child.tag == f"{{{parsed.soap_ns}}}Fault":
                ctx.in_body_doc = parsed.body_child
            else:
                header = parsed.header
                ctx.in_header_doc = list(header) if header is not None else None
                ctx.in_body_doc = parsed.body_child
                ctx.method_request_string = parsed.body_child.tag
                self.validate_body(ctx, message)
        else:
            super().decompose_incoming_envelope(ctx, message)  # type: ignore[misc]
        if ctx.method_request_string is None:  # e.g. a Fault sent as a request
            raise PlatformFault(UnknownOperation("the Body holds no request element"))

    def get_cls_attrs(self, cls: Any) -> Any:
        # spyne's version logs the size of its WeakKeyDictionary cache (computed even with
        # debug logging off) and looks the class up by weak reference: ~2 µs, and it runs
        # some 25 times per request. The attributes of a model class never change once read,
        # so a plain dict in front of spyne's cache returns the very same object.
        attrs = self._cls_attrs.get(cls)
        if attrs is None:
            attrs = super().get_cls_attrs(cls)  # type: ignore[misc]
            if len(self._cls_attrs) < _CLS_ATTRS_MAX:
                self._cls_attrs[cls] = attrs
        return attrs

    def validate_body(self, ctx: Any, message: Any) -> None:
        tag = ctx.in_body_doc.tag
        if tag not in self.app.interface.service_method_map:
            raise PlatformFault(UnknownOperation(f"no operation takes {tag}"))
        if self.contract is None:
            super().validate_body(ctx, message)  # type: ignore[misc]
            return
        try:
            self.contract.validate(ctx.in_body_doc)
        except ServicePlatformError as exc:
            raise PlatformFault(exc) from exc

    def deserialize(self, ctx: Any, message: Any) -> None:
        descriptor = ctx.descriptor
        if (
            descriptor is not None
            and message is self.REQUEST  # type: ignore[attr-defined]
            and _is_any_xml(descriptor.in_message)
            and ctx.in_body_doc is not None
            and ctx.in_body_doc.tag != f"{{{self.ns_soap_env}}}Fault"  # type: ignore[attr-defined]
        ):
            # The method takes the validated body element itself (see the module docstring);
            # spyne's own AnyXml reading would hand it the element's first child instead.
            self.event_manager.fire_event("before_deserialize", ctx)
            ctx.in_object = ctx.in_body_doc
            self.event_manager.fire_event("after_deserialize", ctx)
            return
        super().deserialize(ctx, message)  # type: ignore[misc]

    # --- response side ----------------------------------------------------------------

    def serialize(self, ctx: Any, message: Any) -> None:
        answer = _canned(ctx) if ctx.out_error is None else None
        if answer is not None:
            self.event_manager.fire_event("before_serialize", ctx)
            if self._canned_bytes(answer, ctx) is not None:
                # create_out_string answers the rendered bytes; no document is built.
                self.event_manager.fire_event("after_serialize", ctx)
                return
            ctx.out_error = PlatformFault(ServicePlatformError())
            ctx.transport.resp_code = self.fault_to_http_response_code(ctx.out_error)
        if ctx.out_error is None:
            super().serialize(ctx, message)  # type: ignore[misc]
            if self.contract is None or self._response_is_valid(ctx):
                return
            ctx.out_error = PlatformFault(ServicePlatformError())
            ctx.transport.resp_code = self.fault_to_http_response_code(ctx.out_error)
        error = platform_error(ctx.out_error)
        # Every fault of the spyne path passes here: parsing, validation, dispatch, the
        # service method, a response outside the contract. The call's outcome is this error.
        record_error(ctx.transport.req_env, error)
        self.event_manager.fire_event("before_serialize", ctx)
        ctx.out_document = fault_envelope_element(error, self.soap_version)
        ctx.out_body_doc = ctx.out_document[0]
        self.event_manager.fire_event("after_serialize", ctx)

    def _response_is_valid(self, ctx: Any) -> bool:
        # spyne writes whatever a method returns (a missing mandatory value becomes
        # xsi:nil); a response outside the contract is our bug and must not reach a caller.
        assert self.contract is not None
        elements = [child for child in ctx.out_body_doc if isinstance(child.tag, str)]
        try:
            if len(elements) != 1:
                raise SchemaViolation(f"the Body holds {len(elements)} elements")
            self.contract.validate(elements[0])
        except SchemaViolation as exc:
            name = getattr(ctx.descriptor, "name", "?")
            logger.error("response of %s violates the contract: %s", name, exc.detail)
            return False
        return True

    def _canned_bytes(self, answer: CannedAnswer, ctx: Any) -> bytes | None:
        """``answer`` in this protocol's envelope; None when it violates the contract."""
        rendered = self._canned.get(answer)
        if rendered is None:
            if self.contract is not None:
                try:
                    self.contract.validate(answer.element)
                except SchemaViolation as exc:
                    name = getattr(ctx.descriptor, "name", "?")
                    logger.error("response of %s violates the contract: %s", name, exc.detail)
                    return None
            # What spyne's serialize and create_out_string write around a body element.
            ns_env = self.ns_soap_env  # type: ignore[attr-defined]
            document = etree.Element(f"{{{ns_env}}}Envelope", nsmap=self.app.interface.nsmap)
            body = etree.SubElement(document, f"{{{ns_env}}}Body")
            body.append(copy.deepcopy(answer.element))
            etree.cleanup_namespaces(document)
            text: Any = etree.tostring(
                document,
                encoding=self.encoding,  # type: ignore[attr-defined]
                pretty_print=self.pretty_print,  # type: ignore[attr-defined]
                xml_declaration=self.xml_declaration,  # type: ignore[attr-defined]
            )
            # bytes: a SOAP protocol's encoding is a charset, never "unicode".
            rendered = bytes(text)
            self._canned[answer] = rendered
        return rendered

    def create_out_string(self, ctx: Any, charset: str | None = None) -> None:
        answer = _canned(ctx) if ctx.out_error is None else None
        if answer is not None:
            rendered = self._canned.get(answer)
            if rendered is not None:
                ctx.out_string = [rendered]
                return
        super().create_out_string(ctx, charset)  # type: ignore[misc]

    def fault_to_http_response_code(self, fault: BaseException) -> str:
        status = fault_http_status(platform_error(fault), self.soap_version)
        return _HTTP_STATUS[status]


def _is_any_xml(cls: Any) -> bool:
    return isinstance(cls, type) and issubclass(cls, AnyXml)


def _canned(ctx: Any) -> CannedAnswer | None:
    """The canned answer a service method returned, if it did."""
    out = ctx.out_object
    if out is not None and len(out) == 1 and isinstance(out[0], CannedAnswer):
        return out[0]
    return None


class PlatformSoap11(_PlatformSoapMixin, Soap11):  # type: ignore[misc]
    """spyne's ``Soap11`` with the platform's parsing, contract validation and faults."""

    soap_version = 11


class PlatformSoap12(_PlatformSoapMixin, Soap12):  # type: ignore[misc]
    """spyne's ``Soap12`` with the platform's parsing, contract validation and faults."""

    soap_version = 12
