"""CPR and CVR validation at their edges: the century table, the date, the digits, modulus 11.

The century table is the CPR office's (the module's docstring); each row is checked at the
two-digit years where it turns, so a boundary moved by one year fails here.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from serviceplatform.routing.identifiers import (
    cpr_birth_date,
    cpr_century,
    is_valid_cpr,
    is_valid_cvr,
)


@pytest.mark.parametrize(
    ("seventh", "yy", "century"),
    [
        *((digit, yy, 1900) for digit in (0, 1, 2, 3) for yy in (0, 36, 37, 57, 58, 99)),
        *((digit, yy, 2000) for digit in (4, 9) for yy in (0, 1, 35, 36)),
        *((digit, yy, 1900) for digit in (4, 9) for yy in (37, 38, 57, 58, 99)),
        *((digit, yy, 2000) for digit in (5, 6, 7, 8) for yy in (0, 36, 37, 56, 57)),
        *((digit, yy, 1800) for digit in (5, 6, 7, 8) for yy in (58, 59, 99)),
    ],
)
def test_the_century_table(seventh: int, yy: int, century: int) -> None:
    assert cpr_century(seventh, yy) == century


@pytest.mark.parametrize(
    ("cpr", "born"),
    [
        ("0702851234", date(1985, 2, 7)),  # day, month and year all different
        ("3112993999", date(1999, 12, 31)),
        ("0102034321", date(2003, 2, 1)),  # 7th digit 4, YY 03
        ("1506459876", date(1945, 6, 15)),  # 7th digit 9, YY 45
        ("2808605123", date(1860, 8, 28)),  # 7th digit 5, YY 60
        ("2808578123", date(2057, 8, 28)),  # 7th digit 8, YY 57
        ("0101000000", date(1900, 1, 1)),
    ],
)
def test_the_birth_date_is_read_from_the_first_seven_digits(cpr: str, born: date) -> None:
    assert cpr_birth_date(cpr) == born
    assert is_valid_cpr(cpr)


@pytest.mark.parametrize(
    "value",
    [
        "3002901234",  # 30 February
        "2902011234",  # 29 February 1901
        "0000901234",
        "3204901234",  # 32 April
        "0113901234",  # month 13
        "07028512345",  # eleven digits
        "070285123",  # nine digits
        "07028512a4",
        "0702851234\n",
        "٠٧٠٢٨٥١٢٣٤",  # Arabic-Indic digits: isdigit() but not ASCII
        "",
    ],
)
def test_not_a_cpr_number(value: str) -> None:
    assert cpr_birth_date(value) is None
    assert not is_valid_cpr(value)


@pytest.mark.parametrize("value", [702851234, None, b"0702851234"])
def test_a_value_that_is_not_text_is_neither_cpr_nor_cvr(value: Any) -> None:
    assert cpr_birth_date(value) is None
    assert not is_valid_cpr(value)
    assert not is_valid_cvr(value)


@pytest.mark.parametrize(
    ("cvr", "valid"),
    [
        ("29189846", True),
        ("12345674", True),
        ("10000009", True),
        ("99999993", True),
        ("29189845", False),
        ("29189856", False),  # a weight moved: 2 digits swapped
        ("01000004", False),  # passes modulus 11, but starts with 0
        ("00000000", False),
        ("2918984", False),
        ("291898460", False),
        ("2918984x", False),
        ("".join(chr(0xFF10 + int(d)) for d in "29189846"), False),  # full-width digits
    ],
)
def test_cvr_numbers(cvr: str, valid: bool) -> None:
    assert is_valid_cvr(cvr) is valid
