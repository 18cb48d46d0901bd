"""``serviceplatform certs list|expiring|import|show|remove`` through click's test runner."""

from __future__ import annotations

import getpass
import json
import os
import re
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12

from serviceplatform.cli import cli
from serviceplatform.commands.certs import certs
from serviceplatform.commands.context import CliContext
from serviceplatform.config import CertificateSettings, Settings
from serviceplatform.sandbox.pki import (
    PLATFORM_REGISTER_SUBJECT,
    CertificateAuthority,
    Pki,
    ensure_pki,
    issue_certificate,
    load_ca,
)
from serviceplatform.store.audit import AuditLog

NOW = datetime.now(UTC)


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> CertificateAuthority:
    pki: Pki = ensure_pki(tmp_path_factory.mktemp("pki"))
    return load_ca(pki.ca_cert, pki.ca_key)


@dataclass(frozen=True)
class Pair:
    """A certificate and key as files an administrator was handed (outside the store)."""

    cert: Path
    key: Path
    certificate: x509.Certificate
    private_key: rsa.RSAPrivateKey

    def secrets(self) -> list[str]:
        body = [line for line in self.key.read_text().splitlines() if "-----" not in line]
        return ["PRIVATE KEY", *body]


#: ``issue(name, days=365, *, directory=..., start=-1)``: a pair valid from ``start`` days ago.
Issue = Callable[..., Pair]


@pytest.fixture
def issue(ca: CertificateAuthority, tmp_path: Path) -> Issue:
    outside = tmp_path / "handed-over"
    outside.mkdir()

    def make(name: str, days: int = 365, *, directory: Path = outside, start: int = -1) -> Pair:
        cert, key = issue_certificate(
            ca,
            PLATFORM_REGISTER_SUBJECT,
            not_before=NOW + timedelta(days=start),
            not_after=NOW + timedelta(days=days, hours=1),
            path_prefix=directory / name,
        )
        private = serialization.load_pem_private_key(key.read_bytes(), password=None)
        assert isinstance(private, rsa.RSAPrivateKey)
        return Pair(cert, key, x509.load_pem_x509_certificate(cert.read_bytes()), private)

    return make


@pytest.fixture
def obj(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliContext:
    monkeypatch.chdir(tmp_path)
    settings = Settings(certificates=CertificateSettings(directory="certs"), base_dir=str(tmp_path))
    return CliContext(settings)


@pytest.fixture
def store_dir(tmp_path: Path) -> Path:
    return tmp_path / "certs"


#: Every output of this module's runs, checked for key material after each test.
OUTPUTS: list[str] = []
SECRETS: list[str] = []


@pytest.fixture(autouse=True)
def no_key_material_in_any_output() -> Iterator[None]:
    OUTPUTS.clear()
    SECRETS.clear()
    yield
    for output in OUTPUTS:
        for secret in SECRETS:
            assert secret not in output


def run(obj: CliContext, *args: str, input: str | None = None, **env: str) -> Result:
    result = CliRunner().invoke(certs, list(args), obj=obj, input=input, env=env or None)
    OUTPUTS.extend([result.stdout, result.stderr])
    assert "Traceback" not in result.output
    return result


def imported(obj: CliContext, alias: str, pair: Pair, *extra: str) -> Result:
    SECRETS.extend(pair.secrets())
    return run(obj, "import", alias, "--cert", str(pair.cert), "--key", str(pair.key), *extra)


def cells(line: str) -> list[str]:
    """A table or detail line's cells (columns are two or more spaces apart)."""
    return re.split(r"\s{2,}", line.strip())


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def p12_file(path: Path, pair: Pair, password: bytes | None) -> Path:
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(password)
        if password
        else serialization.NoEncryption()
    )
    path.write_bytes(
        pkcs12.serialize_key_and_certificates(
            b"reg", pair.private_key, pair.certificate, None, encryption
        )
    )
    return path


# --- import --------------------------------------------------------------------------------


