"""``CommonServicesClient`` over real HTTP against the simulated common services.

The simulated OOTS gateway (``SimulatedOotsGateway``) serves the Evidence Broker and the Data
Service Directory on a local socket. Requests are counted by a counting adapter in the
client's transport (the seam's real adapter: real connections, real keep-alive), so "answered
from the cache" means no request reached the socket. Faults are injected through the gateway's
test hooks (``POST /_sandbox/faults``).
"""

from __future__ import annotations

import ssl
from collections.abc import Callable, Iterator
from typing import Any, Final

import pytest
import requests

from integrations.oots.common_services import (
    AttributeNeeded,
    CommonServicesClient,
    ProvidersFound,
)
from integrations.oots.edm import EdmVersion, LocalizedText, choose_version
from integrations.oots.errors import (
    CommonServicesAttributeValueUnknown,
    CommonServicesRefused,
    CommonServicesUnavailable,
)
from serviceplatform.outbound.transport import ContextAdapter
from serviceplatform.sandbox.oots_gateway import SimulatedOotsGateway
from serviceplatform.sandbox.oots_network import (
    DEFAULT_NETWORK,
    EAS_FI,
    EAS_SE,
    ET_FI_BIRTH,
    ET_FI_DEGREE,
    ET_SE_DEGREE,
    REQ_BIRTH,
    REQ_DEGREE,
)

pytestmark = pytest.mark.integration

BIRTH: Final = DEFAULT_NETWORK.evidence_type(ET_FI_BIRTH)
DEGREE_FI: Final = DEFAULT_NETWORK.evidence_type(ET_FI_DEGREE)


class CountingAdapter(ContextAdapter):
    """The seam's real adapter (real connections, real keep-alive) that counts what it sends."""

    def __init__(self) -> None:
        super().__init__(ssl.create_default_context(), max_retries=0)
        self.urls: list[str] = []
        #: The client-side port of the TCP connection each answer came on (None: closed).
        self.ports: list[int | None] = []

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> Any:
        self.urls.append(request.url or "")
        response = super().send(request, *args, **kwargs)
        sock = getattr(response.raw.connection, "sock", None)
        self.ports.append(None if sock is None else sock.getsockname()[1])
        return response


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def gateway() -> Iterator[SimulatedOotsGateway]:
    with SimulatedOotsGateway() as running:
        yield running


@pytest.fixture()
def make_client(
    gateway: SimulatedOotsGateway,
) -> Iterator[Callable[..., tuple[CommonServicesClient, CountingAdapter]]]:
    clients: list[CommonServicesClient] = []

    def make(**options: Any) -> tuple[CommonServicesClient, CountingAdapter]:
        adapter = CountingAdapter()
        options.setdefault("base_url", gateway.common_services_url)
        options.setdefault("timeout", 5.0)
        options.setdefault("backoff_seconds", 0.01)
        options.setdefault("adapter_factory", lambda context, size: adapter)
        client = CommonServicesClient.connect(**options)
        clients.append(client)
        return client, adapter

    yield make
    for client in clients:
        client.close()


def inject(gateway: SimulatedOotsGateway, status: int | str, count: int) -> None:
    session = requests.Session()
    session.trust_env = False
    try:
        answer = session.post(
            f"{gateway.control_url}/faults",
            json={"status": status, "count": count, "endpoint": "common-services"},
            timeout=5,
        )
        assert answer.status_code == 200
    finally:
        session.close()


# --- the Evidence Broker ------------------------------------------------------------------------


def test_requirements(make_client: Any) -> None:
    client, adapter = make_client()
    (degree,) = client.requirements("T3", "DK")
    assert degree.identifier == REQ_DEGREE
    assert degree.names[0] == LocalizedText(
        "Proof of tertiary education diploma/certificate/degree", "EN"
    )
    assert [f.procedures for f in degree.frameworks] == [("T3",)]
    assert degree.frameworks[0].country == "DK"
    (birth,) = client.requirements("R1", None)
    assert birth.identifier == REQ_BIRTH
    assert {r.identifier for r in client.requirements(None, None)} == {REQ_DEGREE, REQ_BIRTH}
    assert client.requirements("T3", "FR") == ()  # EB:ERR:0001
    assert len(adapter.urls) == 4


