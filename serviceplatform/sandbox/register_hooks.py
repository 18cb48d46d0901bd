"""The simulated NemSMS register's test hooks: JSON over plain HTTP under ``/_sandbox/``.

The hooks of SANDBOX.md read and change the register's :class:`RegisterState`: the recorded
requests (``requests``), the subscription lists per SysID (``subscriptions/<sysid>``), an
end user's last ``Myndighedstilmelding`` (``endusers/<cpr|cvr>``), injected faults
(``faults``: the next ``count`` register requests answer an HTTP status, a TCP reset, or
answer only after ``seconds``), the register's clock (``clock``: fix an instant or return to
the running clock; in a sandbox also the business clock of ``--workdir`` commands), the SMS
sent through EP_NS4 (``sms``) and the servers' counters (``stats``). They change state, so
they listen on loopback only.

A subscription list may be national: bodies up to ``MAX_LIST_BODY_BYTES``, or generated
(:mod:`serviceplatform.sandbox.register_lists`).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, ClassVar, Final
from urllib.parse import unquote

from serviceplatform.sandbox.httpserver import HooksHandler, QuietHandler
from serviceplatform.sandbox.register_lists import parse_list_body
from serviceplatform.sandbox.register_state import (
    CPR,
    CVR,
    SYSID,
    RegisterState,
    iso_utc,
    parse_end_user,
)

__all__ = ["MAX_LIST_BODY_BYTES", "hooks_handler"]

#: Largest hook body: a stored list of 6 million entries and more is about 100 MiB of JSON.
MAX_LIST_BODY_BYTES: Final = 512 * 1024 * 1024
#: Longest delay the ``faults`` hook injects.
_MAX_DELAY_SECONDS: Final = 600.0


def hooks_handler(state: RegisterState, stats: Callable[[], Any]) -> type[QuietHandler]:
    """A handler class serving the hooks over ``state``; ``stats`` answers ``GET stats``."""
    return type("ControlHandler", (_ControlHandler,), {"state": state, "stats": stats})


class _ControlHandler(HooksHandler):
    state: ClassVar[RegisterState]
    stats: ClassVar[Any]
    max_body_bytes = MAX_LIST_BODY_BYTES

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
            fault, count, delay = _fault(data)
            with state.lock:
                state.fault, state.fault_remaining, state.fault_delay = fault, count, delay
            return 200, _fault_json(fault, count, delay)
        if path == "faults" and verb == "GET":
            with state.lock:
                return 200, _fault_json(state.fault, state.fault_remaining, state.fault_delay)
        if path.startswith("subscriptions/") and verb in ("PUT", "GET"):
            sysid = unquote(path.removeprefix("subscriptions/"))
            if not SYSID.fullmatch(sysid):
                raise ValueError("malformed SysID")
            if verb == "PUT":
                # Parsed outside the lock: a national list takes seconds to check.
                listed = parse_list_body(
                    data,
                    state.list_date(),
                    lambda v: CPR.fullmatch(v) is not None,
                    lambda v: CVR.fullmatch(v) is not None,
                )
                with state.lock:
                    state.set_list(sysid, listed)
            with state.lock:
                found = state.lists.get(sysid)
            return 200, found.describe() if found is not None else {"cpr": [], "cvr": []}
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
                    state.fix_clock(fixed)
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


def _fault(data: Any) -> tuple[int | str, int, float]:
    if not isinstance(data, dict):
        raise ValueError('expected {"status": 503 | "reset" | "delay", "count": n}')
    status, count = data.get("status"), data.get("count", 1)
    if not isinstance(count, int) or isinstance(count, bool) or count < 0:
        raise ValueError("count must be a whole number >= 0")
    if status == "delay":
        seconds = data.get("seconds")
        if (
            not isinstance(seconds, int | float)
            or isinstance(seconds, bool)
            or not 0 <= seconds <= _MAX_DELAY_SECONDS
        ):
            raise ValueError(f"a delay needs seconds from 0 to {_MAX_DELAY_SECONDS:.0f}")
        return status, count, float(seconds)
    if set(data) - {"status", "count"}:
        raise ValueError("only a delay takes seconds")
    if status == "reset" or (isinstance(status, int) and 100 <= status <= 599):
        return status, count, 0.0
    raise ValueError('status must be an HTTP status (100-599), "reset" or "delay"')


def _fault_json(status: int | str | None, count: int, delay: float) -> dict[str, Any]:
    answer: dict[str, Any] = {"status": status, "count": count}
    if status == "delay":
        answer["seconds"] = delay
    return answer


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