def test_import_pem_prints_a_summary_and_no_key(obj, issue, store_dir):
    pair = issue("reg")
    result = imported(obj, "platform-register", pair)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "imported platform-register"
    fields = dict(cells(line) for line in lines[1:])
    assert fields["subject"].startswith("CN=serviceplatform-sandbox (FOCES)")
    assert fields["serial"] == f"{pair.certificate.serial_number:x}"
    assert fields["status"] == "ok"
    fingerprint = pair.certificate.fingerprint(hashes.SHA256()).hex().upper()
    assert fields["sha-256"].replace(":", "") == fingerprint
    assert fields["days left"] == "365"
    assert fields["chain"] == "0 certificate(s) after this one"
    assert mode(store_dir / "platform-register.key") == 0o600
    assert mode(store_dir / "platform-register.crt") == 0o644
    assert mode(store_dir) == 0o700


def test_import_pkcs12_with_a_password_file_or_variable(obj, issue, tmp_path, store_dir):
    pair = issue("reg")
    SECRETS.extend(pair.secrets())
    data = p12_file(tmp_path / "reg.p12", pair, b"p12 secret")
    password = tmp_path / "password"
    password.write_text("p12 secret\n")  # the newline of `echo` is not part of it
    result = run(obj, "import", "a", "--pkcs12", str(data), "--password-file", str(password))
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("imported a\n")
    by_env = run(
        obj, "import", "b", "--pkcs12", str(data), "--password-env", "P12", P12="p12 secret"
    )
    assert by_env.exit_code == 0, by_env.output
    plain = p12_file(tmp_path / "plain.p12", pair, None)
    assert run(obj, "import", "c", "--pkcs12", str(plain), "--json").exit_code == 0
    assert sorted(p.name for p in store_dir.iterdir()) == [
        "a.crt",
        "a.key",
        "b.crt",
        "b.key",
        "c.crt",
        "c.key",
    ]
    for output in OUTPUTS:
        assert "p12 secret" not in output


def test_import_with_a_wrong_or_missing_password(obj, issue, tmp_path, store_dir):
    pair = issue("reg")
    SECRETS.extend(pair.secrets())
    data = p12_file(tmp_path / "reg.p12", pair, b"right")
    wrong = run(obj, "import", "a", "--pkcs12", str(data), "--password-env", "PW", PW="wrong")
    assert wrong.exit_code == 1
    assert wrong.stderr == (
        "error: SP-420 The outward certificate is missing or unreadable: "
        "the PKCS#12 data for 'a' cannot be read: wrong password, or not PKCS#12 data\n"
    )
    missing = run(obj, "import", "a", "--pkcs12", str(data))
    assert missing.exit_code == 1 and "needs a password" in missing.stderr
    unset = run(obj, "import", "a", "--pkcs12", str(data), "--password-env", "NOT_SET_ANYWHERE")
    assert unset.exit_code == 2 and "NOT_SET_ANYWHERE is not set" in unset.stderr
    assert not store_dir.exists()


