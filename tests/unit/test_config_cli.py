"""Configuration refusals of the command line: each one exit code and one line naming the fix.

``serve``'s checks run before gunicorn starts, so click's test runner sees them; a fit
configuration reaches the server function, which is replaced by a recorder here.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import tomllib
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from alembic.script import ScriptDirectory
from click.testing import CliRunner, Result
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

from serviceplatform import logsetup, server
from serviceplatform.cli import cli
from serviceplatform.commands.settings_source import EXIT_BAD_SETTINGS, EXIT_NO_SETTINGS
from serviceplatform.outbound.certstore import CertificateStore
from serviceplatform.sandbox.pki import Pki, ensure_pki
from serviceplatform.store.db import Database, alembic_config, migration_head
from tests.as4_material import key_pem, party
from tests.certificates import make_cert

NO_SETTINGS = (
    "error: no settings: give --config FILE, --workdir DIR (a sandbox) or SP_CONFIG=FILE\n"
)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return ensure_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No SP_* settings from the shell running the tests (SP_TEST_* stay: they are ignored)."""
    for name in [n for n in os.environ if n.startswith("SP_") and not n.startswith("SP_TEST_")]:
        monkeypatch.delenv(name)


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """What reached the server: a fit configuration gets there, a refused one never."""
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(server, "serve", lambda settings, **options: calls.append(options))
    monkeypatch.setattr(logsetup, "configure", lambda level: None)
    return calls


def fit_config(tmp_path: Path, pki: Pki, extra: str = "", **tables: str) -> Path:
    """A configuration serve accepts; ``tables`` replace a table's body (``soap="..."``)."""
    body = {
        "database": f'url = "sqlite:///{tmp_path / "platform.sqlite"}"',
        "security": f'trusted_sts_certs = ["{pki.sts_cert}"]\ntrusted_issuers = ["https://sts"]',
        "soap": 'public_base_url = "https://sp.example.dk"',
        "certificates": f'directory = "{tmp_path / "certs"}"',
    }
    body.update(tables)
    path = tmp_path / "platform.toml"
    text = "".join(f"[{name}]\n{lines}\n" for name, lines in body.items())
    path.write_text(text + extra, encoding="utf-8")
    return path


def run(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), env=env)


def assert_served(config: Path, served: list[dict[str, Any]]) -> None:
    """``serve --config config`` reached the server (the ``served`` fixture), once."""
    assert run("serve", "--config", str(config), "--bind", "127.0.0.1:1").exit_code == 0
    assert len(served) == 1


def assert_checked_and_served(config: Path, served: list[dict[str, Any]]) -> None:
    """``config check`` finds nothing in ``config`` and ``serve`` starts with it."""
    checked = run("config", "check", "--config", str(config))
    assert checked.exit_code == 0, checked.output
    assert_served(config, served)


def one_line(result: Result, code: int) -> str:
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


# --- no settings --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv",
    [
        ["certs", "expiring", "--days", "400"],
        ["db", "upgrade"],
        ["routing", "list"],
        ["audit", "tail"],
        ["agreements", "list"],
        ["subscriptions", "status"],
        ["config", "check"],
        ["serve"],
    ],
    ids=" ".join,
)
def test_a_state_command_without_settings_stops_and_creates_nothing(
    argv: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, served: list[Any]
) -> None:
    monkeypatch.chdir(tmp_path)
    result = run(*argv)
    assert result.exit_code == EXIT_NO_SETTINGS, result.output
    assert result.stderr == NO_SETTINGS
    assert list(tmp_path.iterdir()) == []
    assert served == []


def test_sp_config_names_the_settings_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    database = tmp_path / "elsewhere" / "sp.sqlite"
    database.parent.mkdir()
    config = tmp_path / "elsewhere" / "platform.toml"
    config.write_text(f'[database]\nurl = "sqlite:///{database}"\n', encoding="utf-8")
    first = run("db", "upgrade", env={"SP_CONFIG": str(config)})
    assert first.exit_code == 0, first.output
    head = migration_head()
    assert first.stdout == f"migrated the empty database sqlite:///{database} to {head}\n"
    again = run("db", "upgrade", env={"SP_CONFIG": str(config)})
    assert again.stdout == f"sqlite:///{database} is already at the newest schema ({head})\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["elsewhere"]  # nothing in the cwd


@pytest.mark.parametrize(
    "argv", [["db", "upgrade"], ["agreements", "list"], ["audit", "tail"]], ids=" ".join
)
def test_a_sqlite_database_in_a_missing_folder_is_named_as_such(
    tmp_path: Path, argv: list[str]
) -> None:
    """It used to be reported as a failure of the "writer lock", which says nothing."""
    database = tmp_path / "no" / "such" / "platform.sqlite"
    config = tmp_path / "platform.toml"
    config.write_text(f'[database]\nurl = "sqlite:///{database}"\n', encoding="utf-8")
    line = one_line(run("--config", str(config), *argv), 1)
    assert line == (
        f"error: SP-902 The platform's database failed: the folder of the SQLite database "
        f"file {database} does not exist: create {database.parent}, or correct database.url"
    )
    assert not (tmp_path / "no").exists()


def test_config_check_and_serve_name_a_missing_sqlite_folder(
    tmp_path: Path, pki: Pki, served: list[Any]
) -> None:
    database = tmp_path / "no" / "such" / "platform.sqlite"
    config = fit_config(tmp_path, pki, database=f'url = "sqlite:///{database}"')
    problem = (
        f"database.url: the folder of the SQLite database file {database} does not exist: "
        f"create {database.parent}, or correct database.url"
    )
    checked = run("config", "check", "--config", str(config))
    assert checked.exit_code == EXIT_BAD_SETTINGS
    assert checked.stderr.splitlines() == [f"problem: {problem}"]
    assert refused(config) == f"error: cannot serve with {config}: {problem}"
    assert served == []
    # A relative path is the settings file's directory's, as the database takes it.
    relative = fit_config(tmp_path, pki, database='url = "sqlite:///data/platform.sqlite"')
    assert f"{tmp_path / 'data' / 'platform.sqlite'} does not exist" in refused(relative)
    (tmp_path / "data").mkdir()
    assert run("config", "check", "--config", str(relative)).exit_code == 0
    assert not (tmp_path / "no").exists()


