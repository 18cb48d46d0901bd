"""The message log as JSON, the one rendering of the admin API, the page and ``--json``.

Subjects (CPR numbers) are masked unless the caller says the viewer may see them; a CVR
number is shown as it is (``logmask.mask_subject``). Every section row's ``subject`` is
masked the same way, so no source can leak one by adding a section.
"""

from __future__ import annotations

from typing import Any

from serviceplatform.logmask import mask_subject
from serviceplatform.messagelog.model import MessageDetail, MessageRow, Page

Json = dict[str, Any]


def _subject(value: Any, full: bool) -> Any:
    return value if full or not isinstance(value, str) else mask_subject(value)


def message_json(row: MessageRow, *, full_subjects: bool = False) -> Json:
    return {
        "ref": row.ref,
        "source": row.source,
        "at": row.at.isoformat(),
        "service": row.service,
        "operation": row.operation,
        "outcome": row.outcome,
        "state": row.state,
        "authority_cvr": row.authority_cvr,
        "error_code": row.error_code,
        "message_id": row.message_id,
        "conversation_id": row.conversation_id,
        "subject": _subject(row.subject, full_subjects),
        "latency_ms": round(row.latency_ms, 1) if row.latency_ms is not None else None,
        "detail": row.detail,
    }


def page_json(page: Page, *, full_subjects: bool = False) -> Json:
    return {
        "messages": [message_json(row, full_subjects=full_subjects) for row in page.rows],
        "next": page.next.encode() if page.next is not None else None,
    }


def detail_json(detail: MessageDetail, *, full_subjects: bool = False) -> Json:
    return {
        "message": message_json(detail.row, full_subjects=full_subjects),
        "resendable": detail.resendable,
        "sections": [
            {
                "title": section.title,
                "rows": [
                    {k: _subject(v, full_subjects) if k == "subject" else v for k, v in r.items()}
                    for r in section.rows
                ],
            }
            for section in detail.sections
        ],
    }
