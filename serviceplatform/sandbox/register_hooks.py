"""The simulated NemSMS register's test hooks: JSON over plain HTTP under ``/_sandbox/``.

The hooks of SANDBOX.md read and change the register's :class:`RegisterState`: the recorded
requests (``requests``), the subscription lists per SysID (``subscriptions/<sysid>``), an
end user's last ``Myndighedstilmelding`` (``endusers/<cpr|cvr>``), injected faults
(``faults``: the next ``count`` register requests answer an HTTP status or a TCP reset), the
register's clock (``clock``: fix an instant or return to the running clock), the SMS sent
through EP_NS4 (``sms``) and the servers' counters (``stats``). They change state, so they
listen on loopback only.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, ClassVar
from urllib.parse import unquote

from serviceplatform.sandbox.httpserver import HooksHandler, QuietHandler
from serviceplatform.sandbox.register_state import (
    CPR,
    CVR,
    SYSID,
    RegisterState,
    iso_utc,
    parse_end_user,
)

__all__ = ["hooks_handler"]


def hooks_handler(state: RegisterState, stats: Callable[[], Any]) -> type[QuietHandler]:
    """A handler class serving the hooks over ``state``; ``stats`` answers ``GET stats``."""
    return type("ControlHandler", (_ControlHandler,), {"state": state, "stats": stats})


class _ControlHandler(HooksHandler):
    state: ClassVar[RegisterState]
    stats: ClassVar[Any]

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
            fault, count = _fault(data)
            with state.lock:
                state.fault, state.fault_remaining = fault, count
            return 200, {"status": fault, "count": count}
        if path == "faults" and verb == "GET":
            with state.lock:
                return 200, {"status": state.fault, "count": state.fault_remaining}
        if path.startswith("subscriptions/") and verb in ("PUT", "GET"):
            sysid = unquote(path.removeprefix("subscriptions/"))
            if not SYSID.fullmatch(sysid):
                raise ValueError("malformed SysID")
            with state.lock:
                if verb == "PUT":
                    state.set_subscriptions(sysid, *_subscription_list(data))
                cprs, cvrs = state.subscriptions.get(sysid, ([], []))
                return 200, {"cpr": list(cprs), "cvr": list(cvrs)}
        if path.startswith("endusers/") and verb == "GET":
            subject = parse_end_user(path.removeprefix("endusers/"))
            with state.lock:
                user = state.users.get(subject)
                if user is None:
                    return 404, {"error": "no such end user"}
                return 200, {"kind": subject[0], "tilmeldt": user.tilmeldt}
        if path == "clock" and verb in ("GET", "PUT"):
            if verb == "PUT":
                fixed = _clock(data)
                with state.lock:
                    state.fixed_now = fixed
            return 200, {"now": iso_utc(state.now()), "fixed": state.fixed_now is not None}
        if path == "sms" and verb in ("GET", "DELETE"):
            with state.lock:
                sent = [sending.as_json() for sending in state.sendings.values()]
                if verb == "DELETE":
                    state.sendings.clear()
            return (200, sent) if verb == "GET" else (200, {"deleted": len(sent)})
        if path == "stats" and verb == "GET":
            return 200, self.stats()
        return 404, {"error": f"no hook {verb} /_sandbox/{path}"}


def _fault(data: Any) -> tuple[int | str, int]:
    if not isinstance(data, dict):
        raise ValueError('expected {"status": 503 | "reset", "count": n}')
    status, count = data.get("status"), data.get("count", 1)
    if not isinstance(count, int) or isinstance(count, bool) or count < 0:
        raise ValueError("count must be a whole number >= 0")
    if status == "reset" or (isinstance(status, int) and 100 <= status <= 599):
        return status, count
    raise ValueError('status must be an HTTP status (100-599) or "reset"')


def _clock(data: Any) -> datetime | None:
    if not isinstance(data, dict) or set(data) != {"now"}:
        raise ValueError('expected {"now": "<ISO 8601 with offset>" | null}')
    value = data["now"]
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError("now must be an ISO 8601 string or null")
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("now must carry a UTC offset (e.g. Z or +01:00)")
    return moment


def _subscription_list(data: Any) -> tuple[list[str], list[str]]:
    if not isinstance(data, dict) or set(data) - {"cpr", "cvr"}:
        raise ValueError('expected {"cpr": [...], "cvr": [...]}')
    cprs, cvrs = data.get("cpr", []), data.get("cvr", [])
    if not all(isinstance(v, str) and CPR.fullmatch(v) for v in cprs):
        raise ValueError("every cpr must be 10 digits")
    if not all(isinstance(v, str) and CVR.fullmatch(v) for v in cvrs):
        raise ValueError("every cvr must be 8 digits")
    return list(cprs), [v.removeprefix(":") for v in cvrs]