def test_a_sqlite_database_in_a_folder_that_cannot_be_written_is_named_as_such(
    tmp_path: Path,
) -> None:
    """A read-only work dir: even a command that only reads fails (it migrates on open, and
    SQLite's WAL needs its -shm file beside the database to read), and says why. Made
    immutable with chattr, which holds for root too (the suite runs as root)."""
    folder = tmp_path / "ro"
    folder.mkdir()
    database = folder / "platform.sqlite"
    config = tmp_path / "platform.toml"
    config.write_text(f'[database]\nurl = "sqlite:///{database}"\n', encoding="utf-8")
    migrated = Database(f"sqlite:///{database}")
    migrated.upgrade()
    migrated.dispose()  # closed: SQLite removes its -wal and -shm files, as after a stop
    assert sorted(p.name for p in folder.iterdir()) == [
        "platform.sqlite",
        "platform.sqlite.writer-lock",
    ]
    subprocess.run(["chattr", "+i", str(folder)], check=True)
    try:
        for argv in (["agreements", "list"], ["audit", "tail"], ["db", "upgrade"]):
            line = one_line(run("--config", str(config), *argv), 1)
            assert line == (
                "error: SP-902 The platform's database failed: the folder of the SQLite "
                f"database file {database} cannot be written: {folder} (the database needs "
                "its lock, -wal and -shm files beside it)"
            ), argv
    finally:
        subprocess.run(["chattr", "-i", str(folder)], check=True)


def test_db_upgrade_names_the_revisions_it_migrated_between(tmp_path: Path) -> None:
    head = migration_head()
    assert head is not None
    earlier = ScriptDirectory.from_config(alembic_config()).get_revision(head).down_revision
    assert isinstance(earlier, str)
    url = f"sqlite:///{tmp_path / 'sp.sqlite'}"
    database = Database(url)
    database.upgrade(earlier)
    database.dispose()
    config = tmp_path / "platform.toml"
    config.write_text(f'[database]\nurl = "{url}"\n')
    result = run("db", "upgrade", "--config", str(config))
    assert result.exit_code == 0, result.output
    assert result.stdout == f"migrated {url} from {earlier} to {head}\n"


def test_a_settings_file_with_a_byte_order_mark_is_read(tmp_path: Path, pki: Pki) -> None:
    """A Windows editor may start the UTF-8 file with one; TOML's parser alone said only
    "Invalid statement (at line 1, column 1)" (exit 5)."""
    config = fit_config(tmp_path, pki)
    config.write_bytes(b"\xef\xbb\xbf" + config.read_bytes())
    result = run("config", "check", "--config", str(config))
    assert result.exit_code == 0, result.output
    assert tomllib.loads(result.stdout)["soap"]["public_base_url"] == "https://sp.example.dk"


def test_config_beats_sp_config(tmp_path: Path) -> None:
    config = tmp_path / "platform.toml"
    config.write_text(f'[database]\nurl = "sqlite:///{tmp_path / "a.sqlite"}"\n')
    result = run("db", "upgrade", "--config", str(config), env={"SP_CONFIG": "/nowhere.toml"})
    assert result.exit_code == 0, result.output
    assert (tmp_path / "a.sqlite").exists()


def test_sp_config_naming_a_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "missing.toml"
    line = one_line(run("audit", "tail", env={"SP_CONFIG": str(missing)}), EXIT_BAD_SETTINGS)
    assert line == f"error: invalid settings: configuration file {missing} does not exist"


def test_an_unknown_sp_variable_is_refused_by_name(tmp_path: Path, pki: Pki) -> None:
    config = fit_config(tmp_path, pki)
    result = run("db", "upgrade", "--config", str(config), env={"SP_FOO__BAR": "1"})
    line = one_line(result, EXIT_BAD_SETTINGS)
    assert line == "error: invalid settings: unknown setting foo from SP_FOO__BAR"
    assert not (tmp_path / "platform.sqlite").exists()


def test_test_suite_variables_are_ignored(tmp_path: Path, pki: Pki) -> None:
    config = fit_config(tmp_path, pki)
    result = run("db", "upgrade", "--config", str(config), env={"SP_TEST_ANYTHING": "1"})
    assert result.exit_code == 0, result.output


# --- serve ------------------------------------------------------------------------------


def test_serve_starts_with_a_fit_configuration(
    tmp_path: Path, pki: Pki, served: list[dict[str, Any]]
) -> None:
    key = tmp_path / "certs" / "reg.key"
    key.parent.mkdir()
    key.write_text("a key")
    key.chmod(0o600)
    result = run("serve", "--config", str(fit_config(tmp_path, pki)), "--bind", "127.0.0.1:1")
    assert result.exit_code == 0, result.output
    assert served == [{"bind": "127.0.0.1:1", "workers": 2, "threads": 4}]