def test_import_an_encrypted_pem_key(obj, issue, tmp_path, store_dir):
    pair = issue("reg")
    locked = tmp_path / "locked.key"
    locked.write_bytes(
        pair.private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"pem pass"),
        )
    )
    SECRETS.extend(pair.secrets())
    args = ["import", "reg", "--cert", str(pair.cert), "--key", str(locked)]
    refused = run(obj, *args)
    assert refused.exit_code == 1 and "is encrypted: give its password" in refused.stderr
    result = run(obj, *args, "--password-env", "KEYPASS", KEYPASS="pem pass")
    assert result.exit_code == 0, result.output
    assert b"ENCRYPTED" not in (store_dir / "reg.key").read_bytes()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "give either --cert FILE --key FILE, or --pkcs12 FILE"),
        (["--cert", "{cert}"], "--cert and --key go together"),
        (["--cert", "{cert}", "--key", "{key}", "--pkcs12", "{cert}"], "give either"),
        (
            ["--pkcs12", "{cert}", "--password-env", "X", "--password-file", "{cert}"],
            "either --password-file or --password-env",
        ),
    ],
)
def test_import_usage_errors_exit_2(obj, issue, args, message):
    pair = issue("reg")
    SECRETS.extend(pair.secrets())
    filled = [a.format(cert=pair.cert, key=pair.key) for a in args]
    result = run(obj, "import", "reg", *filled)
    assert result.exit_code == 2
    assert message in result.stderr


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        (["--cert", "{missing}", "--key", "{key}"], "--cert {missing}: cannot read: No such file"),
        (["--cert", "{cert}", "--key", "{missing}"], "--key {missing}: cannot read: No such file"),
        (["--cert", "{dir}", "--key", "{key}"], "--cert {dir}: cannot read: Is a directory"),
        (["--pkcs12", "{dir}", "--password-env", "PW"], "--pkcs12 {dir}: cannot read: Is a dir"),
    ],
)
def test_a_file_that_cannot_be_read_fails_as_unreadable_data_does(
    obj, issue, tmp_path, store_dir, args, problem
):
    # Exit 1 and SP-420, as a file of garbage: not a usage error (exit 2) for some reasons
    # and a failure for others, and the same as `systems register --cert`.
    pair = issue("reg")
    SECRETS.extend(pair.secrets())
    names = {"cert": pair.cert, "key": pair.key, "missing": tmp_path / "nope.crt", "dir": tmp_path}
    filled = [a.format(**names) for a in args]
    result = run(obj, "import", "reg", *filled, PW="x")
    assert result.exit_code == 1, result.output
    assert result.stderr.startswith(
        "error: SP-420 The outward certificate is missing or unreadable: " + problem.format(**names)
    )
    assert result.stderr.count("\n") == 1
    assert not (store_dir / "reg.crt").exists() and not (store_dir / "reg.key").exists()


def test_mismatching_key_and_expired_certificate_are_refused(obj, issue, store_dir):
    pair, other = issue("reg"), issue("other")
    SECRETS.extend(other.secrets())
    mixed = run(obj, "import", "reg", "--cert", str(pair.cert), "--key", str(other.key))
    assert mixed.exit_code == 1
    assert mixed.stderr.startswith("error: SP-420 ")
    assert "does not belong to its certificate" in mixed.stderr
    old = issue("old", days=-3, start=-40)
    expired = imported(obj, "reg", old)
    assert expired.exit_code == 1
    assert expired.stderr.startswith("error: SP-421 ")
    assert "'reg' was not imported" in expired.stderr
    assert not store_dir.exists()


def test_replace_semantics(obj, issue, store_dir):
    first, second = issue("first"), issue("second", days=700)
    assert imported(obj, "reg", first).exit_code == 0
    taken = imported(obj, "reg", second)
    assert taken.exit_code == 1
    assert taken.stderr == (
        "error: SP-422 A certificate with this alias is already in the certificate store: "
        "'reg' is in use; replace it explicitly (certs import --replace)\n"
    )
    kept = x509.load_pem_x509_certificate((store_dir / "reg.crt").read_bytes())
    assert kept.serial_number == first.certificate.serial_number
    replaced = imported(obj, "reg", second, "--replace")
    assert replaced.exit_code == 0, replaced.output
    now = x509.load_pem_x509_certificate((store_dir / "reg.crt").read_bytes())
    assert now.serial_number == second.certificate.serial_number


def test_an_invalid_alias_is_one_error_line(obj, issue):
    result = imported(obj, "../etc/x", issue("reg"))
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        "error: SP-420 The outward certificate is missing or unreadable: "
        "'../etc/x' is not a valid certificate alias"
    ]


# --- list, expiring, show ------------------------------------------------------------------


