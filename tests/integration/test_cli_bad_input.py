"""Bad input to the command line and the admin API: a clear error, the documented exit code or
HTTP status, no traceback, and nothing written.

A table of invocations, each wrong in one way (malformed CVR, UUID, SysID, date, number;
files that are missing, directories, garbage PEM, a key of another certificate, an expired
certificate, a TOML syntax error; unknown objects; state conflicts; an unreachable database),
run with the real ``serviceplatform`` command (click's runner, in this process) against a work
dir the real sandbox made (SQLite) and against a PostgreSQL schema seeded with the sample
tables. Every case must end with its exit code (docs/configuration.md "Exit codes"), one line
``error: ...`` for exit 1, click's usage text for exit 2, and the database rows (audit records
aside: a refused change is recorded by design) and the files of the work dir as they were.

The admin API part runs the same sandbox and sends malformed JSON, wrong content types and
types, unknown ids and oversized values: a JSON error with the right 4xx status, never a 500,
and the agreements and consumer systems as they were.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from click.testing import CliRunner
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from sqlalchemy import Engine, create_engine, inspect, select, table

from serviceplatform.cli import cli
from tests.certificates import MadeCert, make_cert
from tests.conftest import postgres_schema
from tests.integration.test_sandbox import start_sandbox, stop, wait_for_manifest

PROJECT = Path(__file__).resolve().parents[2]
TABLES = PROJECT / "routing_tables"
AGREEMENT = "9d3d53a2-af28-4372-9c0a-25550c8d048a"  # 29189846 sf2250, approved
PRINT_AGREEMENT = "6a1f4c1e-2f4b-4d7e-9a53-0b8f3c2d1e01"  # 29189846 sf1600, approved
SUSPENDED = "5c7cdb9a-1b4f-43c1-a006-6ceeda4af3f5"  # 29189870 sf2250
SYSTEM = "0d7fcabb-3505-4065-a006-d48b1cf50cc2"
UNKNOWN = "00000000-0000-4000-8000-000000000000"
HUGE = "9" * 30
#: Rows that a refused command may add: its own audit record, by design.
UNWATCHED_TABLES = frozenset({"audit_records", "replay_cache"})


@dataclass(frozen=True)
class Files:
    """Inputs for the file options, each wrong in one way but ``good``."""

    root: Path

    def __getitem__(self, name: str) -> str:
        return str(self.root / name)


def _key_pem(made: MadeCert) -> bytes:
    return made.key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Files:
    root = tmp_path_factory.mktemp("inputs")
    good = make_cert("CN=good,O=Tests,C=DK")
    (root / "good.crt").write_bytes(good.pem)
    (root / "good.key").write_bytes(_key_pem(good))
    (root / "other.key").write_bytes(_key_pem(make_cert()))
    expired = make_cert(
        "CN=expired,O=Tests,C=DK", not_before=datetime.now(UTC) - timedelta(days=30), days=1
    )
    (root / "expired.crt").write_bytes(expired.pem)
    (root / "expired.key").write_bytes(_key_pem(expired))
    (root / "garbage.pem").write_text(
        "-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n"
    )
    (root / "empty.pem").write_text("")
    (root / "binary.pem").write_bytes(bytes(range(256)) * 4)
    (root / "syntax.toml").write_text("[[[ this is = not toml\n")
    (root / "types.toml").write_text("[[agreements]]\nuuid = 5\n")
    (root / "header.csv").write_text("foo,bar\n1,2\n")
    (root / "binary.csv").write_bytes(b"\xff\xfe\x00garbage\n")
    (root / "wrong-password").write_text("wrong\n")
    (root / "nocsv").mkdir()
    return Files(root)


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A work dir the real sandbox made and left (stopped)."""
    workdir = tmp_path_factory.mktemp("sandbox") / "sb"
    process = start_sandbox(workdir)
    try:
        wait_for_manifest(workdir, process)
    finally:
        assert stop(process) == 0
    return workdir


