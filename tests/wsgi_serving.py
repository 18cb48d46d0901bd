"""A WSGI application served on 127.0.0.1 from a background thread, for tests over sockets.

``LocalWsgiServer(app)`` listens on a free port at once and serves each request in its own
thread (a test may hold one connection while making another); ``close()`` or leaving a
``with`` block shuts it down and waits for the serving thread. Nothing is logged per request.
"""

from __future__ import annotations

import socketserver
import threading
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from serviceplatform.closing import Closing

#: How often the serving loop looks for a shutdown request (seconds): short, so tests stop fast.
_POLL_SECONDS = 0.05


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


class _ThreadingWSGIServer(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True


class LocalWsgiServer(Closing):
    def __init__(self, app: Any) -> None:
        self.server: WSGIServer = make_server(
            "127.0.0.1", 0, app, server_class=_ThreadingWSGIServer, handler_class=_QuietHandler
        )
        self.thread = threading.Thread(
            target=self.server.serve_forever, args=(_POLL_SECONDS,), daemon=True
        )
        self.thread.start()
        #: ``http://127.0.0.1:<port>``, without a trailing slash.
        self.base_url = f"http://127.0.0.1:{self.server.server_port}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)
