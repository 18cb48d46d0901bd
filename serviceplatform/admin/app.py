"""The admin WSGI application mounted at ``/admin``: the JSON API, its OpenAPI and the page.

Routing is a table of (method, path pattern, view, action name); the request body is JSON of
at most 64 KiB. Every answer is JSON; every error is ``{"error": {"code", "text"}}`` with the
HTTP status of its class. Every changing call (and every refused one) leaves an audit record
with service ``admin``, so the audit trail answers "who approved this?".
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final
from urllib.parse import parse_qsl, urlsplit

from serviceplatform.admin.auth import Authenticator, Principal
from serviceplatform.admin.openapi import openapi_document
from serviceplatform.admin.operations_views import OperationsViews
from serviceplatform.admin.views import AdminViews
from serviceplatform.errors import (
    AdminError,
    AdminMediaTypeUnsupported,
    AdminRequestCrossSite,
    InvalidAdminRequest,
    ServicePlatformError,
    StorageError,
)
from serviceplatform.platform import Platform
from serviceplatform.store.audit import admin_entry

log = logging.getLogger(__name__)

StartResponse = Callable[..., Any]
STATIC: Final = Path(__file__).resolve().parent / "static"
MAX_BODY: Final = 64 * 1024
_UUID: Final = r"(?P<agreement_uuid>[0-9a-f-]{36})"
_SYSTEM: Final = r"(?P<system_uuid>[0-9a-f-]{36})"
#: A message of the message log: its source and its key there (``call/42``).
MESSAGE: Final = r"(?P<source>[a-z][a-z0-9_-]{0,31})/(?P<key>[A-Za-z0-9._@-]{1,255})"
_STATIC_TYPES: Final = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
}


@dataclass(frozen=True)
class Route:
    method: str
    pattern: re.Pattern[str]
    view: str
    #: The audited action for changing calls; None for reads.
    action: str | None = None


def _route(method: str, path: str, view: str, action: str | None = None) -> Route:
    return Route(method, re.compile(path + "$"), view, action)


ROUTES: Final = (
    _route("GET", "/api/me", "me"),
    _route("GET", "/api/agreements", "list_agreements"),
    _route("POST", "/api/agreements", "request_agreement", "request"),
    _route("GET", f"/api/agreements/{_UUID}", "get_agreement"),
    _route(
        "POST",
        f"/api/agreements/{_UUID}/(?P<action>approve|reject|suspend|resume|revoke)",
        "transition",
        "transition",
    ),
    _route("PUT", f"/api/agreements/{_UUID}/configuration", "configure", "configure"),
    _route("GET", f"/api/agreements/{_UUID}/print-route", "get_print_route"),
    _route("PUT", f"/api/agreements/{_UUID}/print-route", "set_print_route", "print-route"),
    _route("GET", "/api/consumer-systems", "consumer_systems"),
    _route("POST", "/api/consumer-systems", "register_consumer_system", "register"),
    _route("GET", f"/api/consumer-systems/{_SYSTEM}", "get_consumer_system"),
    _route(
        "POST",
        f"/api/consumer-systems/{_SYSTEM}/certificates",
        "add_system_certificate",
        "add-certificate",
    ),
    _route(
        "POST",
        f"/api/consumer-systems/{_SYSTEM}/(?P<state>activate|deactivate)",
        "set_system_state",
        "state",
    ),
    _route("GET", "/api/certificates", "certificates"),
    _route("GET", "/api/subscriptions/runs", "runs"),
    _route("GET", "/api/audit", "audit"),
    _route("GET", "/api/messages", "list_messages"),
    _route("GET", f"/api/messages/{MESSAGE}", "get_message"),
    _route("POST", f"/api/messages/{MESSAGE}/resend", "resend_message", "resend"),
    _route("GET", "/api/usage", "usage"),
)


#: Methods that change something: the CSRF rules apply to them.
_CHANGING: Final = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_DEFAULT_PORTS: Final = {"http": "80", "https": "443"}

#: Views whose success creates something (HTTP 201).
_CREATING: Final = frozenset({"request_agreement", "register_consumer_system"})


class AdminApp:
    def __init__(self, platform: Platform) -> None:
        self.platform = platform
        self.views = AdminViews(platform)
        #: The message log and usage overview (``operations_views.py``).
        self.operations = OperationsViews(platform)
        self.auth = Authenticator(platform.settings.admin)

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        method = environ.get("REQUEST_METHOD", "GET").upper()
        if path in ("", "/") or not path.startswith("/api"):
            return self._static(path, method, environ, start_response)
        if path == "/api/openapi.json" and method == "GET":
            return _json(start_response, 200, openapi_document())
        allowed = [r for r in ROUTES if r.pattern.match(path)]
        route = next((r for r in allowed if r.method == method), None)
        if route is None:
            if allowed:
                methods = ", ".join(sorted({r.method for r in allowed}))
                return _json(
                    start_response,
                    405,
                    _error_body(InvalidAdminRequest(f"use {methods}")),
                    [("Allow", methods)],
                )
            return _json(start_response, 404, _error_body(InvalidAdminRequest("no such path")))
        return self._call(route, path, environ, start_response)

    def _call(
        self, route: Route, path: str, environ: dict[str, Any], start_response: StartResponse
    ) -> Iterable[bytes]:
        started = time.perf_counter()
        match = route.pattern.match(path)
        assert match is not None
        params = match.groupdict()
        principal: Principal | None = None
        try:
            if route.method in _CHANGING:
                self._refuse_cross_site(environ)
            principal = self.auth.authenticate(environ)
            body = _read_json(environ) if route.method in _CHANGING else {}
            query = dict(parse_qsl(environ.get("QUERY_STRING", "")))
            view = getattr(self.views, route.view, None) or getattr(self.operations, route.view)
            answer = view(principal=principal, body=body, query=query, **params)
        except ServicePlatformError as error:
            self._audit(route, params, principal, started, error)
            status = error.http_status if isinstance(error, AdminError) else 500
            if not isinstance(error, AdminError):
                log.warning("admin %s failed: %s", route.view, error)
            return _json(start_response, status, _error_body(error))
        self._audit(route, params, principal, started, None, answer)
        status = 201 if route.view in _CREATING else 200
        return _json(start_response, status, answer)

    def _refuse_cross_site(self, environ: dict[str, Any]) -> None:
        """CSRF defence for a changing call, checked before the credentials are looked at.

        A browser sends a client certificate (and a proxy's subject header) with any
        request a hostile page makes it send, so a bearer token is not the only way in.
        The body must be ``application/json`` (a cross-site form or a "simple" ``fetch``
        cannot send that type without a CORS preflight, which is never granted), and a
        browser's own statement that the request comes from another site is believed:
        ``Sec-Fetch-Site: cross-site``, or an ``Origin`` whose host is not this one.
        Clients that are not browsers send neither header and pass on the type alone.
        """
        if environ.get("HTTP_SEC_FETCH_SITE", "").strip().lower() == "cross-site":
            raise AdminRequestCrossSite("Sec-Fetch-Site: cross-site")
        origin = environ.get("HTTP_ORIGIN")
        if origin is not None and _origin_host(origin) not in self._own_hosts(environ):
            raise AdminRequestCrossSite(f"Origin {origin[:100]!r} is not this site")
        media_type = environ.get("CONTENT_TYPE", "").split(";", 1)[0].strip().lower()
        if media_type != "application/json":
            raise AdminMediaTypeUnsupported(f"got {media_type or 'no Content-Type'}")

    def _own_hosts(self, environ: dict[str, Any]) -> set[str]:
        """The host[:port] names this request was addressed to: its ``Host``, and the
        ``X-Forwarded-Host`` a trusted proxy passes on."""
        scheme = environ.get("wsgi.url_scheme", "http")
        hosts = {_normal_host(environ.get("HTTP_HOST", ""), scheme)}
        forwarded = environ.get("HTTP_X_FORWARDED_HOST", "")
        if forwarded and environ.get("REMOTE_ADDR") in self.auth.trusted_proxies:
            forwarded_scheme = environ.get("HTTP_X_FORWARDED_PROTO", "https")
            hosts.add(_normal_host(forwarded.split(",")[0], forwarded_scheme))
        hosts.discard("")
        return hosts

    def _audit(
        self,
        route: Route,
        params: dict[str, str],
        principal: Principal | None,
        started: float,
        error: ServicePlatformError | None,
        answer: dict[str, Any] | None = None,
    ) -> None:
        # Reads are not audited when they succeed; refusals always are.
        if route.action is None and error is None:
            return
        operation = params.get("action") or params.get("state") or route.action or route.view
        kind = "consumer system" if "consumer-systems" in route.pattern.pattern else "agreement"
        if "key" in params:
            kind = "message"
        target = (
            params.get("agreement_uuid")
            or params.get("system_uuid")
            or (f"{params['source']}:{params['key']}" if "key" in params else None)
            or (answer or {}).get("uuid")
        )
        who = principal.label if principal is not None else "anonymous"
        try:
            self.platform.audit.write(
                admin_entry(
                    operation=operation,
                    detail=f"{who}: {operation} {kind} {target or '-'}",
                    error=error,
                    authority_cvr=(answer or {}).get("authority_cvr")
                    or (principal.authority_cvr if principal else None)
                    or None,
                    latency_ms=(time.perf_counter() - started) * 1000.0,
                )
            )
        except StorageError:
            log.exception("the audit record of an admin action could not be written")

    def _static(
        self, path: str, method: str, environ: dict[str, Any], start_response: StartResponse
    ) -> Iterable[bytes]:
        if path == "":
            # /admin -> /admin/ so the page's relative URLs resolve under the mount.
            target = environ.get("SCRIPT_NAME", "") + "/"
            start_response(
                "308 Permanent Redirect", [("Location", target), ("Content-Length", "0")]
            )
            return [b""]
        name = "index.html" if path == "/" else path.lstrip("/")
        file = (STATIC / name).resolve()
        if method not in ("GET", "HEAD") or not file.is_relative_to(STATIC) or not file.is_file():
            return _json(start_response, 404, _error_body(InvalidAdminRequest("no such page")))
        body = file.read_bytes()
        start_response(
            "200 OK",
            [
                ("Content-Type", _STATIC_TYPES.get(file.suffix, "application/octet-stream")),
                ("Content-Length", str(len(body))),
                ("Cache-Control", "no-cache"),
                ("X-Content-Type-Options", "nosniff"),
                ("Content-Security-Policy", "default-src 'self'; frame-ancestors 'none'"),
            ],
        )
        return [b"" if method == "HEAD" else body]


def _normal_host(host: str, scheme: str) -> str:
    """``host[:port]`` in lower case, without the scheme's default port."""
    host = host.strip().lower()
    default = _DEFAULT_PORTS.get(scheme.strip().lower())
    if default and host.endswith(":" + default):
        host = host[: -len(default) - 1]
    return host


def _origin_host(origin: str) -> str:
    """The host[:port] of an ``Origin`` header; "" for ``null`` or anything unreadable,
    which then matches no host of ours."""
    try:
        parts = urlsplit(origin.strip())
    except ValueError:
        return ""
    if parts.scheme not in _DEFAULT_PORTS or not parts.netloc:
        return ""
    return _normal_host(parts.netloc, parts.scheme)


def _read_json(environ: dict[str, Any]) -> dict[str, Any]:
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        raise InvalidAdminRequest("bad Content-Length") from None
    if length > MAX_BODY:
        raise InvalidAdminRequest(f"the body is over {MAX_BODY} bytes")
    raw = environ["wsgi.input"].read(length) if length else b""
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidAdminRequest(f"the body is not JSON: {exc}") from None
    except RecursionError:
        # Thousands of nested arrays fit in MAX_BODY and exhaust the parser's stack.
        raise InvalidAdminRequest("the body is not JSON: nested too deeply") from None
    if not isinstance(body, dict):
        raise InvalidAdminRequest("the body must be a JSON object")
    return body


def _error_body(error: ServicePlatformError) -> dict[str, Any]:
    return {"error": {"code": error.code, "text": error.error_text}}


def _json(
    start_response: StartResponse,
    status: int,
    body: dict[str, Any],
    headers: list[tuple[str, str]] | None = None,
) -> list[bytes]:
    payload = json.dumps(body, ensure_ascii=False).encode("utf-8")
    reason = {
        200: "OK",
        201: "Created",
        400: "Bad Request",
        401: "Unauthorized",
        403: "Forbidden",
        404: "Not Found",
        405: "Method Not Allowed",
        409: "Conflict",
        415: "Unsupported Media Type",
        500: "Internal Server Error",
    }[status]
    all_headers = [
        ("Content-Type", "application/json; charset=utf-8"),
        ("Content-Length", str(len(payload))),
        ("Cache-Control", "no-store"),
        *(headers or []),
    ]
    if status == 401:
        all_headers.append(("WWW-Authenticate", 'Bearer realm="serviceplatform admin"'))
    start_response(f"{status} {reason}", all_headers)
    return [payload]


def admin_app(platform: Platform) -> AdminApp:
    """The ``MOUNTS`` entry point."""
    return AdminApp(platform)
