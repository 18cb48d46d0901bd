"""The admin API's message log and usage overview (docs/admin-api.md, "Message log").

An operator sees everything; an authority administrator only its own authority's messages
and usage (another authority's message answers 404, as an unknown one does); a supplier
none. Subjects (CPR numbers) are shown in full only to the authority administrator, whose
citizens they are; an operator sees them masked and may still search by one. Only an
operator resends, and the app audits it.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Final

from serviceplatform.admin.auth import AUTHORITY_ADMIN, OPERATOR, Principal
from serviceplatform.errors import InvalidAdminRequest, MessageNotFound
from serviceplatform.messagelog.log import MessageLog
from serviceplatform.messagelog.model import MAX_PAGE, OUTCOMES, Cursor, MessageDetail, MessageQuery
from serviceplatform.messagelog.render import detail_json, page_json
from serviceplatform.messagelog.usage import usage, usage_json
from serviceplatform.platform import Platform
from serviceplatform.registry import message_log_services
from serviceplatform.routing.identifiers import is_valid_cvr

Json = dict[str, Any]
#: The longest a text filter may be (MessageIDs are the longest values searched).
_MAX_TEXT = 255
_ERROR_CODE: Final = re.compile(r"SP-[0-9]{3}")
#: A subject is searched in full: a CPR number (10 digits) or a CVR number (8).
_SUBJECT: Final = re.compile(r"[0-9]{10}|[0-9]{8}")
_TEXT_FILTERS = (
    "authority_cvr",
    "service",
    "operation",
    "error_code",
    "message_id",
    "conversation_id",
    "subject",
)


def full_subjects(principal: Principal) -> bool:
    """Whether ``principal`` sees subjects unmasked: its own authority's citizens."""
    return principal.role == AUTHORITY_ADMIN


def parse_moment(name: str, text: str, *, end: bool = False) -> datetime:
    """``2026-11-30`` (the day's start, or with ``end`` the next day's) or an ISO timestamp
    (UTC unless it names a zone)."""
    try:
        if len(text) == 10:
            day = date.fromisoformat(text) + timedelta(days=1 if end else 0)
            return datetime.combine(day, time(), tzinfo=UTC)
        moment = datetime.fromisoformat(text)
        # In UTC here, so that a moment outside the years 1-9999 in UTC is this request's
        # error, not the database's.
        moment = (moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)).astimezone(
            UTC
        )
    except (ValueError, OverflowError):
        # OverflowError: the day after 9999-12-31, the end of an ``until`` of that day.
        raise InvalidAdminRequest(f"{name} must be YYYY-MM-DD or an ISO timestamp") from None
    return moment


def filter_problem(name: str, value: str, services: Collection[str]) -> str | None:
    """What is wrong with a message-log filter of a fixed vocabulary or format; else None.

    Such a filter that matches nothing by its form (``--authority abc``, ``--service sf225``)
    answered an empty page, as if there were no such messages.
    """
    if name == "authority_cvr" and not is_valid_cvr(value):
        return f"{value!r} is not a CVR number (8 digits with a valid check digit)"
    if name == "service" and value not in services:
        return f"{value!r} is not a service: {', '.join(sorted(services))}"
    if name == "error_code" and not _ERROR_CODE.fullmatch(value):
        return f"{value!r} is not an error code: SP- and three digits, e.g. SP-302"
    if name == "subject" and not (_SUBJECT.fullmatch(value)):
        return f"{value!r} is not a CPR number (10 digits) or CVR number (8 digits)"
    return None


