"""The simulated OOTS gateway's test hooks: JSON over plain HTTP under ``/_sandbox/``.

Loopback only (they change the gateway's state):

- ``GET /_sandbox/submitted``: every message the backend submitted, oldest first: ids,
  parties, service/action, ``original_sender``/``final_recipient`` (value and type), all
  message properties, the payload list and the RegRep payload as text (``payload``), the
  provider it went to and the outcome (``preview``, ``evidence``, ``EDM:ERR:000x`` or
  ``waiting-for-preview``); ``DELETE`` empties the list.
- ``GET /_sandbox/pending``: answers not yet downloaded, with ``state`` ``scheduled`` (the
  response delay is running), ``available`` (listed by ``listPendingMessages``) or
  ``waiting-for-preview`` (the provider waits for the user's decision).
- ``POST /_sandbox/faults`` ``{"status": 503 | "reset", "count": n, "endpoint": "wsplugin"}``:
  the next ``n`` requests to that endpoint (``wsplugin`` by default, ``common-services``,
  ``preview``, ``as4``: the AS4 endpoint) answer that HTTP status, or end with a TCP
  reset; ``GET`` shows what is left.
- ``GET /_sandbox/previews``: every preview session (``state`` ``pending``/``approved``/
  ``declined``, ``used``, location, provider, conversation); ``POST /_sandbox/previews/<token>``
  ``{"decision": "approve" | "decline"}`` decides without the HTML page.
- ``GET /_sandbox/network``: the simulated providers (id, scheme, country, access point,
  behaviour, EDM version, evidence type, region).
"""

from __future__ import annotations

from typing import Any, ClassVar
from urllib.parse import unquote

from serviceplatform.sandbox.httpserver import HooksHandler, QuietHandler
from serviceplatform.sandbox.oots_preview import PreviewStore
from serviceplatform.sandbox.oots_state import FAULT_ENDPOINTS, GatewayState

__all__ = ["hooks_handler"]


def hooks_handler(state: GatewayState, previews: PreviewStore) -> type[QuietHandler]:
    return type("OotsHooksHandler", (_Hooks,), {"state": state, "previews": previews})


class _Hooks(HooksHandler):
    state: ClassVar[GatewayState]
    previews: ClassVar[PreviewStore]

    do_GET = do_POST = do_DELETE = HooksHandler._serve  # noqa: N815 - dispatch names

    def _route(self, path: str, data: Any) -> tuple[int, Any]:
        state, verb, path = self.state, self.command, path.rstrip("/")
        if path == "submitted" and verb == "GET":
            return 200, state.submitted_json()
        if path == "submitted" and verb == "DELETE":
            with state.lock:
                count = len(state.submitted)
                state.submitted.clear()
            return 200, {"deleted": count}
        if path == "pending" and verb == "GET":
            return 200, state.pending_json()
        if path == "faults" and verb == "POST":
            endpoint, fault, count = _fault(data)
            with state.lock:
                state.faults[endpoint] = (fault, count)
            return 200, {"endpoint": endpoint, "status": fault, "count": count}
        if path == "faults" and verb == "GET":
            with state.lock:
                return 200, {
                    name: {"status": fault, "count": count}
                    for name, (fault, count) in state.faults.items()
                }
        if path == "previews" and verb == "GET":
            state.settle()
            return 200, self.previews.as_json()
        if path.startswith("previews/") and verb == "POST":
            token = unquote(path.removeprefix("previews/"))
            decision = data.get("decision") if isinstance(data, dict) else None
            if decision not in ("approve", "decline"):
                raise ValueError('expected {"decision": "approve" | "decline"}')
            session, decided = self.previews.decide(token, decision == "approve")
            if session is None:
                return 404, {"error": "no such preview"}
            if not decided:
                return 409, {"error": f"already {session.state}", **session.as_json()}
            return 200, session.as_json()
        if path == "network" and verb == "GET":
            return 200, [
                {
                    "identifier": p.identifier,
                    "scheme": p.scheme,
                    "name": p.name,
                    "country": p.country,
                    "access_point": p.access_point,
                    "behaviour": p.behaviour.value,
                    "version": p.version.value,
                    "evidence_type": p.evidence_type,
                    "region": p.region,
                }
                for p in state.network.providers
            ]
        return 404, {"error": f"no hook {verb} /_sandbox/{path}"}


def _fault(data: Any) -> tuple[str, int | str, int]:
    if not isinstance(data, dict):
        raise ValueError('expected {"status": 503 | "reset", "count": n, "endpoint": "wsplugin"}')
    status, count = data.get("status"), data.get("count", 1)
    endpoint = data.get("endpoint", "wsplugin")
    if endpoint not in FAULT_ENDPOINTS:
        raise ValueError(f"endpoint must be one of {list(FAULT_ENDPOINTS)}")
    if not isinstance(count, int) or isinstance(count, bool) or count < 0:
        raise ValueError("count must be a whole number >= 0")
    if status == "reset" or (
        isinstance(status, int) and not isinstance(status, bool) and 100 <= status <= 599
    ):
        return endpoint, status, count
    raise ValueError('status must be an HTTP status (100-599) or "reset"')
