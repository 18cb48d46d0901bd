"""spyne behind a hand-written contract: parsing, validation, faults and the WSGI application.

spyne 2.14 dispatches SOAP requests to service methods well; the rest is replaced here:

* **Parsing** goes through :func:`~serviceplatform.soap.envelope.parse_envelope` (size limit,
  no DTD, no processing instructions). A front that parsed the envelope already may leave the
  ``ParsedEnvelope`` in the environ under ``ENVELOPE_ENVIRON_KEY``; it is then reused.
* **Validation** is against the *hand-written contract* (the schemas the WSDL's types include),
  not spyne's generated schema: spyne's schema cannot express ``xsd:choice`` or children from
  another namespace, and its deserializer matches children by local name only, so the
  contract is the one check that callers can read. spyne's own ``validator`` is left off.
  The checking itself is :class:`~serviceplatform.soap.contract_validation.ContractValidator`.
* **Faults**: spyne's fault serialization is replaced, for every fault raised anywhere
  (parsing, validation, dispatch, the service method), by
  :func:`~serviceplatform.soap.faults.fault_envelope_element`. This also fixes spyne's
  ``Soap12`` crash on schema errors (``TypeError: bad argument type: bytes``, its
  ``SchemaValidationError`` carries bytes). A ``ServicePlatformError`` raised in a service
  method becomes its platform fault; any other exception becomes SP-900 and is logged, its
  text is never sent.
* **WSDL**: a GET is answered by
  :class:`~serviceplatform.soap.contract_docs.ContractDocuments` (the hand-written WSDL and
  the documents it references, links rewritten to the caller's URL), never by spyne.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, Final

import spyne.const
from spyne import Application, ServiceBase
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
from spyne.server.wsgi import WsgiApplication

from serviceplatform.errors import (
    MalformedXml,
    NotSoapEnvelope,
    RequestError,
    RequestTooLarge,
    SchemaViolation,
    ServicePlatformError,
    UnknownOperation,
)
from serviceplatform.soap.contract_docs import ContractDocuments
from serviceplatform.soap.contract_validation import ContractValidator
from serviceplatform.soap.envelope import (
    ENVELOPE_ENVIRON_KEY,
    SOAP_NAMESPACES,
    ParsedEnvelope,
    parse_envelope,
    read_request_body,
)
from serviceplatform.soap.faults import fault_envelope_element, fault_http_status, fault_response

# ContractDocuments and ContractValidator live in contract_docs and contract_validation;
# they stay importable from here for callers written before the split.
__all__ = [
    "DEFAULT_MAX_BODY_BYTES",
    "ENVELOPE_ENVIRON_KEY",
    "ContractApplication",
    "ContractDocuments",
    "ContractValidator",
    "PlatformFault",
    "PlatformSoap11",
    "PlatformSoap12",
    "contract_application",
    "platform_error",
]

logger = logging.getLogger(__name__)

# spyne closes every method context with a full gc.collect() at most once a second; in a
# worker holding spyne, lxml and SQLAlchemy that stalls every thread of the process for tens
# of milliseconds, which is most of a p99. Python's own generational collector is enough.
spyne.const.MIN_GC_INTERVAL = float("inf")

WsgiStartResponse = Callable[..., Any]

DEFAULT_MAX_BODY_BYTES: Final = 512 * 1024
_HTTP_STATUS: Final = {400: "400 Bad Request", 500: "500 Internal Server Error"}


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
        super().decompose_incoming_envelope(ctx, message)  # type: ignore[misc]
        if ctx.method_request_string is None:  # e.g. a Fault sent as a request
            raise PlatformFault(UnknownOperation("the Body holds no request element"))

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

    # --- response side ----------------------------------------------------------------

    def serialize(self, ctx: Any, message: Any) -> None:
        if ctx.out_error is None:
            super().serialize(ctx, message)  # type: ignore[misc]
            if self.contract is None or self._response_is_valid(ctx):
                return
            ctx.out_error = PlatformFault(ServicePlatformError())
            ctx.transport.resp_code = self.fault_to_http_response_code(ctx.out_error)
        self.event_manager.fire_event("before_serialize", ctx)
        ctx.out_document = fault_envelope_element(platform_error(ctx.out_error), self.soap_version)
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

    def fault_to_http_response_code(self, fault: BaseException) -> str:
        status = fault_http_status(platform_error(fault), self.soap_version)
        return _HTTP_STATUS[status]


class PlatformSoap11(_PlatformSoapMixin, Soap11):  # type: ignore[misc]
    """spyne's ``Soap11`` with the platform's parsing, contract validation and faults."""

    soap_version = 11


class PlatformSoap12(_PlatformSoapMixin, Soap12):  # type: ignore[misc]
    """spyne's ``Soap12`` with the platform's parsing, contract validation and faults."""

    soap_version = 12


class PlatformApplication(Application):  # type: ignore[misc]
    """A spyne ``Application`` that turns every error of a service method into a platform one.

    The error is put into ``ctx.out_error`` instead of being raised on: spyne would log every
    fault, expected ones like SP-301 included, with a traceback at ERROR level. spyne's WSGI
    server looks at ``ctx.out_error`` right after the call and renders the fault.
    """

    def call_wrapper(self, ctx: Any) -> Any:
        try:
            return super().call_wrapper(ctx)
        except Exception as exc:
            if isinstance(exc, ServicePlatformError | Fault):
                error = platform_error(exc)
                logger.debug("service method answered %s", error.code)
            else:
                name = getattr(ctx.descriptor, "name", "?")
                logger.exception("service method %s failed; answering SP-900", name)
                error = ServicePlatformError()
            ctx.out_error = PlatformFault(error)
            return None


class ContractApplication:
    """The WSGI application of one contract: its documents on GET, spyne on POST."""

    def __init__(
        self,
        spyne_app: WsgiApplication,
        documents: ContractDocuments,
        *,
        soap_version: int,
        max_body_bytes: int,
    ) -> None:
        self.spyne_app = spyne_app
        self.documents = documents
        self.soap_version = soap_version
        self.max_body_bytes = max_body_bytes

    def __call__(self, environ: dict[str, Any], start_response: WsgiStartResponse) -> list[bytes]:
        if environ.get("REQUEST_METHOD", "GET").upper() == "GET":
            answer = self.documents.answer(environ)
            if answer is not None:
                status, headers, body = answer
                start_response(status, headers)
                return [body]
        if environ.get("REQUEST_METHOD", "").upper() != "POST":
            # Never handed to spyne: it would answer GET .../x.wsdl with its generated WSDL.
            response = fault_response(
                RequestError("a SOAP request must be an HTTP POST"), self.soap_version
            )
            start_response("405 Method Not Allowed", [*response.headers, ("Allow", "GET, POST")])
            return [response.body]
        if not isinstance(environ.get(ENVELOPE_ENVIRON_KEY), ParsedEnvelope):
            try:
                body = read_request_body(environ, self.max_body_bytes)
            except ServicePlatformError as exc:
                return self._fault(exc, start_response)
            # spyne reads CONTENT_LENGTH bytes and nothing when it is empty (chunked requests).
            environ["wsgi.input"] = io.BytesIO(body)
            environ["CONTENT_LENGTH"] = str(len(body))
        return self._call_spyne(environ, start_response)

    def _call_spyne(
        self, environ: dict[str, Any], start_response: WsgiStartResponse
    ) -> list[bytes]:
        # The answer is collected before start_response so that a failure anywhere in spyne
        # still becomes a platform fault instead of a half-sent response or a traceback.
        captured: list[tuple[str, list[tuple[str, str]]]] = []

        def capture(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            captured.append((status, headers))
            return lambda _data: None

        try:
            chunks = self.spyne_app(environ, capture)
            try:
                body = b"".join(chunks)
            finally:
                close = getattr(chunks, "close", None)
                if close is not None:
                    close()
        except Exception:
            logger.exception("spyne failed outside a service method; answering SP-900")
            return self._fault(ServicePlatformError(), start_response)
        if not captured:
            logger.error("spyne returned without starting a response; answering SP-900")
            return self._fault(ServicePlatformError(), start_response)
        status, headers = captured[-1]
        headers = [(k, v) for k, v in headers if k.lower() != "content-length"]
        headers.append(("Content-Length", str(len(body))))
        start_response(status, headers)
        return [body]

    def _fault(self, error: ServicePlatformError, start_response: WsgiStartResponse) -> list[bytes]:
        response = fault_response(error, self.soap_version)
        start_response(response.status, response.headers)
        return [response.body]


def contract_application(
    services: Sequence[type[ServiceBase]],
    *,
    tns: str,
    name: str,
    wsdl_path: Path,
    soap_version: int = 12,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    public_url: str | None = None,
) -> ContractApplication:
    """A WSGI application serving ``services`` behind the hand-written contract ``wsdl_path``.

    ``tns`` and ``name`` must be the WSDL's target namespace and service name, so that spyne
    dispatches on the same element names the contract declares. ``public_url``, when given,
    is the endpoint address written into the served WSDL instead of the requested URL.
    Raises ``ConfigurationError`` when the contract cannot be loaded.
    """
    if soap_version not in SOAP_NAMESPACES:
        raise ValueError(f"soap_version must be 11 or 12, not {soap_version!r}")
    documents = ContractDocuments(wsdl_path, public_url=public_url)
    validator = ContractValidator(documents.build_schema)
    protocol = PlatformSoap12 if soap_version == 12 else PlatformSoap11
    application = PlatformApplication(
        list(services),
        tns=tns,
        name=name,
        in_protocol=protocol(max_body_bytes=max_body_bytes, contract=validator),
        out_protocol=protocol(max_body_bytes=max_body_bytes, contract=validator),
    )
    # One byte over the limit, so that spyne never truncates a chunked body to the limit
    # (which would turn "too large" into "malformed").
    spyne_app = WsgiApplication(application, max_content_length=max_body_bytes + 1)
    return ContractApplication(
        spyne_app, documents, soap_version=soap_version, max_body_bytes=max_body_bytes
    )
