"""The transport seam: the status-to-error table and the in-memory reference transport."""

from __future__ import annotations

import pytest

from serviceplatform.errors import (
    ConfigurationError,
    UpstreamAuthRefused,
    UpstreamBadResponse,
    UpstreamError,
    UpstreamNotFound,
    UpstreamRejected,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from serviceplatform.outbound.base import (
    MemoryTransport,
    OutboundRequest,
    OutboundResponse,
    Transport,
)
from serviceplatform.outbound.credentials import NO_CREDENTIAL, ClientCertificate, Credential
from serviceplatform.outbound.translate import error_for_status, raw_error_text


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (200, None),
        (201, None),
        (204, None),
        (400, UpstreamRejected),
        (401, UpstreamAuthRefused),
        (403, UpstreamAuthRefused),
        (404, UpstreamNotFound),
        (405, UpstreamRejected),
        (409, UpstreamRejected),
        (422, UpstreamRejected),
        (429, UpstreamRejected),
        (500, UpstreamUnavailable),
        (502, UpstreamUnavailable),
        (503, UpstreamUnavailable),
        (599, UpstreamUnavailable),
        (100, UpstreamBadResponse),
        (302, UpstreamBadResponse),
    ],
)
def test_error_for_status_table(status, expected):
    error = error_for_status(status, b"")
    if expected is None:
        assert error is None
    else:
        assert type(error) is expected
        assert isinstance(error, UpstreamError)
        assert error.status == status
        assert str(status) in error.error_text


def test_retryable_only_for_5xx():
    assert error_for_status(503, b"").retryable  # type: ignore[union-attr]
    assert not error_for_status(400, b"").retryable  # type: ignore[union-attr]
    assert error_for_status(400, b"").client_fault  # type: ignore[union-attr]


def test_error_detail_uses_parser_and_masks_cpr():
    error = error_for_status(400, b"x", lambda body: "bad end user 0101901234")
    assert error is not None
    assert error.detail == "HTTP 400: bad end user 010190****"


def test_failing_parser_does_not_hide_the_error():
    def broken(body: bytes) -> str | None:
        raise RuntimeError("parser bug")

    error = error_for_status(404, b"<x/>", broken)
    assert isinstance(error, UpstreamNotFound)
    assert error.detail == "HTTP 404"


def test_raw_error_text_collapses_and_trims():
    assert raw_error_text(b"  a\n\n b  ") == "a b"
    assert raw_error_text(b"   ") is None
    assert len(raw_error_text(b"x" * 5000) or "") == 300


def test_memory_transport_records_and_defaults_to_200():
    transport = MemoryTransport()
    request = OutboundRequest("PUT", "/register/S/boks/0101901234", b"<a/>", {"X": "1"})
    response = transport.send(request, credential=ClientCertificate("alias"))
    assert response.status == 200
    assert transport.requests == [request]
    assert transport.sent[0].credential == ClientCertificate("alias")


def test_memory_transport_answers_queue_then_responder():
    def responder(request: OutboundRequest, credential: Credential) -> OutboundResponse:
        return OutboundResponse(201, request.body, {}, elapsed=0.0)

    transport = MemoryTransport(responder)
    transport.reply(204)
    transport.queue(UpstreamTimeout("slow"))
    assert transport.send(OutboundRequest("GET", "/a"), credential=NO_CREDENTIAL).status == 204
    with pytest.raises(UpstreamTimeout):
        transport.send(OutboundRequest("GET", "/b"), credential=NO_CREDENTIAL)
    assert (
        transport.send(OutboundRequest("PUT", "/c", b"echo"), credential=NO_CREDENTIAL).body
        == b"echo"
    )
    assert [r.path for r in transport.requests] == ["/a", "/b", "/c"]


def test_memory_transport_maps_statuses_like_the_real_one():
    transport = MemoryTransport()
    transport.reply(404, b"no such end user")
    with pytest.raises(UpstreamNotFound) as caught:
        transport.send(OutboundRequest("PUT", "/x"), credential=NO_CREDENTIAL)
    assert caught.value.detail == "HTTP 404: no such end user"


def test_memory_transport_is_a_context_managed_transport():
    transport: Transport
    with MemoryTransport() as transport:
        transport.send(OutboundRequest("GET", "/"), credential=NO_CREDENTIAL)
    with pytest.raises(ConfigurationError):
        transport.send(OutboundRequest("GET", "/"), credential=NO_CREDENTIAL)
