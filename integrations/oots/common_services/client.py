"""``CommonServicesClient``: the platform's queries to the OOTS Evidence Broker and DSD.

Three questions, each answered from the cache when it was asked within ``ttl_seconds``:

- ``requirements(procedure_id, country)``: the EB's requirements of a procedure;
- ``evidence_types(requirement_id, country)``: the EB's evidence types proving one;
- ``providers(classification, country, specification=, attributes=)``: the DSD's providers of
  an evidence type, or ``AttributeNeeded`` when the user must first give a region (or another
  attribute) and the question be asked again with ``attributes``.

Where the services are: the TDD's ``<server base url>/rest/search`` per service. The
acceptance and production Evidence Broker and DSD are separate services with separate base
URLs; the simulated gateway serves both under one (``/rest/search``) and under
``/eb/rest/search`` and ``/dsd/rest/search``. So ``base_url`` serves both, and ``eb_url`` /
``dsd_url`` override it per service. Each may be the base (``/rest/search`` is appended) or
the search URL itself.

HTTP goes through the outbound seam: one ``HttpTransport`` per distinct URL, of the
``common-services`` peer kind (``open_transport``; URL, timeouts, retries and pool in its
``PeerSettings``, built by ``peer_settings``). The seam uses no ``requests.Session``: no
environment (proxy variables, ``REQUESTS_CA_BUNDLE``), no redirects, no cookies, keep-alive
connections reused from its pool, shared by the platform's threads.

Budget and retries (the seam's): ``timeout`` bounds a whole query, retries included. Each
attempt gets what is left of it (connect at most ``connect_timeout``), the body is read
against the same deadline, and a failed attempt is repeated (``retries`` more times, backoff
doubling from ``backoff_seconds``) only for a connection failure, a timeout or a 5xx, and
only while enough of the budget is left. A GET of a query changes nothing, so repeating it
is always safe.

Failures are platform errors (``serviceplatform.errors``), never library exceptions; the
seam's SP-4xx errors are renamed into the common services' own (``_renamed``): unreachable,
timed out or 5xx after the retries -> ``CommonServicesUnavailable``; a TLS failure ->
``UpstreamTlsError`` (no retry helps); an unreadable answer, an unexpected HTTP status, a
``digest`` header that does not match the body or an answer larger than
``max_response_bytes`` -> ``CommonServicesBadAnswer``; refusals -> see ``parse``. None of
them is cached. The JWS ``oots-response-sig`` header of the real services is not verified.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
from collections.abc import Callable, Mapping
from typing import Final, Self
from urllib.parse import urlencode, urlsplit

from integrations.oots.common_services.cache import QueryCache
from integrations.oots.common_services.model import (
    EvidenceTypeInfo,
    ProvidersAnswer,
    RequirementInfo,
)
from integrations.oots.common_services.parse import (
    parse_evidence_types,
    parse_providers,
    parse_requirements,
)
from integrations.oots.common_services.queries import (
    Query,
    data_services_query,
    evidence_types_query,
    requirements_query,
)
from integrations.oots.errors import CommonServicesBadAnswer, CommonServicesUnavailable
from serviceplatform.closing import Closing
from serviceplatform.config import PeerSettings
from serviceplatform.errors import (
    ConfigurationError,
    ServicePlatformError,
    UpstreamBadResponse,
    UpstreamError,
    UpstreamTimeout,
    UpstreamTlsError,
    UpstreamUnavailable,
    UpstreamUnreachable,
)
from serviceplatform.outbound.base import OutboundRequest
from serviceplatform.outbound.certstore import CertificateStore
from serviceplatform.outbound.credentials import NO_CREDENTIAL
from serviceplatform.outbound.transport import AdapterFactory, HttpTransport, context_adapter

SEARCH_PATH: Final = "/rest/search"
EBRS_MEDIA_TYPE: Final = "application/x-ebrs+xml"
#: The query interface version asked for (``Accept-Version``); the v1.0 form is read too.
CS_SPECIFICATION: Final = "oots-cs:v2.0"
#: The whole EB catalogue (53 requirements, 687 procedure declarations) is about 620 kB.
DEFAULT_MAX_RESPONSE_BYTES: Final = 16 * 1024 * 1024
_HEADERS: Final = {"Accept": EBRS_MEDIA_TYPE, "Accept-Version": CS_SPECIFICATION}


def peer_settings(
    url: str,
    *,
    timeout: float = 10.0,
    connect_timeout: float = 3.0,
    retries: int = 2,
    backoff_seconds: float = 0.2,
    pool_size: int = 10,
    ca_cert: str = "",
    peer: str = "oots-common-services",
) -> PeerSettings:
    """The peer settings of the services at ``url`` (a base URL or the search URL itself):
    ``timeout`` is the budget of a whole query and bounds each wait for data."""
    return PeerSettings(
        kind="common-services",
        base_url=_search_url(url, peer),
        ca_cert=ca_cert,
        connect_timeout_seconds=connect_timeout,
        read_timeout_seconds=timeout,
        budget_seconds=timeout,
        max_retries=retries,
        backoff_seconds=backoff_seconds,
        pool_size=pool_size,
    )


def open_transport(
    name: str,
    settings: PeerSettings,
    certificates: CertificateStore | None,
    *,
    max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
    sleep: Callable[[float], None] = time.sleep,
    adapter_factory: AdapterFactory = context_adapter,
) -> HttpTransport:
    """The transport of a ``common-services`` peer (the OOTS integration's peer kind)."""
    return HttpTransport(
        settings,
        certificates,
        sleep=sleep,
        peer=name,
        max_response_bytes=max_response_bytes,
        adapter_factory=adapter_factory,
    )


class CommonServicesClient(Closing):
    """The Evidence Broker and the Data Service Directory, with an expiring answer cache."""

    def __init__(
        self,
        eb: HttpTransport,
        dsd: HttpTransport | None = None,
        *,
        ttl_seconds: float = 3600,
        max_entries: int = 1024,
        clock: Callable[[], float] = time.monotonic,
        peer: str = "oots-common-services",
    ) -> None:
        """``eb`` serves the Evidence Broker and, without ``dsd``, the Directory too; their
        base URLs are the search URLs. ``clock`` (monotonic seconds) times the cache entries;
        the seam times the budget. Closing the client closes both transports."""
        if ttl_seconds < 0 or max_entries < 1:
            raise ConfigurationError(f"peer {peer}: cache limits out of range")
        self.peer = peer
        self._eb = eb
        self._dsd = dsd or eb
        self.cache = QueryCache(ttl_seconds=ttl_seconds, max_entries=max_entries, clock=clock)

    @classmethod
    def connect(
        cls,
        base_url: str | None = None,
        *,
        eb_url: str | None = None,
        dsd_url: str | None = None,
        timeout: float = 10.0,
        connect_timeout: float = 3.0,
        retries: int = 2,
        backoff_seconds: float = 0.2,
        ttl_seconds: float = 3600,
        max_entries: int = 1024,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        pool_size: int = 10,
        verify: str | bool = True,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        peer: str = "oots-common-services",
        adapter_factory: AdapterFactory = context_adapter,
    ) -> Self:
        """A client with transports of its own: ``base_url`` serves both services, ``eb_url``
        / ``dsd_url`` override it per service; ``verify`` a CA file (True: the system's)."""
        eb = eb_url or base_url
        dsd = dsd_url or base_url
        if eb is None or dsd is None:
            raise ConfigurationError(f"peer {peer}: give base_url, or both eb_url and dsd_url")
        values = {
            "timeout": timeout,
            "connect_timeout": connect_timeout,
            "retries": retries,
            "backoff_seconds": backoff_seconds,
            "pool_size": pool_size,
            "ca_cert": verify if isinstance(verify, str) else "",
            "peer": peer,
        }

        def transport(url: str) -> HttpTransport:
            settings = peer_settings(url, **values)  # type: ignore[arg-type]
            return open_transport(
                peer,
                settings,
                None,
                max_response_bytes=max_response_bytes,
                sleep=sleep,
                adapter_factory=adapter_factory,
            )

        eb_transport = transport(eb)
        same = _search_url(eb, peer) == _search_url(dsd, peer)
        dsd_transport = None if same else transport(dsd)
        return cls(
            eb_transport,
            dsd_transport,
            ttl_seconds=ttl_seconds,
            max_entries=max_entries,
            clock=clock,
            peer=peer,
        )

    @property
    def eb_url(self) -> str:
        return self._eb.base_url

    @property
    def dsd_url(self) -> str:
        return self._dsd.base_url

    # --- the queries ---------------------------------------------------------------------------

    def requirements(
        self, procedure_id: str | None, country: str | None
    ) -> tuple[RequirementInfo, ...]:
        """The requirements of ``procedure_id`` (``T3``) implemented in ``country`` (``DK``);
        either may be None (no filter). Empty when the EB has none (``EB:ERR:0001``)."""
        query = requirements_query(procedure_id, country)
        return self.cache.get_or_fetch(query, lambda: parse_requirements(self._get(query)))

    def evidence_types(
        self, requirement_id: str, country: str | None = None
    ) -> tuple[EvidenceTypeInfo, ...]:
        """The evidence types that prove ``requirement_id`` in ``country`` (None: in every
        country). Empty when there are none (``EB:ERR:0001``); an unknown requirement is
        ``CommonServicesRefused`` (``EB:ERR:0002``)."""
        query = evidence_types_query(requirement_id, country)
        return self.cache.get_or_fetch(query, lambda: parse_evidence_types(self._get(query)))

    def providers(
        self,
        evidence_type_classification: str,
        country: str,
        *,
        specification: str | None = None,
        attributes: Mapping[str, str] | None = None,
    ) -> ProvidersAnswer:
        """The DSD's providers of the evidence type in ``country``.

        ``ProvidersFound`` (empty for ``DSD:ERR:0001``, several: the user picks) or
        ``AttributeNeeded`` (``DSD:ERR:0005``: ask the user, then call again with
        ``attributes``, e.g. ``{"jurisdiction-admin-l2": "FI1B", "jurisdiction-context-id":
        needed.context_id}``). An attribute value the DSD does not know is
        ``CommonServicesAttributeValueUnknown`` (``DSD:ERR:0006``).
        """
        query = data_services_query(
            evidence_type_classification,
            country,
            specification=specification,
            attributes=attributes,
        )
        classification = query.param("evidence-type-classification") or ""
        code = query.param("country-code") or ""
        return self.cache.get_or_fetch(
            query,
            lambda: parse_providers(self._get(query), classification=classification, country=code),
        )

    def clear(self) -> None:
        """Forget every cached answer."""
        self.cache.clear()

    def close(self) -> None:
        """Release the connections."""
        self._eb.close()
        if self._dsd is not self._eb:
            self._dsd.close()

    # --- HTTP --------------------------------------------------------------------------------

    def _get(self, query: Query) -> bytes:
        """The body of a 2xx answer to ``query``, within the budget, after the retries."""
        transport = self._eb if query.service == "eb" else self._dsd
        request = OutboundRequest("GET", "?" + urlencode(query.url_params()), headers=_HEADERS)
        try:
            response = transport.send(request, credential=NO_CREDENTIAL)
        except UpstreamError as error:
            raise self._renamed(error) from error
        check_digest(response.headers.get("digest"), response.body, self.peer)
        return response.body

    def _renamed(self, error: UpstreamError) -> ServicePlatformError:
        """The common services' error for the seam's: what callers of this client handle."""
        detail = error.detail if error.status is None else f"{self.peer}: HTTP {error.status}"
        if isinstance(error, UpstreamUnreachable | UpstreamTimeout | UpstreamUnavailable):
            return CommonServicesUnavailable(detail, status=error.status)
        if isinstance(error, UpstreamTlsError):
            return error  # no retry helps, and it says what to fix
        if isinstance(error, UpstreamBadResponse) or error.status is None:
            return CommonServicesBadAnswer(error.detail, status=error.status)
        return CommonServicesBadAnswer(f"{detail} is not a query response", status=error.status)


def _search_url(url: str, peer: str) -> str:
    """``url`` as a ``.../rest/search`` URL (appended to a base URL)."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigurationError(f"peer {peer}: {url!r} is not an http(s) URL")
    if parts.query or parts.fragment:
        raise ConfigurationError(f"peer {peer}: {url!r} must not carry a query or fragment")
    path = parts.path.rstrip("/")
    if not path.endswith(SEARCH_PATH):
        path += SEARCH_PATH
    return parts._replace(path=path).geturl()


def check_digest(header: str | None, body: bytes, peer: str) -> None:
    """Refuse a body that does not match its ``digest: SHA-256=<base64>`` header.

    The real services send it (and sign it in ``oots-response-sig``); other algorithms and a
    missing header are let through, as the simulated and TDD services may not send one.
    """
    if not header:
        return
    for item in header.split(","):
        algorithm, _, value = item.strip().partition("=")
        if algorithm.strip().upper() != "SHA-256":
            continue
        try:
            expected = base64.b64decode(value.strip(), validate=True)
        except (binascii.Error, ValueError) as exc:
            raise CommonServicesBadAnswer(f"{peer}: the digest header is not base64") from exc
        if not hmac.compare_digest(expected, hashlib.sha256(body).digest()):
            raise CommonServicesBadAnswer(f"{peer}: the body does not match its digest header")
