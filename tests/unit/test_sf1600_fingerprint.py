"""The sending fingerprint the ledger compares: what makes a reused AfsendelseIdentifikator.

A reused id with other content, the recipient above all, must be told apart (SP-509), never
answered "sent before". The value itself is stored in the ledger: a change of the hash would
make every retry of a sending written before the change look like other content.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from integrations.sf2250.messages import Subject
from tests.unit.test_sms_rules import brev

#: ``brev().fingerprint()`` as stored by every release so far (ledger rows keep it).
STORED = "0cc6b0ee791810986c7cab57e4fb4653dd8821e2b522a10cfe6a4556e051121f"


def test_the_fingerprint_is_the_one_existing_ledger_rows_hold() -> None:
    assert brev().fingerprint() == STORED


@pytest.mark.parametrize(
    "changes",
    [
        {"recipient": Subject("cpr", "0202901234")},
        {"recipient": Subject("cvr", "29189846")},
        {"recipient": None},
        {"content": b"Husk din tid i morgen kl. 11"},
        {"kanalvalg": "F"},
        {"prioritet": "M"},
        {"filformat": "PDF"},
        {"titel": "Anden titel"},
        {"indholdstype": 7},
    ],
)
def test_other_content_gives_another_fingerprint(changes: dict[str, object]) -> None:
    assert replace(brev(), **changes).fingerprint() != brev().fingerprint()  # type: ignore[arg-type]


def test_the_id_and_the_authority_context_are_not_content() -> None:
    same = replace(brev(), afsendelse_id="sms-2", municipality_cvr="29189846")
    assert same.fingerprint() == brev().fingerprint()
