"""``serviceplatform audit tail``: newest last, CPR numbers masked in every format."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from serviceplatform.commands.audit import audit
from serviceplatform.commands.context import CliContext
from serviceplatform.config import Settings
from serviceplatform.store.audit import AuditEntry, AuditLog
from serviceplatform.store.db import Database

AT = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def obj(tmp_path: Path, database: Database) -> CliContext:
    return CliContext(Settings(base_dir=str(tmp_path)), known_services=dict, database=database)


def _run(obj: CliContext, *args: str) -> Result:
    return CliRunner().invoke(audit, ["tail", *args], obj=obj)


def _fill(database: Database, count: int = 3) -> None:
    log = AuditLog(database)
    for i in range(count):
        log.write(
            AuditEntry(
                at=AT + timedelta(seconds=i),
                message_id=f"urn:uuid:m{i}",
                authority_cvr="29189846",
                service="sf2250",
                operation="TilmeldNemSMS",
                subject="0101901234" if i % 2 == 0 else "12345674",
                sysid="2250001",
                upstream_status=200 if i < 2 else 503,
                outcome="ok" if i < 2 else "fault",
                error_code=None if i < 2 else "SP-404",
                latency_ms=10.25 + i,
                detail=None if i < 2 else "register unavailable for 0101901234",
            )
        )


def test_tail_prints_newest_last_with_cpr_masked(obj: CliContext, database: Database) -> None:
    _fill(database)
    result = _run(obj)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split()[:3] == ["AT", "(UTC)", "AUTHORITY"]
    assert len(lines) == 4
    for line, message_id in zip(
        lines[1:], ["urn:uuid:m0", "urn:uuid:m1", "urn:uuid:m2"], strict=True
    ):
        assert message_id in line
    assert "2025-03-01 12:00:00.000Z" in lines[1]
    assert "010190****" in lines[1]
    assert "12345674" in lines[2]
    assert "fault SP-404" in lines[3]
    assert "register unavailable for 010190****" in lines[3]
    assert "0101901234" not in result.output


def test_tail_limits_to_the_latest_n(obj: CliContext, database: Database) -> None:
    _fill(database, 5)
    result = _run(obj, "-n", "2")
    assert result.exit_code == 0, result.output
    body = result.output.splitlines()[1:]
    assert len(body) == 2
    assert "urn:uuid:m3" in body[0]
    assert "urn:uuid:m4" in body[1]


def test_tail_json_is_masked_too(obj: CliContext, database: Database) -> None:
    _fill(database)
    result = _run(obj, "--json", "-n", "10")
    assert result.exit_code == 0, result.output
    records = json.loads(result.output)
    assert [r["message_id"] for r in records] == ["urn:uuid:m0", "urn:uuid:m1", "urn:uuid:m2"]
    assert [r["subject"] for r in records] == ["010190****", "12345674", "010190****"]
    assert records[2]["detail"] == "register unavailable for 010190****"
    assert records[0]["at"] == "2025-03-01T12:00:00+00:00"
    assert records[2]["upstream_status"] == 503
    assert records[2]["latency_ms"] == 12.25
    assert "0101901234" not in result.output


def test_tail_of_an_empty_trail(obj: CliContext) -> None:
    result = _run(obj)
    assert (result.exit_code, result.output) == (0, "no audit records\n")
    assert json.loads(_run(obj, "--json").output) == []


def test_a_bad_count_is_a_usage_error(obj: CliContext) -> None:
    result = _run(obj, "-n", "0")
    assert result.exit_code == 2
    assert "Traceback" not in result.output
