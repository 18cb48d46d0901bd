"""Builds the OOTS integration's WSGI applications from the platform (once per process).

- ``build_service_app``: the SOAP service (spyne behind ``wsdl/oots``) around ``OotsHandler``,
  and, with ``[oots] poll_interval_seconds`` > 0 and Domibus configured, the background
  ``AnswerPoller``; the application's ``close()`` stops the poller;
- ``build_push_app``: the ``BackendService`` endpoint Domibus pushes answers to (mounted at
  ``[oots] push_path``), storing into the same ``oots_messages`` table.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from integrations.oots.domibus import BackendPushApp, backend_push_app
from integrations.oots.exchange import OotsExchange
from integrations.oots.handler import OotsHandler
from integrations.oots.poller import AnswerPoller
from integrations.oots.service import build_wsgi_app
from integrations.oots.settings import OOTS_SETTINGS
from serviceplatform.integration import WsgiApp
from serviceplatform.platform import Platform


class OotsServiceApp:
    """The SOAP application with the exchange and poller behind it."""

    def __init__(self, inner: WsgiApp, exchange: OotsExchange, poller: AnswerPoller | None) -> None:
        self.inner = inner
        self.exchange = exchange
        self.poller = poller

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        return self.inner(environ, start_response)

    def close(self) -> None:
        if self.poller is not None:
            self.poller.stop()
        self.exchange.close()


def build_service_app(platform: Platform, path: str) -> OotsServiceApp:
    settings = platform.settings
    exchange = OotsExchange.from_settings(platform.db, platform.audit, settings, platform.clock)
    handler = OotsHandler(platform, exchange)
    inner = build_wsgi_app(
        handler,
        max_body_bytes=settings.soap.max_body_bytes,
        public_url=settings.soap.public_url(path),
    )
    poller = None
    if exchange.configured and settings.section(OOTS_SETTINGS).poll_interval_seconds > 0:
        poller = AnswerPoller(exchange, settings.section(OOTS_SETTINGS).poll_interval_seconds)
        poller.start()
    return OotsServiceApp(inner, exchange, poller)


def build_push_app(platform: Platform) -> BackendPushApp:
    oots = platform.settings.section(OOTS_SETTINGS)
    exchange = OotsExchange.from_settings(
        platform.db, platform.audit, platform.settings, platform.clock
    )
    # receiveSuccess pushes carry only the MessageId: fetch the message with a client.
    client = exchange.new_client() if exchange.configured else None
    return backend_push_app(
        exchange.inbox,
        client=client,
        username=oots.push_username or None,
        password=oots.push_password or None,
    )
