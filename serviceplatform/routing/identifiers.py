"""Danish person (CPR) and company (CVR) numbers: validation. Pure, no I/O.

A CPR number is ``DDMMYYSSSS``: the first six digits are the date of birth and the seventh
digit, with the two-digit year, decides the century (the CPR office's table):

=============  ==========================================
7th digit      century
=============  ==========================================
0-3            1900-1999
4, 9           2000-2036 if YY <= 36, else 1937-1999
5-8            2000-2057 if YY <= 57, else 1858-1899
=============  ==========================================

The modulus-11 check of CPR numbers was abandoned in 2007 (numbers without it are issued), so
only the date is checked. A CVR number is eight digits whose weighted sum with the weights
2, 7, 6, 5, 4, 3, 2, 1 is divisible by 11.

CPR numbers are personal data: log them only through :mod:`serviceplatform.logmask`.
"""

from __future__ import annotations

from datetime import date

_CVR_WEIGHTS = (2, 7, 6, 5, 4, 3, 2, 1)


def _is_ascii_digits(value: str, length: int) -> bool:
    # str.isdigit() accepts non-ASCII digits (Arabic-Indic, superscripts); registers do not.
    return len(value) == length and value.isascii() and value.isdigit()


def cpr_century(seventh_digit: int, yy: int) -> int:
    """The century (1800, 1900 or 2000) of a CPR number from its 7th digit and birth year."""
    if seventh_digit <= 3:
        return 1900
    if seventh_digit in (4, 9):
        return 2000 if yy <= 36 else 1900
    return 2000 if yy <= 57 else 1800


def cpr_birth_date(value: str) -> date | None:
    """The date of birth encoded in ``value``, or None when it is not a valid CPR number."""
    if not isinstance(value, str) or not _is_ascii_digits(value, 10):
        return None
    day, month, yy = int(value[0:2]), int(value[2:4]), int(value[4:6])
    year = cpr_century(int(value[6]), yy) + yy
    try:
        return date(year, month, day)
    except ValueError:
        return None


def is_valid_cpr(value: str) -> bool:
    """True when ``value`` is ten ASCII digits whose first six form a real date of birth."""
    return cpr_birth_date(value) is not None


def is_valid_cvr(value: str) -> bool:
    """True when ``value`` is eight ASCII digits passing the CVR modulus-11 check."""
    if not isinstance(value, str) or not _is_ascii_digits(value, 8):
        return False
    if value[0] == "0":
        # CVR numbers are issued from 10000000 up; a leading zero is a typo or padding.
        return False
    total = sum(int(digit) * weight for digit, weight in zip(value, _CVR_WEIGHTS, strict=True))
    return total % 11 == 0