def test_evidence_types(make_client: Any) -> None:
    client, _ = make_client()
    (finnish,) = client.evidence_types(REQ_DEGREE, "FI")
    assert finnish.classification == ET_FI_DEGREE
    assert finnish.country == "FI"
    assert finnish.requirement_id == REQ_DEGREE
    assert DEGREE_FI is not None and finnish.titles == DEGREE_FI.titles
    both = client.evidence_types(REQ_DEGREE)
    assert [(e.classification, e.country) for e in both] == [
        (ET_FI_DEGREE, "FI"),
        (ET_SE_DEGREE, "SE"),
    ]
    assert client.evidence_types(REQ_BIRTH, "SE") == ()
    with pytest.raises(CommonServicesRefused) as refused:
        client.evidence_types("https://sr.oots.tech.ec.europa.eu/requirements/none")
    assert refused.value.remote_code == "EB:ERR:0002"


# --- the Data Service Directory -----------------------------------------------------------------


def test_a_country_with_one_provider(make_client: Any) -> None:
    client, _ = make_client()
    answer = client.providers(ET_FI_DEGREE, "FI")
    assert isinstance(answer, ProvidersFound)
    (university,) = answer.providers
    assert (university.provider_id, university.provider_scheme) == ("FI-UNIV-PREVIEW", EAS_FI)
    assert university.provider_name == "Sandbox University of Helsinki"
    assert university.country == "FI"
    assert university.access_service_id == "AP_FI_01"
    assert university.access_service_scheme == (
        "urn:oasis:names:tc:ebcore:partyid-type:unregistered:FI"
    )
    assert university.conforms_to == ("oots-edm:v2.0",)
    assert university.distributions == ("application/pdf",)
    requested = university.requested_evidence_type("application/pdf")
    assert requested is not None and DEGREE_FI is not None
    assert requested.identifier == DEGREE_FI.identifier
    assert requested.classification == ET_FI_DEGREE
    assert university.evidence_provider().identifier == "FI-UNIV-PREVIEW"


def test_sweden_has_two_providers_to_choose_from(make_client: Any) -> None:
    client, _ = make_client()
    answer = client.providers(ET_SE_DEGREE, "SE")
    assert isinstance(answer, ProvidersFound)
    assert [(p.provider_id, p.provider_scheme) for p in answer.providers] == [
        ("SE-UHR-DIRECT", EAS_SE),
        ("SE-LADOK-ERROR", EAS_SE),
    ]
    assert [choose_version(p.conforms_to) for p in answer.providers] == [
        EdmVersion.V1_2,
        EdmVersion.V2_0,
    ]
    assert {p.access_service_id for p in answer.providers} == {"AP_SE_01"}
    narrowed = client.providers(ET_SE_DEGREE, "SE", specification="oots-edm:v2.0")
    assert isinstance(narrowed, ProvidersFound)
    assert [p.provider_id for p in narrowed.providers] == ["SE-LADOK-ERROR"]
    assert client.providers(ET_FI_DEGREE, "SE") == ProvidersFound(())  # DSD:ERR:0001


def test_finland_asks_for_the_region_then_names_the_provider(make_client: Any) -> None:
    client, adapter = make_client()
    needed = client.providers(ET_FI_BIRTH, "FI")
    assert isinstance(needed, AttributeNeeded)
    assert BIRTH is not None and BIRTH.jurisdiction is not None
    assert needed.evidence_type_classification == ET_FI_BIRTH
    assert needed.country == "FI"
    assert needed.context_id == BIRTH.jurisdiction.context_id
    assert needed.level == "jurisdiction-admin-l2"
    assert needed.jurisdiction_level == "NUTS2"
    assert needed.description == BIRTH.jurisdiction.contexts
    assert needed.evidence_type_id == BIRTH.identifier
    for region, provider in (("FI1B", "FI-DVV-HELSINKI"), ("FI19", "FI-DVV-TURKU")):
        answer = client.providers(
            ET_FI_BIRTH,
            "FI",
            attributes={needed.level: region, "jurisdiction-context-id": needed.context_id},
        )
        assert isinstance(answer, ProvidersFound)
        (found,) = answer.providers
        assert found.provider_id == provider
        assert found.jurisdiction_admin_l2 == region
        assert found.distributions == ("application/xml",)
    assert len(adapter.urls) == 3
    # The first answer (ask the user) is cached like any other.
    assert client.providers(ET_FI_BIRTH, "FI") == needed
    assert len(adapter.urls) == 3


