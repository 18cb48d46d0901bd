"""State and test hooks shared by the simulated KOMBIT REST peers (STS and SF1601).

The hooks have the NemSMS register's shape (SANDBOX.md), under ``{control_url}``:

- ``GET``/``DELETE requests``: what the peer received, oldest first, each with ``method``,
  ``path``, ``client_subject``, ``headers`` (token values masked), ``body`` (token values
  masked) and ``received_at``;
- ``POST faults`` ``{"status": 503 | 401 | "reset", "count": n, "target": "..."}``: the next
  ``n`` requests to ``target`` answer that status (or a TCP reset); ``GET faults``;
- ``PUT lifetime`` ``{"seconds": n}``: the lifetime of the tokens issued from now on
  (``GET lifetime``), so tests see expiry without waiting an hour;
- ``GET stats``: the servers' counters.

A peer adds its own hooks through ``extra_routes``. The hooks change state, so they listen on
loopback only.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, ClassVar, Final

from serviceplatform.sandbox.httpserver import HooksHandler, QuietHandler

#: Header and form values that carry tokens: recorded masked.
_TOKEN_HEADERS: Final = frozenset({"authorization"})
_FORM_TOKEN: Final = re.compile(r"(saml-token=)[^&]*")
MASK: Final = "****"

#: Extra hooks of a peer: (verb, path, data) -> (status, answer), or None when not its hook.
ExtraRoutes = Callable[[str, str, Any], "tuple[int, Any] | None"]


def masked_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """The request headers with token values replaced (the scheme kept: ``Holder-of-key ****``)."""
    shown: dict[str, str] = {}
    for name, value in headers.items():
        if name.lower() in _TOKEN_HEADERS:
            scheme = value.split(" ", 1)[0] if " " in value else ""
            value = f"{scheme} {MASK}".strip()
        shown[name] = value
    return shown


def masked_body(body: bytes) -> str:
    return _FORM_TOKEN.sub(rf"\g<1>{MASK}", body.decode("utf-8", "replace"))


class PeerState:
    """Recorded requests, injected faults per target, and the token lifetime; thread-safe."""

    def __init__(self, targets: tuple[str, ...], lifetime: float, max_recorded: int) -> None:
        self.lock = threading.Lock()
        self.targets = targets
        self.lifetime = lifetime
        self.max_recorded = max_recorded
        self.requests: list[dict[str, Any]] = []
        self.requests_received = 0
        #: target -> (status or "reset", remaining count)
        self.faults: dict[str, tuple[int | str, int]] = {}

    def record(
        self, handler: QuietHandler, body: bytes, target: str, subject: str | None
    ) -> int | str | None:
        """Remember one request; return the fault it must answer with, if any."""
        entry = {
            "method": handler.command,
            "path": handler.path,
            "client_subject": subject,
            "headers": masked_headers(dict(handler.headers.items())),
            "body": masked_body(body),
            "received_at": datetime.now(UTC).isoformat(timespec="milliseconds"),
        }
        with self.lock:
            self.requests_received += 1
            if len(self.requests) < self.max_recorded:
                self.requests.append(entry)
            fault = self.faults.get(target)
            if fault is None or fault[1] <= 0:
                return None
            self.faults[target] = (fault[0], fault[1] - 1)
            return fault[0]


def peer_hooks(
    state: PeerState, stats: Callable[[], Any], extra_routes: ExtraRoutes | None = None
) -> type[QuietHandler]:
    """A handler class serving the hooks over ``state``."""
    return type(
        "KombiHooks",
        (_Hooks,),
        {
            "state": state,
            "stats": staticmethod(stats),
            "extra": staticmethod(extra_routes or _no_extra_routes),
        },
    )


def _no_extra_routes(verb: str, path: str, data: Any) -> tuple[int, Any] | None:
    return None


class _Hooks(HooksHandler):
    state: ClassVar[PeerState]
    # Any: mypy takes a callable class attribute for a method and would bind ``self``.
    stats: ClassVar[Any]
    extra: ClassVar[Any]

    do_GET = do_PUT = do_POST = do_DELETE = HooksHandler._serve  # noqa: N815 - dispatch names

    def _route(self, path: str, data: Any) -> tuple[int, Any]:
        state, verb = self.state, self.command
        if path == "requests" and verb in ("GET", "DELETE"):
            with state.lock:
                entries = list(state.requests)
                if verb == "DELETE":
                    state.requests.clear()
            return (200, entries) if verb == "GET" else (200, {"deleted": len(entries)})
        if path == "faults" and verb == "POST":
            target, status, count = _fault(data, state.targets)
            with state.lock:
                state.faults[target] = (status, count)
            return 200, {"target": target, "status": status, "count": count}
        if path == "faults" and verb == "GET":
            with state.lock:
                return 200, {t: {"status": s, "count": c} for t, (s, c) in state.faults.items()}
        if path == "lifetime" and verb in ("GET", "PUT"):
            if verb == "PUT":
                seconds = data.get("seconds") if isinstance(data, dict) else None
                if (
                    not isinstance(seconds, int | float)
                    or isinstance(seconds, bool)
                    or seconds <= 0
                ):
                    raise ValueError('expected {"seconds": n} with n > 0')
                with state.lock:
                    state.lifetime = float(seconds)
            return 200, {"seconds": state.lifetime}
        if path == "stats" and verb == "GET":
            return 200, self.stats()
        extra: tuple[int, Any] | None = self.extra(verb, path, data)
        if extra is not None:
            return extra
        return 404, {"error": f"no hook {verb} /_sandbox/{path}"}


def _fault(data: Any, targets: tuple[str, ...]) -> tuple[str, int | str, int]:
    if not isinstance(data, dict):
        raise ValueError('expected {"status": 503 | 401 | "reset", "count": n, "target": ...}')
    status, count = data.get("status"), data.get("count", 1)
    target = data.get("target", targets[0])
    if target not in targets:
        raise ValueError(f"target must be one of {', '.join(targets)}")
    if not isinstance(count, int) or isinstance(count, bool) or count < 0:
        raise ValueError("count must be a whole number >= 0")
    if status == "reset" or (isinstance(status, int) and 100 <= status <= 599):
        return target, status, count
    raise ValueError('status must be an HTTP status (100-599) or "reset"')
