"""``CommonServicesClient`` and its cache, against an in-memory ``requests`` adapter.

The adapter answers from a script of canned answers (bodies from the live captures, HTTP
statuses, connection errors) and records every request, so the cache (hits, expiry with an
injected clock, failures never stored, parameters never shared), the retries within the
budget and the URL layout are checked without sockets; ``tests/integration/
test_oots_common_services_client.py`` does the same over HTTP against the simulated services.
"""

from __future__ import annotations

import io
import ssl
import threading
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from http.client import HTTPMessage
from pathlib import Path
from typing import Any, Final
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests
from requests.adapters import BaseAdapter
from requests.cookies import MockRequest, MockResponse
from requests.structures import CaseInsensitiveDict

from integrations.oots.common_services import (
    QUERY_DATA_SERVICES,
    QUERY_REQUIREMENTS,
    AttributeNeeded,
    CommonServicesClient,
    ProvidersFound,
)
from integrations.oots.common_services.queries import (
    attribute_parameter,
    data_services_query,
    requirements_query,
)
from integrations.oots.errors import (
    CommonServicesBadAnswer,
    CommonServicesQueryInvalid,
    CommonServicesRefused,
    CommonServicesUnavailable,
)
from serviceplatform.errors import ConfigurationError, UpstreamTlsError

CAPTURES: Final = (
    Path(__file__).resolve().parents[2].parent
    / "shared"
    / "conformance"
    / "oots-edm-2.0"
    / "common_services"
)
BASE: Final = "https://cs.example.test"
QUERY_NS: Final = "urn:oasis:names:tc:ebxml-regrep:xsd:query:4.0"


def capture(name: str) -> bytes:
    return (CAPTURES / f"{name}.xml").read_bytes()


def refusal(code: str, inner: str = "") -> bytes:
    return (
        f'<query:QueryResponse xmlns:query="{QUERY_NS}" '
        'xmlns:rs="urn:oasis:names:tc:ebxml-regrep:xsd:rs:4.0" '
        'xmlns:rim="urn:oasis:names:tc:ebxml-regrep:xsd:rim:4.0" '
        'xmlns:sdg="http://data.europa.eu/p4s" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
        'status="urn:oasis:names:tc:ebxml-regrep:ResponseStatusType:Failure">'
        f'<rs:Exception xsi:type="rs:ObjectNotFoundExceptionType" code="{code}" '
        f'message="m">{inner}</rs:Exception></query:QueryResponse>'
    ).encode()


ASK_REGION: Final = refusal(
    "DSD:ERR:0005",
    '<rim:Slot name="JurisdictionDetermination"><rim:SlotValue xsi:type="rim:AnyValueType">'
    "<sdg:EvidenceProviderJurisdictionDetermination>"
    "<sdg:JurisdictionContextId>ctx-1</sdg:JurisdictionContextId>"
    '<sdg:JurisdictionContext lang="EN">Place of birth</sdg:JurisdictionContext>'
    "<sdg:JurisdictionLevel>NUTS2</sdg:JurisdictionLevel>"
    "</sdg:EvidenceProviderJurisdictionDetermination></rim:SlotValue></rim:Slot>",
)

Answer = bytes | int | BaseException | tuple[int, bytes, Mapping[str, str]]


class ScriptedAdapter(BaseAdapter):
    """Answers each request with the next scripted answer (the last one repeats)."""

    def __init__(self, *answers: Answer) -> None:
        super().__init__()
        self.answers: deque[Answer] = deque(answers)
        self.sent: list[requests.PreparedRequest] = []
        self.kwargs: list[dict[str, Any]] = []
        self.lock = threading.Lock()

    def send(  # type: ignore[override]  # requests passes them as keywords
        self, request: requests.PreparedRequest, **kwargs: Any
    ) -> requests.Response:
        with self.lock:
            self.sent.append(request)
            self.kwargs.append(kwargs)
            answer = self.answers.popleft() if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, BaseException):
            raise answer
        status, body = 200, b""
        headers: Mapping[str, str] = {}
        if isinstance(answer, bytes):
            body = answer
        elif isinstance(answer, int):
            status = answer
        else:
            status, body, headers = answer
        response = requests.Response()
        response.status_code = status
        response.raw = io.BytesIO(body)
        response.headers = CaseInsensitiveDict(
            {"Content-Type": "application/x-ebrs+xml", **headers}
        )
        response.url = request.url or ""
        response.request = request
        return response

    def close(self) -> None:
        pass

    def params(self, index: int = -1) -> dict[str, str]:
        return dict(parse_qsl(urlsplit(self.sent[index].url or "").query))


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture()
def clock() -> Clock:
    return Clock()