def test_an_unknown_region_is_refused_and_not_cached(make_client: Any) -> None:
    client, adapter = make_client()
    attributes = {"jurisdiction-admin-l2": "FI20"}
    for attempt in (1, 2):
        with pytest.raises(CommonServicesAttributeValueUnknown) as unknown:
            client.providers(ET_FI_BIRTH, "FI", attributes=attributes)
        assert unknown.value.remote_code == "DSD:ERR:0006"
        assert unknown.value.code == "SP-744" and unknown.value.client_fault
        assert len(adapter.urls) == attempt


# --- cache and transport over the socket ----------------------------------------------------


def test_a_second_identical_query_within_the_ttl_makes_no_request(make_client: Any) -> None:
    clock = Clock()
    client, adapter = make_client(clock=clock, ttl_seconds=600)
    first = client.providers(ET_SE_DEGREE, "SE")
    second = client.providers(ET_SE_DEGREE, "se")
    assert first == second
    client.requirements("T3", "DK")
    client.requirements("T3", "DK")
    assert len(adapter.urls) == 2
    clock.now += 601
    assert client.providers(ET_SE_DEGREE, "SE") == first
    assert len(adapter.urls) == 3


def test_connections_are_reused(make_client: Any) -> None:
    client, adapter = make_client()
    client.requirements("T3", "DK")
    client.requirements("T2", "DK")
    client.evidence_types(REQ_DEGREE, "FI")
    client.providers(ET_FI_DEGREE, "FI")
    assert len(adapter.urls) == 4
    # One TCP connection (one client port) carried all four queries.
    assert len(set(adapter.ports)) == 1 and None not in adapter.ports


def test_separate_service_urls(make_client: Any, gateway: SimulatedOotsGateway) -> None:
    host = gateway.common_services_url.removesuffix("/rest/search")
    client, adapter = make_client(
        base_url=None, eb_url=f"{host}/eb", dsd_url=gateway.data_service_directory_url
    )
    assert client.eb_url == gateway.evidence_broker_url
    assert len(client.requirements("T3", "DK")) == 1
    assert isinstance(client.providers(ET_FI_DEGREE, "FI"), ProvidersFound)
    assert [u.split("?")[0] for u in adapter.urls] == [
        gateway.evidence_broker_url,
        gateway.data_service_directory_url,
    ]
    # The base URL alone (``/rest/search`` appended) reaches the shared endpoint.
    plain, _ = make_client(base_url=host)
    assert plain.eb_url == gateway.common_services_url


def test_a_5xx_is_retried(make_client: Any, gateway: SimulatedOotsGateway) -> None:
    client, adapter = make_client(retries=2)
    inject(gateway, 503, 1)
    assert len(client.requirements("T2", "DK")) == 1
    assert len(adapter.urls) == 2


def test_a_dropped_connection_is_retried(make_client: Any, gateway: SimulatedOotsGateway) -> None:
    client, adapter = make_client(retries=2)
    inject(gateway, "reset", 2)
    assert len(client.evidence_types(REQ_BIRTH, "FI")) == 1
    assert len(adapter.urls) == 3


def test_an_outage_is_reported_and_not_cached(
    make_client: Any, gateway: SimulatedOotsGateway
) -> None:
    client, adapter = make_client(retries=1)
    inject(gateway, 503, 2)
    with pytest.raises(CommonServicesUnavailable) as raised:
        client.providers(ET_FI_DEGREE, "FI")
    assert raised.value.status == 503 and raised.value.code == "SP-741"
    assert len(adapter.urls) == 2
    answer = client.providers(ET_FI_DEGREE, "FI")  # the services are back
    assert isinstance(answer, ProvidersFound) and len(answer.providers) == 1
    assert len(adapter.urls) == 3


def test_nobody_listening_is_unavailable(gateway: SimulatedOotsGateway) -> None:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    # The port was free a moment ago and nothing listens on it now.
    client = CommonServicesClient.connect(
        f"http://127.0.0.1:{port}", timeout=1.0, retries=1, backoff_seconds=0.01
    )
    try:
        with pytest.raises(CommonServicesUnavailable, match="connection refused"):
            client.requirements("T3", "DK")
    finally:
        client.close()
