"""The sandbox contract (../shared/docs/SANDBOX.md), tested as an outside script would use it:
start ``serviceplatform sandbox``, wait for ``sandbox.json``, call, read the hooks, stop.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from click.testing import CliRunner, Result
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from lxml import etree
from prometheus_client.parser import text_string_to_metric_families

from examples import oots_client, sf1600_sms_client, sf2250_client
from integrations.sf2250.nightly import danish_date
from integrations.sf2250.snapshot_store import Change, SnapshotStore
from serviceplatform import platform as platform_module
from serviceplatform.app import PlatformApp
from serviceplatform.cli import cli as cli_group
from serviceplatform.client.request_signer import build_signed_envelope
from serviceplatform.config import load_settings
from serviceplatform.platform import Platform
from serviceplatform.store.db import Database
from tests.integration.sf2250_requests import fault_code, opdater, status_code
from tests.wsgi_serving import LocalWsgiServer

PROJECT = Path(__file__).resolve().parents[2]


def start_sandbox(workdir: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "serviceplatform.cli",
            "sandbox",
            "--workdir",
            str(workdir),
            "--port=0",
        ],
        cwd=PROJECT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def wait_for_manifest(workdir: Path, process: subprocess.Popen[bytes]) -> dict[str, Any]:
    manifest = workdir / "sandbox.json"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if manifest.exists():
            data: dict[str, Any] = json.loads(manifest.read_text(encoding="utf-8"))
            return data
        if process.poll() is not None:
            output = process.stdout.read().decode() if process.stdout else ""
            raise AssertionError(f"sandbox exited with {process.returncode}:\n{output}")
        time.sleep(0.1)
    raise AssertionError("sandbox.json did not appear within 60 s")


def stop(process: subprocess.Popen[bytes]) -> int:
    process.send_signal(signal.SIGTERM)
    try:
        return process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()


def cli(workdir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "serviceplatform.cli", *args, "--workdir", str(workdir)],
        cwd=PROJECT,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict[str, Any]]]:
    workdir = tmp_path_factory.mktemp("sandbox")
    process = start_sandbox(workdir)
    try:
        yield workdir, wait_for_manifest(workdir, process)
    finally:
        assert stop(process) == 0
        assert not (workdir / "sandbox.json").exists()


def _listening_sockets(port: int) -> int:
    """How many IPv4 TCP sockets listen on ``port`` (``/proc/net/tcp``; state 0A is LISTEN)."""
    rows = Path("/proc/net/tcp").read_text(encoding="ascii").splitlines()[1:]
    local_and_state = (row.split()[1:4:2] for row in rows)
    return sum(
        1
        for local, state in local_and_state
        if state == "0A" and int(local.split(":")[1], 16) == port
    )


def test_each_platform_worker_listens_on_its_own_socket(
    sandbox: tuple[Path, dict[str, Any]],
) -> None:
    """server.py: with one socket shared by the (default two) workers, a burst of kept-alive
    connections often lands on one worker; each worker listens on its own, so the kernel
    spreads connections over them."""
    _, data = sandbox
    port = int(data["platform"]["base_url"].rsplit(":", 1)[1])
    deadline = time.monotonic() + 60
    while _listening_sockets(port) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)  # a worker opens its socket as it boots, maybe after the manifest
    assert _listening_sockets(port) == 2


def session() -> requests.Session:
    s = requests.Session()
    s.trust_env = False
    return s


#: Files in the sandbox's directory others may read: certificates, never keys or secrets.
_PUBLIC_SUFFIXES = (".crt", ".pem")


def test_secrets_and_the_database_are_owner_only(sandbox: tuple[Path, dict[str, Any]]) -> None:
    """SANDBOX.md: sandbox.json (every admin token), the database (full CPR numbers in the
    audit) and every key 0600; and no other file others could read but certificates."""
    workdir, _ = sandbox
    for name in ("sandbox.json", "admin-tokens.json", "platform.toml", "serviceplatform.sqlite"):
        assert oct((workdir / name).stat().st_mode & 0o777) == "0o600", name
    readable = sorted(
        str(path.relative_to(workdir))
        for path in workdir.rglob("*")
        if path.is_file()
        and path.stat().st_mode & 0o077
        and path.stat().st_size > 0  # lock files
        # The file drop's messages are 0640 by design, for the reading group (distribution.md).
        and "distributor" not in path.relative_to(workdir).parts
        and not (path.suffix in _PUBLIC_SUFFIXES and "PRIVATE KEY" not in path.read_text())
    )
    assert readable == []


def test_manifest_has_the_contracted_keys(sandbox: tuple[Path, dict[str, Any]]) -> None:
    workdir, data = sandbox
    base = data["platform"]["base_url"]
    assert base.startswith("http://127.0.0.1:")
    sf2250 = data["services"]["sf2250"]
    assert sf2250["url"] == base + "/service/NemSMS/VedligeholdTilmelding/2"
    assert sf2250["entity_id"]
    sf1600 = data["services"]["sf1600"]
    assert sf1600["url"] == base + "/service/Print/Print/2"
    assert sf1600["entity_id"] == "http://print.serviceplatformen.dk/service/forsendelse/2"
    for key in ("ca_cert", "sts_cert", "sts_key", "client_cert", "client_key"):
        path = Path(data["pki"][key])
        assert path.is_absolute() and path.is_file() and path.is_relative_to(workdir)
    assert data["pki"]["sts_issuer"]
    assert data["peers"]["nemsms"]["base_url"].startswith("https://127.0.0.1:")
    assert data["peers"]["nemsms"]["control_url"].endswith("/_sandbox")
    first = data["authorities"][0]
    assert first["cvr"] == "29189846"
    assert set(first["sysids"]) >= {"register", "nemsms", "digital_post", "afsender"}
    # Authority A also has the sandbox's approved, configured OOTS agreement.
    assert first["services"] == ["sf2250", "sf1600", "oots"]
    assert first["sysids"]["oots_requester"] == "29189846"
    assert [a["cvr"] for a in data["authorities"]] == ["29189846", "29189854"]
    assert first["consumer_system"]
    assert (workdir / "serviceplatform.sqlite").is_file()
    admin = data["admin"]
    assert admin["base_url"] == base + "/admin/" and admin["api_url"] == base + "/admin/api"
    assert set(admin["tokens"]) >= {"operator", "supplier", "authority:29189846"}
    assert admin["token"] == admin["tokens"]["operator"]
    assert oct((workdir / "admin-tokens.json").stat().st_mode & 0o777) == "0o600"
    # The configuration holds only digests of the tokens.
    assert admin["token"] not in (workdir / "platform.toml").read_text(encoding="utf-8")


def test_every_listener_accepts_when_manifest_exists(sandbox: tuple[Path, dict[str, Any]]) -> None:
    _, data = sandbox
    http = session()
    wsdl = http.get(data["services"]["sf2250"]["url"] + "?wsdl", timeout=5)
    assert wsdl.status_code == 200 and b"OpdaterBorgerNemSMS" in wsdl.content
    wsdl = http.get(data["services"]["sf1600"]["url"] + "?wsdl", timeout=5)
    assert wsdl.status_code == 200 and b"spoergTilmelding" in wsdl.content
    assert http.get(data["peers"]["nemsms"]["control_url"] + "/requests", timeout=5).ok


def test_the_admin_api_answers_with_the_sandbox_tokens(
    sandbox: tuple[Path, dict[str, Any]],
) -> None:
    _, data = sandbox
    admin = data["admin"]
    http = session()
    me = http.get(
        admin["api_url"] + "/me",
        headers={"Authorization": f"Bearer {admin['tokens']['authority:29189846']}"},
        timeout=5,
    )
    assert me.status_code == 200 and me.json()["authority_cvr"] == "29189846"
    listing = http.get(
        admin["api_url"] + "/agreements",
        headers={"Authorization": f"Bearer {admin['token']}"},
        timeout=5,
    ).json()["agreements"]
    assert {(a["authority_cvr"], a["service"], a["status"]) for a in listing} >= {
        ("29189846", "sf2250", "approved"),
        ("29189870", "sf2250", "suspended"),
    }
    assert http.get(admin["api_url"] + "/me", timeout=5).status_code == 401


def test_register_requires_a_client_certificate(sandbox: tuple[Path, dict[str, Any]]) -> None:
    _, data = sandbox
    with pytest.raises(requests.exceptions.SSLError):
        session().put(
            data["peers"]["nemsms"]["base_url"] + "/register/2250001/boks/0101901234",
            data=b"<SlutbrugerStamdata/>",
            verify=data["pki"]["ca_cert"],
            timeout=5,
        )


def test_example_client_calls_both_operations(sandbox: tuple[Path, dict[str, Any]]) -> None:
    workdir, data = sandbox
    control = data["peers"]["nemsms"]["control_url"]
    session().delete(control + "/requests", timeout=5)

    assert sf2250_client.main(["--workdir", str(workdir), "--cpr", "0202804321"]) == 0

    seen = session().get(control + "/requests", timeout=5).json()
    assert [r["path"].rsplit("/", 1)[-1] for r in seen] == ["0202804321", "myndighedstilmelding"]


def test_oots_entries_of_the_manifest(sandbox: tuple[Path, dict[str, Any]]) -> None:
    _, data = sandbox
    base = data["platform"]["base_url"]
    service = data["services"]["oots"]
    assert service["url"] == base + "/service/OOTS/Dokumentation/1"
    assert service["wsdl"] == service["url"] + "?wsdl"
    assert service["entity_id"] == (
        "http://entityid.serviceplatformen.dk/service/oots/dokumentation/1"
    )
    gateway = data["peers"]["oots_gateway"]
    assert gateway["ws_plugin_url"].startswith("http://127.0.0.1:")
    assert gateway["preview_base_url"].startswith("https://")
    assert Path(gateway["preview_ca_cert"]).is_file()
    http = session()
    wsdl = http.get(service["wsdl"], timeout=5)
    assert wsdl.status_code == 200 and b"AnmodBevisEfterForhaandsvisning" in wsdl.content
    search = http.get(
        gateway["common_services_url"],
        params={
            "queryId": "urn:fdc:oots:eb:ebxml-regrep:queries:requirements-by-procedure-"
            "and-jurisdiction",
            "procedure-id": "T3",
            "country-code": "DK",
        },
        timeout=5,
    )
    assert search.status_code == 200
    network = http.get(gateway["control_url"] + "/network", timeout=5)
    assert network.status_code == 200


@pytest.mark.parametrize(("decision", "expected"), [("approve", 0), ("decline", 1)])
def test_oots_example_runs_the_whole_preview_journey(
    sandbox: tuple[Path, dict[str, Any]],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    decision: str,
    expected: int,
) -> None:
    workdir, data = sandbox
    out = tmp_path / "evidence.pdf"
    code = oots_client.main(["--workdir", str(workdir), "--decision", decision, "--out", str(out)])
    printed = capsys.readouterr()
    assert code == expected, printed
    assert "ForhaandsvisningKraevet" in printed.out
    if decision == "approve":
        assert out.read_bytes().startswith(b"%PDF")
        assert "HentStatus: BevisModtaget" in printed.out
    else:
        assert not out.exists()
        assert "SP-702" in printed.err or "EDM:ERR:0002" in printed.err
    hooks = session().get(data["peers"]["oots_gateway"]["control_url"] + "/previews", timeout=5)
    states = [p["state"] for p in hooks.json()]
    assert ("approved" if decision == "approve" else "declined") in states


@contextmanager
def print_service_at(
    workdir: Path, data: dict[str, Any], moment: datetime, into: Path
) -> Iterator[Path]:
    """The sandbox's platform (its configuration and database) served in-process with its
    business clock fixed at ``moment``, and the register's clock with it: a ``sandbox.json``
    in ``into`` points the Print service there. So the sending hours decide by ``moment``,
    not by when the suite happens to run."""
    settings = load_settings(workdir / "platform.toml")
    # wsa:To is then the address the request was sent to: the in-process server's.
    settings.soap.public_base_url = ""
    app = PlatformApp(settings, lambda: Platform(settings, business_clock=lambda: moment))
    server = LocalWsgiServer(app)
    control = data["peers"]["nemsms"]["control_url"]
    manifest = json.loads(json.dumps(data))
    manifest["services"]["sf1600"]["url"] = server.base_url + "/service/Print/Print/2"
    into.mkdir(parents=True, exist_ok=True)
    (into / "sandbox.json").write_text(json.dumps(manifest), encoding="utf-8")
    session().put(control + "/clock", json={"now": moment.isoformat()}, timeout=5)
    try:
        yield into
    finally:
        session().put(control + "/clock", json={"now": None}, timeout=5).raise_for_status()
        server.close()
        app.close()


#: A Wednesday in winter: 12:00 and 23:00 in Denmark.
WEDNESDAY_NOON = datetime(2026, 1, 14, 11, 0, tzinfo=UTC)
WEDNESDAY_NIGHT = datetime(2026, 1, 14, 22, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("moment", "code", "methods"),
    [(WEDNESDAY_NOON, 0, ["GET", "PUT"]), (WEDNESDAY_NIGHT, 1, ["GET"])],
    ids=["noon", "night"],
)
def test_sms_example_asks_then_sends_within_danish_sending_hours(
    sandbox: tuple[Path, dict[str, Any]],
    tmp_path: Path,
    moment: datetime,
    code: int,
    methods: list[str],
) -> None:
    workdir, data = sandbox
    control = data["peers"]["nemsms"]["control_url"]
    assert sf2250_client.main(["--workdir", str(workdir), "--cpr", "0303805432"]) == 0
    session().delete(control + "/requests", timeout=5)
    with print_service_at(workdir, data, moment, tmp_path / "at") as manifest_dir:
        result = sf1600_sms_client.main(["--workdir", str(manifest_dir), "--cpr", "0303805432"])
        seen = session().get(control + "/requests", timeout=5).json()
    assert seen[0]["method"] == "GET" and seen[0]["path"].endswith("/myndighedstilmelding")
    # NemSMS sends 08:00-22:00 Danish time; at 23:00 the platform answers SP-503 itself.
    assert result == code
    assert [r["method"] for r in seen] == methods


def run_at(moment: datetime, monkeypatch: pytest.MonkeyPatch, workdir: Path, *args: str) -> Result:
    """A ``serviceplatform`` command in this process against the sandbox, with the
    platform's business clock (list date, service window) injected at ``moment``."""

    class PlatformAt(Platform):
        def __init__(self, *positional: Any, **named: Any) -> None:
            named["business_clock"] = lambda: moment
            super().__init__(*positional, **named)

    with monkeypatch.context() as patch:
        patch.setattr(platform_module, "Platform", PlatformAt)
        return CliRunner().invoke(cli_group, [*args, "--workdir", str(workdir)])