def test_serve_sets_up_the_masking_production_logging_first(
    tmp_path: Path, pki: Pki, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``serve`` configures logging (``logsetup.configure``, whose CPR masking
    test_logmask.py checks in a fresh process) before the server starts."""
    steps: list[str] = []
    monkeypatch.setattr(server, "serve", lambda settings, **options: steps.append("serve"))
    monkeypatch.setattr(logsetup, "configure", lambda level: steps.append(f"logging {level}"))
    config = fit_config(tmp_path, pki, logging='level = "WARNING"')
    result = run("serve", "--config", str(config), "--bind", "127.0.0.1:1")
    assert result.exit_code == 0, result.output
    assert steps == ["logging WARNING", "serve"]


@pytest.fixture
def started(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """The real ``server.serve`` down to gunicorn, which is replaced by a recorder."""
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(server, "prepare_metrics_dir", lambda: (tmp_path / "metrics", False))
    monkeypatch.setattr(server, "_run", lambda settings, **options: calls.append(options))
    monkeypatch.setattr(logsetup, "configure", lambda level: None)
    return calls


@pytest.mark.parametrize("reuse_port", [False, True], ids=["plain", "SO_REUSEPORT"])
def test_serve_refuses_an_address_another_server_listens_on(
    tmp_path: Path, pki: Pki, started: list[dict[str, Any]], reuse_port: bool
) -> None:
    """Workers that listen with SO_REUSEPORT would silently share a port with another
    platform of the same user: ``serve`` refuses a taken address before starting anything."""
    with socket.socket() as other:
        if reuse_port:
            other.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        other.bind(("127.0.0.1", 0))
        other.listen()
        bind = f"127.0.0.1:{other.getsockname()[1]}"
        line = one_line(run("serve", "--config", str(fit_config(tmp_path, pki)), "--bind", bind), 1)
    assert line == (
        f"error: SP-901 The platform is misconfigured: {bind} is in use: another server "
        "listens there (a platform already running?); stop it or give serve another --bind"
    )
    assert started == []


@pytest.mark.parametrize(
    ("bind", "reason"),
    [
        # The resolver's words depend on the machine's DNS (none, or one that answers).
        ("no-such-host.invalid:8080", None),
        ("192.0.2.1:8080", "Cannot assign requested address"),  # TEST-NET-1: not this machine
    ],
    ids=["unresolvable", "not-local"],
)
def test_serve_refuses_an_address_it_cannot_listen_on(
    tmp_path: Path, pki: Pki, started: list[dict[str, Any]], bind: str, reason: str | None
) -> None:
    """With a socket per worker the master binds nothing: a bad address would only fail in
    the workers, which gunicorn restarts for ever. ``serve`` refuses it in one line first."""
    line = one_line(run("serve", "--config", str(fit_config(tmp_path, pki)), "--bind", bind), 1)
    prefix = f"error: SP-901 The platform is misconfigured: cannot listen on {bind}: "
    suffix = "; give serve an address of this machine (--bind HOST:PORT)"
    assert line.startswith(prefix) and line.endswith(suffix), line
    assert len(line) > len(prefix) + len(suffix)  # the reason is named
    if reason is not None:
        assert line == prefix + reason + suffix
    assert started == []


def test_serve_starts_gunicorn_on_a_free_address(
    tmp_path: Path, pki: Pki, started: list[dict[str, Any]]
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        bind = f"127.0.0.1:{probe.getsockname()[1]}"
    result = run("serve", "--config", str(fit_config(tmp_path, pki)), "--bind", bind)
    assert result.exit_code == 0, result.output
    assert started == [{"bind": bind, "workers": 2, "threads": 4}]


@pytest.mark.parametrize("command", ["serve", "sandbox"])
@pytest.mark.parametrize("option", ["--workers=0", "--threads=0", "--workers=-1"])
def test_no_workers_or_threads_is_a_usage_error(
    tmp_path: Path,
    pki: Pki,
    started: list[dict[str, Any]],
    served: list[dict[str, Any]],
    command: str,
    option: str,
) -> None:
    """0 workers served nothing for ever, 0 threads failed every worker (exit 3), -1 got
    gunicorn's own exit 1: each is click's usage error before anything starts."""
    where = ["--config", str(fit_config(tmp_path, pki))]
    if command == "sandbox":
        where = ["--workdir", str(tmp_path / "sbx")]
    result = run(command, *where, option)
    assert result.exit_code == 2, result.output
    name, value = option.split("=")
    assert f"Invalid value for '{name}': {value} is not in the range 1<=x<=" in result.stderr
    assert started == [] and served == []
    assert not (tmp_path / "sbx").exists()


@pytest.mark.parametrize(("workers", "said"), [(2, True), (1, False)])
def test_serve_says_where_it_listens_when_the_workers_bind(
    tmp_path: Path,
    pki: Pki,
    started: list[dict[str, Any]],
    caplog: pytest.LogCaptureFixture,
    workers: int,
    said: bool,
) -> None:
    """With a socket per worker gunicorn logs "Listening at:" with no address (its master
    has no socket): the platform's own line names it. One worker: gunicorn's line does."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        bind = f"127.0.0.1:{probe.getsockname()[1]}"
    caplog.set_level(logging.INFO, logger="serviceplatform.server")
    config = str(fit_config(tmp_path, pki))
    result = run("serve", "--config", config, "--bind", bind, "--workers", str(workers))
    assert result.exit_code == 0, result.output
    line = f"listening at {bind}: each of the 2 workers on its own socket"
    assert (line in caplog.messages) is said


@pytest.mark.parametrize(
    ("bind", "workers", "expected"),
    [
        ("127.0.0.1:8080", 2, True),
        ("0.0.0.0:8080", 4, True),
        ("[::1]:8080", 2, True),
        ("127.0.0.1:8080", 1, False),  # nothing to spread; a restart keeps its queue
        ("127.0.0.1:0", 2, False),  # each worker would get a port of its own
        ("unix:/run/serviceplatform.sock", 2, False),
        ("fd://3", 2, False),
    ],
)
def test_each_worker_listens_on_its_own_socket_where_it_can(
    bind: str, workers: int, expected: bool
) -> None:
    """The option gunicorn is given; that the workers then listen on their own sockets is
    checked on a running sandbox (tests/integration/test_sandbox.py)."""
    assert server.socket_per_worker(bind, workers) is expected


def refused(config: Path) -> str:
    return one_line(run("serve", "--config", str(config)), EXIT_BAD_SETTINGS)


def assert_listed_and_refused(
    config: Path, problems: list[str], served: list[dict[str, Any]]
) -> Result:
    """``config check`` lists exactly ``problems`` (exit 5), and ``serve`` refuses with the
    first of them and how many more there are, before reaching the server. Returns what
    ``config check`` printed."""
    checked = run("config", "check", "--config", str(config))
    assert checked.exit_code == EXIT_BAD_SETTINGS
    assert checked.stderr.splitlines() == [f"problem: {problem}" for problem in problems]
    more = len(problems) - 1
    tail = f" (and {more} more: `serviceplatform config check` lists them)" if more else ""
    assert refused(config) == f"error: cannot serve with {config}: {problems[0]}{tail}"
    assert served == []
    return checked


def test_serve_refuses_no_trusted_sts_certificates(
    tmp_path: Path, pki: Pki, served: list[Any]
) -> None:
    config = fit_config(tmp_path, pki, security='trusted_issuers = ["https://sts"]')
    assert refused(config) == (
        f"error: cannot serve with {config}: security.trusted_sts_certs is empty: name the PEM "
        "files of the STS certificates whose tokens are trusted"
    )
    assert served == []


def test_serve_refuses_an_unreadable_sts_certificate(
    tmp_path: Path, pki: Pki, served: list[Any]
) -> None:
    missing = tmp_path / "sts.crt"
    security = f'trusted_sts_certs = ["{missing}"]\ntrusted_issuers = ["https://sts"]'
    config = fit_config(tmp_path, pki, security=security)
    assert refused(config) == (
        f"error: cannot serve with {config}: security.trusted_sts_certs: {missing} cannot be "
        "read (No such file or directory)"
    )
    assert served == []


def test_serve_refuses_no_trusted_issuers(tmp_path: Path, pki: Pki, served: list[Any]) -> None:
    config = fit_config(tmp_path, pki, security=f'trusted_sts_certs = ["{pki.sts_cert}"]')
    assert refused(config) == (
        f"error: cannot serve with {config}: security.trusted_issuers is empty: name the Issuer "
        "of the STS's tokens"
    )
    assert served == []


def test_serve_refuses_no_public_base_url(tmp_path: Path, pki: Pki, served: list[Any]) -> None:
    config = fit_config(tmp_path, pki, soap="max_body_bytes = 1000")
    assert refused(config) == (
        f"error: cannot serve with {config}: soap.public_base_url is empty: give the base URL "
        "callers use (https://host), so the signed wsa:To of each request is checked"
    )
    assert served == []


def test_serve_refuses_a_public_base_url_without_host(
    tmp_path: Path, pki: Pki, served: list[Any]
) -> None:
    config = fit_config(tmp_path, pki, soap='public_base_url = "sp.example.dk"')
    assert refused(config) == (
        f"error: cannot serve with {config}: soap.public_base_url 'sp.example.dk' is not an "
        "http(s) URL with a host"
    )
    assert served == []


def test_serve_refuses_an_outward_key_readable_by_others(
    tmp_path: Path, pki: Pki, served: list[Any]
) -> None:
    key = tmp_path / "certs" / "reg.key"
    key.parent.mkdir()
    key.write_text("a key")
    key.chmod(0o644)
    config = fit_config(tmp_path, pki)
    assert refused(config) == (
        f"error: cannot serve with {config}: certificates.directory: {key} is readable by group "
        "or others (mode 0644): chmod 600 it"
    )
    assert served == []


def test_serve_refuses_a_token_key_open_to_the_group(
    tmp_path: Path, pki: Pki, served: list[Any]
) -> None:
    key = tmp_path / "sts.key"
    key.write_text("a key")
    key.chmod(0o620)
    config = fit_config(tmp_path, pki, extra=f'[distributor.amqp]\nsts_key = "{key}"\n')
    assert refused(config) == (
        f"error: cannot serve with {config}: distributor.amqp.sts_key: {key} is writable by "
        "group or others (mode 0620): chmod 600 it"
    )
    assert served == []


def test_serve_refuses_a_password_file_readable_by_others(
    tmp_path: Path, pki: Pki, served: list[Any]
) -> None:
    secret = tmp_path / "domibus.pw"
    secret.write_text("pw")
    secret.chmod(0o604)
    config = fit_config(tmp_path, pki, extra=f'[oots]\ndomibus_password_file = "{secret}"\n')
    assert refused(config) == (
        f"error: cannot serve with {config}: oots.domibus_password_file: {secret} is readable "
        "by group or others (mode 0604): chmod 600 it"
    )
    assert served == []


PASSWORD_TABLES = {
    "database.url": '[database]\nurl = "postgresql+psycopg://sp:hunter2@db.example.dk/sp"\n',
    "distributor.amqp.url": '[distributor.amqp]\nurl = "amqps://bf:hunter2@bf.example.dk/"\n',
    "oots.domibus_password": '[oots]\ndomibus_password = "hunter2"\n',
    "oots.push_password": '[oots]\npush_password = "hunter2"\n',
    "oots.requesters.29189846.domibus_password": (
        '[oots.requesters.29189846]\ndomibus_password = "hunter2"\n'
    ),
}


@pytest.mark.parametrize("setting", sorted(PASSWORD_TABLES))
def test_serve_refuses_a_settings_file_with_a_password_readable_by_others(
    tmp_path: Path, pki: Pki, served: list[Any], setting: str
) -> None:
    table = PASSWORD_TABLES[setting]
    if setting == "database.url":
        config = fit_config(tmp_path, pki, database=table.split("\n", 1)[1])
    else:
        config = fit_config(tmp_path, pki, extra=table)
    config.chmod(0o644)
    problem = (
        f"{setting}: {config} holds a password and is readable by group or others "
        f"(mode 0644): chmod 600 {config}"
    )
    assert refused(config) == f"error: cannot serve with {config}: {problem}"
    checked = run("config", "check", "--config", str(config))
    assert checked.exit_code == EXIT_BAD_SETTINGS
    assert checked.stderr.splitlines() == [f"problem: {problem}"]
    # Over SP_CONFIG too, and with the password overridden by a variable: the file still
    # shows it.
    env = {"SP_CONFIG": str(config), "SP_OOTS__DOMIBUS_PASSWORD": "other"}
    assert one_line(run("serve", env=env), EXIT_BAD_SETTINGS).endswith(problem)
    config.chmod(0o600)
    assert_served(config, served)


def test_a_settings_file_open_to_the_group_names_every_password_in_it(
    tmp_path: Path, pki: Pki, served: list[Any]
) -> None:
    config = fit_config(
        tmp_path,
        pki,
        extra='[oots]\ndomibus_password = "a"\npush_password = "b"\n',
        database='url = "postgresql+psycopg://sp:pw@db/sp"',
    )
    config.chmod(0o620)
    assert refused(config) == (
        f"error: cannot serve with {config}: database.url, oots.domibus_password, "
        f"oots.push_password: {config} holds a password and is writable by group or others "
        f"(mode 0620): chmod 600 {config}"
    )
    assert served == []


def test_serve_refuses_a_settings_file_others_may_write_whatever_it_holds(
    tmp_path: Path, pki: Pki, served: list[Any]
) -> None:
    """No password in it, but whoever may write it chooses the peers and the trusted STS."""
    config = fit_config(tmp_path, pki)
    config.chmod(0o664)
    problem = (
        f"the settings file: {config} is writable by group or others (mode 0664): whoever may "
        "write it chooses where the platform's calls go and whose tokens it trusts: "
        f"chmod go-w {config}"
    )
    assert refused(config) == f"error: cannot serve with {config}: {problem}"
    checked = run("config", "check", "--config", str(config))
    assert checked.exit_code == EXIT_BAD_SETTINGS
    assert checked.stderr.splitlines() == [f"problem: {problem}"]
    assert served == []
    config.chmod(0o644)
    assert_served(config, served)


def test_serve_refuses_a_trusted_sts_certificate_others_may_write(
    tmp_path: Path, pki: Pki, served: list[Any]
) -> None:
    sts = tmp_path / "sts.crt"
    sts.write_bytes(Path(pki.sts_cert).read_bytes())
    sts.chmod(0o646)
    security = f'trusted_sts_certs = ["{sts}"]\ntrusted_issuers = ["https://sts"]'
    config = fit_config(tmp_path, pki, security=security)
    assert refused(config) == (
        f"error: cannot serve with {config}: security.trusted_sts_certs: {sts} is writable by "
        "group or others (mode 0646): whoever may write it can make the platform accept tokens "
        f"they sign: chmod go-w {sts}"
    )
    assert served == []
    sts.chmod(0o644)
    assert_served(config, served)


def test_a_password_given_by_variable_leaves_a_0644_settings_file_servable(
    tmp_path: Path, pki: Pki, served: list[Any]
) -> None:
    """The file holds no password (empty ones, a URL without one, a digest): only the
    variables do, and they are not in the file."""
    config = fit_config(
        tmp_path,
        pki,
        extra=(
            '[oots]\ndomibus_password = ""\n'
            '[distributor.amqp]\nurl = "amqp://bf@127.0.0.1:5672/"\n'
            '[admin.principals.ops]\nrole = "operator"\ntoken_sha256 = "' + "ab" * 32 + '"\n'
        ),
    )
    config.chmod(0o644)
    env = {
        "SP_DATABASE__URL": "postgresql+psycopg://sp:hunter2@db.example.dk/sp",
        "SP_OOTS__DOMIBUS_PASSWORD": "hunter2",
    }
    result = run("serve", "--config", str(config), "--bind", "127.0.0.1:1", env=env)
    assert result.exit_code == 0, result.output
    assert len(served) == 1
    checked = run("config", "check", "--config", str(config), env=env)
    assert checked.exit_code == 0, checked.output


@pytest.mark.parametrize(
    "base_url",
    [
        "",
        "register.example.dk",
        "/register",
        "ftp://register.example.dk",
        "https://",
        "https://:8443/x",
        "https://register.example.dk:99999/",
        "https://register.example.dk:x/",
    ],
)
def test_serve_and_config_check_refuse_a_peer_base_url_no_call_could_use(
    tmp_path: Path, pki: Pki, served: list[Any], base_url: str
) -> None:
    """Such a peer used to pass both; every call to it then failed with SP-901."""
    config = fit_config(tmp_path, pki, extra=f'[peers.nemsms]\nbase_url = "{base_url}"\n')
    problem = (
        f"peers.nemsms.base_url {base_url!r} is not an absolute http(s) URL with a host "
        "(https://host[:port]/path)"
    )
    assert refused(config) == f"error: cannot serve with {config}: {problem}"
    assert served == []
    checked = run("config", "check", "--config", str(config))
    assert checked.exit_code == EXIT_BAD_SETTINGS
    assert checked.stderr.splitlines() == [f"problem: {problem}"]


def test_config_check_refuses_a_peer_ca_cert_that_is_no_readable_pem(
    tmp_path: Path, pki: Pki
) -> None:
    (tmp_path / "peers").mkdir()
    (tmp_path / "peers" / "junk.pem").write_text("no certificate here\n", encoding="utf-8")
    (tmp_path / "peers" / "key.pem").write_bytes(pki.ca_key.read_bytes())
    peers = {
        "a": "peers/missing.pem",
        "b": "peers",  # a directory: cannot be read as a file
        "c": "peers/junk.pem",
        "d": "peers/key.pem",  # PEM, but a key
    }
    extra = "".join(
        f'[peers.{name}]\nbase_url = "https://{name}.example.dk"\nca_cert = "{ca}"\n'
        for name, ca in peers.items()
    )
    config = fit_config(tmp_path, pki, extra=extra)
    checked = run("config", "check", "--config", str(config))
    assert checked.exit_code == EXIT_BAD_SETTINGS
    # Relative paths are the settings file's directory's.
    peers_dir = tmp_path / "peers"
    assert checked.stderr.splitlines() == [
        f"problem: peers.a.ca_cert: {peers_dir / 'missing.pem'} cannot be read "
        "(No such file or directory)",
        f"problem: peers.b.ca_cert: {peers_dir} cannot be read (Is a directory)",
        f"problem: peers.c.ca_cert: {peers_dir / 'junk.pem'} holds no PEM certificate",
        f"problem: peers.d.ca_cert: {peers_dir / 'key.pem'} holds no PEM certificate",
    ]


def test_a_peer_with_an_http_url_and_a_pem_ca_is_served(
    tmp_path: Path, pki: Pki, served: list[Any]
) -> None:
    (tmp_path / "peers").mkdir()
    (tmp_path / "peers" / "ca.pem").write_bytes(pki.ca_cert.read_bytes())
    config = fit_config(
        tmp_path,
        pki,
        extra=(
            '[peers.nemsms]\nbase_url = "https://register.example.dk:8443/api"\n'
            'ca_cert = "peers/ca.pem"\n'
            '[peers.sts]\nbase_url = "http://127.0.0.1:8081"\n'
        ),
    )
    assert_checked_and_served(config, served)


def _oots_files(tmp_path: Path, pki: Pki) -> Path:
    """``oots/``: a CA bundle (``ca.pem``), text that is no certificate (``junk.pem``), a key."""
    folder = tmp_path / "oots"
    folder.mkdir()
    (folder / "ca.pem").write_bytes(pki.ca_cert.read_bytes())
    (folder / "junk.pem").write_text("no certificate here\n", encoding="utf-8")
    (folder / "key.pem").write_bytes(pki.ca_key.read_bytes())
    return folder


def test_serve_and_config_check_refuse_oots_urls_and_certificates_no_call_could_use(
    tmp_path: Path, pki: Pki, served: list[Any]
) -> None:
    """The integration's own URLs and PEM files, checked by the core as a peer's: each used
    to pass both and fail only the first request that read it."""
    folder = _oots_files(tmp_path, pki)
    config = fit_config(
        tmp_path,
        pki,
        extra=(
            "[oots]\n"
            'domibus_url = "domibus.example.dk/services/wsplugin"\n'
            'domibus_ca_cert = "oots/missing.pem"\n'
            'common_services_url = "ftp://oots.example.eu/rest/search"\n'
            "[oots.as4.partners.AP_DE_01]\n"
            'signing_cert = ""\n'
            'encryption_cert = "oots/key.pem"\n'
            'ca_cert = "oots"\n'
            "[oots.requesters.29189846]\n"
            'domibus_url = "https://ap.kk.dk:x/wsplugin"\n'
            'domibus_ca_cert = "oots/junk.pem"\n'
            "[oots.requesters.29189854.as4.partners.AP_FI_01]\n"
            'endpoint_url = "https://ap.example.fi/as4"\n'
            'signing_cert = "oots/missing.pem"\n'
        ),
    )
    url = "is not an absolute http(s) URL with a host (https://host[:port]/path)"
    unreadable = "cannot be read (No such file or directory)"
    problems = [
        f"oots.domibus_url 'domibus.example.dk/services/wsplugin' {url}",
        f"oots.common_services_url 'ftp://oots.example.eu/rest/search' {url}",
        f"oots.as4.partners.AP_DE_01.endpoint_url '' {url}",
        f"oots.requesters.29189846.domibus_url 'https://ap.kk.dk:x/wsplugin' {url}",
        f"oots.domibus_ca_cert: {folder / 'missing.pem'} {unreadable}",
        "oots.as4.partners.AP_DE_01.signing_cert is empty: name a file of PEM certificates",
        f"oots.as4.partners.AP_DE_01.encryption_cert: {folder / 'key.pem'} holds no PEM "
        "certificate",
        f"oots.as4.partners.AP_DE_01.ca_cert: {folder} cannot be read (Is a directory)",
        f"oots.requesters.29189846.domibus_ca_cert: {folder / 'junk.pem'} holds no PEM certificate",
        f"oots.requesters.29189854.as4.partners.AP_FI_01.signing_cert: "
        f"{folder / 'missing.pem'} {unreadable}",
    ]
    assert_listed_and_refused(config, problems, served)


def test_oots_urls_and_certificates_that_calls_can_use_are_served(
    tmp_path: Path, pki: Pki, served: list[Any]
) -> None:
    _oots_files(tmp_path, pki)
    config = fit_config(
        tmp_path,
        pki,
        extra=(
            "[oots]\n"
            'domibus_url = "https://domibus.example.dk:8443/domibus/services/wsplugin"\n'
            'domibus_ca_cert = "oots/ca.pem"\n'
            'common_services_url = "http://127.0.0.1:8090/rest/search"\n'
            "[oots.as4.partners.AP_DE_01]\n"
            'endpoint_url = "https://ap.example.de/as4"\n'
            'signing_cert = "oots/ca.pem"\n'
            'encryption_cert = "oots/ca.pem"\n'
            'ca_cert = "oots/ca.pem"\n'
            # Empty optional settings stay fine: the platform's own access point is used.
            "[oots.requesters.29189846]\n"
            'domibus_url = ""\n'
            'domibus_ca_cert = ""\n'
        ),
    )
    assert_checked_and_served(config, served)


def test_serve_and_config_check_refuse_amqp_distributor_files_the_nightly_could_not_use(
    tmp_path: Path, pki: Pki, served: list[Any]
) -> None:
    """An AMQP distributor reads them at its first delivery, the nightly's at 02:00."""
    folder = _oots_files(tmp_path, pki)
    # Named as the STS key: private, so only its content is wrong.
    (folder / "ca.pem").chmod(0o600)
    amqp = (
        'transport = "amqp"\n[distributor.amqp]\nurl = "amqps://bf.example.dk:5671/"\n'
        'token_source = "sandbox-sts"\nsts_issuer = "https://sts"\n'
    )
    cases = {
        'ca_cert = "oots/junk.pem"\nsts_cert = "oots/missing.pem"\nsts_key = "oots/ca.pem"\n': [
            f"distributor.amqp.ca_cert: {folder / 'junk.pem'} holds no PEM certificate",
            f"distributor.amqp.sts_cert: {folder / 'missing.pem'} cannot be read "
            "(No such file or directory)",
            f"distributor.amqp.sts_key: {folder / 'ca.pem'} holds no unencrypted PEM private key",
        ],
        "": [
            "distributor.amqp.ca_cert is empty: name a file of PEM certificates",
            "distributor.amqp.sts_cert is empty: name a file of PEM certificates",
            "distributor.amqp.sts_key is empty: name a PEM private key file",
        ],
    }
    for files, problems in cases.items():
        config = fit_config(tmp_path, pki, distributor=amqp + files)
        checked = run("config", "check", "--config", str(config))
        assert checked.exit_code == EXIT_BAD_SETTINGS
        assert checked.stderr.splitlines() == [f"problem: {problem}" for problem in problems]
        assert refused(config).startswith(f"error: cannot serve with {config}: {problems[0]} (")
    assert served == []


@pytest.mark.parametrize(
    "distributor",
    [
        # The files an AMQP distributor uses.
        'transport = "amqp"\n[distributor.amqp]\nurl = "amqps://bf.example.dk:5671/"\n'
        'ca_cert = "{ca}"\ntoken_source = "sandbox-sts"\nsts_issuer = "https://sts"\n'
        'sts_cert = "{sts_cert}"\nsts_key = "{sts_key}"\n',
        # Files it does not read are not checked: no TLS, no sandbox STS, no AMQP at all.
        'transport = "amqp"\n[distributor.amqp]\nurl = "amqp://bf.example.dk/"\n'
        'ca_cert = "missing.pem"\nsts_cert = "missing.pem"\n',
        '[distributor.amqp]\nurl = "amqps://bf.example.dk/"\nca_cert = "missing.pem"\n'
        'token_source = "sandbox-sts"\n',
    ],
    ids=["used", "amqp-file-tokens", "file-drop"],
)
def test_an_amqp_distributor_with_usable_files_is_served(
    tmp_path: Path, pki: Pki, served: list[Any], distributor: str
) -> None:
    body = distributor.format(ca=pki.ca_cert, sts_cert=pki.sts_cert, sts_key=pki.sts_key)
    config = fit_config(tmp_path, pki, distributor=body)
    assert_checked_and_served(config, served)


def _as4_store(tmp_path: Path) -> None:
    """The certificate store of ``fit_config``: ``as4-sign`` usable, ``as4-old`` expired."""
    store = CertificateStore(tmp_path / "certs")
    store.import_pem("as4-sign", party("AP_DK_01").pem, key_pem("AP_DK_01"))
    old = make_cert("CN=AP_DK_OLD", not_before=datetime.now(UTC) - timedelta(days=30), days=10)
    old_key = old.key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    # Imported while it was valid (the store refuses an expired one).
    then = datetime.now(UTC) - timedelta(days=25)
    CertificateStore(tmp_path / "certs", clock=lambda: then).import_pem("as4-old", old.pem, old_key)


def test_serve_and_config_check_refuse_oots_files_and_keys_no_request_could_use(
    tmp_path: Path, pki: Pki, served: list[Any]
) -> None:
    """Password files and AS4 key aliases are read by the gateway that uses them: each used to
    pass both and fail the first evidence request (SP-901), or, with a receive_path, every
    worker at start with a traceback (gunicorn's exit 3)."""
    _as4_store(tmp_path)
    secrets = tmp_path / "secrets"
    secrets.mkdir(mode=0o700)
    (secrets / "latin1.pw").write_bytes("h\xf8nsehus\n".encode("latin-1"))
    (secrets / "empty.pw").write_text(" \n", encoding="utf-8")
    for name in ("latin1.pw", "empty.pw"):
        (secrets / name).chmod(0o600)
    config = fit_config(
        tmp_path,
        pki,
        extra=(
            "[oots]\n"
            'domibus_password_file = "secrets/missing.pw"\n'
            "[oots.as4]\n"
            'party_id = "AP_DK_01"\n'
            'signing_alias = "as4-sign"\n'
            'decryption_alias = "as4-decrypt"\n'
            'receive_path = "/oots/as4"\n'
            "[oots.requesters.29189846]\n"
            'domibus_password_file = "secrets"\n'
            "[oots.requesters.29189854]\n"
            'domibus_password_file = "secrets/latin1.pw"\n'
            'gateway = "as4"\n'
            "[oots.requesters.29189854.as4]\n"
            'signing_alias = "as4-old"\n'
            "[oots.requesters.29189862]\n"
            'domibus_password_file = "secrets/empty.pw"\n'
            # Not an as4 authority: its own keys are never opened, so not checked.
            "[oots.requesters.29189862.as4]\n"
            'signing_alias = "absent"\n'
        ),
    )
    problems = [
        f"oots.domibus_password_file: {secrets / 'missing.pw'} cannot be read "
        "(No such file or directory)",
        f"oots.requesters.29189846.domibus_password_file: {secrets} cannot be read "
        "(Is a directory)",
        f"oots.requesters.29189854.domibus_password_file: {secrets / 'latin1.pw'} is not UTF-8 "
        "text",
        f"oots.requesters.29189862.domibus_password_file: {secrets / 'empty.pw'} holds no password",
        "oots.as4.decryption_alias 'as4-decrypt': The outward certificate is missing or "
        "unreadable: no certificate 'as4-decrypt' in the certificate store",
        "oots.requesters.29189854.as4.signing_alias 'as4-old': The outward certificate has "
        "expired or is not yet valid: certificate 'as4-old' expired on "
        f"{(datetime.now(UTC) - timedelta(days=20)):%Y-%m-%d}",
    ]
    assert_listed_and_refused(config, problems, served)


@pytest.mark.parametrize(
    ("oots", "problem"),
    [
        (
            '[oots.as4]\nreceive_path = "/oots/as4"\nsigning_alias = "as4-sign"\n',
            "oots.as4.receive_path '/oots/as4' needs oots.as4.party_id and signing_alias: the "
            "AS4 endpoint receives as that access point",
        ),
        (
            '[oots.requesters.29189854]\ngateway = "as4"\n'
            '[oots.requesters.29189854.as4]\nparty_id = "AP_DK_02"\n',
            "oots.requesters.29189854.gateway 'as4' needs an AS4 party_id and signing_alias "
            "([oots.as4], or [oots.requesters.29189854.as4] over it)",
        ),
    ],
    ids=["receive_path", "as4-authority"],
)
def test_serve_and_config_check_refuse_an_as4_access_point_without_its_party_or_key(
    tmp_path: Path, pki: Pki, served: list[Any], oots: str, problem: str
) -> None:
    """The endpoint without them failed every worker at start (exit 3, a traceback); the
    authority without them every one of its requests (SP-901)."""
    _as4_store(tmp_path)
    config = fit_config(tmp_path, pki, extra=oots)
    assert refused(config) == f"error: invalid settings: {problem}"
    assert served == []
    checked = run("config", "check", "--config", str(config))
    assert checked.stderr.splitlines() == [f"problem: {problem}"]


def test_oots_password_files_and_keys_the_gateways_can_use_are_served(
    tmp_path: Path, pki: Pki, served: list[Any]
) -> None:
    _as4_store(tmp_path)
    secret = tmp_path / "domibus.pw"
    secret.write_text("hunter2\n", encoding="utf-8")
    secret.chmod(0o600)
    config = fit_config(
        tmp_path,
        pki,
        extra=(
            '[oots]\ndomibus_password_file = "domibus.pw"\n'
            '[oots.as4]\nparty_id = "AP_DK_01"\nsigning_alias = "as4-sign"\n'
            'decryption_alias = "as4-sign"\nreceive_path = "/oots/as4"\n'
            # Keys of its own only with its own signing_alias: this one uses the platform's.
            '[oots.requesters.29189854]\ngateway = "as4"\n'
            '[oots.requesters.29189854.as4]\nparty_id = "AP_DK_02"\n'
            'decryption_alias = "absent"\n'
        ),
    )
    assert_checked_and_served(config, served)


AMQP_URL_FORM = "(amqp[s]://user:password@host[:port]/)"


@pytest.mark.parametrize(
    ("distributor", "problem"),
    [
        (
            'transport = "amqpp"',
            "distributor.transport: unknown transport 'amqpp' (known: file, amqp)",
        ),
        (
            'transport = "amqp"\n[distributor.amqp]\nurl = "https://bf:hunter2@bf.example.dk/"',
            f"distributor.amqp.url must start with amqp:// or amqps:// {AMQP_URL_FORM}",
        ),
        (
            'transport = "amqp"\n[distributor.amqp]\nurl = "amqp://bf:hunter2@/"',
            f"distributor.amqp.url has no host {AMQP_URL_FORM}",
        ),
        (
            'transport = "amqp"\n[distributor.amqp]\nurl = "amqp://bf:hunter2@bf.example.dk:x/"',
            f"distributor.amqp.url has an invalid port {AMQP_URL_FORM}",
        ),
        (
            'transport = "amqp"\n[distributor.amqp]\nurl = "amqp://bf.example.dk/BF"',
            "distributor.amqp.url must not name a virtual host; set virtual_host instead "
            + AMQP_URL_FORM,
        ),
        (
            'transport = "amqp"\n[distributor.amqp]\ntoken_source = "sts"',
            "distributor.amqp.token_source: unknown token source 'sts' (known: file, sandbox-sts)",
        ),
        (
            'transport = "amqp"\n[distributor.amqp]\ntoken_source = "sandbox-sts"\n'
            'sts_cert = "{sts_cert}"\nsts_key = "{sts_key}"\nsts_issuer = " "',
            "distributor.amqp.sts_issuer is empty: name the Issuer the tokens the sandbox STS "
            "mints carry (the token source is not built without it)",
        ),
    ],
    ids=["transport", "url-scheme", "url-host", "url-port", "url-vhost", "token-source", "issuer"],
)
def test_serve_and_config_check_refuse_a_distributor_the_nightly_could_not_build(
    tmp_path: Path, pki: Pki, served: list[Any], distributor: str, problem: str
) -> None:
    """Each used to pass both; the first delivery, the nightly's at 02:00, then failed. The
    URL is not quoted: it may hold the broker's password."""
    body = distributor.format(sts_cert=pki.sts_cert, sts_key=pki.sts_key)
    config = fit_config(tmp_path, pki, distributor=body)
    config.chmod(0o600)  # some of them hold a password
    checked = assert_listed_and_refused(config, [problem], served)
    assert "hunter2" not in checked.output


@pytest.mark.parametrize("issuer", ["", " https://sts", "https://sts\n"])
def test_serve_and_config_check_refuse_a_trusted_issuer_no_token_can_carry(
    tmp_path: Path, pki: Pki, served: list[Any], issuer: str
) -> None:
    """A token's Issuer is read trimmed and is never empty: such an entry, the only one, used
    to pass both and then refuse every token as untrusted."""
    # A JSON string is a TOML basic string.
    security = f'trusted_sts_certs = ["{pki.sts_cert}"]\ntrusted_issuers = [{json.dumps(issuer)}]'
    config = fit_config(tmp_path, pki, security=security)
    problem = (
        f"security.trusted_issuers: {issuer!r} is blank or padded with white space: it matches "
        "no token's Issuer"
    )
    assert_listed_and_refused(config, [problem], served)


@pytest.mark.parametrize(
    ("principal", "problem"),
    [
        (
            'role = "operater"\ntoken_sha256 = "' + "ab" * 32 + '"',
            "admin.principals.ops.role 'operater' is not a role: authority_admin, operator, "
            "supplier",
        ),
        (
            'role = "authority_admin"\ncert_subject = "CN=kk"',
            "admin.principals.ops.authority_cvr is empty: an authority_admin needs the CVR "
            "number of the authority it administers",
        ),
        (
            'role = "supplier"\nsupplier = "Acme"\ncert_subject = "CN=acme"',
            "admin.principals.ops: a supplier needs supplier and supplier_cvr",
        ),
        (
            'role = "operator"\ntoken_sha256 = "\u2026"',  # deployment.md's placeholder
            "admin.principals.ops.token_sha256 is not a SHA-256 in hex (64 digits): give the "
            "digest of the token, e.g. printf %s TOKEN | sha256sum",
        ),
    ],
    ids=["role", "authority_cvr", "supplier_cvr", "token_sha256"],
)
def test_serve_and_config_check_refuse_an_admin_principal_the_api_cannot_use(
    tmp_path: Path, pki: Pki, served: list[Any], principal: str, problem: str
) -> None:
    """Such a principal used to pass both and fail every worker at start, with a traceback
    and gunicorn's exit code 3 (or, for the digest, to match no token ever)."""
    config = fit_config(tmp_path, pki, extra=f"[admin.principals.ops]\n{principal}\n")
    assert refused(config) == f"error: cannot serve with {config}: {problem}"
    assert served == []
    checked = run("config", "check", "--config", str(config))
    assert checked.exit_code == EXIT_BAD_SETTINGS
    assert checked.stderr.splitlines() == [f"problem: {problem}"]


def test_an_admin_principal_with_a_hex_digest_is_served(
    tmp_path: Path, pki: Pki, served: list[Any]
) -> None:
    digest = "AB" * 32  # sha256sum prints lower case; upper case is the same digest
    config = fit_config(
        tmp_path,
        pki,
        extra=f'[admin.principals.ops]\nrole = "operator"\ntoken_sha256 = "{digest}"\n',
    )
    result = run("serve", "--config", str(config), "--bind", "127.0.0.1:1")
    assert result.exit_code == 0, result.output
    assert len(served) == 1


def test_serve_refuses_a_wrong_type(tmp_path: Path, pki: Pki, served: list[Any]) -> None:
    soap = 'public_base_url = "https://sp.example.dk"\nmax_body_bytes = "1MB"'
    config = fit_config(tmp_path, pki, soap=soap)
    assert refused(config) == (
        f"error: invalid settings: setting soap.max_body_bytes in {config} must be an integer, "
        "not a string"
    )
    assert served == []


def test_serve_refuses_an_unknown_key(tmp_path: Path, pki: Pki, served: list[Any]) -> None:
    config = fit_config(tmp_path, pki, extra='[peers.nemsms]\nbase_ulr = "https://x"\n')
    assert refused(config) == (
        f"error: invalid settings: unknown setting peers.nemsms.base_ulr in {config}"
    )
    assert served == []


def test_serve_counts_the_problems_it_does_not_show(
    tmp_path: Path, pki: Pki, served: list[Any]
) -> None:
    config = fit_config(tmp_path, pki, security="", soap="")
    assert refused(config) == (
        f"error: cannot serve with {config}: security.trusted_sts_certs is empty: name the PEM "
        "files of the STS certificates whose tokens are trusted (and 2 more: `serviceplatform "
        "config check` lists them)"
    )
    assert served == []


# --- config check -------------------------------------------------------------------------

SECRETS = {
    "SP_DATABASE__URL": "postgresql+psycopg://sp:hunter2@db.example.dk/sp",
    "SP_OOTS__DOMIBUS_PASSWORD": "domibus-secret",
    "SP_ADMIN__PRINCIPALS__OPS__TOKEN_SHA256": "ab" * 32,
}


def test_config_check_prints_the_settings_with_secrets_masked(tmp_path: Path, pki: Pki) -> None:
    config = fit_config(tmp_path, pki, extra='[admin.principals.ops]\nrole = "operator"\n')
    result = run("config", "check", "--config", str(config), env=SECRETS)
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    shown = tomllib.loads(result.stdout)
    assert shown["database"]["url"] == "postgresql+psycopg://sp:***@db.example.dk/sp"
    assert shown["oots"]["domibus_password"] == "***"
    assert shown["admin"]["principals"]["ops"]["token_sha256"] == "***"
    assert shown["security"]["trusted_sts_certs"] == [str(pki.sts_cert)]  # paths are shown
    assert shown["soap"]["public_base_url"] == "https://sp.example.dk"
    for secret in SECRETS.values():
        assert secret.rsplit("@", 1)[0].rsplit(":", 1)[-1] not in result.output
    assert result.stdout.endswith("# no problems\n")


def test_config_check_lists_every_problem(tmp_path: Path, pki: Pki) -> None:
    config = fit_config(tmp_path, pki, soap="max_body_bytes = true", extra="[logging]\nlevle = 1\n")
    result = run("config", "check", "--config", str(config), env={"SP_FOO": "1"})
    assert result.exit_code == EXIT_BAD_SETTINGS
    assert result.stderr.splitlines() == [
        f"problem: setting soap.max_body_bytes in {config} must be an integer, not true or false",
        f"problem: unknown setting logging.levle in {config}",
        "problem: unknown setting foo from SP_FOO",
        "problem: soap.public_base_url is empty: give the base URL callers use (https://host), "
        "so the signed wsa:To of each request is checked",
    ]
    assert tomllib.loads(result.stdout)["soap"]["max_body_bytes"] == 512 * 1024  # the default
    assert result.stdout.endswith("# 4 problems (on stderr)\n")


def test_config_check_of_a_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "missing.toml"
    line = one_line(run("config", "check", "--config", str(missing)), EXIT_BAD_SETTINGS)
    assert line == f"error: configuration file {missing} does not exist"


def test_the_exit_codes_are_in_the_help() -> None:
    result = run("--help")
    assert f"{EXIT_NO_SETTINGS}  no settings: give --config FILE" in result.stdout
    assert f"{EXIT_BAD_SETTINGS}  the settings are wrong or unfit to serve" in result.stdout


#: Tables whose next key is a name the operator chooses: compared as ``<name>``.
_NAMED = ("admin.principals.", "oots.requesters.", "oots.as4.partners.")


def _setting_keys(table: dict[str, Any], prefix: str = "") -> set[str]:
    keys: set[str] = set()
    for key, value in table.items():
        name = "<name>" if prefix in _NAMED else key
        if isinstance(value, dict):
            keys |= _setting_keys(value, f"{prefix}{name}.")
        else:
            keys.add(prefix + name)
    return keys


def test_the_settings_block_of_the_docs_names_every_setting(tmp_path: Path, pki: Pki) -> None:
    """docs/configuration.md's "The settings" is the operator's list of keys: every setting
    ``config check`` prints is in it (a principal's, a requester's and a partner's keys in
    any of their example tables)."""
    docs = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"
    block = docs.read_text(encoding="utf-8").split("## The settings", 1)[1]
    documented = _setting_keys(tomllib.loads(block.split("```toml", 1)[1].split("```", 1)[0]))
    extra = (
        '[admin.principals.ops]\nrole = "operator"\n'
        '[oots.as4.partners.AP_FI_01]\nendpoint_url = "https://ap.example.fi/as4"\n'
        # A partner's messages are verified with it: config check refuses a partner without.
        f'signing_cert = "{pki.ca_cert}"\n'
        '[oots.requesters.29189846]\nname = "K"\n'
    )
    result = run("config", "check", "--config", str(fit_config(tmp_path, pki, extra=extra)))
    assert result.exit_code == 0, result.output
    shown = _setting_keys(tomllib.loads(result.stdout))
    # Named in the comments beside the keys that replace them.
    in_comments = {"oots.domibus_password", "subscriptions.scheduler_enabled"}
    assert shown - documented - in_comments == set()