@pytest.fixture
def populated(obj: CliContext, issue: Issue, store_dir: Path) -> Path:
    """good (365 days), soon (10 days), gone (expired: placed by hand), open (key 0644)."""
    assert imported(obj, "good", issue("good")).exit_code == 0
    assert imported(obj, "soon", issue("soon", days=10)).exit_code == 0
    assert imported(obj, "open", issue("open", days=200)).exit_code == 0
    (store_dir / "open.key").chmod(0o644)
    gone = issue("gone", days=-2, start=-30, directory=store_dir)
    SECRETS.extend(gone.secrets())
    return store_dir


def test_list_table(obj, populated):
    result = run(obj, "list")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split("  ")[0] == "ALIAS"
    for column in ("SUBJECT", "ISSUER", "NOT AFTER (UTC)", "DAYS LEFT", "STATUS"):
        assert column in lines[0]
    rows = {line.split()[0]: cells(line) for line in lines[1:]}
    assert list(rows) == ["gone", "good", "open", "soon"]
    assert rows["good"][-2:] == ["365", "ok"]
    assert rows["soon"][-2:] == ["10", "expiring"]
    assert rows["gone"][-2:] == ["-2", "EXPIRED"]
    assert rows["open"][-2:] == [
        "200",
        "private key file open.key is readable by others (mode 0644); chmod 600",
    ]
    assert rows["good"][1] == PLATFORM_REGISTER_SUBJECT
    assert rows["good"][2] == "CN=Serviceplatform Sandbox Test CA,O=Serviceplatform Sandbox,C=DK"
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d", rows["good"][3])


def test_list_json(obj, populated):
    result = run(obj, "list", "--json")
    assert result.exit_code == 0
    data = {entry["alias"]: entry for entry in json.loads(result.stdout)}
    assert {k: v["status"] for k, v in data.items()} == {
        "gone": "expired",
        "good": "ok",
        "open": "problem",
        "soon": "expiring",
    }
    good = data["good"]
    assert good["days_to_expiry"] == 365 and good["problems"] == [] and good["chain_length"] == 0
    assert len(good["sha256_fingerprint"]) == 64 and good["expired"] is False
    assert datetime.fromisoformat(good["not_after"]) > NOW
    assert data["gone"]["expired"] is True and data["gone"]["days_to_expiry"] == -2
    assert data["open"]["problems"] == [
        "private key file open.key is readable by others (mode 0644); chmod 600"
    ]


def test_list_of_an_empty_store(obj, store_dir):
    result = run(obj, "list")
    assert (result.exit_code, result.stdout) == (0, f"no certificates in {store_dir}\n")
    assert json.loads(run(obj, "list", "--json").stdout) == []


def test_expiring_exit_codes(obj, populated):
    result = run(obj, "expiring")
    assert result.exit_code == 3
    rows = [line.split()[0] for line in result.stdout.splitlines()[1:]]
    assert rows == ["gone", "soon"]
    assert run(obj, "expiring", "--days", "5").stdout.count("\n") == 2  # header + gone
    as_json = run(obj, "expiring", "--days", "400", "--json")
    assert as_json.exit_code == 3
    assert [e["alias"] for e in json.loads(as_json.stdout)] == ["gone", "good", "open", "soon"]
    assert run(obj, "expiring", "--days", "-1").exit_code == 2


def test_expiring_exits_0_when_none(obj, issue):
    assert imported(obj, "good", issue("good")).exit_code == 0
    result = run(obj, "expiring", "--days", "30")
    assert (result.exit_code, result.stdout) == (0, "no certificate expires within 30 days\n")
    assert run(obj, "expiring", "--json").stdout.strip() == "[]"


