"""``serviceplatform systems`` and ``agreements diff|import``: onboarding from the command line."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

from serviceplatform.commands.agreements import agreements
from serviceplatform.commands.context import CliContext
from serviceplatform.commands.systems import systems
from serviceplatform.config import DatabaseSettings, Settings
from serviceplatform.store.agreements import AgreementStore
from serviceplatform.store.db import Database
from serviceplatform.store.repository import RoutingRepository
from serviceplatform.store.systems import SystemStore
from tests.certificates import make_cert

SUPPLIER_CVR = "12345674"
SYSTEM_UUID = "0d7fcabb-3505-4065-a006-d48b1cf50cc2"
AGREEMENT_UUID = "9d3d53a2-af28-4372-9c0a-25550c8d048a"


@pytest.fixture
def obj(tmp_path: Path, database: Database) -> CliContext:
    settings = Settings(database=DatabaseSettings(url="sqlite://"), base_dir=str(tmp_path))
    return CliContext(settings, database=database)


def run(obj: CliContext, group: str, *args: str) -> Result:
    command = {"systems": systems, "agreements": agreements}[group]
    return CliRunner().invoke(command, list(args), obj=obj)


def pem_file(tmp_path: Path, name: str, subject: str = "CN=case,O=Supplier,C=DK") -> Path:
    path = tmp_path / f"{name}.pem"
    path.write_bytes(make_cert(subject).pem)
    return path


def register(obj: CliContext, cert: Path, *extra: str) -> dict[str, object]:
    result = run(
        obj, "systems", "register", "--name", "Case", "--supplier-cvr", SUPPLIER_CVR,
        "--cert", str(cert), "--json", *extra,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    data: dict[str, object] = json.loads(result.output)
    return data


def admin_audit(database: Database) -> list[tuple[str | None, str, str | None]]:
    from serviceplatform.store.audit import AuditLog

    return [
        (e.operation, e.outcome, e.error_code)
        for e in reversed(AuditLog(database).tail(50))
        if e.service == "admin"
    ]


def test_register_rotate_deactivate_activate_with_history_and_audit(
    obj: CliContext, database: Database, tmp_path: Path
) -> None:
    system = register(obj, pem_file(tmp_path, "first"), "--uuid", SYSTEM_UUID)
    assert (system["uuid"], system["callable"]) == (SYSTEM_UUID, True)

    rotated = run(
        obj, "systems", "rotate", SYSTEM_UUID, "--cert", str(pem_file(tmp_path, "second")),
        "--overlap-days", "3", "--json",
    )  # fmt: skip
    assert rotated.exit_code == 0, rotated.output
    certificates = json.loads(rotated.output)["certificates"]
    assert len(certificates) == 2
    new, old = certificates
    assert new["accepted_until"] is None and old["accepted_until"] is not None
    assert new["accepted_now"] and old["accepted_now"]  # both during the overlap

    assert run(obj, "systems", "deactivate", SYSTEM_UUID).exit_code == 2  # --reason required
    off = run(obj, "systems", "deactivate", SYSTEM_UUID, "--reason", "left", "--json")
    assert json.loads(off.output)["callable"] is False
    again = run(obj, "systems", "deactivate", SYSTEM_UUID, "--reason", "twice")
    assert (
        again.exit_code == 1 and "SP-605" in again.output and "deactivated already" in again.output
    )
    assert run(obj, "systems", "activate", SYSTEM_UUID).exit_code == 0

    shown = run(obj, "systems", "show", SYSTEM_UUID)
    actions = [line.split()[2] for line in shown.output.splitlines() if "cli:" in line]
    assert actions == ["register", "rotate", "deactivate", "activate"]
    assert admin_audit(database) == [
        ("register", "ok", None),
        ("rotate", "ok", None),
        ("deactivate", "ok", None),
        ("deactivate", "fault", "SP-605"),
        ("activate", "ok", None),
    ]
    listed = run(obj, "systems", "list")
    assert SYSTEM_UUID in listed.output and "2 accepted / 2" in listed.output
    assert SYSTEM_UUID in run(obj, "systems", "list", "--supplier-cvr", SUPPLIER_CVR).output
    # A filter that cannot match answered "no consumer systems".
    bad = run(obj, "systems", "list", "--supplier-cvr", "1234567")
    assert bad.exit_code == 2
    assert "Invalid value for --supplier-cvr: '1234567' is not a CVR number" in bad.output


def test_registration_refusals_exit_1_with_their_code_and_change_nothing(
    obj: CliContext, database: Database, tmp_path: Path
) -> None:
    cert = pem_file(tmp_path, "one")
    register(obj, cert)
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("hello")
    for args, code in (
        (["--cert", str(cert)], "SP-607"),  # registered already
        (["--cert", str(garbage)], "SP-608"),
        (["--cert", str(tmp_path / "missing.pem")], "SP-608"),
        # A directory was a usage error (exit 2) where a missing file is SP-608 (exit 1).
        (["--cert", str(tmp_path)], "SP-608"),
    ):
        result = run(
            obj, "systems", "register", "--name", "X", "--supplier-cvr", SUPPLIER_CVR, *args
        )
        assert result.exit_code == 1, result.output
        assert result.output.startswith(f"error: {code} "), result.output
    bad_cvr = run(
        obj, "systems", "register", "--name", "X", "--supplier-cvr", "12345675",
        "--cert", str(pem_file(tmp_path, "two")),
    )  # fmt: skip
    assert bad_cvr.exit_code == 1 and "SP-605" in bad_cvr.output
    assert len(SystemStore(database).find()) == 1
    unknown = run(obj, "systems", "show", "a077fd5c-964b-4d3d-a712-9d670d91680a")
    assert unknown.exit_code == 1 and "SP-606" in unknown.output


def _agreements_file(tmp_path: Path, *, status: str = "approved", cert: str = "case.pem") -> Path:
    if not (tmp_path / cert).exists():
        (tmp_path / cert).write_bytes(make_cert().pem)
    path = tmp_path / "agreements.toml"
    path.write_text(
        f"""