@pytest.fixture()
def make_client(
    clock: Clock,
) -> Iterator[Callable[..., tuple[CommonServicesClient, ScriptedAdapter]]]:
    made: list[CommonServicesClient] = []

    def make(*answers: Answer, **options: Any) -> tuple[CommonServicesClient, ScriptedAdapter]:
        adapter = ScriptedAdapter(*answers)
        options.setdefault("base_url", BASE)
        options.setdefault("sleep", lambda seconds: None)
        options.setdefault("adapter_factory", lambda context, size: adapter)
        client = CommonServicesClient.connect(clock=clock, **options)
        made.append(client)
        return client, adapter

    yield make
    for client in made:
        client.close()


# --- the cache -------------------------------------------------------------------------------


def test_a_second_identical_query_is_answered_from_the_cache(make_client: Any) -> None:
    client, adapter = make_client(capture("eb_requirements_fr"))
    first = client.requirements("00", "FR")
    second = client.requirements("00", "fr")  # the country's case does not make it new
    assert first == second and len(first) == 1
    assert len(adapter.sent) == 1
    assert (client.cache.hits, client.cache.misses) == (1, 1)


def test_entries_expire_after_the_ttl(make_client: Any, clock: Clock) -> None:
    client, adapter = make_client(capture("eb_requirements_fr"), ttl_seconds=60)
    client.requirements("00", "FR")
    clock.now += 59.9
    client.requirements("00", "FR")
    assert len(adapter.sent) == 1
    clock.now += 0.2
    client.requirements("00", "FR")
    assert len(adapter.sent) == 2
    assert len(client.cache) == 1


def test_different_parameters_do_not_share_an_entry(make_client: Any) -> None:
    client, adapter = make_client(capture("eb_requirements_fr"))
    client.requirements("00", "FR")
    client.requirements("T3", "FR")
    client.requirements("00", None)
    client.requirements(None, None)
    assert len(adapter.sent) == 4
    assert [adapter.params(i).get("procedure-id") for i in range(4)] == ["00", "T3", "00", None]
    assert len(client.cache) == 4


def test_attribute_order_does_not_matter_but_values_do(make_client: Any) -> None:
    client, adapter = make_client(capture("dsd_data_services_fi"))
    one = {"jurisdiction-admin-l2": "FI1B", "jurisdiction-context-id": "ctx-1"}
    client.providers("https://x/et", "FI", attributes=one)
    client.providers("https://x/et", "FI", attributes=dict(reversed(list(one.items()))))
    assert len(adapter.sent) == 1
    client.providers("https://x/et", "FI", attributes={**one, "jurisdiction-admin-l2": "FI19"})
    client.providers("https://x/et", "FI")
    client.providers("https://x/et", "FI", specification="oots-edm:v2.0")
    assert len(adapter.sent) == 4


def test_nothing_found_and_attribute_needed_are_cached(make_client: Any) -> None:
    client, adapter = make_client(
        capture("eb_requirements_vides"), capture("dsd_aucun_service_fr"), ASK_REGION
    )
    assert client.requirements("T3", "FR") == ()
    assert client.requirements("T3", "FR") == ()
    assert client.providers("https://x/et", "FR") == ProvidersFound(())
    assert client.providers("https://x/et", "FR") == ProvidersFound(())
    needed = client.providers("https://x/birth", "FI")
    assert isinstance(needed, AttributeNeeded)
    assert (needed.level, needed.jurisdiction_level, needed.context_id) == (
        "jurisdiction-admin-l2",
        "NUTS2",
        "ctx-1",
    )
    assert client.providers("https://x/birth", "FI") == needed
    assert len(adapter.sent) == 3