#: Sunday 02:00 in Denmark: inside NemSMS's weekly service window (00:00-04:00).
SUNDAY_NIGHT = datetime(2026, 1, 18, 1, 0, tzinfo=UTC)


def test_sf1601_peers_and_print_routes_in_the_manifest(
    sandbox: tuple[Path, dict[str, Any]],
) -> None:
    _, data = sandbox
    for name in ("sts", "sf1601"):
        peer = data["peers"][name]
        assert peer["base_url"].startswith("https://127.0.0.1:")
        assert peer["control_url"].endswith("/_sandbox")
        assert session().get(peer["control_url"] + "/requests", timeout=5).status_code == 200
    routes = {a["cvr"]: a["print_route"] for a in data["authorities"]}
    assert routes == {"29189846": "sf1600", "29189854": "sf1601"}


@pytest.mark.parametrize(("moment", "code"), [(WEDNESDAY_NOON, 0), (WEDNESDAY_NIGHT, 1)])
def test_sms_example_over_sf1601_goes_through_sts_and_sf1601(
    sandbox: tuple[Path, dict[str, Any]], tmp_path: Path, moment: datetime, code: int
) -> None:
    workdir, data = sandbox
    sts, sf1601 = data["peers"]["sts"]["control_url"], data["peers"]["sf1601"]["control_url"]
    register = data["peers"]["nemsms"]["control_url"]
    for control in (sts, sf1601, register):
        session().delete(control + "/requests", timeout=5)
    with print_service_at(workdir, data, moment, tmp_path / "at") as manifest_dir:
        result = sf1600_sms_client.main(["--workdir", str(manifest_dir), "--print-route", "sf1601"])
        seen = session().get(sf1601 + "/requests", timeout=5).json()
    paths = [r["path"].split("?")[0] for r in seen]
    assert paths[:2] == ["/service/AccessTokenService_1/token", "/service/PostForespoerg_1/nemsms"]
    assert all(
        r["headers"].get("Authorization", "Holder-of-key ****").endswith("****") for r in seen
    )
    assert [r["path"] for r in session().get(sts + "/requests", timeout=5).json()] != []
    assert session().get(register + "/requests", timeout=5).json() == []
    # NemSMS sends 08:00-22:00 Danish time; at 23:00 the platform answers SP-503 itself.
    assert result == code
    if code == 0:
        assert paths[-1] == "/service/KombiPostAfsend_1/kombi"
        sent = session().get(sf1601 + "/sent", timeout=5).json()
        assert sent[-1]["kombiValgKode"] == "NemSMS"
    else:
        assert "/service/KombiPostAfsend_1/kombi" not in paths


