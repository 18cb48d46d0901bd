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

HTTP (``requests``): one ``Session`` with ``trust_env = False`` (no proxy variables, no
``REQUESTS_CA_BUNDLE``), ``verify`` passed on every call (a CA file or True for the public
trust store), no redirects, no cookies, keep-alive connections reused from its pool. The
session is shared by the platform's threads: its urllib3 pool is thread-safe and the cookie
jar, the only other state a response could change, refuses every cookie.

Budget and retries: ``timeout`` bounds a whole query, retries included. Each attempt gets
what is left of it (connect at most ``connect_timeout``), the body is read against the same
deadline, and a failed attempt is repeated (``retries`` more times, backoff doubling from
``backoff_seconds``) only for a connection failure, a timeout or a 5xx, and only while enough
of the budget is left. A GET of a query changes nothing, so repeating it is always safe.

Failures are platform errors (``serviceplatform.errors``), never library exceptions:
unreachable, timed out or 5xx after the retries -> ``CommonServicesUnavailable``; a TLS
failure -> ``UpstreamTlsError`` (no retry helps); an unreadable answer, an unexpected HTTP
status, a ``digest`` header that does not match the body or an answer larger than
``max_response_bytes`` -> ``CommonServicesBadAnswer``; refusals -> see ``parse``. None of
them is cached. The JWS ``oots-response-sig`` header of the real services is not verified.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import time
from collections.abc import Callable, Mapping
from http.cookiejar import DefaultCookiePolicy
from pathlib import Path
from typing import Final
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter

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
from serviceplatform.errors import (
    ConfigurationError,
    ServicePlatformError,
    UpstreamBadResponse,
    UpstreamTimeout,
    UpstreamUnreachable,
)
from serviceplatform.outbound.bounded import AnswerOverdue, AnswerTooLarge, read_bounded
from serviceplatform.outbound.oiorest import translate_exception
from serviceplatform.outbound.retry import attempt_seconds, backoff_pause, time_for_another

log = logging.getLogger(__name__)

SEARCH_PATH: Final = "/rest/search"
EBRS_MEDIA_TYPE: Final = "application/x-ebrs+xml"
#: The query interface version asked for (``Accept-Version``); the v1.0 form is read too.
CS_SPECIFICATION: Final = "oots-cs:v2.0"
#: The whole EB catalogue (53 requirements, 687 procedure declarations) is about 620 kB.
DEFAULT_MAX_RESPONSE_BYTES: Final = 16 * 1024 * 1024


class CommonServicesClient(Closing):
    """The Evidence Broker and the Data Service Directory, with an expiring answer cache."""

    def __init__(
        self,
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
        session: requests.Session | None = None,
        verify: str | bool = True,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        peer: str = "oots-common-services",
    ) -> None:
        """``clock`` (monotonic seconds) times the cache entries; the timeout budget always
        runs on ``time.monotonic``. A ``session`` given is used as it is (its adapters kept,
        ``trust_env`` switched off) and not closed by ``close``."""
        if timeout <= 0 or connect_timeout <= 0 or retries < 0 or backoff_seconds < 0:
            raise ConfigurationError(f"peer {peer}: timeouts or retries out of range")
        if ttl_seconds < 0 or max_entries < 1 or max_response_bytes < 1 or pool_size < 1:
            raise ConfigurationError(f"peer {peer}: cache or size limits out of range")
        if isinstance(verify, str) and not Path(verify).is_file():
            raise ConfigurationError(f"peer {peer}: CA file {verify} does not exist")
        eb = eb_url or base_url
        dsd = dsd_url or base_url
        if eb is None or dsd is None:
            raise ConfigurationError(f"peer {peer}: give base_url, or both eb_url and dsd_url")
        self.peer = peer
        self.eb_url = _search_url(eb, peer)
        self.dsd_url = _search_url(dsd, peer)
        self._timeout = timeout
        self._connect_timeout = connect_timeout
        self._retries = retries
        self._backoff = backoff_seconds
        self._max_bytes = max_response_bytes
        self._verify = verify
        self._sleep = sleep
        self._owns_session = session is None
        if session is None:
            session = requests.Session()
            adapter = HTTPAdapter(pool_connections=2, pool_maxsize=pool_size, max_retries=0)
            session.mount("http://", adapter)
            session.mount("https://", adapter)
            session.cookies.set_policy(DefaultCookiePolicy(allowed_domains=[]))
        session.trust_env = False
        session.verify = verify
        self._session = session
        self.cache = QueryCache(ttl_seconds=ttl_seconds, max_entries=max_entries, clock=clock)

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
        """Release the connections (of a session this client made)."""
        if self._owns_session:
            self._session.close()

    # --- HTTP --------------------------------------------------------------------------------

    def _get(self, query: Query) -> bytes:
        """The body of a 2xx answer to ``query``, within the budget, after the retries."""
        url = self.eb_url if query.service == "eb" else self.dsd_url
        deadline = time.monotonic() + self._timeout
        attempt = 0
        while True:
            attempt += 1
            cause: BaseException | None = None
            error: ServicePlatformError
            try:
                status, headers, body = self._attempt(url, query, deadline)
            except AnswerOverdue as exc:
                cause = exc
                error = CommonServicesUnavailable(f"{self.peer}: {exc}")
            except AnswerTooLarge as exc:
                cause, error = exc, CommonServicesBadAnswer(f"{self.peer}: {exc}")
            except (requests.RequestException, OSError) as exc:
                cause, error = exc, self._translate(exc)
            else:
                if 200 <= status < 300:
                    check_digest(headers.get("digest"), body, self.peer)
                    return body
                if status >= 500:
                    error = CommonServicesUnavailable(f"{self.peer}: HTTP {status}", status=status)
                else:
                    error = CommonServicesBadAnswer(
                        f"{self.peer}: HTTP {status} is not a query response", status=status
                    )
            if not self._retry(error, attempt, deadline):
                raise error from cause
            log.info(
                "%s %s: attempt %d failed (%s); retrying",
                self.peer,
                query.query_id.rsplit(":", 1)[-1],
                attempt,
                error.code,
            )
            self._sleep(backoff_pause(self._backoff, attempt))

    def _attempt(
        self, url: str, query: Query, deadline: float
    ) -> tuple[int, Mapping[str, str], bytes]:
        remaining = attempt_seconds(deadline, time.monotonic())
        response = self._session.get(
            url,
            params=query.url_params(),
            headers={"Accept": EBRS_MEDIA_TYPE, "Accept-Version": CS_SPECIFICATION},
            # (connect, read): read bounds each wait for data; the loop below the total.
            timeout=(min(self._connect_timeout, remaining), remaining),
            verify=self._verify,
            allow_redirects=False,
            stream=True,
        )
        try:
            body = read_bounded(response, self._max_bytes, deadline=deadline)
            return response.status_code, response.headers, body
        finally:
            # A fully read answer gives its connection back to the pool; a cut one drops it.
            response.close()

    def _translate(self, exc: BaseException) -> ServicePlatformError:
        error = translate_exception(exc, self.peer)
        if isinstance(error, UpstreamUnreachable | UpstreamTimeout):
            return CommonServicesUnavailable(error.detail)
        if isinstance(error, UpstreamBadResponse):
            return CommonServicesBadAnswer(error.detail)
        # TLS failures (UpstreamTlsError) and configuration errors stay what they are.
        return error

    def _retry(self, error: ServicePlatformError, attempt: int, deadline: float) -> bool:
        if not isinstance(error, CommonServicesUnavailable) or attempt > self._retries:
            return False
        return time_for_another(self._backoff, attempt, deadline, time.monotonic())


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