@pytest.mark.parametrize(
    ("failing", "error"),
    [
        (503, CommonServicesUnavailable),
        (requests.ConnectionError("refused"), CommonServicesUnavailable),
        (requests.ReadTimeout("slow"), CommonServicesUnavailable),
        (b"<html>proxy error</html>", CommonServicesBadAnswer),
        (404, CommonServicesBadAnswer),
        (refusal("EB:ERR:0002"), CommonServicesRefused),
    ],
    ids=["5xx", "unreachable", "timeout", "malformed", "4xx", "refusal"],
)
def test_failures_are_never_cached(
    make_client: Any, failing: Answer, error: type[Exception]
) -> None:
    client, adapter = make_client(failing, failing, failing, capture("eb_evidence_types_fi"))
    with pytest.raises(error):
        client.evidence_types("https://x/requirement", "FI")
    tries = len(adapter.sent)
    assert client.cache.misses == 1 and len(client.cache) == 0
    adapter.answers = deque([capture("eb_evidence_types_fi")])
    (found,) = client.evidence_types("https://x/requirement", "FI")
    assert found.country == "FI"
    assert len(adapter.sent) == tries + 1
    client.evidence_types("https://x/requirement", "FI")
    assert len(adapter.sent) == tries + 1


def test_the_cache_is_bounded(make_client: Any) -> None:
    client, adapter = make_client(capture("eb_requirements_fr"), max_entries=2)
    for procedure in ("T1", "T2", "T3"):
        client.requirements(procedure, "DK")
    assert len(client.cache) == 2
    client.requirements("T3", "DK")  # still there
    assert len(adapter.sent) == 3
    client.requirements("T1", "DK")  # evicted, least recently used
    assert len(adapter.sent) == 4


def test_clear_forgets_everything(make_client: Any) -> None:
    client, adapter = make_client(capture("eb_requirements_fr"))
    client.requirements("00", "FR")
    client.clear()
    client.requirements("00", "FR")
    assert len(adapter.sent) == 2


def test_concurrent_callers_get_the_same_answers(make_client: Any) -> None:
    client, adapter = make_client(capture("eb_requirements_fr"))
    results: list[object] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(8)

    def work(index: int) -> None:
        try:
            barrier.wait()
            for round_ in range(20):
                results.append(client.requirements(f"T{(index + round_) % 4}", "DK"))
        except BaseException as exc:  # collected for the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert errors == []
    assert len(results) == 160 and all(r == results[0] for r in results)
    # Four keys: concurrent first misses may each ask, but nothing after they are stored.
    assert 4 <= len(adapter.sent) <= 4 * 8
    assert len(client.cache) == 4


# --- HTTP: URLs, headers, retries, budget ---------------------------------------------------


def test_one_base_url_serves_both_services(make_client: Any) -> None:
    client, adapter = make_client(capture("eb_requirements_fr"), capture("dsd_data_services_fi"))
    client.requirements("00", "FR")
    client.providers("https://x/et", "FI")
    urls = [urlsplit(r.url or "") for r in adapter.sent]
    assert [u.path for u in urls] == ["/rest/search", "/rest/search"]
    assert adapter.params(0) == {
        "queryId": QUERY_REQUIREMENTS,
        "procedure-id": "00",
        "country-code": "FR",
    }
    assert adapter.params(1) == {
        "queryId": QUERY_DATA_SERVICES,
        "evidence-type-classification": "https://x/et",
        "country-code": "FI",
    }
    # queryId first, as the TDD writes the URL.
    assert (adapter.sent[0].url or "").split("?", 1)[1].startswith("queryId=")
    request = adapter.sent[0]
    assert request.method == "GET"
    assert request.headers["Accept"] == "application/x-ebrs+xml"
    assert request.headers["Accept-Version"] == "oots-cs:v2.0"
    sent = adapter.kwargs[0]
    assert sent["verify"] is True and sent["stream"] is True
    connect, read = sent["timeout"].connect_timeout, sent["timeout"].read_timeout
    assert 0 < connect <= 3.0 and 0 < read <= 10.0