def test_show(obj, issue, ca, tmp_path, store_dir):
    pair = issue("reg")
    chain = tmp_path / "chain.pem"
    chain.write_bytes(pair.cert.read_bytes() + ca.cert.public_bytes(serialization.Encoding.PEM))
    SECRETS.extend(pair.secrets())
    assert run(obj, "import", "reg", "--cert", str(chain), "--key", str(pair.key)).exit_code == 0
    result = run(obj, "show", "reg")
    assert result.exit_code == 0, result.output
    text = result.stdout
    fingerprint = pair.certificate.fingerprint(hashes.SHA256()).hex().upper()
    assert ":".join(fingerprint[i : i + 2] for i in range(0, 64, 2)) in text
    assert "chain       1 certificate(s) after this one" in text
    assert f"files       {store_dir / 'reg.crt'}, {store_dir / 'reg.key'}" in text
    data = json.loads(run(obj, "show", "reg", "--json").stdout)
    assert data["chain_length"] == 1 and data["sha256_fingerprint"] == fingerprint.lower()
    assert data["files"] == {
        "certificate": str(store_dir / "reg.crt"),
        "key": str(store_dir / "reg.key"),
    }
    (store_dir / "reg.key").chmod(0o640)
    problem = run(obj, "show", "reg")
    assert (
        "problem     private key file reg.key is readable by others (mode 0640)" in problem.stdout
    )


def test_show_of_an_unknown_alias(obj):
    result = run(obj, "show", "nope")
    assert result.exit_code == 1
    assert result.stderr.endswith("no certificate 'nope' in the certificate store\n")


# --- remove --------------------------------------------------------------------------------


def test_remove_asks_unless_yes(obj, issue, store_dir):
    assert imported(obj, "reg", issue("reg")).exit_code == 0
    declined = run(obj, "remove", "reg", input="n\n")
    assert declined.exit_code == 1
    assert "remove certificate reg (CN=serviceplatform-sandbox (FOCES)" in declined.stdout
    assert (store_dir / "reg.key").exists()
    accepted = run(obj, "remove", "reg", input="y\n")
    assert accepted.exit_code == 0 and accepted.stdout.endswith("removed reg\n")
    assert list(store_dir.iterdir()) == []
    assert imported(obj, "reg", issue("again")).exit_code == 0
    assert run(obj, "remove", "reg", "--yes").stdout == "removed reg\n"
    missing = run(obj, "remove", "reg", "--yes")
    assert missing.exit_code == 1 and "no certificate 'reg'" in missing.stderr
    assert run(obj, "remove", "reg").exit_code == 1  # no question for nothing


# --- through the real root command ---------------------------------------------------------


def test_through_the_root_command_with_config(issue, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for name in [n for n in os.environ if n.startswith("SP_")]:
        monkeypatch.delenv(name)
    config = tmp_path / "platform.toml"
    config.write_text('[certificates]\ndirectory = "outward"\n')
    pair = issue("reg")
    SECRETS.extend(pair.secrets())
    runner = CliRunner()
    result = runner.invoke(
        cli,
        # --config after the command name, as operators write it
        [
            "certs",
            "import",
            "reg",
            "--cert",
            str(pair.cert),
            "--key",
            str(pair.key),
            "--config",
            str(config),
        ],
    )
    OUTPUTS.extend([result.stdout, result.stderr])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "outward" / "reg.key").is_file()
    listed = runner.invoke(cli, ["--config", str(config), "certs", "expiring", "--json"])
    OUTPUTS.extend([listed.stdout, listed.stderr])
    assert (listed.exit_code, json.loads(listed.stdout)) == (0, [])


def test_import_and_remove_leave_admin_audit_records_with_the_os_user(obj, issue):
    assert imported(obj, "reg", issue("reg")).exit_code == 0
    assert imported(obj, "reg", issue("again")).exit_code == 1  # taken: refused, recorded
    assert run(obj, "remove", "reg", "--yes").exit_code == 0
    records = [e for e in AuditLog(obj.database()).tail(10) if e.service == "admin"]
    user = getpass.getuser()
    assert [(e.operation, e.outcome, e.error_code) for e in reversed(records)] == [
        ("import-certificate", "ok", None),
        ("import-certificate", "fault", "SP-422"),
        ("remove-certificate", "ok", None),
    ]
    assert all(e.detail and e.detail.startswith(f"cli:{user}: ") for e in records)
