"""A pass-through call leaves no reference cycles: its objects are freed by reference counting.

Every spyne call builds reference cycles (its method contexts point at each other, and a
fault's traceback holds the frames that hold the call); left alone, each call's parsed
request, environ, ``PlatformCall`` and spyne contexts wait for Python's cyclic collector,
which then runs every few dozen calls. The SOAP front and the spyne glue cut those cycles
once the answer is complete. These tests call the platform's real WSGI application (real
SQLite, the simulated register over mutual TLS) in this thread, with the collector saving
what it finds, and require that one call, answered or refused, leaves nothing for it.
"""

from __future__ import annotations

import gc
import io
import logging
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from lxml import etree

import integrations.sf2250.service as sf2250_service
from tests.integration.conftest import (
    SF2250_PATH,
    CaseSystem,
    RegisterHooks,
    RunningPlatform,
)
from tests.integration.sf2250_requests import SPF, opdater

OTHER_CPR, NO_AGREEMENT = "0202804321", "29189862"
SOAP12 = "application/soap+xml; charset=utf-8"


def call_in_process(running: RunningPlatform, payload: bytes) -> tuple[str, bytes]:
    """One POST to SF2250 through the platform's WSGI application, in this thread."""
    host = running.sf2250_url.split("/")[2]  # wsa:To must name the address called
    environ: dict[str, Any] = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": SF2250_PATH,
        "SCRIPT_NAME": "",
        "QUERY_STRING": "",
        "CONTENT_TYPE": SOAP12,
        "CONTENT_LENGTH": str(len(payload)),
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": host.rsplit(":", 1)[1],
        "HTTP_HOST": host,
        "wsgi.input": io.BytesIO(payload),
        "wsgi.url_scheme": "http",
        "wsgi.errors": sys.stderr,
    }
    statuses: list[str] = []

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        statuses.append(status)
        return lambda _data: None

    body = b"".join(running.app(environ, start_response))
    assert len(statuses) == 1
    return statuses[0], body


def error_code(answer: bytes) -> str | None:
    """The platform fault's ErrorCode in ``answer``, None when it is no fault."""
    found = etree.fromstring(answer).find(f".//{{{SPF}}}ErrorCode")
    return found.text if found is not None else None


@pytest.fixture()
def saved_garbage() -> Iterator[Callable[[Callable[[], object]], list[object]]]:
    """Run a callable with the collector saving (not freeing) the garbage it finds."""
    was_enabled = gc.isenabled()

    def run(action: Callable[[], object]) -> list[object]:
        gc.collect()
        gc.garbage.clear()
        gc.set_debug(gc.DEBUG_SAVEALL)
        try:
            action()
            gc.collect()
            return list(gc.garbage)
        finally:
            gc.set_debug(0)
            gc.garbage.clear()

    gc.enable()
    try:
        yield run
    finally:
        if not was_enabled:
            gc.disable()


def describe(garbage: list[object]) -> str:
    return ", ".join(
        f"{n} {name}" for name, n in Counter(type(o).__name__ for o in garbage).items()
    )


def assert_no_garbage(
    running: RunningPlatform,
    saved_garbage: Callable[[Callable[[], object]], list[object]],
    payloads: Callable[[], bytes],
    expected: str | None,
) -> None:
    # The first calls fill caches (token facts, routes, spyne's class attributes): not garbage.
    for _ in range(3):
        status, answer = call_in_process(running, payloads())
        assert error_code(answer) == expected, answer
    payload = payloads()
    answers: list[tuple[str, bytes]] = []
    garbage = saved_garbage(lambda: answers.append(call_in_process(running, payload)))
    status, answer = answers[0]
    assert error_code(answer) == expected, answer
    assert status.startswith("200") == (expected is None)
    assert garbage == [], f"one call left cyclic garbage: {describe(garbage)}"


