"""Validation of request and response elements against the contract's compiled XML Schema.

Schema errors become ``SchemaViolation`` (SP-105) with a text that names the line and the
rule broken but never the offending value: that value may be a CPR number, and fault texts
are logged.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from typing import Any, cast

from lxml import etree

from serviceplatform.errors import SchemaViolation

__all__ = ["ContractValidator"]

_QUOTED_VALUE = re.compile(r"(?:[Tt]he value )?'[^'{}]*'(?= is not)")


class ContractValidator:
    """Validates request elements against the contract; one compiled schema per thread.

    An ``XMLSchema`` keeps the errors of its last run in one shared ``error_log``, so a
    schema shared by threads could report another request's error.
    """

    def __init__(self, factory: Callable[[], etree.XMLSchema]) -> None:
        self._factory = factory
        self._local = threading.local()
        self._local.schema = factory()  # fail at start, not on the first request

    def validate(self, element: etree._Element) -> None:
        schema: etree.XMLSchema | None = getattr(self._local, "schema", None)
        if schema is None:
            schema = self._local.schema = self._factory()
        if not schema.validate(element):
            raise SchemaViolation(_schema_error_text(cast(Any, schema.error_log).last_error))


def _schema_error_text(error: Any) -> str:
    # libxml2 quotes the offending value ("The value '0101901234' is not accepted ..."); it
    # may be a CPR number, and fault texts are logged, so values are dropped.
    message = _QUOTED_VALUE.sub("the value", str(getattr(error, "message", "invalid")))
    return f"line {getattr(error, 'line', 0)}: {message}"