def test_separate_evidence_broker_and_directory_urls(make_client: Any) -> None:
    client, adapter = make_client(
        capture("eb_requirements_fr"),
        capture("dsd_data_services_fi"),
        base_url=None,
        eb_url="https://eb.example.test/base/",
        dsd_url="https://dsd.example.test/dsd/rest/search",
    )
    assert client.eb_url == "https://eb.example.test/base/rest/search"
    assert client.dsd_url == "https://dsd.example.test/dsd/rest/search"
    client.requirements("00", "FR")
    client.providers("https://x/et", "FI")
    assert [urlsplit(r.url or "").netloc for r in adapter.sent] == [
        "eb.example.test",
        "dsd.example.test",
    ]


def test_the_transport_ignores_the_environment(
    make_client: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    trustme = pytest.importorskip("trustme")
    ca, other = trustme.CA(), trustme.CA()
    path, bundle = tmp_path / "ca.pem", tmp_path / "bundle.pem"
    ca.cert_pem.write_to_path(str(path))
    other.cert_pem.write_to_path(str(bundle))
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(bundle))
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:1")
    contexts: list[ssl.SSLContext] = []
    adapter = ScriptedAdapter(
        (200, capture("eb_requirements_fr"), {"Set-Cookie": "session=abc; Path=/"})
    )

    def factory(context: Callable[[], ssl.SSLContext], size: int) -> ScriptedAdapter:
        contexts.append(context())
        return adapter

    client, _ = make_client(verify=str(path), adapter_factory=factory)
    client.requirements("00", "FR")
    client.requirements("T3", "FR")
    # Only the configured CA is trusted, not the environment's bundle; no proxy applies.
    (context,) = contexts
    assert [c["subject"] for c in context.get_ca_certs()] == [
        c["subject"] for c in _loaded(path).get_ca_certs()
    ]
    assert all(kwargs["proxies"] == {} for kwargs in adapter.kwargs)
    # No cookie is ever kept: the transport is shared by every thread.
    assert "Cookie" not in adapter.sent[1].headers
    assert cookies_kept(requests.Session()) == 1  # what a session would have kept


def _loaded(path: Path) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(path))
    return context


def cookies_kept(session: requests.Session) -> int:
    message = HTTPMessage()
    message["Set-Cookie"] = "session=abc; Path=/"
    request = requests.Request("GET", f"{BASE}/rest/search").prepare()
    session.cookies.extract_cookies(MockResponse(message), MockRequest(request))  # type: ignore[arg-type]
    return len(session.cookies)


def test_retries_with_backoff_then_success(make_client: Any) -> None:
    pauses: list[float] = []
    client, adapter = make_client(
        requests.ConnectionError("refused"),
        502,
        capture("eb_requirements_fr"),
        sleep=pauses.append,
        backoff_seconds=0.1,
    )
    assert len(client.requirements("00", "FR")) == 1
    assert len(adapter.sent) == 3
    assert pauses == [0.1, 0.2]


def test_retries_are_bounded(make_client: Any) -> None:
    client, adapter = make_client(503, retries=1)
    with pytest.raises(CommonServicesUnavailable) as raised:
        client.requirements("00", "FR")
    assert len(adapter.sent) == 2
    assert raised.value.status == 503 and raised.value.retryable
    assert raised.value.code == "SP-741"


def test_no_retry_when_the_budget_is_spent(make_client: Any) -> None:
    client, adapter = make_client(
        requests.ConnectionError("refused"), timeout=0.5, backoff_seconds=1.0
    )
    with pytest.raises(CommonServicesUnavailable):
        client.requirements("00", "FR")
    assert len(adapter.sent) == 1


