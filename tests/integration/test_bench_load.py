"""The benchmark's load generator keeps its concurrency until the requests run out.

Client threads take the next request from one shared queue. With fixed shares per thread, a
thread on a slow connection (a busier server worker) would still owe its share after the others
had finished, and the end of every round would run at a lower concurrency than the one reported.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator

import pytest

from bench import load
from serviceplatform.sandbox.httpserver import (
    QuietHandler,
    ServerGroup,
    ServerThread,
    ThreadedServer,
)

SLOW_SECONDS = 0.2


class _CountingHandler(QuietHandler):
    """Answers ``ok``; every request on the first connection takes ``SLOW_SECONDS``."""

    served: Counter[int]
    first_connection: list[int]
    lock: threading.Lock

    def handle(self) -> None:
        with self.lock:
            if not self.first_connection:
                self.first_connection.append(id(self))
        super().handle()

    def do_POST(self) -> None:  # noqa: N802 - http.server dispatch name
        if self.read_body() is None:
            return
        if self.first_connection[0] == id(self):
            time.sleep(SLOW_SECONDS)
        with self.lock:
            self.served[id(self)] += 1
        self.send_body(200, b"ok", "text/plain")


@pytest.fixture
def server() -> Iterator[tuple[ThreadedServer, type[_CountingHandler]]]:
    handler = type(
        "Handler",
        (_CountingHandler,),
        {"served": Counter(), "first_connection": [], "lock": threading.Lock()},
    )
    http = ThreadedServer(("127.0.0.1", 0), handler)
    with ServerGroup(ServerThread(http, "bench-load-test")):
        yield http, handler


def _target(http: ThreadedServer, expect: bytes) -> load.Target:
    return load.Target("test", "127.0.0.1", int(http.server_address[1]), "/", "text/plain", expect)


def test_a_slow_connection_does_not_hold_a_fixed_share(
    server: tuple[ThreadedServer, type[_CountingHandler]],
) -> None:
    http, handler = server
    target = _target(http, expect=b"ok")
    bodies = [b"x"] * 40

    result = load.run_round(target, bodies, concurrency=2)

    assert result.requests == 40 and result.errors == 0
    assert len(result.latencies) == 40
    counts = handler.served
    assert sum(counts.values()) == 40
    slow = counts[handler.first_connection[0]]
    # A fixed share would be 20 here; in the time of a few slow answers the fast connection
    # takes every other request.
    assert 1 <= slow <= 5
    assert http.connections_accepted == 2


def test_every_request_is_sent_once_at_higher_concurrency(
    server: tuple[ThreadedServer, type[_CountingHandler]],
) -> None:
    http, handler = server
    target = _target(http, expect=b"ok")

    result = load.run_round(target, [b"x"] * 30, concurrency=8)

    assert (result.requests, result.errors, len(result.latencies)) == (30, 0, 30)
    assert sum(handler.served.values()) == 30


def test_wrong_answers_count_as_errors(
    server: tuple[ThreadedServer, type[_CountingHandler]],
) -> None:
    http, _handler = server
    target = _target(http, expect=b"absent")

    result = load.run_round(target, [b"x"] * 6, concurrency=3)

    assert result.errors == 6
    assert result.error_samples and "200 without" in result.error_samples[0]