def test_successful_call_leaves_no_cyclic_garbage(
    running: RunningPlatform,
    case_system: CaseSystem,
    hooks: RegisterHooks,
    saved_garbage: Callable[[Callable[[], object]], list[object]],
) -> None:
    def payload() -> bytes:
        return case_system.envelope(opdater(OTHER_CPR), running.sf2250_url)

    assert_no_garbage(running, saved_garbage, payload, None)
    assert hooks.requests(), "the calls must have reached the register"


@pytest.mark.parametrize(
    ("token", "body", "expected"),
    [
        # Raised by the service method (routing finds no agreement).
        ({"cvr": NO_AGREEMENT}, opdater(OTHER_CPR), "SP-301"),
        # Refused inside spyne: the contract's xsd:choice (CPR and CVR both given).
        ({}, opdater(cpr=OTHER_CPR, cvr="29189854"), "SP-105"),
    ],
    ids=["service-method-fault", "contract-violation"],
)
def test_faulting_call_leaves_no_cyclic_garbage(
    token: dict[str, Any],
    body: etree._Element,
    expected: str,
    running: RunningPlatform,
    case_system: CaseSystem,
    saved_garbage: Callable[[Callable[[], object]], list[object]],
) -> None:
    def payload() -> bytes:
        return case_system.envelope(body, running.sf2250_url, token=token)

    assert_no_garbage(running, saved_garbage, payload, expected)


def test_unexpected_error_in_the_service_method_leaves_no_cyclic_garbage(
    running: RunningPlatform,
    case_system: CaseSystem,
    saved_garbage: Callable[[Callable[[], object]], list[object]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken(request: etree._Element) -> Any:
        raise RuntimeError("a bug in the service method")

    monkeypatch.setattr(sf2250_service, "to_opdater_borger", broken)
    # pytest keeps every log record, and the logged exception's traceback would keep the call
    # reachable (so not garbage, whatever the glue does); a server's handlers keep none.
    monkeypatch.setattr(logging.getLogger("serviceplatform.soap.spyne_glue"), "disabled", True)

    def payload() -> bytes:
        return case_system.envelope(opdater(OTHER_CPR), running.sf2250_url)

    assert_no_garbage(running, saved_garbage, payload, "SP-900")


def test_register_failing_leaves_no_cyclic_garbage(
    running: RunningPlatform,
    case_system: CaseSystem,
    hooks: RegisterHooks,
    saved_garbage: Callable[[Callable[[], object]], list[object]],
) -> None:
    hooks.fault(400, 100)

    def payload() -> bytes:
        return case_system.envelope(opdater(OTHER_CPR), running.sf2250_url)

    assert_no_garbage(running, saved_garbage, payload, "SP-405")


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (b"<s:Envelope xmlns:s='x'><unclosed>", "SP-101"),
        (b"<notAnEnvelope/>", None),
    ],
    ids=["malformed-xml", "not-an-envelope"],
)
def test_bad_envelope_leaves_no_cyclic_garbage(
    payload: bytes,
    expected: str | None,
    running: RunningPlatform,
    saved_garbage: Callable[[Callable[[], object]], list[object]],
) -> None:
    status, answer = call_in_process(running, payload)
    code = error_code(answer)
    assert status.startswith("400") and code is not None and code.startswith("SP-1")
    assert expected is None or code == expected
    assert_no_garbage(running, saved_garbage, lambda: payload, code)


def test_refused_token_leaves_no_cyclic_garbage(
    running: RunningPlatform,
    case_system: CaseSystem,
    saved_garbage: Callable[[Callable[[], object]], list[object]],
) -> None:
    # One message sent again and again: each repeat is refused as a replay, before spyne.
    payload = case_system.envelope(opdater(OTHER_CPR), running.sf2250_url)
    assert error_code(call_in_process(running, payload)[1]) is None
    status, answer = call_in_process(running, payload)
    code = error_code(answer)
    assert status.startswith("400") and code is not None
    assert_no_garbage(running, saved_garbage, lambda: payload, code)
