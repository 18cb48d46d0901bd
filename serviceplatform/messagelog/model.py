"""The message log's values and the Protocol a source of messages implements.

A row is one message as the log lists it, whatever its source: a SOAP call (the audit
record), an OOTS evidence request, an outbox row. Rows are ordered newest first by
``(at, source, key)``; a page ends with a :class:`Cursor` naming its last row, and the next
page is what comes after it in that order, so pages are stable while new rows arrive.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final, Protocol

from sqlalchemy import ColumnElement, and_, false, or_

#: The outcomes a row can have: done, failed, still under way.
OUTCOMES: Final = ("ok", "fault", "pending")
#: At most this many rows per page.
MAX_PAGE: Final = 200


@dataclass(frozen=True, order=True)
class Cursor:
    """The position after which the next page starts: the last row's sort key."""

    at: datetime
    source: str
    #: The source's key as it sorts (``sort_key``: numbers zero-padded).
    key: str

    def encode(self) -> str:
        raw = json.dumps([self.at.isoformat(), self.source, self.key]).encode("utf-8")
        return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")

    @classmethod
    def decode(cls, text: str) -> Cursor:
        """The cursor ``encode`` made; ``ValueError`` for anything else."""
        try:
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
            at, source, key = json.loads(raw)
            moment = datetime.fromisoformat(at)
        except (binascii.Error, UnicodeDecodeError, TypeError, ValueError) as exc:
            raise ValueError(f"not a message log cursor: {text[:40]!r}") from exc
        if moment.tzinfo is None or not isinstance(source, str) or not isinstance(key, str):
            raise ValueError(f"not a message log cursor: {text[:40]!r}")
        return cls(moment, source, key)


#: The largest row id the databases hold (a signed 64-bit integer).
MAX_ROW_ID: Final = 2**63 - 1


def row_id(key: str) -> int | None:
    """The row id a key names, or None when it names none.

    Only ASCII digits within the databases' integer range: ``str.isdigit`` also accepts
    ``²``, which ``int`` refuses, and a larger number failed inside the database driver.
    """
    # Cursors carry keys zero-padded to 20 digits; a long number is not even converted.
    if not (key.isascii() and key.isdigit()) or len(key.lstrip("0")) > 19:
        return None
    number = int(key)
    return number if number <= MAX_ROW_ID else None


def sort_key(key: str) -> str:
    """A row key as it sorts: numbers zero-padded so text order is number order."""
    number = row_id(key)
    return f"{number:020d}" if number is not None else key


@dataclass(frozen=True, kw_only=True)
class MessageQuery:
    """The filters of one search; None means "any". Matching is exact except the time range."""

    since: datetime | None = None
    until: datetime | None = None
    authority_cvr: str | None = None
    service: str | None = None
    operation: str | None = None
    outcome: str | None = None
    error_code: str | None = None
    message_id: str | None = None
    conversation_id: str | None = None
    #: A CPR or CVR number in full.
    subject: str | None = None
    #: Only rows of this source (``call``, ``oots``, ``outbox``).
    source: str | None = None
    limit: int = 50
    after: Cursor | None = None


@dataclass(frozen=True, kw_only=True)
class MessageRow:
    source: str
    #: The row's id within its source (``42``, a request id).
    key: str
    at: datetime
    service: str
    operation: str | None
    outcome: str
    #: The source's own state (``fault``, ``failed``, ``pending``...).
    state: str
    authority_cvr: str | None = None
    error_code: str | None = None
    message_id: str | None = None
    conversation_id: str | None = None
    #: In full; every surface masks it unless the viewer may see it.
    subject: str | None = None
    latency_ms: float | None = None
    detail: str | None = None

    @property
    def ref(self) -> str:
        """What names the row in URLs and on the command line: ``call:42``."""
        return f"{self.source}:{self.key}"

    @property
    def cursor(self) -> Cursor:
        return Cursor(self.at, self.source, sort_key(self.key))


@dataclass(frozen=True)
class Section:
    """One part of a detail view: a titled table of JSON-able rows (never a document)."""

    title: str
    rows: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class MessageDetail:
    row: MessageRow
    sections: list[Section]
    #: Whether an operator may resend it now.
    resendable: bool = False


@dataclass(frozen=True)
class ResendResult:
    #: True when the message was handed on again (it may still fail later).
    sent: bool
    #: What happened, for people.
    text: str


@dataclass(frozen=True)
class Page:
    rows: list[MessageRow]
    #: The cursor of the next page; None on the last one.
    next: Cursor | None


class MessageSource(Protocol):
    """Where rows of one kind come from. Raises only platform errors."""

    #: The source name (``call``); part of every row's ``ref``.
    name: str

    def find(self, query: MessageQuery, limit: int) -> Sequence[MessageRow]:
        """At most ``limit`` rows matching ``query``, newest first, after ``query.after``."""
        ...

    def detail(self, key: str) -> MessageDetail | None:
        """One row with its sections; None when unknown."""
        ...

    def related(self, row: MessageRow) -> list[Section]:
        """Sections this source adds to another source's row (an OOTS call's request)."""
        ...

    def resend(self, key: str, *, actor: str) -> ResendResult:
        """Send the row's message again; ``ResendRefused`` when it may not be."""
        ...


def after_cursor(
    name: str, at: Any, key: Any, cursor: Cursor | None, key_value: Any
) -> ColumnElement[bool] | None:
    """The SQL condition "after ``cursor``" in the order ``(at, source, key)`` descending.

    ``at`` and ``key`` are the source's columns; ``key_value`` is ``cursor.key`` as the key
    column compares (an int for numeric ids).
    """
    if cursor is None:
        return None
    if name < cursor.source:
        return at <= cursor.at  # type: ignore[no-any-return]
    if name > cursor.source:
        return at < cursor.at  # type: ignore[no-any-return]
    return or_(at < cursor.at, and_(at == cursor.at, key < key_value))


def nothing() -> ColumnElement[bool]:
    """A condition no row meets: a filter the source has no column for."""
    return false()
