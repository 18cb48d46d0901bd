"""UtcDateTime's own SQLite bind conversion writes exactly what SQLAlchemy's generic one does."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import TypeDecorator
from sqlalchemy.dialects import postgresql, sqlite

from serviceplatform.store.models import UtcDateTime

VALUES = [
    datetime(2025, 3, 1, 12, 30, 15, 123456, tzinfo=UTC),
    datetime(2025, 3, 1, 12, 30, 15, tzinfo=UTC),  # no microseconds: still six digits
    datetime(2025, 3, 30, 3, 0, 0, 1, tzinfo=timezone(timedelta(hours=2))),
    datetime(2024, 12, 31, 23, 59, 59, 999999, tzinfo=timezone(timedelta(hours=-5, minutes=-30))),
    datetime(1, 1, 1, 0, 0, 0, tzinfo=UTC),  # a year of one digit is padded to four
    datetime(987, 6, 5, 4, 3, 2, 10, tzinfo=timezone(timedelta(hours=1))),
    datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
]


def _generic(dialect: Any) -> Any:
    # What SQLAlchemy composes from process_bind_param and the dialect's DATETIME.
    impl = UtcDateTime().dialect_impl(dialect)
    assert isinstance(impl, UtcDateTime)
    return TypeDecorator.bind_processor(impl, dialect)


def _ours(dialect: Any) -> Any:
    # As SQLAlchemy (and PreparedStatement) look the conversion up.
    return UtcDateTime().dialect_impl(dialect).bind_processor(dialect)


@pytest.mark.parametrize("value", VALUES, ids=str)
def test_sqlite_text_is_sqlalchemys(value: datetime) -> None:
    dialect = sqlite.dialect()
    ours = _ours(dialect)
    assert ours is not None
    assert ours(value) == _generic(dialect)(value)


def test_sqlite_keeps_none_and_refuses_a_naive_datetime() -> None:
    ours = _ours(sqlite.dialect())
    assert ours is not None
    assert ours(None) is None
    with pytest.raises(ValueError, match="naive"):
        ours(datetime(2025, 3, 1, 12, 30))


def test_postgresql_still_gets_an_aware_utc_datetime() -> None:
    dialect = postgresql.dialect()  # type: ignore[no-untyped-call]
    processor = _ours(dialect)
    value = datetime(2025, 3, 1, 14, 30, tzinfo=timezone(timedelta(hours=2)))
    converted = processor(value) if processor is not None else value
    assert converted == value
    assert converted.utcoffset() == timedelta(0)
