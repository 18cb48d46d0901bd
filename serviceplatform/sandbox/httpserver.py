"""Small threaded HTTP(S) servers for the simulated peers, run in background threads.

The standard library's ``ThreadingHTTPServer`` does the HTTP; this module adds what a
simulated peer needs on top:

- TLS with the handshake done in the connection's own thread (wrapping the listening socket
  would run every handshake in the accept loop, so one slow client would stall all others),
  optionally requiring a client certificate;
- counters of accepted connections and failed handshakes, so tests can see connection reuse;
- a clean stop that also closes idle keep-alive connections (``shutdown()`` alone only stops
  the accept loop);
- quiet handlers: no per-request line on stderr, HTTP/1.1 keep-alive, small response helpers.
"""

from __future__ import annotations

import contextlib
import json
import socket
import ssl
import struct
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Self
from urllib.parse import urlsplit

from serviceplatform.closing import Closing

#: Largest request body a simulated peer reads; larger requests are refused unread.
MAX_BODY_BYTES = 1024 * 1024


class QuietHandler(BaseHTTPRequestHandler):
    """HTTP/1.1 keep-alive handler that logs nothing and always sends a Content-Length."""

    protocol_version = "HTTP/1.1"
    # One write per response (headers and body together) and no Nagle delay on small answers.
    wbufsize = -1
    disable_nagle_algorithm = True
    #: Idle seconds before a keep-alive connection (and its thread) is let go.
    timeout = 60
    #: Set by a handler to end the connection with a TCP reset instead of an answer.
    reset_connection = False
    #: Largest request body this handler reads (a hook taking national lists raises it).
    max_body_bytes = MAX_BODY_BYTES

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def send_body(
        self,
        status: int,
        body: bytes = b"",
        content_type: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.send_response(status)
        if content_type and body:
            self.send_header("Content-Type", content_type)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if status != 204 and status >= 200:
            self.send_header("Content-Length", str(len(body)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if body and self.command != "HEAD":
            self.wfile.write(body)

    def send_json(self, status: int, data: Any) -> None:
        self.send_body(status, json.dumps(data).encode(), "application/json")

    def read_body(self) -> bytes | None:
        """The request body, or None (after answering 411/413) when it cannot be read."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            self.close_connection = True
            self.send_body(411, b"chunked request bodies are not supported\n", "text/plain")
            return None
        try:
            length = int(self.headers.get("Content-Length", "0"))
        except ValueError:
            length = -1
        if length < 0 or length > self.max_body_bytes:
            # The unread body would be taken for the next request: end the connection.
            self.close_connection = True
            self.send_body(413, b"request body too large or length invalid\n", "text/plain")
            return None
        return self.rfile.read(length) if length else b""

    def drop(self) -> None:
        """End the connection with a TCP reset and no answer."""
        self.reset_connection = True
        self.close_connection = True

    def answer_injected(self, fault: int | str | None) -> bool:
        """Answer with a fault a test hook injected; False (nothing sent) when there is none.

        ``"reset"`` drops the connection; a number is answered as that HTTP status.
        """
        if fault is None:
            return False
        if fault == "reset":
            self.drop()
        else:
            self.send_body(int(fault), b"injected fault\n", "text/plain")
        return True


class HooksHandler(QuietHandler):
    """Test hooks under ``/_sandbox/``: JSON in, ``_route(path, data)`` -> (status, JSON) out.

    Subclasses name the verbs they serve (``do_GET = _serve``...) and route by
    ``self.command`` and the path below ``/_sandbox/``; bad JSON or values are HTTP 400.
    """

    def _route(self, path: str, data: Any) -> tuple[int, Any]:
        raise NotImplementedError

    def _serve(self) -> None:
        body = self.read_body()
        if body is None:
            return
        path = urlsplit(self.path).path
        if not path.startswith("/_sandbox/"):
            self.send_json(404, {"error": "the test hooks live under /_sandbox/"})
            return
        try:
            data = json.loads(body) if body else None
            status, answer = self._route(path.removeprefix("/_sandbox/"), data)
        except (ValueError, TypeError, KeyError) as exc:
            status, answer = 400, {"error": str(exc)}
        self.send_json(status, answer)


class ThreadedServer(ThreadingHTTPServer):
    """A ``ThreadingHTTPServer`` with optional TLS, connection counters and a clean stop."""

    daemon_threads = True
    # Joining handler threads on close would wait for idle keep-alive clients.
    block_on_close = False
    allow_reuse_address = True
    request_queue_size = 256

    def __init__(
        self,
        address: tuple[str, int],
        handler: type[BaseHTTPRequestHandler],
        *,
        ssl_context: ssl.SSLContext | None = None,
        handshake_timeout: float = 5.0,
    ) -> None:
        super().__init__(address, handler)
        self.ssl_context = ssl_context
        self.handshake_timeout = handshake_timeout
        self.connections_accepted = 0
        self.handshake_failures = 0
        self._open: set[socket.socket] = set()
        self._conn_lock = threading.Lock()

    def finish_request(self, request: Any, client_address: Any) -> None:
        conn: socket.socket = request
        if self.ssl_context is not None:
            try:
                conn.settimeout(self.handshake_timeout)
                conn = self.ssl_context.wrap_socket(
                    conn, server_side=True, do_handshake_on_connect=False
                )
                conn.do_handshake()
            except (OSError, ValueError):
                with self._conn_lock:
                    self.handshake_failures += 1
                conn.close()
                return
        with self._conn_lock:
            self.connections_accepted += 1
            self._open.add(conn)
        reset = False
        try:
            handler = self.RequestHandlerClass(conn, client_address, self)  # type: ignore[arg-type]
            reset = bool(getattr(handler, "reset_connection", False))
        except OSError:
            pass
        finally:
            with self._conn_lock:
                self._open.discard(conn)
            _close(conn, reset=reset)

    def shutdown_request(self, request: Any) -> None:
        # finish_request closed the (possibly TLS-wrapped) connection already.
        _close(request, reset=False)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that vanishes mid-request is normal for a test peer; stay silent.
        pass

    def close_connections(self) -> None:
        with self._conn_lock:
            sockets = list(self._open)
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


def _close(sock: socket.socket, *, reset: bool) -> None:
    if sock.fileno() == -1:
        return
    if reset:
        # Linger 0: close() sends RST instead of FIN, as a crashed peer or a proxy would.
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    else:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_WR)
    sock.close()


def server_tls_context(cert: Path, key: Path, client_ca: Path | None) -> ssl.SSLContext:
    """A TLS server context; with ``client_ca`` it requires a client certificate from it."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(str(cert), str(key))
    if client_ca is not None:
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(cafile=str(client_ca))
    return context


class ServerThread:
    """Runs one ``ThreadedServer`` in a daemon thread until ``stop()``."""

    def __init__(self, server: ThreadedServer, name: str) -> None:
        self.server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.1}, name=name, daemon=True
        )

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        if self._thread.is_alive():
            self.server.shutdown()
            self._thread.join(5)
        self.server.close_connections()
        self.server.server_close()


class ServerGroup(Closing):
    """The servers of one simulated peer (service, hooks, ...): started and stopped together;
    ``with`` starts them and stops them on the way out."""

    def __init__(self, *threads: ServerThread) -> None:
        self._threads = threads
        self._started = False

    def start(self) -> None:
        if not self._started:
            for thread in self._threads:
                thread.start()
            self._started = True

    def stop(self) -> None:
        for thread in self._threads:
            thread.stop()

    def close(self) -> None:
        self.stop()

    def __enter__(self) -> Self:
        self.start()
        return self