[[consumer_system]]
uuid = "{SYSTEM_UUID}"
name = "Case system"
supplier_cvr = "{SUPPLIER_CVR}"
certificates = ["{cert}"]

[[agreement]]
uuid = "{AGREEMENT_UUID}"
authority_cvr = "29189846"
service = "sf2250"
consumer_system = "{SYSTEM_UUID}"
supplier = "Supplier"
status = "{status}"
register_cert_alias = "platform-register"
""",
        encoding="utf-8",
    )
    return path


def test_diff_then_import_then_a_changed_file(
    obj: CliContext, database: Database, tmp_path: Path
) -> None:
    path = _agreements_file(tmp_path)
    diff = run(obj, "agreements", "diff", str(path), "--exit-code")
    assert diff.exit_code == 1
    assert "3 changes" in diff.output and "+ agreement" in diff.output
    assert "certificate" in diff.output
    assert SystemStore(database).find() == []  # diff changes nothing

    imported = run(obj, "agreements", "import", str(path))
    assert imported.exit_code == 0, imported.output
    (view,) = SystemStore(database).find()
    assert view.system.supplier_cvr == SUPPLIER_CVR and len(view.certificates) == 1
    (agreement,) = RoutingRepository(database).list_agreements()
    assert agreement.status.value == "approved"

    assert run(obj, "agreements", "diff", str(path), "--exit-code").exit_code == 0
    assert "0 changes, 2 unchanged" in run(obj, "agreements", "import", str(path)).output

    suspended = _agreements_file(tmp_path, status="suspended")
    changed = run(obj, "agreements", "diff", str(suspended))
    assert "~ agreement" in changed.output and "status approved -> suspended" in changed.output
    assert run(obj, "agreements", "import", str(suspended)).exit_code == 0
    history = AgreementStore(database, {}).history(AGREEMENT_UUID)
    assert [(e.action, e.from_status, e.to_status) for e in history] == [
        ("import", None, "approved"),
        ("import", "approved", "suspended"),
    ]
    assert [op for op, _, _ in admin_audit(database)] == ["import", "import", "import"]


def _store_certificate(tmp_path: Path, alias: str, *, expired: bool = False) -> None:
    """Put a certificate and its key in the certificate store (``certs/``) as ``alias``."""
    start = datetime.now(UTC) - timedelta(days=30) if expired else None
    made = make_cert("CN=platform register,O=Platform,C=DK", not_before=start, days=10)
    directory = tmp_path / "certs"
    directory.mkdir(exist_ok=True)
    (directory / f"{alias}.crt").write_bytes(made.pem)
    key = directory / f"{alias}.key"
    key.write_bytes(made.key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()))
    key.chmod(0o600)


def test_diff_and_import_warn_of_an_approved_agreement_whose_certificate_is_not_there(
    obj: CliContext, database: Database, tmp_path: Path
) -> None:
    """``agreements configure`` refuses such an alias; an import takes it (the certificates
    may come later) but says so per agreement on stderr, and its exit code stays 0."""
    path = _agreements_file(tmp_path)
    missing = (
        f"warning: agreement {AGREEMENT_UUID} (29189846 sf2250, approved): certificate alias "
        f"'platform-register' names no certificate in {tmp_path / 'certs'}: a call that needs "
        "it {} refused (SP-420) until `serviceplatform certs import platform-register` adds it"
    )
    diff = run(obj, "agreements", "diff", str(path))
    assert diff.exit_code == 0, diff.output
    assert diff.stderr.splitlines() == [missing.format("would be")]
    imported = run(obj, "agreements", "import", str(path))
    assert imported.exit_code == 0, imported.output
    assert imported.stderr.splitlines() == [missing.format("is")]
    (agreement,) = RoutingRepository(database).list_agreements()
    assert agreement.register_cert_alias == "platform-register"
    # Unchanged, the agreement is still named: the store may have lost the certificate.
    unchanged = run(obj, "agreements", "diff", str(path))
    assert "no changes" in unchanged.stdout
    assert unchanged.stderr.splitlines() == [missing.format("would be")]

    _store_certificate(tmp_path, "platform-register", expired=True)
    expired = run(obj, "agreements", "import", str(path))
    assert expired.exit_code == 0, expired.output
    (line,) = expired.stderr.splitlines()
    assert line.startswith(
        f"warning: agreement {AGREEMENT_UUID} (29189846 sf2250, approved): certificate alias "
        "'platform-register' expired on "
    )
    assert line.endswith(
        ": a call that needs it is refused (SP-421) until the certificate is renewed"
    )

    _store_certificate(tmp_path, "platform-register")
    for command in ("diff", "import"):
        fine = run(obj, "agreements", command, str(path))
        assert fine.exit_code == 0, fine.output
        assert fine.stderr == ""


def test_an_agreement_that_is_not_approved_is_imported_without_a_certificate_warning(
    obj: CliContext, tmp_path: Path
) -> None:
    # Its calls are refused anyway (SP-302); the certificate matters once it is approved.
    path = _agreements_file(tmp_path, status="suspended")
    for command in ("diff", "import"):
        result = run(obj, "agreements", command, str(path))
        assert result.exit_code == 0, result.output
        assert result.stderr == ""


def test_an_import_with_a_problem_changes_nothing(
    obj: CliContext, database: Database, tmp_path: Path
) -> None:
    taken = make_cert()
    (tmp_path / "taken.pem").write_bytes(taken.pem)
    SystemStore(database).register(
        name="Other",
        supplier_cvr=SUPPLIER_CVR,
        certificate_pem=taken.pem,
        actor="test",
        system_uuid="a077fd5c-964b-4d3d-a712-9d670d91680a",
    )
    path = _agreements_file(tmp_path, cert="taken.pem")
    result = run(obj, "agreements", "import", str(path))
    assert result.exit_code == 1 and "SP-607" in result.output
    assert len(SystemStore(database).find()) == 1
    assert RoutingRepository(database).list_agreements() == []
    (tmp_path / "bad").mkdir()
    bad = tmp_path / "bad" / "agreements.toml"
    bad.write_text(path.read_text().replace('"taken.pem"', '"absent.pem"'))
    result = run(obj, "agreements", "import", str(bad))
    assert result.exit_code == 1 and "SP-608" in result.output and "absent.pem" in result.output
    assert RoutingRepository(database).list_agreements() == []


def test_diff_reports_every_problem_of_the_file_in_one_pass(
    obj: CliContext, database: Database, tmp_path: Path
) -> None:
    # A missing certificate file was reported only once every other problem was fixed.
    (tmp_path / "empty.pem").write_text("")
    path = _agreements_file(tmp_path, cert="absent.pem")
    (tmp_path / "absent.pem").unlink()
    text = path.read_text().replace('status = "approved"', 'status = "bogus"')
    text = text.replace(
        'certificates = ["absent.pem"]', 'certificates = ["absent.pem", "empty.pem"]'
    )
    path.write_text(text)
    result = run(obj, "agreements", "diff", str(path))
    assert result.exit_code == 1, result.output
    lines = result.stderr.splitlines()
    assert lines[0].startswith("error: SP-310 ")
    problems = [line.strip() for line in lines[1:]]
    assert len(problems) == 3, problems
    assert "agreement #1" in problems[0] and "bogus" in problems[0]
    assert problems[1].endswith("absent.pem: cannot read: No such file or directory")
    assert "empty.pem" in problems[2]
    # The file right but for its certificates: every certificate file, SP-608.
    path.write_text(text.replace('status = "bogus"', 'status = "approved"'))
    result = run(obj, "agreements", "diff", str(path))
    assert result.exit_code == 1
    lines = result.stderr.splitlines()
    assert lines[0] == "error: SP-608 The certificate cannot be registered:"
    assert len(lines) == 3
    assert lines[1].endswith("absent.pem: cannot read: No such file or directory")
    assert "empty.pem: " in lines[2]
    assert SystemStore(database).find() == []