def message_query(
    params: dict[str, str], sources: set[str], services: Collection[str] | None = None
) -> MessageQuery:
    """The query the URL parameters describe; ``InvalidAdminRequest`` naming a bad one.

    ``services``: the service names the log can hold (default: the registry's).
    """
    if services is None:
        services = message_log_services()
    values: dict[str, Any] = {}
    for name in _TEXT_FILTERS:
        value = (params.get(name) or "").strip()
        if len(value) > _MAX_TEXT:
            raise InvalidAdminRequest(f"{name} is longer than {_MAX_TEXT} characters")
        if value:
            problem = filter_problem(name, value, services)
            if problem is not None:
                raise InvalidAdminRequest(f"{name}: {problem}")
            values[name] = value
    outcome = params.get("outcome") or None
    if outcome is not None and outcome not in OUTCOMES:
        raise InvalidAdminRequest(f"outcome must be one of {', '.join(OUTCOMES)}")
    source = params.get("source") or None
    if source is not None and source not in sources:
        raise InvalidAdminRequest(f"source must be one of {', '.join(sorted(sources))}")
    limit = params.get("limit", "50")
    if not (limit.isascii() and limit.isdigit()) or not 1 <= int(limit) <= MAX_PAGE:
        raise InvalidAdminRequest(f"limit must be 1-{MAX_PAGE}")
    after = None
    if params.get("after"):
        try:
            after = Cursor.decode(params["after"])
        except ValueError as exc:
            raise InvalidAdminRequest(str(exc)) from None
    since = parse_moment("since", params["since"]) if params.get("since") else None
    until = parse_moment("until", params["until"], end=True) if params.get("until") else None
    return MessageQuery(
        **values,
        outcome=outcome,
        source=source,
        since=since,
        until=until,
        limit=int(limit),
        after=after,
    )


class OperationsViews:
    def __init__(self, platform: Platform) -> None:
        self.platform = platform
        self.log = MessageLog.for_platform(platform)

    def _visible(self, principal: Principal, ref: str) -> MessageDetail:
        principal.require(OPERATOR, AUTHORITY_ADMIN)
        detail = self.log.detail(ref)
        if (
            principal.role == AUTHORITY_ADMIN
            and detail.row.authority_cvr != principal.authority_cvr
        ):
            raise MessageNotFound(ref)  # the same answer as for an unknown one: no probing
        return detail

    def list_messages(self, principal: Principal, query: dict[str, str], **_: Any) -> Json:
        principal.require(OPERATOR, AUTHORITY_ADMIN)
        parsed = message_query(dict(query), set(self.log.sources))
        if principal.role == AUTHORITY_ADMIN:
            # Its own authority, whatever it asked for: set after the caller's filters are
            # checked, as the principal's CVR is the configuration's, not the request's.
            parsed = replace(parsed, authority_cvr=principal.authority_cvr)
        page = self.log.page(parsed)
        answer = page_json(page, full_subjects=full_subjects(principal))
        answer["sources"] = sorted(self.log.sources)
        return answer

    def get_message(self, principal: Principal, source: str, key: str, **_: Any) -> Json:
        detail = self._visible(principal, f"{source}:{key}")
        answer = detail_json(detail, full_subjects=full_subjects(principal))
        answer["resendable"] = detail.resendable and principal.role == OPERATOR
        return answer

    def resend_message(self, principal: Principal, source: str, key: str, **_: Any) -> Json:
        principal.require(OPERATOR)
        ref = f"{source}:{key}"
        result = self.log.resend(ref, actor=principal.label)
        detail = self.log.detail(ref)
        return {
            "sent": result.sent,
            "text": result.text,
            "authority_cvr": detail.row.authority_cvr,
            **detail_json(detail),
        }

    def usage(self, principal: Principal, query: dict[str, str], **_: Any) -> Json:
        principal.require(OPERATOR, AUTHORITY_ADMIN)
        raw = query.get("days", "30")
        if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= 31:
            raise InvalidAdminRequest("days must be 1-31")
        days = int(raw)
        authority = query.get("authority_cvr") or None
        if principal.role == AUTHORITY_ADMIN:
            authority = principal.authority_cvr
        now = self.platform.clock()
        rows = usage(self.platform.db, now=now, days=days, authority_cvr=authority)
        first = (now - timedelta(days=days - 1)).date()
        return usage_json(rows, first=first, last=now.date())