@pytest.mark.parametrize(
    "answer",
    [404, 301, refusal("EB:ERR:0002"), b"<x/>"],
    ids=["4xx", "redirect", "refusal", "unreadable"],
)
def test_what_a_repetition_cannot_fix_is_not_retried(make_client: Any, answer: Answer) -> None:
    client, adapter = make_client(answer)
    with pytest.raises((CommonServicesBadAnswer, CommonServicesRefused)):
        client.evidence_types("https://x/requirement")
    assert len(adapter.sent) == 1


def test_tls_failure_stays_a_tls_error(make_client: Any) -> None:
    client, adapter = make_client(requests.exceptions.SSLError("certificate verify failed"))
    with pytest.raises(UpstreamTlsError):
        client.requirements("00", "FR")
    assert len(adapter.sent) == 1


def test_digest_mismatch_and_size_limit(make_client: Any) -> None:
    body = capture("eb_requirements_fr")
    client, _ = make_client((200, body, {"digest": "SHA-256=" + "A" * 43 + "="}))
    with pytest.raises(CommonServicesBadAnswer, match="digest"):
        client.requirements("00", "FR")
    small, _ = make_client(body, max_response_bytes=100)
    with pytest.raises(CommonServicesBadAnswer, match="larger than the limit"):
        small.requirements("00", "FR")


# --- refused before any call --------------------------------------------------------------------


@pytest.mark.parametrize(
    "call",
    [
        lambda c: c.requirements("T3", "Denmark"),
        lambda c: c.requirements("T 3", "DK"),
        lambda c: c.evidence_types("  "),
        lambda c: c.evidence_types("https://x/r", "D1"),
        lambda c: c.providers("https://x/et", ""),
        lambda c: c.providers("https://x/\x00et", "FI"),
        lambda c: c.providers("https://x/et", "FI", attributes={"country-code": "SE"}),
        lambda c: c.providers("https://x/et", "FI", attributes={"queryId": "x"}),
        lambda c: c.providers("https://x/et", "FI", attributes={"a b": "x"}),
        lambda c: c.providers("https://x/et", "FI", attributes={"jurisdiction-admin-l2": ""}),
        lambda c: c.providers("https://x/et", "FI", attributes={"level": "x", " level": "y"}),
        lambda c: c.providers("https://x/et", "FI", specification=""),
    ],
)
def test_invalid_values_never_leave_the_platform(
    make_client: Any, call: Callable[[CommonServicesClient], object]
) -> None:
    client, adapter = make_client(capture("eb_requirements_fr"))
    with pytest.raises(CommonServicesQueryInvalid) as raised:
        call(client)
    assert raised.value.code == "SP-745" and raised.value.client_fault
    assert adapter.sent == []


def test_query_keys_and_levels() -> None:
    assert requirements_query("T3", "dk") == requirements_query(" T3 ", "DK")
    a = data_services_query("e", "FI", attributes={"b": "2", "a": "1"})
    assert a.params[-2:] == (("a", "1"), ("b", "2"))
    assert a == data_services_query("e", "fi", attributes={"a": "1", "b": "2"})
    assert attribute_parameter("NUTS2") == "jurisdiction-admin-l2"
    assert attribute_parameter("NUTS1") == "jurisdiction-admin-l2"
    assert attribute_parameter("LAU") == "jurisdiction-admin-l3"
    assert attribute_parameter("https://sr.ec.europa.eu/codelist/locationLevel/LAU") == (
        "jurisdiction-admin-l3"
    )


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"base_url": "ftp://cs.example.test"},
        {"base_url": "https://cs.example.test/rest/search?queryId=x"},
        {"eb_url": BASE},
        {"base_url": BASE, "timeout": 0},
        {"base_url": BASE, "max_entries": 0},
        {"base_url": BASE, "verify": "/no/such/ca.pem"},
    ],
)
def test_configuration_errors(options: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError):
        CommonServicesClient.connect(**options)
