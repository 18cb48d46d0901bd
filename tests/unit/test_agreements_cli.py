"""``serviceplatform agreements``: the lifecycle from the command line, with history."""

from __future__ import annotations

import getpass
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

from serviceplatform.commands.agreements import agreements
from serviceplatform.commands.context import CliContext
from serviceplatform.config import DatabaseSettings, Settings
from serviceplatform.store.audit import AuditEntry, AuditLog
from serviceplatform.store.db import Database
from serviceplatform.store.systems import SystemStore
from tests.certificates import MadeCert, make_cert

CONSUMER = "0d7fcabb-3505-4065-a006-d48b1cf50cc2"
C = "29189862"


@pytest.fixture
def obj(tmp_path: Path, database: Database) -> CliContext:
    SystemStore(database).register(
        name="Case system",
        supplier_cvr="12345674",
        certificate_pem=make_cert().pem,
        actor="test",
        system_uuid=CONSUMER,
    )
    settings = Settings(database=DatabaseSettings(url="sqlite://"), base_dir=str(tmp_path))
    # The outward certificate the agreements name: ``configure`` checks the store.
    store(tmp_path, "reg", make_cert("CN=platform register,O=Platform,C=DK"))
    return CliContext(settings, database=database)


def store(base: Path, alias: str, made: MadeCert) -> None:
    """Put ``made`` in the certificate store as ``alias`` (also an expired one, unlike import)."""
    directory = base / "certs"
    directory.mkdir(exist_ok=True)
    (directory / f"{alias}.crt").write_bytes(made.pem)
    key = made.key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    (directory / f"{alias}.key").write_bytes(key)
    (directory / f"{alias}.key").chmod(0o600)


def run(obj: CliContext, *args: str) -> Result:
    return CliRunner().invoke(agreements, list(args), obj=obj)


def request(obj: CliContext) -> str:
    result = run(
        obj,
        "request",
        "--authority", C,
        "--service", "sf2250",
        "--consumer-system", CONSUMER,
        "--supplier", "Supplier A/S",
        "--json",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    uuid: str = json.loads(result.output)["uuid"]
    return uuid


def test_request_configure_approve_then_revoke_with_history(obj: CliContext) -> None:
    uuid = request(obj)
    configured = run(
        obj, "configure", uuid, "--sysid", "register=2252001", "--cert-alias", "reg", "--json"
    )
    assert configured.exit_code == 0, configured.output
    assert json.loads(configured.output)["configured"] is True
    approved = json.loads(run(obj, "approve", uuid, "--json").output)
    assert (approved["status"], approved["routable"]) == ("approved", True)
    assert run(obj, "revoke", uuid).exit_code == 1  # a reason is required
    revoked = run(obj, "revoke", uuid, "--reason", "contract ended")
    assert revoked.exit_code == 0 and "revoked" in revoked.output
    shown = run(obj, "show", uuid)
    assert [line.split()[2] for line in shown.output.splitlines()[3:]] == [
        "request",
        "configure",
        "approve",
        "revoke",
    ]
    assert "contract ended" in shown.output and "cli:" in shown.output


def test_refused_transitions_exit_1_with_the_code(obj: CliContext) -> None:
    uuid = request(obj)
    result = run(obj, "resume", uuid)
    assert result.exit_code == 1
    assert "SP-604" in result.output
    assert "requested" in run(obj, "list").output


def test_list_filters_and_bad_input(obj: CliContext) -> None:
    request(obj)
    assert C in run(obj, "list", "--status", "requested").output
    assert run(obj, "list", "--status", "approved").output.strip() == "no agreements"
    unknown = run(obj, "show", "00000000-0000-0000-0000-000000000000")
    assert unknown.exit_code == 1 and "SP-603" in unknown.output
    bad = run(obj, "configure", request(obj), "--sysid", "nonsense")
    assert bad.exit_code == 2 and "ROLE=SYSID" in bad.output
    # Filters that cannot match answered "no agreements".
    service = run(obj, "list", "--service", "sf225")
    assert service.exit_code == 2
    assert "Invalid value for --service: 'sf225' is not a service: " in service.stderr
    assert "sf2250" in service.stderr
    authority = run(obj, "list", "--authority", "2918984")
    assert authority.exit_code == 2
    assert "Invalid value for --authority: '2918984' is not a CVR number" in authority.stderr
    assert C in run(obj, "list", "--service", "sf2250", "--authority", C).output


def test_configure_refuses_an_alias_not_in_the_certificate_store(obj: CliContext) -> None:
    uuid = request(obj)
    result = run(obj, "configure", uuid, "--sysid", "register=2252001", "--cert-alias", "nosuch")
    assert result.exit_code == 1
    assert "SP-609" in result.output and "'nosuch'" in result.output
    # Refused before anything was written: neither the SysID nor the alias.
    shown = json.loads(run(obj, "show", uuid, "--json").output)
    assert (shown["register_cert_alias"], shown["sysids"], shown["configured"]) == (
        None,
        {},
        False,
    )


def test_configure_refuses_an_alias_whose_certificate_expired(
    obj: CliContext, tmp_path: Path
) -> None:
    gone = make_cert(not_before=datetime.now(UTC) - timedelta(days=30), days=10)
    store(tmp_path, "old", gone)
    uuid = request(obj)
    result = run(obj, "configure", uuid, "--cert-alias", "old")
    assert result.exit_code == 1
    assert "SP-610" in result.output and "expired" in result.output
    assert json.loads(run(obj, "show", uuid, "--json").output)["register_cert_alias"] is None


def _admin_records(database: Database) -> list[AuditEntry]:
    return [e for e in AuditLog(database).tail(100) if e.service == "admin"]


def test_every_cli_change_leaves_an_admin_audit_record_with_the_os_user(
    obj: CliContext, database: Database
) -> None:
    uuid = request(obj)
    assert run(obj, "configure", uuid, "--cert-alias", "nosuch").exit_code == 1
    assert run(obj, "configure", uuid, "--sysid", "register=2252001").exit_code == 0
    records = _admin_records(database)
    by_operation = {(e.operation, e.outcome): e for e in records}
    user = getpass.getuser()
    refused = by_operation[("configure", "fault")]
    assert refused.error_code == "SP-609"
    assert refused.detail is not None and refused.detail.startswith(f"cli:{user}: configure")
    done = by_operation[("configure", "ok")]
    assert done.authority_cvr == C
    assert done.detail == f"cli:{user}: configure agreement {uuid}"
    assert ("request", "ok") in by_operation


def test_configure_refuses_an_end_date_in_the_past(obj: CliContext) -> None:
    # A past end date stopped every call at once (SP-302) with the status still "approved";
    # suspend and revoke do that, with a reason and a status that says so.
    uuid = request(obj)
    today = datetime.now(UTC).date()
    yesterday = today - timedelta(days=1)
    past = run(obj, "configure", uuid, "--valid-to", yesterday.isoformat())
    assert past.exit_code == 1
    assert past.stderr == (
        f"error: SP-605 The administration request is malformed: valid_to {yesterday} is in "
        f"the past (today is {today}): suspend or revoke the agreement to stop it\n"
    )
    assert json.loads(run(obj, "show", uuid, "--json").output)["valid_to"] is None
    ends_today = run(obj, "configure", uuid, "--valid-to", today.isoformat(), "--json")
    assert ends_today.exit_code == 0, ends_today.output
    assert json.loads(ends_today.output)["valid_to"] == today.isoformat()
