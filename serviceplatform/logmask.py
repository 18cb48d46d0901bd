"""Keep CPR numbers out of logs and other texts: the one place that masks them as ``DDMMYY****``.

* :func:`mask_cpr` masks one value known to be a CPR number (a call's subject, a table cell);
  :func:`mask_subject` one subject that is a CVR number (public, shown in full) or not.
* :func:`mask_cpr_numbers` masks every CPR-like number in free text. By default a CPR-like
  number is ten digits, optionally with a dash after the sixth (``010190-1234``), standing
  alone: not part of a longer run of letters or digits. That leaves CVR numbers (eight
  digits), UUIDs and longer numbers alone, and deliberately masks some ten-digit numbers that
  are not CPR numbers: a masked timestamp is harmless, a leaked CPR number is not. Texts from
  an upstream peer (its error bodies, the paths it echoes) are masked with
  ``touching_letters=True``: every run of exactly ten ASCII digits, letters around it or not.
* :class:`CprMaskingFilter` applies :func:`mask_cpr_numbers` to log records.

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
from typing import Final

_CPR_LIKE: Final = re.compile(r"(?<![0-9A-Za-z])(\d{6})-?\d{4}(?![0-9A-Za-z])")
_TEN_DIGIT_RUN: Final = re.compile(r"(?<![0-9])([0-9]{6})[0-9]{4}(?![0-9])")
#: The length of a CVR number, the one subject that is not personal data.
_CVR_LENGTH: Final = 8


def mask_cpr(value: str) -> str:
    """A CPR number fit for logs: the date part and ``****`` (``010190****``).

    Anything that is not exactly ten characters is masked entirely, so a malformed number
    that might still be personal data never reaches a log in clear.
    """
    if not isinstance(value, str) or len(value) != 10:
        return "**********"
    return value[:6] + "****"


def mask_subject(subject: str | None) -> str | None:
    """A call's subject fit for display: a CVR number (8 characters) in full, else :func:`mask_cpr`.

    Anything but a CVR number may be personal data. ``None`` (no subject) stays ``None``.
    """
    if subject is None:
        return None
    return subject if len(subject) == _CVR_LENGTH else mask_cpr(subject)


def mask_cpr_numbers(text: str, *, touching_letters: bool = False) -> str:
    """``text`` with every CPR-like number replaced by its date part and ``****``.

    ``touching_letters`` masks every run of exactly ten ASCII digits instead, letters around
    it or not (``boks0101901234``), for texts from an upstream peer (see above).
    """
    pattern = _TEN_DIGIT_RUN if touching_letters else _CPR_LIKE
    return pattern.sub(r"\1****", text)


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
