"""Keep CPR numbers out of log output: a logging filter that masks them as ``DDMMYY****``.

A CPR-like number is ten digits, optionally with a dash after the sixth (``010190-1234``),
standing alone: not part of a longer run of letters or digits. That leaves CVR numbers (eight
digits), UUIDs and longer numbers alone, and deliberately masks some ten-digit numbers that are
not CPR numbers: a masked timestamp is harmless, a leaked CPR number is not.

The filter rewrites the *formatted* message (``msg % args``), so a CPR passed as an argument
(``logger.info("cpr %s", cpr)``) is caught as well as one pasted into the message, and it
masks the text of an attached traceback too.

Logger filters run only for records logged on that very logger, not for records propagated
from child loggers; handler filters run for everything the handler emits. So install it on
the handlers (:func:`install` accepts a handler), or on a logger after its handlers are
configured: it then attaches to the logger *and* to each of its handlers.
"""

from __future__ import annotations

import logging
import re

_CPR_LIKE = re.compile(r"(?<![0-9A-Za-z])(\d{6})-?\d{4}(?![0-9A-Za-z])")


def mask_cpr_numbers(text: str) -> str:
    """``text`` with every CPR-like number replaced by its date part and ``****``."""
    return _CPR_LIKE.sub(r"\1****", text)


class CprMaskingFilter(logging.Filter):
    """Masks CPR-like numbers in a record's message, arguments and traceback text."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):
            # A broken format string: mask what there is rather than drop the record.
            message = f"{record.msg} {record.args}"
        masked = mask_cpr_numbers(message)
        if masked != message:
            record.msg = masked
            record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = mask_cpr_numbers(record.exc_text)
        if record.stack_info:
            record.stack_info = mask_cpr_numbers(record.stack_info)
        return True


def install(target: logging.Logger | logging.Handler | None = None) -> CprMaskingFilter:
    """Attach a masking filter to ``target``; idempotent.

    A handler gets the filter itself. A logger (default: root) gets it on itself and on each
    of its current handlers, since a logger's own filters skip propagated records.
    """
    if isinstance(target, logging.Handler):
        return _attach(target)
    logger = target if target is not None else logging.getLogger()
    masking = _attach(logger)
    for handler in logger.handlers:
        _attach(handler, masking)
    return masking


def _attach(
    filterer: logging.Filterer, masking: CprMaskingFilter | None = None
) -> CprMaskingFilter:
    existing = next((f for f in filterer.filters if isinstance(f, CprMaskingFilter)), None)
    if existing is not None:
        return existing
    masking = masking or CprMaskingFilter()
    filterer.addFilter(masking)
    return masking
