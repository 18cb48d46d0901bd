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

A service method may take the validated body element itself (``AnyXml``) and answer a
:class:`~serviceplatform.soap.spyne_protocol.CannedAnswer` (bytes rendered once), skipping
spyne's model objects on both sides; SF2250 does (``integrations/sf2250/service.py``).

An integration describes its service once as a :class:`ContractService` (contract, names,
SOAP versions, the spyne class bound to a handler); its ``build_wsgi_app`` is the one way a
WSGI application is built around a handler.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Generic, TypeVar

import spyne.const
from spyne import Application, EventManager, ServiceBase
from spyne.model.fault import Fault
from spyne.server.wsgi import WsgiApplication

from serviceplatform.call import drop_tracebacks, record_error
from serviceplatform.errors import (
    RequestError,
    ServicePlatformError,
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
from serviceplatform.soap.fault_version import fault_version
from serviceplatform.soap.faults import fault_response
from serviceplatform.soap.spyne_protocol import (
    DEFAULT_MAX_BODY_BYTES,
    CannedAnswer,
    PlatformFault,
    PlatformSoap11,
    PlatformSoap12,
    platform_error,
)

# ContractDocuments and ContractValidator live in contract_docs and contract_validation;
# they stay importable from here for callers written before the split.
__all__ = [
    "DEFAULT_MAX_BODY_BYTES",
    "ENVELOPE_ENVIRON_KEY",
    "CannedAnswer",
    "ContractApplication",
    "ContractDocuments",
    "ContractService",
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
#: The ``wsgi_url`` handed to spyne's WSGI application (see ``_call_spyne``).
_NOT_A_WSDL_URL = ""


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


class LeanEventManager(EventManager):  # type: ignore[misc]
    """spyne's ``EventManager`` without its cost when an event has no handlers.

    spyne fires some 17 events per request, through five event managers, and its
    ``fire_event`` builds an empty ordered set for every event nobody listens to (none here,
    unless a test adds one): ~5 µs each. Handlers, their order and their arguments are as
    in spyne.
    """

    def fire_event(self, event_name: str, ctx: Any, *args: Any, **kwargs: Any) -> None:
        handlers = self.handlers.get(event_name)
        if handlers:
            for handler in handlers:
                handler(ctx, *args, **kwargs)


def _lean_events(*owners: Any) -> None:
    """Make the event managers of ``owners`` lean, in place."""
    for owner in owners:
        manager = owner.event_manager
        # In place, not replaced: a service class's manager is also referenced from each of
        # its method descriptors. LeanEventManager adds no state, so the swap is safe.
        if type(manager) is EventManager:
            manager.__class__ = LeanEventManager


#: Where ``ReleasingWsgiApplication`` keeps a request's spyne contexts until they are released.
_CONTEXTS_ENVIRON_KEY: Final = "serviceplatform.soap.spyne_contexts"


class ReleasingWsgiApplication(WsgiApplication):  # type: ignore[misc]
    """spyne's ``WsgiApplication``, keeping each request's contexts for ``release_spyne_contexts``.

    Every spyne call builds reference cycles: a ``MethodContext`` and its transport, protocol
    and event contexts point at each other, and each ``ProtocolContext`` holds a
    ``defaultdict`` whose factory closes over the context itself. Everything hanging off them
    (the environ, the parsed request document, the ``PlatformCall``, an error and its
    traceback) then waits for Python's cyclic collector instead of being freed when the
    request ends; at a few hundred calls a second that is a collection every few dozen calls.
    The contexts are recorded in the environ so that the caller can cut those links once the
    answer is complete.
    """

    def generate_contexts(self, ctx: Any, in_string_charset: Any = None) -> Any:
        held: list[Any] = ctx.transport.req_env.setdefault(_CONTEXTS_ENVIRON_KEY, [])
        held.append(ctx)
        contexts = super().generate_contexts(ctx, in_string_charset)
        # The primary context is a copy of ``ctx`` (spyne copies it per method handle).
        held.extend(context for context in contexts if context is not ctx)
        return contexts


def release_spyne_contexts(environ: dict[str, Any]) -> None:
    """Cut the reference cycles of the spyne contexts of this request (see above).

    Call it only once the answer is complete: the contexts are emptied, and so are the
    errors' tracebacks (they hold the frames of the call, and the frames hold the context).
    """
    contexts = environ.pop(_CONTEXTS_ENVIRON_KEY, None)
    if not contexts:
        return
    for ctx in contexts:
        state = vars(ctx)
        for error in (state.get("in_error"), state.get("out_error")):
            drop_tracebacks(error)
        for name in ("transport", "inprot_ctx", "outprot_ctx", "event", "aux"):
            _empty(state.get(name))
    for ctx in contexts:
        vars(ctx).clear()
    contexts.clear()


def _empty(part: Any) -> None:
    """Empty one sub-context of a spyne method context, and the sub-contexts it made."""
    if part is None or not hasattr(part, "__dict__"):
        return
    state = vars(part)
    children = state.get("_subctx")
    if isinstance(children, dict):
        for child in list(children.values()):
            _empty(child)
    state.clear()


class ContractApplication:
    """The WSGI application of one contract: its documents on GET, spyne on POST."""

    def __init__(
        self,
        spyne_apps: Mapping[int, WsgiApplication],
        documents: ContractDocuments,
        *,
        max_body_bytes: int,
    ) -> None:
        if not spyne_apps:
            raise ValueError("a contract application needs at least one SOAP version")
        self.spyne_apps = dict(spyne_apps)
        self.documents = documents
        #: The version faults are rendered in before the request's own version is known and
        #: the HTTP request does not say it either (``fault_version``).
        self.soap_version = fault_version(frozenset(self.spyne_apps))
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
                RequestError("a SOAP request must be an HTTP POST"), self._version_of(environ)
            )
            start_response("405 Method Not Allowed", [*response.headers, ("Allow", "GET, POST")])
            return [response.body]
        parsed = environ.get(ENVELOPE_ENVIRON_KEY)
        if not isinstance(parsed, ParsedEnvelope):
            try:
                body = read_request_body(environ, self.max_body_bytes)
                if len(self.spyne_apps) > 1:
                    # The envelope's namespace picks the protocol; spyne reuses the parse.
                    parsed = parse_envelope(body, max_bytes=self.max_body_bytes)
                    environ[ENVELOPE_ENVIRON_KEY] = parsed
            except ServicePlatformError as exc:
                return self._fault(exc, environ, start_response)
            # spyne reads CONTENT_LENGTH bytes and nothing when it is empty (chunked requests).
            environ["wsgi.input"] = io.BytesIO(body)
            environ["CONTENT_LENGTH"] = str(len(body))
        version = parsed.soap_version if isinstance(parsed, ParsedEnvelope) else None
        if version not in self.spyne_apps:
            # Only one version is offered: its protocol refuses the other one itself.
            version = self.soap_version
        return self._call_spyne(version, environ, start_response)

    def _call_spyne(
        self, version: int, environ: dict[str, Any], start_response: WsgiStartResponse
    ) -> list[bytes]:
        # The answer is collected before start_response so that a failure anywhere in spyne
        # still becomes a platform fault instead of a half-sent response or a traceback.
        captured: list[tuple[str, list[tuple[str, str]]]] = []

        def capture(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            captured.append((status, headers))
            return lambda _data: None

        try:
            # The URL is spyne's only for answering WSDL requests, which never reach it (GETs
            # are answered above): given, spyne does not rebuild it from the environ per call.
            chunks = self.spyne_apps[version](environ, capture, _NOT_A_WSDL_URL)
            try:
                body = b"".join(chunks)
            finally:
                close = getattr(chunks, "close", None)
                if close is not None:
                    close()
        except Exception:
            logger.exception("spyne failed outside a service method; answering SP-900")
            return self._fault(ServicePlatformError(), environ, start_response, version)
        finally:
            # The answer is complete (or replaced by a fault): nothing of spyne's call is
            # needed any more, and its reference cycles would hold the whole call for the
            # cyclic collector.
            release_spyne_contexts(environ)
        if not captured:
            logger.error("spyne returned without starting a response; answering SP-900")
            return self._fault(ServicePlatformError(), environ, start_response, version)
        status, headers = captured[-1]
        headers = [(k, v) for k, v in headers if k.lower() != "content-length"]
        headers.append(("Content-Length", str(len(body))))
        start_response(status, headers)
        return [body]

    def _version_of(self, environ: dict[str, Any]) -> int:
        """The fault version for a request whose envelope was not read."""
        return fault_version(
            frozenset(self.spyne_apps), content_type=environ.get("CONTENT_TYPE", "")
        )

    def _fault(
        self,
        error: ServicePlatformError,
        environ: dict[str, Any],
        start_response: WsgiStartResponse,
        soap_version: int | None = None,
    ) -> list[bytes]:
        record_error(environ, error)
        response = fault_response(error, soap_version or self._version_of(environ))
        start_response(response.status, response.headers)
        return [response.body]


def contract_application(
    services: Sequence[type[ServiceBase]],
    *,
    tns: str,
    name: str,
    wsdl_path: Path,
    soap_version: int | Collection[int] = 12,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    public_url: str | None = None,
) -> ContractApplication:
    """A WSGI application serving ``services`` behind the hand-written contract ``wsdl_path``.

    ``tns`` and ``name`` must be the WSDL's target namespace and service name, so that spyne
    dispatches on the same element names the contract declares. ``soap_version`` is 11, 12 or
    both (``{11, 12}``: the envelope's namespace picks the protocol per request).
    ``public_url``, when given, is the endpoint address written into the served WSDL instead
    of the requested URL. Raises ``ConfigurationError`` when the contract cannot be loaded.
    """
    versions = {soap_version} if isinstance(soap_version, int) else set(soap_version)
    if not versions or not versions <= set(SOAP_NAMESPACES):
        raise ValueError(f"soap_version must be 11, 12 or both, not {soap_version!r}")
    documents = ContractDocuments(wsdl_path, public_url=public_url)
    validator = ContractValidator(documents.build_schema)
    spyne_apps: dict[int, WsgiApplication] = {}
    for version in sorted(versions):
        protocol = PlatformSoap12 if version == 12 else PlatformSoap11
        application = PlatformApplication(
            list(services),
            tns=tns,
            name=name,
            in_protocol=protocol(max_body_bytes=max_body_bytes, contract=validator),
            out_protocol=protocol(max_body_bytes=max_body_bytes, contract=validator),
        )
        # One byte over the limit, so that spyne never truncates a chunked body to the limit
        # (which would turn "too large" into "malformed").
        spyne_apps[version] = ReleasingWsgiApplication(
            application, max_content_length=max_body_bytes + 1
        )
        _lean_events(
            spyne_apps[version], application, application.in_protocol, application.out_protocol
        )
    _lean_events(*services)
    return ContractApplication(spyne_apps, documents, max_body_bytes=max_body_bytes)


#: The handler an integration's service methods call (each integration has its own protocol).
HandlerT = TypeVar("HandlerT")


@dataclass(frozen=True)
class ContractService(Generic[HandlerT]):
    """One spyne service behind its hand-written contract: what differs between integrations.

    ``service_class`` binds the service methods to a handler (spyne services are classes);
    ``tns``, ``name``, ``wsdl_path`` and ``soap_version`` are as in :func:`contract_application`.
    """

    tns: str
    name: str
    wsdl_path: Path
    service_class: Callable[[HandlerT], type[ServiceBase]]
    soap_version: int | Collection[int] = 12

    def build_wsgi_app(
        self,
        handler: HandlerT,
        *,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        public_url: str | None = None,
    ) -> ContractApplication:
        """The WSGI application of this service around ``handler``."""
        return contract_application(
            [self.service_class(handler)],
            tns=self.tns,
            name=self.name,
            wsdl_path=self.wsdl_path,
            soap_version=self.soap_version,
            max_body_bytes=max_body_bytes,
            public_url=public_url,
        )
