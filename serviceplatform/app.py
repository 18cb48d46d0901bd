"""The platform's WSGI application: one ``SoapEndpoint`` per registered SOAP service.

``create_app(settings)`` is the factory every server uses (gunicorn in production and in the
sandbox, a threaded test server in tests). The ``Platform`` and its database engine are built
on the first request, so a pre-forking server never shares an engine across processes.

Besides the SOAP paths, applications of the platform itself are mounted by path prefix
(:data:`MOUNTS`, and the integrations' ``WsgiMount``s at the prefix their settings give): each
is built once from the platform and gets every request under its prefix, with
``SCRIPT_NAME``/``PATH_INFO`` split as WSGI prescribes. Built applications that have a
``close()`` are closed with the platform.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Any

from serviceplatform.config import Settings
from serviceplatform.config_check import settings_for_serving
from serviceplatform.integration import WsgiApp
from serviceplatform.platform import Platform
from serviceplatform.registry import load_attribute, soap_services, wsgi_mounts
from serviceplatform.soap.front import SoapEndpoint

StartResponse = Callable[..., Any]

#: Path prefix -> ``module:function`` building a WSGI application from the ``Platform``.
#: Imported on first use, so a platform without them starts as fast as before.
MOUNTS: dict[str, str] = {
    "/admin": "serviceplatform.admin.app:admin_app",
    "/metrics": "serviceplatform.observability.metrics:metrics_app",
    "/readyz": "serviceplatform.observability.health:readyz_app",
}


class PlatformApp:
    """Dispatches by path to the SOAP endpoints; answers ``/healthz``."""

    def __init__(self, settings: Settings, platform_factory: Callable[[], Platform] | None = None):
        self.settings = settings
        self._factory = platform_factory or (lambda: Platform(settings))
        self._routes: dict[str, WsgiApp] | None = None
        self._mounts: list[tuple[str, WsgiApp]] = []
        #: Applications built from the platform; those with a ``close()`` are closed with it.
        self._built: list[WsgiApp] = []
        self._platform: Platform | None = None
        self._lock = threading.Lock()

    @property
    def platform(self) -> Platform:
        self._ensure()
        assert self._platform is not None
        return self._platform

    def _ensure(self) -> dict[str, WsgiApp]:
        if self._routes is None:
            with self._lock:
                if self._routes is None:
                    platform = self._factory()
                    routes: dict[str, WsgiApp] = {}
                    for service in soap_services():
                        inner = service.build_app(platform)
                        self._built.append(inner)
                        routes[service.path.rstrip("/")] = SoapEndpoint(platform, service, inner)
                    mounts = [
                        (prefix.rstrip("/"), load_attribute(target, f"mount {prefix}")(platform))
                        for prefix, target in MOUNTS.items()
                    ]
                    for mount in wsgi_mounts():
                        prefix = mount.prefix(self.settings).rstrip("/")
                        if prefix:
                            mounts.append((prefix, mount.build(platform)))
                            self._built.append(mounts[-1][1])
                    self._mounts = sorted(mounts, key=lambda m: -len(m[0]))
                    self._platform = platform
                    self._routes = routes
        return self._routes

    def warm_up(self) -> None:
        """Build the platform now, so a worker's first caller does not wait for it."""
        self._ensure()

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = (environ.get("PATH_INFO") or "/").rstrip("/")
        if path == "/healthz":
            return _text(start_response, "200 OK", "ok\n")
        endpoint = self._ensure().get(path)
        if endpoint is not None:
            return endpoint(environ, start_response)
        raw = environ.get("PATH_INFO") or "/"
        for prefix, app in self._mounts:
            if raw == prefix or raw.startswith(prefix + "/"):
                environ["SCRIPT_NAME"] = environ.get("SCRIPT_NAME", "") + prefix
                environ["PATH_INFO"] = raw[len(prefix) :]
                return app(environ, start_response)
        return _text(start_response, "404 Not Found", "no service at this path\n")

    def close(self) -> None:
        for app in self._built:
            close = getattr(app, "close", None)
            if callable(close):
                close()
        if self._platform is not None:
            self._platform.close()


def _text(start_response: StartResponse, status: str, text: str) -> list[bytes]:
    body = text.encode()
    start_response(
        status, [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body)))]
    )
    return [body]


def create_app(settings: Settings | None = None) -> PlatformApp:
    """The WSGI application; without settings, the file ``SP_CONFIG`` names, ``SP_*`` on top.

    Then the settings are checked as ``serviceplatform serve`` checks them, so a WSGI server
    pointed at ``serviceplatform.app:create_app()`` refuses what ``serve`` refuses.
    """
    if settings is None:
        settings = settings_for_serving()
    return PlatformApp(settings)