def clone(pristine: Path, target: Path) -> Path:
    """A copy of the sandbox's work dir whose settings name the copy, not the original."""
    shutil.copytree(pristine, target)
    settings = target / "platform.toml"
    settings.write_text(settings.read_text().replace(str(pristine), str(target)))
    return target


def use_database(settings: Path, url: str) -> None:
    """Point the sandbox settings file ``settings`` at the database ``url``."""
    text = settings.read_text()
    old = next(line for line in text.splitlines() if line.startswith("url = "))
    settings.write_text(text.replace(old, f"url = {json.dumps(url)}"))


def _snapshot(engine: Engine, files: Path | None) -> dict[str, str]:
    """A digest per table (audit records aside) and per file: what a refusal must not change."""
    digests: dict[str, str] = {}
    with engine.connect() as connection:
        for name in inspect(connection).get_table_names():
            if name in UNWATCHED_TABLES:
                continue
            rows = connection.execute(select("*").select_from(table(name))).all()
            digests[name] = hashlib.sha256(repr(sorted(map(repr, rows))).encode()).hexdigest()
    if files is not None:
        for path in sorted(files.rglob("*")):
            if path.is_file() and ".sqlite" not in path.name:
                digests[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
    return digests


Case = tuple[int, Sequence[str]]


def _cases(f: Files) -> list[Case]:
    """(exit code, arguments): every one wrong, whatever the settings."""
    cases: list[Case] = []
    bad_text = ["", "abc", "1234567", "2918984X", "æøå🙂", "9" * 5000, "-1", " "]
    for value in [*bad_text, UNKNOWN, "../../etc/passwd"]:
        # After ``--``, so that ``-1`` is the argument, not an unknown option.
        for action in ("approve", "reject", "suspend", "resume", "revoke", "configure"):
            cases.append((1, ["agreements", action, "--reason", "bad input", "--", value]))
        cases.append((1, ["agreements", "show", "--", value]))
        cases.append((1, ["systems", "show", "--", value]))
        cases.append((1, ["systems", "deactivate", "--reason", "bad input", "--", value]))
        cases.append((1, ["systems", "rotate", "--cert", f["good.crt"], "--", value]))
        cases.append((1, ["print-route", "show", "--", value]))
        cases.append((1, ["print-route", "set", "--", value, "sf1601"]))
        cases.append((1, ["messages", "show", "--", value]))
        cases.append((1, ["messages", "resend", "--", value]))
    for value in bad_text:
        request = ["--service", "sf2250", "--consumer-system", SYSTEM, "--supplier", "S"]
        cases.append((1, ["agreements", "request", "--authority", value, *request]))
        cases.append((1, ["agreements", "configure", AGREEMENT, "--sysid", f"register={value}!"]))
        cases.append((1, ["agreements", "configure", AGREEMENT, "--sysid", f"{value}x=2252001"]))
        cases.append((1, ["agreements", "configure", AGREEMENT, "--cert-alias", value or "-"]))
        cases.append((2, ["agreements", "configure", AGREEMENT, "--valid-to", value or "x"]))
        cases.append((2, ["routing", "list", "--authority", value]))
        cases.append((2, ["subscriptions", "run", "--authority", value, "--no-deliver"]))
        cases.append((2, ["token", "--cvr", value]))
    for value in [
        "2026-13-45",
        "yesterday",
        "99999-01-01",
        "9999-12-31",
        "0001-01-01T00:00:00+05:00",
    ]:
        cases.append((1, ["messages", "list", "--until", value]))
        cases.append((1, ["messages", "list", "--since", value.replace("9999-12-31", "x")]))
    for ref in ["call:", "call:abc", f"call:{HUGE}", "call:²", "outbox:²", f"outbox:{HUGE}"]:
        cases.append((1, ["messages", "show", ref]))
        cases.append((1, ["messages", "resend", ref]))
    cases += [
        (1, ["messages", "list", "--after", "call:1"]),
        (2, ["messages", "list", "--outcome", "bogus"]),
        (2, ["messages", "list", "--authority", "2918984X"]),
        (2, ["messages", "list", "--service", "bogus"]),
        (2, ["messages", "list", "--error-code", "302"]),
        (2, ["messages", "list", "--subject", "abc"]),
        (2, ["messages", "list", "--source", "bogus"]),
        (2, ["agreements", "list", "--service", "bogus"]),
        (2, ["agreements", "list", "--authority", "2918984X"]),
        (2, ["systems", "list", "--supplier-cvr", "abc"]),
        (2, ["agreements", "list", "--status", "bogus"]),
        (2, ["agreements", "request", "--authority", "29189862"]),
        (2, ["agreements", "show"]),
        (2, ["agreements", "bogus"]),
        (2, ["agreements", "list", "--bogus"]),
        (2, ["bogus"]),
        (2, ["db", "upgrade", "extra"]),
        # State conflicts.
        (1, ["agreements", "configure", AGREEMENT, "--valid-to", "2001-01-01"]),
        (1, ["agreements", "approve", AGREEMENT]),
        (1, ["agreements", "resume", AGREEMENT]),
        (1, ["agreements", "approve", SUSPENDED]),
        (1, ["agreements", "suspend", SUSPENDED, "--reason", "twice"]),
        (1, ["agreements", "revoke", AGREEMENT]),  # no reason
        (1, ["systems", "activate", SYSTEM]),
        (1, ["certs", "remove", "no-such-alias", "--yes"]),
        (1, ["certs", "show", "no-such-alias"]),
        # A print route only for an SF1600 agreement.
        (1, ["print-route", "set", AGREEMENT, "sf1601"]),
        (2, ["print-route", "set", PRINT_AGREEMENT, "bogus"]),
        # Numbers out of range.
        (2, ["audit", "tail", "-n", HUGE]),
        (2, ["audit", "tail", "-n", "0"]),
        (2, ["subscriptions", "status", "-n", "-1"]),
        (2, ["messages", "list", "--limit", "0"]),
        (2, ["messages", "list", "--limit", HUGE]),
        (2, ["certs", "expiring", "--days", "-1"]),
        (2, ["token", "--cvr", "29189846", "--ttl", HUGE]),
        (2, ["token", "--cvr", "29189846", "--ttl", "-1"]),
        (2, ["token", "--cvr", "29189846", "--audience", ""]),
        # A valid CVR without an SF2250 agreement.
        (1, ["subscriptions", "run", "--authority", "29189862", "--no-deliver"]),
        (1, ["subscriptions", "run", "--date", "2999-01-01", "--no-deliver"]),
        (2, ["subscriptions", "run", "--date", "2026-02-30"]),
        # Files.
        (2, ["routing", "import", f["syntax.toml"]]),
        (2, ["routing", "diff", str(TABLES / "agreements.toml")]),
        (2, ["routing", "import", str(TABLES / "agreements.toml")]),
        (2, ["routing", "import", f["missing.csv"]]),
        (1, ["routing", "import", f["header.csv"]]),
        (1, ["routing", "import", f["binary.csv"]]),
        (1, ["routing", "import", f["nocsv"]]),
        (1, ["routing", "check", f["syntax.toml"]]),
        (1, ["routing", "export", "-o", f["no-such-dir/routes.csv"]]),
        (2, ["routing", "export", "-o", f["nocsv"]]),
        (1, ["agreements", "import", f["syntax.toml"]]),
        (1, ["agreements", "import", f["types.toml"]]),
        (1, ["agreements", "diff", f["binary.pem"]]),
        (2, ["agreements", "import", f["missing.toml"]]),
        (2, ["agreements", "import", f["nocsv"]]),
    ]
    register = ["systems", "register", "--name", "n", "--supplier-cvr", "12345674", "--cert"]
    for cert in ["garbage.pem", "empty.pem", "binary.pem", "expired.crt", "good.key"]:
        cases.append((1, [*register, f[cert]]))
        cases.append((1, ["systems", "rotate", SYSTEM, "--cert", f[cert]]))
        cases.append((1, ["systems", "add-certificate", SYSTEM, "--cert", f[cert]]))
    # A file that cannot be read as a certificate is one failure (SP-608), whatever the reason.
    cases.append((1, [*register, f["missing.crt"]]))
    cases.append((1, [*register, f["nocsv"]]))
    for cvr in ["1234567", "abc", ""]:
        cases.append((1, [*register[:-3], "--supplier-cvr", cvr, "--cert", f["good.crt"]]))
    cases.append((1, [*register, f["good.crt"], "--uuid", "not-a-uuid"]))
    for days in ["nan", "inf", "1e308", "-1"]:
        rotate = ["systems", "rotate", SYSTEM, "--cert", f["good.crt"], "--overlap-days", days]
        cases.append((2, rotate))
    for cert, key in [
        ("garbage.pem", "good.key"),
        ("good.crt", "garbage.pem"),
        ("good.crt", "other.key"),
        ("expired.crt", "expired.key"),
        ("empty.pem", "empty.pem"),
    ]:
        cases.append((1, ["certs", "import", "new-alias", "--cert", f[cert], "--key", f[key]]))
    cases += [
        (2, ["certs", "import", "new-alias", "--cert", f["good.crt"]]),
        (2, ["certs", "import", "new-alias"]),
        (1, ["certs", "import", "new-alias", "--cert", f["nocsv"], "--key", f["good.key"]]),
        (1, ["certs", "import", "new-alias", "--cert", f["missing.crt"], "--key", f["good.key"]]),
        (1, ["certs", "import", "new-alias", "--cert", f["good.crt"], "--key", f["missing.key"]]),
        (2, ["certs", "import", "new-alias", "--pkcs12", f["garbage.pem"], "--password-env", "X"]),
        (
            1,
            [
                "certs",
                "import",
                "new-alias",
                "--pkcs12",
                f["garbage.pem"],
                "--password-file",
                f["wrong-password"],
            ],
        ),
        (1, ["certs", "import", "../x", "--cert", f["good.crt"], "--key", f["good.key"]]),
        (1, ["certs", "import", "", "--cert", f["good.crt"], "--key", f["good.key"]]),
        (
            1,
            [
                "certs",
                "import",
                "platform-register",
                "--cert",
                f["good.crt"],
                "--key",
                f["good.key"],
            ],
        ),
    ]
    return cases


def _run(args: Sequence[str]) -> Any:
    return CliRunner().invoke(cli, list(args), catch_exceptions=True)


def _check(result: Any, expected: int, args: Sequence[str]) -> list[str]:
    """What is wrong with one refusal; empty when it is as the product promises."""
    problems: list[str] = []
    shown = [a if len(a) < 40 else a[:20] + "..." for a in args]
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        problems.append(f"{shown}: {type(result.exception).__name__}: {result.exception}")
    if "Traceback" in result.output:
        problems.append(f"{shown}: a traceback")
    if result.exit_code != expected:
        problems.append(f"{shown}: exit {result.exit_code}, not {expected}: {result.stderr!r}")
    elif expected == 2:
        if "Error: " not in result.stderr:
            problems.append(f"{shown}: no usage error: {result.stderr!r}")
    else:
        one_line = result.stderr.startswith("error: ") and result.stderr.count("\n") == 1
        # A routing table's list of problems keeps one per line, indented.
        listed = result.stderr.startswith("error: SP-310") and "\n  " in result.stderr
        if not (one_line or listed):
            problems.append(f"{shown}: not one line 'error: ...': {result.stderr!r}")
    return problems


def _sweep(state: list[str], url: str, files: Path | None, cases: Sequence[Case]) -> list[str]:
    problems: list[str] = []
    engine = create_engine(url)
    try:
        for expected, args in cases:
            before = _snapshot(engine, files)
            result = _run([*state, *args])  # before the command: a case may end `-- VALUE`
            problems += _check(result, expected, args)
            after = _snapshot(engine, files)
            changed = sorted(k for k in before.keys() | after.keys() if before[k] != after.get(k))
            if changed:
                problems.append(f"{list(args)[:4]}: wrote {changed}")
    finally:
        engine.dispose()
    return problems


def _database_url(workdir: Path) -> str:
    return f"sqlite:///{workdir / 'serviceplatform.sqlite'}"


def test_every_bad_invocation_on_a_sandbox_work_dir_is_refused_cleanly(
    pristine: Path, files: Files, tmp_path: Path
) -> None:
    workdir = clone(pristine, tmp_path / "sb")
    cases = _cases(files)
    problems = _sweep(["--workdir", str(workdir)], _database_url(workdir), workdir, cases)
    assert not problems, "\n".join(problems)
    assert len(cases) > 250


@pytest.fixture
def postgres_settings(
    pristine: Path, tmp_path: Path, postgres_url: str
) -> Iterator[tuple[Path, str]]:
    """The sandbox's settings on a PostgreSQL schema with the sample tables imported."""
    workdir = clone(pristine, tmp_path / "pg")
    with postgres_schema(postgres_url) as url:
        settings = workdir / "platform.toml"
        use_database(settings, url)
        for seed in (
            ["routing", "import"],
            ["agreements", "import", str(TABLES / "agreements.toml")],
        ):
            seeded = _run([*seed, "--config", str(settings)])
            assert seeded.exit_code == 0, seeded.output
        yield settings, url


def test_every_bad_invocation_on_postgresql_is_refused_cleanly(
    postgres_settings: tuple[Path, str], files: Files
) -> None:
    settings, url = postgres_settings
    # The sandbox's own commands (token) need a work dir; the rest is the same table.
    cases = [(code, args) for code, args in _cases(files) if args[0] != "token"]
    problems = _sweep(["--config", str(settings)], url, settings.parent, cases)
    assert not problems, "\n".join(problems)


def test_an_unreachable_database_stops_every_command_before_it_changes_anything(
    postgres_settings: tuple[Path, str], files: Files
) -> None:
    settings, url = postgres_settings
    unreachable = settings.parent / "unreachable.toml"
    port = url.split("@", 1)[1].split("/", 1)[0]
    unreachable.write_text(settings.read_text().replace(port, "127.0.0.1:1"))
    certs = settings.parent / "certs"
    before = sorted(p.name for p in certs.iterdir())
    cases: list[Case] = [
        (1, ["agreements", "list"]),
        (1, ["agreements", "configure", AGREEMENT, "--valid-to", "2001-01-01"]),
        (1, ["agreements", "approve", AGREEMENT]),
        (1, ["db", "upgrade"]),
        (1, ["routing", "import"]),
        (1, ["print-route", "show", PRINT_AGREEMENT]),
        (1, ["subscriptions", "status"]),
        (1, ["messages", "list"]),
        # The certificate store is files: the import must not write them and then fail.
        (
            1,
            [
                "certs",
                "import",
                "new-alias",
                "--cert",
                files["good.crt"],
                "--key",
                files["good.key"],
            ],
        ),
        (1, ["certs", "remove", "platform-register", "--yes"]),
    ]
    problems: list[str] = []
    for expected, args in cases:
        result = _run([*args, "--config", str(unreachable)])
        problems += _check(result, expected, args)
        if "SP-902" not in result.stderr:
            problems.append(f"{args}: not the database's error: {result.stderr!r}")
    assert not problems, "\n".join(problems)
    assert sorted(p.name for p in certs.iterdir()) == before


def test_a_refused_run_for_an_authority_without_agreement_leaves_no_lease(
    pristine: Path, tmp_path: Path
) -> None:
    workdir = clone(pristine, tmp_path / "sb")
    result = _run(["subscriptions", "run", "--authority", "29189862", "--workdir", str(workdir)])
    assert result.exit_code == 1
    assert result.stderr.startswith("error: SP-523 ") and "29189862" in result.stderr
    engine = create_engine(_database_url(workdir))
    try:
        with engine.connect() as connection:
            leases = connection.execute(select("*").select_from(table("job_leases"))).all()
    finally:
        engine.dispose()
    assert leases == []


def test_certs_remove_unconfirmed_or_impossible_is_one_error_line(
    pristine: Path, tmp_path: Path
) -> None:
    workdir = clone(pristine, tmp_path / "sb")
    remove = ["--workdir", str(workdir), "certs", "remove", "platform-register"]
    for answer in ["", "n\n"]:  # a script without --yes (standard input closed); a "no"
        result = CliRunner().invoke(cli, remove, input=answer)
        assert result.exit_code == 1, result.output
        assert result.stderr == "error: platform-register not removed: answer y, or give --yes\n"
    certs = workdir / "certs"
    assert (certs / "platform-register.key").is_file()
    # A file the platform cannot remove (here a directory in the key's place) is an error
    # line, not a PermissionError/IsADirectoryError traceback.
    (certs / "oots-as4.key").unlink()
    (certs / "oots-as4.key").mkdir()
    (certs / "oots-as4.key" / "keep").write_text("x")
    result = _run(["--workdir", str(workdir), "certs", "remove", "oots-as4", "--yes"])
    assert _check(result, 1, ["certs", "remove", "oots-as4"]) == []
    assert "SP-420" in result.stderr and "cannot remove" in result.stderr
    assert (certs / "oots-as4.crt").is_file()


def _command(workdir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    # The console script, as an operator runs it; the timeout only keeps a server that
    # wrongly starts from holding the suite (the commands below all stop at once).
    return subprocess.run(
        [sys.executable, "-m", "serviceplatform.cli", "--workdir", str(workdir), *args],
        cwd=PROJECT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_real_command_prints_no_traceback(pristine: Path, tmp_path: Path) -> None:
    workdir = clone(pristine, tmp_path / "sb")
    done = _command(workdir, "routing", "export", "-o", str(tmp_path / "missing" / "routes.csv"))
    assert done.returncode == 1
    assert done.stderr.startswith("error: cannot write ") and done.stderr.count("\n") == 1
    assert not (tmp_path / "missing").exists()


@pytest.mark.parametrize(
    ("expected", "args"),
    [
        (2, ["serve", "--workers", "0"]),
        (2, ["serve", "--workers", "-1"]),
        (2, ["serve", "--threads", HUGE]),
        (2, ["serve", "--bind", "127.0.0.1:99999"]),
        (2, ["serve", "--bind", "127.0.0.1:-1"]),
        (2, ["serve", "--bind", "[::1"]),
        # gunicorn's workers retried a host that does not resolve for ever.
        (1, ["serve", "--bind", "no-such-host.invalid:8123"]),
        (2, ["sandbox", "--port", "99999"]),
        (2, ["sandbox", "--port", "-1"]),
        (2, ["sandbox", "--workers", "0"]),
    ],
)
def test_serve_and_sandbox_refuse_bad_addresses_and_sizes_before_starting(
    pristine: Path, tmp_path: Path, expected: int, args: list[str]
) -> None:
    workdir = clone(pristine, tmp_path / "sb")
    done = _command(workdir, *args)
    assert done.returncode == expected, done.stderr
    assert "Traceback" not in done.stderr and "Booting worker" not in done.stderr
    if expected == 1:
        assert done.stderr.startswith("error: ") and done.stderr.count("\n") == 1
    else:
        assert "Usage: " in done.stderr


def test_wrong_settings_exit_5_and_no_settings_exit_4(
    pristine: Path, tmp_path: Path, files: Files, monkeypatch: pytest.MonkeyPatch
) -> None:
    workdir = clone(pristine, tmp_path / "sb")
    settings = (workdir / "platform.toml").read_text()
    old = next(line for line in settings.splitlines() if line.startswith("url = "))
    wrong: dict[str, str] = {
        "syntax.toml": "[database\nurl =",
        "unknown.toml": settings + "\n[bogus]\nx = 1\n",
        "garbage-url.toml": settings.replace(old, 'url = "garbage"'),
        "mysql.toml": settings.replace(old, 'url = "mysql://db/sp"'),
    }
    cases: list[Case] = [(5, ["--config", files["missing.toml"], "agreements", "list"])]
    for name, text in wrong.items():
        (tmp_path / name).write_text(text)
        cases.append((5, ["--config", str(tmp_path / name), "agreements", "list"]))
        cases.append((5, ["--config", str(tmp_path / name), "db", "upgrade"]))
    cases += [
        (5, ["--workdir", files["nocsv"], "agreements", "list"]),
        (2, ["--workdir", files["good.crt"], "agreements", "list"]),
        (2, ["--config", files["nocsv"], "agreements", "list"]),
        (
            2,
            [
                "--config",
                str(workdir / "platform.toml"),
                "--workdir",
                str(workdir),
                "audit",
                "tail",
            ],
        ),
    ]
    problems: list[str] = []
    monkeypatch.delenv("SP_CONFIG", raising=False)
    for expected, args in cases:
        problems += _check(_run(args), expected, args)
    problems += _check(_run(["agreements", "list"]), 4, ["agreements", "list"])
    monkeypatch.setenv("SP_BOGUS", "1")
    problems += _check(_run(["--workdir", str(workdir), "audit", "tail"]), 5, ["SP_BOGUS"])
    assert not problems, "\n".join(problems)
    # config check lists the URL with the other problems, as serve refuses it.
    checked = _run(["--config", str(tmp_path / "mysql.toml"), "config", "check"])
    assert checked.exit_code == 5
    assert "problem: database.url: unsupported database 'mysql'" in checked.stderr
    # None of them created a database where the settings pointed.
    assert not list(tmp_path.glob("*.sqlite"))


# --- the admin API ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def admin(pristine: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The running sandbox's admin API: its URL and tokens."""
    workdir = clone(pristine, tmp_path_factory.mktemp("api") / "sb")
    (workdir / "sandbox.json").unlink(missing_ok=True)
    process = start_sandbox(workdir)
    try:
        manifest = wait_for_manifest(workdir, process)
        yield dict(manifest["admin"])
    finally:
        assert stop(process) == 0


def _api_cases() -> list[tuple[int, str, str, str | None]]:
    """(HTTP status, method, path, body): every one wrong."""
    deep = '{"a": ' * 5000 + "1" + "}" * 5000
    cases: list[tuple[int, str, str, str | None]] = []
    changing = [
        ("POST", "/agreements"),
        ("POST", f"/agreements/{AGREEMENT}/suspend"),
        ("PUT", f"/agreements/{AGREEMENT}/configuration"),
        ("PUT", f"/agreements/{PRINT_AGREEMENT}/print-route"),
        ("POST", "/consumer-systems"),
        ("POST", f"/consumer-systems/{SYSTEM}/certificates"),
        ("POST", f"/consumer-systems/{SYSTEM}/deactivate"),
    ]
    for method, path in changing:
        for body in ["{", "[]", "null", '"x"', deep, '{"reason": "x"} trailing']:
            cases.append((400, method, path, body))
    cases += [
        (400, "POST", "/agreements", '{"authority_cvr": "abc", "service": "sf2250"}'),
        (400, "POST", "/agreements", '{"authority_cvr": 29189862, "service": "sf2250"}'),
        (400, "PUT", f"/agreements/{AGREEMENT}/configuration", '{"sysids": "x"}'),
        (400, "PUT", f"/agreements/{AGREEMENT}/configuration", '{"valid_to": "abc"}'),
        (400, "PUT", f"/agreements/{AGREEMENT}/configuration", '{"valid_to": "2001-01-01"}'),
        (400, "PUT", f"/agreements/{AGREEMENT}/configuration", '{"register_cert_alias": 5}'),
        (400, "PUT", f"/agreements/{PRINT_AGREEMENT}/print-route", '{"print_route": 5}'),
        (400, "PUT", f"/agreements/{AGREEMENT}/print-route", '{"print_route": "sf1601"}'),
        (404, "PUT", f"/agreements/{UNKNOWN}/print-route", '{"print_route": "sf1601"}'),
        (404, "GET", f"/agreements/{UNKNOWN}/print-route", None),
        (409, "POST", f"/agreements/{AGREEMENT}/approve", "{}"),
        (409, "POST", f"/agreements/{SUSPENDED}/suspend", '{"reason": "twice"}'),
        (400, "POST", f"/agreements/{AGREEMENT}/revoke", '{"reason": ["a"]}'),
        (404, "POST", f"/agreements/{UNKNOWN}/approve", "{}"),
        (400, "POST", "/consumer-systems", '{"name": "n", "certificate_pem": "garbage"}'),
        (400, "POST", f"/consumer-systems/{SYSTEM}/certificates", '{"overlap_days": NaN}'),
        (400, "POST", f"/consumer-systems/{SYSTEM}/certificates", '{"overlap_days": 1e308}'),
        (404, "POST", f"/consumer-systems/{UNKNOWN}/activate", "{}"),
        (404, "GET", f"/messages/call/{HUGE}", None),
        (404, "GET", f"/messages/outbox/{HUGE}", None),
        # An id that names nothing is not found (SP-611), as for its detail; SP-612 (409)
        # is for a row that exists and cannot be resent.
        (404, "POST", f"/messages/call/{HUGE}/resend", "{}"),
        (404, "POST", f"/messages/outbox/{HUGE}/resend", "{}"),
        (404, "POST", "/messages/oots/no-such-request/resend", "{}"),
        (400, "GET", "/messages?until=9999-12-31", None),
        (400, "GET", "/messages?since=0001-01-01T00:00:00%2B05:00", None),
        (400, "GET", "/messages?after=abc", None),
        (400, "GET", "/messages?outcome=bogus", None),
        (400, "GET", "/messages?authority_cvr=2918984X", None),
        (400, "GET", "/messages?service=bogus", None),
        (400, "GET", "/messages?error_code=302", None),
        (400, "GET", "/messages?subject=abc", None),
    ]
    for path in ["/audit?limit=", "/messages?limit=", "/subscriptions/runs?limit=", "/usage?days="]:
        for value in ["%C2%B2", "-1", "0", "abc", HUGE]:
            cases.append((400, "GET", path + value, None))
    return cases


def test_every_bad_admin_request_gets_a_json_error_and_changes_nothing(
    admin: dict[str, Any],
) -> None:
    api = admin["api_url"]
    operator = {"Authorization": f"Bearer {admin['tokens']['operator']}"}

    def state() -> tuple[Any, Any]:
        agreements = requests.get(f"{api}/agreements", headers=operator, timeout=30).json()
        systems = requests.get(f"{api}/consumer-systems", headers=operator, timeout=30).json()
        return agreements, systems

    before = state()
    problems: list[str] = []
    for status, method, path, body in _api_cases():
        headers = {**operator, "Content-Type": "application/json"}
        answer = requests.request(
            method, api + path, data=body.encode() if body else None, headers=headers, timeout=30
        )
        try:
            error = answer.json()["error"]
        except (ValueError, KeyError, TypeError):
            error = None
        if answer.status_code != status or not (error and error["code"].startswith("SP-6")):
            problems.append(
                f"{method} {path} {(body or '')[:40]!r}: {answer.status_code} {answer.text[:120]!r}"
            )
    for token in [None, "wrong"]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        answer = requests.post(
            f"{api}/agreements/{AGREEMENT}/suspend",
            json={"reason": "x"},
            headers=headers,
            timeout=30,
        )
        if answer.status_code != 401 or answer.json()["error"]["code"] != "SP-601":
            problems.append(f"token {token}: {answer.status_code}")
    wrong_type = requests.post(
        f"{api}/agreements/{AGREEMENT}/suspend",
        data='{"reason": "x"}',
        headers={**operator, "Content-Type": "text/plain"},
        timeout=30,
    )
    if wrong_type.status_code != 415:
        problems.append(f"text/plain: {wrong_type.status_code}")
    huge = requests.post(
        f"{api}/agreements/{AGREEMENT}/suspend",
        data=b'{"reason": "' + b"x" * 2_000_000 + b'"}',
        headers={**operator, "Content-Type": "application/json"},
        timeout=30,
    )
    if huge.status_code != 400:
        problems.append(f"2 MB body: {huge.status_code}")
    assert not problems, "\n".join(problems)
    assert state() == before
