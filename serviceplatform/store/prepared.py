"""Core statements compiled once per dialect, for the few statements every SOAP call runs.

A statement run through a SQLAlchemy ``Connection`` costs about 0.1-0.2 ms of CPU on top of
the database's own few microseconds: pool checkout with its events, the ``begin`` event,
the compiled-statement cache lookup, building an execution context, parameter and result
processing, commit, and the pool's reset on return. The platform runs three such statements
per call (replay cache, routing version, audit), so ``Database.run`` executes a
:class:`PreparedStatement` straight on a pooled DBAPI cursor instead.

Nothing about the statement changes: SQLAlchemy still writes the SQL (for the connected
dialect, once) and its column types still convert every parameter (the same bind processors
SQLAlchemy applies, so a ``UtcDateTime`` is stored exactly as through the ORM). Only
statements whose parameters are all named ``bindparam``\\ s can be prepared.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import Dialect
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler

BindProcessor = Callable[[Any], Any]


class PreparedStatement:
    """A statement's SQL and parameter conversion for one dialect.

    Raises ``ValueError`` at construction for a statement whose parameters cannot be passed
    by name (escaped or expanding bind names, or a bind the SQL does not use).
    """

    def __init__(self, statement: ClauseElement, dialect: Dialect) -> None:
        compiled = statement.compile(dialect=dialect)
        if not isinstance(compiled, SQLCompiler):
            raise ValueError("only SQL statements can be prepared")
        if getattr(compiled, "escaped_bind_names", None):
            raise ValueError("bind parameter names that need escaping are not supported")
        if any(bind.expanding for bind in compiled.binds.values()):
            raise ValueError("expanding bind parameters are not supported")
        self.sql: str = compiled.string
        #: Parameter names in the order of the SQL's placeholders (positional paramstyles).
        self.order: tuple[str, ...] | None = (
            tuple(compiled.positiontup or ()) if compiled.positional else None
        )
        processors: dict[str, BindProcessor] = {}
        for name, bind in compiled.binds.items():
            processor = bind.type.dialect_impl(dialect).bind_processor(dialect)
            if processor is not None:
                processors[name] = processor
        self.names = frozenset(compiled.binds)
        if self.order is not None and set(self.order) != self.names:
            raise ValueError("bind parameters missing from the SQL are not supported")
        # (name, its conversion) in the order the driver takes them, worked out once:
        # ``parameters`` runs twice per SOAP call.
        ordered = self.order if self.order is not None else tuple(sorted(self.names))
        self._plan = tuple((name, processors.get(name)) for name in ordered)

    def parameters(self, values: Mapping[str, Any]) -> Sequence[Any] | dict[str, Any]:
        """``values`` converted by the column types, in the form the DBAPI driver takes.

        Raises ``KeyError`` for a missing value and whatever a type's conversion raises
        (``ValueError`` for a naive datetime in a ``UtcDateTime`` column).
        """
        if self.order is None:
            return {
                name: values[name] if processor is None else processor(values[name])
                for name, processor in self._plan
            }
        return [
            values[name] if processor is None else processor(values[name])
            for name, processor in self._plan
        ]
