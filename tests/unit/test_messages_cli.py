"""``serviceplatform messages list|show|resend`` through click's test runner, on both databases."""

from __future__ import annotations

import getpass
import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from serviceplatform.commands.context import CliContext
from serviceplatform.commands.messages import messages
from serviceplatform.config import Settings
from serviceplatform.store.audit import AuditLog
from serviceplatform.store.db import Database
from tests.unit.test_message_log import CPR, A, B, _call, _outbox


@pytest.fixture
def obj(tmp_path: Path, database: Database) -> CliContext:
    _call(database, 0, operation="opdater", subject=CPR, message_id="urn:uuid:m1")
    _call(database, 1, authority_cvr=B, outcome="fault", error_code="SP-405")
    _outbox(database, 2, "pending", 3, cvr=B)
    return CliContext(Settings(base_dir=str(tmp_path)), database=database)


def run(obj: CliContext, *args: str) -> Result:
    result = CliRunner().invoke(messages, list(args), obj=obj)
    assert "Traceback" not in result.output
    return result


def test_list_filters_masks_and_pages(obj: CliContext) -> None:
    listed = run(obj, "list")
    assert listed.exit_code == 0, listed.output
    lines = listed.output.splitlines()
    assert [line.split()[2] for line in lines[1:]] == ["outbox:1", "call:2", "call:1"]
    assert "010190****" in listed.output and CPR not in listed.output
    faults = json.loads(run(obj, "list", "--outcome", "fault", "--json").output)
    assert [m["ref"] for m in faults["messages"]] == ["outbox:1", "call:2"]
    assert [m["ref"] for m in json.loads(run(obj, "list", "--subject", CPR, "--json").output)[
        "messages"]] == ["call:1"]  # fmt: skip
    first = run(obj, "list", "--limit", "2")
    cursor = first.output.splitlines()[-1].removeprefix("more: --after ")
    rest = run(obj, "list", "--limit", "2", "--after", cursor)
    assert [line.split()[2] for line in rest.output.splitlines()[1:]] == ["call:1"]
    assert run(obj, "list", "--outcome", "maybe").exit_code == 2
    bad = run(obj, "list", "--after", "nonsense")
    assert bad.exit_code == 1 and "SP-605" in bad.output


def test_show_prints_the_record_and_its_outward_status(obj: CliContext) -> None:
    shown = run(obj, "show", "call:1")
    assert shown.exit_code == 0 and "010190****" in shown.output and CPR not in shown.output
    assert "Outward status:" in shown.output
    unknown = run(obj, "show", "call:99")
    assert unknown.exit_code == 1 and "SP-611" in unknown.output


def test_resend_of_an_id_that_names_nothing_is_sp_611(obj: CliContext) -> None:
    for ref in ("outbox:99", "call:99", "oots:nosuch"):
        unknown = run(obj, "resend", ref)
        assert unknown.exit_code == 1
        assert unknown.stderr == f"error: SP-611 No such message in the message log: {ref}\n"


def test_resend_an_undelivered_row_is_audited_with_the_os_user(
    obj: CliContext, database: Database
) -> None:
    resent = run(obj, "resend", "outbox:1")
    assert resent.exit_code == 0 and resent.output.startswith("resent:")
    again = run(obj, "resend", "outbox:1")
    assert again.exit_code == 1 and "SP-612" in again.output
    records = [e for e in AuditLog(database).tail(10) if e.operation == "resend"]
    assert [(e.outcome, e.authority_cvr) for e in records] == [("fault", B), ("ok", B)]
    assert all(
        e.detail and e.detail.startswith(f"cli:{getpass.getuser()}: resend message outbox:1")
        for e in records
    )
    assert A not in {e.authority_cvr for e in records}


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["--authority", "abc"], "Invalid value for --authority: 'abc' is not a CVR number"),
        (["--authority", "29189847"], "'29189847' is not a CVR number"),
        (
            ["--service", "sf225"],
            "Invalid value for --service: 'sf225' is not a service: admin, oots, oots-as4, "
            "sf1600, sf2250",
        ),
        (["--error-code", "302"], "'302' is not an error code: SP- and three digits"),
        (["--subject", "0101-90"], "'0101-90' is not a CPR number (10 digits) or CVR number"),
        (["--source", "calls"], "Invalid value for --source: 'calls' is not a source: call, "),
    ],
)
def test_a_filter_that_cannot_match_is_a_usage_error(
    obj: CliContext, args: list[str], said: str
) -> None:
    # They answered "no messages", as if there were none.
    result = run(obj, "list", *args)
    assert result.exit_code == 2, result.output
    assert said in result.stderr


def test_the_oots_integration_declares_its_as4_audit_service() -> None:
    from integrations.oots.as4.sender import AUDIT_SERVICE
    from serviceplatform.registry import message_log_services

    assert AUDIT_SERVICE in message_log_services()