def test_subscriptions_run_drops_one_file_per_change_and_status_shows_it(
    sandbox: tuple[Path, dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    workdir, data = sandbox
    drop = Path(data["peers"]["distributor"]["dir"])
    assert data["peers"]["distributor"]["transport"] == "file" and drop.is_relative_to(workdir)
    control = data["peers"]["nemsms"]["control_url"]
    register_sysid = data["authorities"][0]["sysids"]["register"]
    cvr = data["authorities"][0]["cvr"]
    before = set(drop.glob("*.xml")) if drop.exists() else set()
    # The day before, stored as a run would have stored it; today the register serves another.
    now = WEDNESDAY_NOON
    today = danish_date(now)
    database = Database(data["database"])
    try:
        store = SnapshotStore(database)
        yesterday = store.begin(cvr, today - timedelta(days=1), now)
        store.add(yesterday, [("cpr", "0101901234"), ("cpr", "0202902345")])
        store.complete(yesterday, topic="beskedfordeler", message_for=_never, completed_at=now)
    finally:
        database.dispose()
    session().put(
        f"{control}/subscriptions/{register_sysid}",
        json={"cpr": ["0202902345", "0303803456"], "cvr": []},
        timeout=5,
    ).raise_for_status()

    # In the Sunday-night service window the run is refused and nothing is fetched.
    window = run_at(SUNDAY_NIGHT, monkeypatch, workdir, "subscriptions", "run", "--authority", cvr)
    assert window.exit_code == 1 and "SP-520" in window.output, window.output
    assert set(drop.glob("*.xml")) == before

    result = run_at(now, monkeypatch, workdir, "subscriptions", "run", "--authority", cvr)
    assert result.exit_code == 0, result.output
    assert f"{today}: lists fetched 1" in result.output
    assert "changes 2, messages delivered 2, pending 0" in result.output
    dropped = set(drop.glob("*.xml")) - before
    assert len(dropped) == 2
    assert not [p for p in drop.iterdir() if p.name.startswith(".")]
    assert "0101901234" not in result.output
    status = cli(workdir, "subscriptions", "status", "--json")
    assert status.returncode == 0, status.stderr
    runs = json.loads(status.stdout)["runs"]
    assert {(r["authority_cvr"], r["state"], r["subscribed"], r["unsubscribed"]) for r in runs} >= {
        (cvr, "complete", 1, 1)
    }
    assert json.loads(status.stdout)["outbox"]["pending"] == 0
    again = run_at(now, monkeypatch, workdir, "subscriptions", "run", "--authority", cvr)
    assert again.exit_code == 0 and "completed before" in again.output
    assert len(set(drop.glob("*.xml")) - before) == 2


def test_the_clock_hook_lets_a_supplier_try_night_2_in_minutes(
    sandbox: tuple[Path, dict[str, Any]],
) -> None:
    workdir, data = sandbox
    drop = Path(data["peers"]["distributor"]["dir"])
    control = data["peers"]["nemsms"]["control_url"]
    authority = [a for a in data["authorities"] if "sf2250" in a.get("services", [])][1]
    cvr, sysid = authority["cvr"], authority["sysids"]["register"]
    # Noon in Denmark a few days ahead: never the Sunday-night service window.
    night_1 = (datetime.now(UTC) + timedelta(days=3)).replace(
        hour=11, minute=0, second=0, microsecond=0
    )
    hooks = session()
    before = set(drop.glob("*.xml")) if drop.exists() else set()
    try:
        hooks.put(f"{control}/clock", json={"now": night_1.isoformat()}, timeout=5)
        hooks.put(
            f"{control}/subscriptions/{sysid}",
            json={"cpr": ["0101901234", "0202902345"], "cvr": []},
            timeout=5,
        ).raise_for_status()
        first = cli(workdir, "subscriptions", "run", "--authority", cvr)
        assert first.returncode == 0, first.stdout + first.stderr
        assert f"{night_1.date()}: lists fetched 1" in first.stdout
        assert "baseline" in first.stdout and "changes 0" in first.stdout

        hooks.put(
            f"{control}/subscriptions/{sysid}",
            json={"cpr": ["0202902345", "0303803456"], "cvr": []},
            timeout=5,
        ).raise_for_status()
        night_2 = night_1 + timedelta(days=1)
        hooks.put(f"{control}/clock", json={"now": night_2.isoformat()}, timeout=5)
        second = cli(workdir, "subscriptions", "run", "--authority", cvr)
        assert second.returncode == 0, second.stdout + second.stderr
        assert f"{night_2.date()}: lists fetched 1" in second.stdout
        assert "changes 2, messages delivered 2, pending 0" in second.stdout
        assert len(set(drop.glob("*.xml")) - before) == 2
    finally:
        hooks.put(f"{control}/clock", json={"now": None}, timeout=5).raise_for_status()
    # Back on the running clock, a command reads no fixed instant any more.
    assert not (workdir / "clock.json").exists()


def _never(kind: str, number: str, change: Change) -> tuple[str, str]:
    raise AssertionError("a first list has nothing to compare with")


def test_token_command_mints_a_usable_token(sandbox: tuple[Path, dict[str, Any]]) -> None:
    workdir, data = sandbox
    result = cli(workdir, "token", "--cvr", "29189846", "--ttl", "600")
    assert result.returncode == 0, result.stderr
    assertion = etree.fromstring(result.stdout.encode())
    assert assertion.findtext(".//{*}Audience") == data["services"]["sf2250"]["entity_id"]
    key = load_pem_private_key(Path(data["pki"]["client_key"]).read_bytes(), password=None)
    assert isinstance(key, RSAPrivateKey)
    url = data["services"]["sf2250"]["url"]
    payload = build_signed_envelope(
        opdater("0202804321"), assertion=assertion, holder_key=key, to=url, action="urn:x"
    )
    answer = session().post(
        url, data=payload, headers={"Content-Type": "application/soap+xml"}, timeout=10
    )
    assert answer.status_code == 200, answer.text
    assert status_code(answer) == 20
    cert = x509.load_pem_x509_certificate(Path(data["pki"]["client_cert"]).read_bytes())
    assert cert.subject.rfc4514_string()  # the holder the token names


def test_the_sandbox_settings_pass_the_checks_of_serve(
    sandbox: tuple[Path, dict[str, Any]],
) -> None:
    workdir, data = sandbox
    result = cli(workdir, "config", "check")
    assert result.returncode == 0, result.stderr
    assert result.stdout.endswith("# no problems\n")
    shown = tomllib.loads(result.stdout)
    assert shown["soap"]["public_base_url"] == data["platform"]["base_url"]


def test_a_call_signed_for_another_address_is_refused(
    sandbox: tuple[Path, dict[str, Any]],
) -> None:
    workdir, data = sandbox
    token = cli(workdir, "token", "--cvr", "29189846", "--ttl", "600")
    assert token.returncode == 0, token.stderr
    key = load_pem_private_key(Path(data["pki"]["client_key"]).read_bytes(), password=None)
    assert isinstance(key, RSAPrivateKey)
    url = data["services"]["sf2250"]["url"]
    payload = build_signed_envelope(
        opdater("0202804321"),
        assertion=etree.fromstring(token.stdout.encode()),
        holder_key=key,
        to=url.replace("127.0.0.1", "localhost"),
        action="urn:x",
    )
    answer = session().post(
        url, data=payload, headers={"Content-Type": "application/soap+xml"}, timeout=10
    )
    assert fault_code(answer) == "SP-202"


def test_token_command_refuses_bad_cvr(sandbox: tuple[Path, dict[str, Any]]) -> None:
    workdir, _ = sandbox
    result = cli(workdir, "token", "--cvr", "29189847")
    assert result.returncode == 2
    assert "check digit" in result.stderr and "Traceback" not in result.stderr


def test_audit_tail_and_routing_list_act_on_the_sandbox(
    sandbox: tuple[Path, dict[str, Any]],
) -> None:
    workdir, _ = sandbox
    assert sf2250_client.main(["--workdir", str(workdir), "--cpr", "0202804321"]) == 0
    tail = cli(workdir, "audit", "tail", "--json")
    assert tail.returncode == 0, tail.stderr
    records = json.loads(tail.stdout)
    assert records and records[-1]["outcome"] == "ok"
    assert "0202804321" not in tail.stdout and "020280****" in tail.stdout
    routes = cli(workdir, "routing", "list")
    assert routes.returncode == 0 and "29189846" in routes.stdout


def test_metrics_and_readyz_answer_for_every_worker(sandbox: tuple[Path, dict[str, Any]]) -> None:
    workdir, data = sandbox
    base = data["platform"]["base_url"]
    assert session().get(base + "/healthz", timeout=5).status_code == 200
    ready = session().get(base + "/readyz", timeout=5)
    assert ready.status_code == 200, ready.text
    assert ready.json()["status"] == "ready" and ready.json()["checks"]["peer:nemsms"]["ok"]

    def ok_calls() -> float:
        # A new connection each time, so a scrape may land on either gunicorn worker.
        answer = session().get(base + "/metrics", headers={"Connection": "close"}, timeout=5)
        assert answer.status_code == 200
        samples = [s for f in text_string_to_metric_families(answer.text) for s in f.samples]
        # Multiprocess mode: the scrape adds up the workers' files, without the process collector.
        assert not [s for s in samples if s.name.startswith("process_")]
        return sum(
            s.value
            for s in samples
            if s.name == "serviceplatform_calls_total"
            and s.labels["service"] == "sf2250"
            and s.labels["outcome"] == "ok"
        )

    before = ok_calls()
    for _ in range(2):  # two calls each
        assert sf2250_client.main(["--workdir", str(workdir), "--cpr", "0202804321"]) == 0
    assert {ok_calls() for _ in range(8)} == {before + 4}


def test_restart_reuses_pki_and_data(tmp_path: Path) -> None:
    process = start_sandbox(tmp_path)
    try:
        first = wait_for_manifest(tmp_path, process)
        ca = (tmp_path / "pki" / "ca.crt").read_bytes()
        assert sf2250_client.main(["--workdir", str(tmp_path)]) == 0
    finally:
        assert stop(process) == 0
    process = start_sandbox(tmp_path)
    try:
        second = wait_for_manifest(tmp_path, process)
        assert (tmp_path / "pki" / "ca.crt").read_bytes() == ca
        assert second["authorities"] == first["authorities"]
        tail = cli(tmp_path, "audit", "tail", "--json")
        assert len(json.loads(tail.stdout)) == 2  # the two calls of the first run
    finally:
        assert stop(process) == 0
    assert os.listdir(tmp_path)


def test_taken_port_is_a_clear_error(tmp_path: Path) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        workdir = ["--workdir", str(tmp_path)]
        result = subprocess.run(
            [sys.executable, "-m", "serviceplatform.cli", "sandbox", f"--port={port}", *workdir],
            cwd=PROJECT,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 1
    assert f"port {port} is in use" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "sandbox.json").exists()


def test_the_manifest_says_which_oots_gateway_each_authority_uses(
    sandbox: tuple[Path, dict[str, Any]],
) -> None:
    workdir, data = sandbox
    gateways = {a["cvr"]: a["oots_gateway"] for a in data["authorities"]}
    assert gateways == {"29189846": "domibus-ws", "29189854": "as4"}
    gateway = data["peers"]["oots_gateway"]
    assert gateway["as4_endpoint_url"].startswith("https://127.0.0.1:")
    assert gateway["as4_party_ids"] == ["AP_FI_01", "AP_SE_01"]
    assert gateway["as4_platform_party_id"] == "AP_DK_02"
    assert gateway["as4_receive_url"] == data["platform"]["base_url"] + "/oots/as4"
    for key in ("as4_cert", "as4_platform_cert"):
        path = Path(gateway[key])
        assert path.is_relative_to(workdir)
        x509.load_pem_x509_certificate(path.read_bytes())
    # The platform's AS4 key and the simulated partner's: owner-only.
    for private in (workdir / "certs" / "oots-as4.key", workdir / "pki" / "oots-as4-partner.key"):
        assert oct(private.stat().st_mode & 0o777) == "0o600", private
    # The simulated access points speak AS4 over TLS only with the sandbox CA trusted.
    with pytest.raises(requests.exceptions.SSLError):
        session().post(gateway["as4_endpoint_url"], data=b"", timeout=5)
    parties = cli(workdir, "as4", "parties")
    assert parties.returncode == 0, parties.stderr
    rows = [line.split() for line in parties.stdout.splitlines()]
    assert ["29189846", "domibus-ws", "AP_DK_01", gateway["ws_plugin_url"]] in rows
    assert ["29189854", "as4", "AP_DK_02"] in rows


def _messages(workdir: Path) -> list[list[str]]:
    listed = cli(workdir, "as4", "messages", "--limit", "1000")
    assert listed.returncode == 0, listed.stderr
    return [line.split()[2:7] for line in listed.stdout.splitlines()]


def test_an_evidence_request_of_the_as4_authority_goes_over_as4_beside_domibus(
    sandbox: tuple[Path, dict[str, Any]],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Authority B's request leaves through the platform's own AS4 access point (AP_DK_02) to
    the simulated providers' AS4 endpoint (TLS), whose answer is pushed back to the platform's
    receiving endpoint; authority A's still goes through the WS plugin (AP_DK_01)."""
    workdir, data = sandbox
    hooks = data["peers"]["oots_gateway"]["control_url"]
    session().delete(hooks + "/submitted", timeout=5)
    before = _messages(workdir)
    out = tmp_path / "evidence-b.pdf"
    code = oots_client.main(["--workdir", str(workdir), "--cvr", "29189854", "--out", str(out)])
    printed = capsys.readouterr()
    assert code == 0, printed
    assert "HentStatus: BevisModtaget" in printed.out
    assert out.read_bytes().startswith(b"%PDF")
    submitted = session().get(hooks + "/submitted", timeout=5).json()
    assert [s["from"]["party_id"] for s in submitted] == ["AP_DK_02", "AP_DK_02"]
    new = [row for row in _messages(workdir) if row not in before]
    # Requests out from the AS4 access point, the providers' answers in to it (stored by its
    # receiving endpoint); nothing of B's went through the WS plugin.
    assert ["out", "ExecuteQueryRequest", "AP_DK_02", "->", "AP_FI_01"] in new
    assert ["in", "ExecuteQueryResponse", "AP_FI_01", "->", "AP_DK_02"] in new
    assert all("AP_DK_01" not in row for row in new)

    session().delete(hooks + "/submitted", timeout=5)
    out_a = tmp_path / "evidence-a.pdf"
    code = oots_client.main(["--workdir", str(workdir), "--out", str(out_a)])
    printed = capsys.readouterr()
    assert code == 0, printed
    assert out_a.read_bytes().startswith(b"%PDF")
    submitted = session().get(hooks + "/submitted", timeout=5).json()
    assert [s["from"]["party_id"] for s in submitted] == ["AP_DK_01", "AP_DK_01"]
