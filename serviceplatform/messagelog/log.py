"""One newest-first list over every source of messages, paged by cursor; details; resend.

Each source answers at most ``limit + 1`` rows after the cursor in the shared order
``(at, source, key)``; the merge keeps the newest ``limit`` and the cursor of the last one.
A page therefore costs one indexed query per source, however deep it is.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from serviceplatform.errors import MessageNotFound
from serviceplatform.messagelog.calls import CallSource
from serviceplatform.messagelog.model import (
    MAX_PAGE,
    MessageDetail,
    MessageQuery,
    MessageSource,
    Page,
    ResendResult,
)

if TYPE_CHECKING:
    from serviceplatform.platform import Platform


class MessageLog:
    def __init__(self, sources: Sequence[MessageSource]) -> None:
        self.sources = {source.name: source for source in sources}

    @classmethod
    def for_platform(cls, platform: Platform) -> MessageLog:
        """The calls, and every source the registered integrations declare."""
        from serviceplatform.registry import message_sources

        return cls([CallSource(platform.db), *message_sources(platform)])

    def page(self, query: MessageQuery) -> Page:
        limit = max(1, min(query.limit, MAX_PAGE))
        rows = [
            row
            for name, source in self.sources.items()
            if query.source in (None, name)
            for row in source.find(query, limit + 1)
        ]
        rows.sort(key=lambda row: row.cursor, reverse=True)
        shown = rows[:limit]
        return Page(shown, shown[-1].cursor if len(rows) > limit else None)

    def _source(self, ref: str) -> tuple[MessageSource, str]:
        name, _, key = ref.partition(":")
        source = self.sources.get(name)
        if source is None or not key:
            raise MessageNotFound(ref)
        return source, key

    def detail(self, ref: str) -> MessageDetail:
        """The row ``ref`` names (``call:42``) with its sections and the others' related ones."""
        source, key = self._source(ref)
        found = source.detail(key)
        if found is None:
            raise MessageNotFound(ref)
        for other in self.sources.values():
            if other is not source:
                found.sections.extend(other.related(found.row))
        return found

    def resend(self, ref: str, *, actor: str) -> ResendResult:
        """Hand the row ``ref`` names on again: SP-611 (404) when it names no row, as for
        :meth:`detail`; SP-612 (409) when the row exists but cannot be resent."""
        source, key = self._source(ref)
        if source.detail(key) is None:
            raise MessageNotFound(ref)
        return source.resend(key, actor=actor)
