"""docs/deployment.md, done for real: an empty PostgreSQL database prepared with the documented
commands only, then two ``serve`` nodes started as the documented systemd unit starts them.
The database has the document's three roles: its grants are run before the first ``db
upgrade`` (by the schema's owner, as the preparation is), and the nodes serve as the role that
may only change rows, as the document's ``secrets.env`` says; the audit is read as the
read-only role.

The commands are read from the blocks of the document marked *tested*, so the document and
this test cannot drift apart. Then, across the two nodes: a request answered by node A and
replayed byte for byte to node B is refused; an agreement suspended through node A's admin
API is refused on node B at the next call, and resuming restores it; two ``subscriptions run``
started at once make one run and no duplicate message; the audit of calls to both nodes is in
the one database.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import requests
import tomli_w

from integrations.sf2250.snapshot_store import SnapshotStore
from serviceplatform.admin.auth import token_digest
from serviceplatform.sandbox.nemsms_register import NemSmsRegister
from serviceplatform.sandbox.pki import STS_ISSUER, Pki
from serviceplatform.sandbox.runner import free_port
from serviceplatform.store.db import Database
from tests.certificates import make_cert
from tests.conftest import postgres_schema
from tests.database_roles import (
    APP_ROLE,
    REPORT_ROLE,
    grant_documented_roles,
    require_roles,
    role_url,
)
from tests.integration.conftest import SF2250_PATH, CaseSystem, RegisterHooks, post
from tests.integration.sf2250_requests import fault_code, opdater, status_code

pytestmark = [pytest.mark.integration, pytest.mark.postgres]

DOC = Path(__file__).resolve().parents[2] / "docs" / "deployment.md"
#: The documented configuration path, replaced by the test's own.
DOC_CONFIG = "/etc/serviceplatform/platform.toml"
PUBLIC_BASE_URL = "https://sp.kommune.test"
ENTITY_ID = "http://entityid.test.serviceplatform/service/sf2250/2"
AUTHORITY = "29189846"
REGISTER_SYSID = "2250001"
SYSTEM_UUID = "6f1c2a9e-3b7d-4c2a-9e5f-1a2b3c4d5e6f"
AGREEMENT_UUID = "4a1f2b3c-5d6e-4f70-8a9b-0c1d2e3f4a5b"
OPERATOR_TOKEN = "deployment-test-operator-token"
STARTUP_SECONDS = 60.0


def _tested_blocks() -> dict[str, str]:
    """The fenced blocks that follow a heading marked "(tested)", by their language."""
    blocks: dict[str, str] = {}
    marked = False
    pattern = re.compile(r"^(#+ [^\n]*)$|^```(\w+)\n(.*?)^```$", re.M | re.S)
    for match in pattern.finditer(DOC.read_text()):
        heading, language, body = match.groups()
        if heading is not None:
            marked = "(tested)" in heading
        elif marked:
            blocks[language] = body
            marked = False
    assert set(blocks) == {"sh", "ini", "sql"}, "docs/deployment.md: a tested block went missing"
    return blocks


def _bin() -> Path:
    return Path(sys.executable).parent


@dataclass
class Deployment:
    directory: Path
    config: Path
    database_url: str
    nodes: list[str]
    env: dict[str, str]

    def cli(self, *args: str, role: str = APP_ROLE) -> subprocess.CompletedProcess[str]:
        """A command on a node, as ``role`` (the nodes' own, or the read-only role)."""
        env = dict(self.env, SP_DATABASE__URL=role_url(self.database_url, role))
        return subprocess.run(
            [str(_bin() / "serviceplatform"), *args],
            env=env,
            cwd=self.directory,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    def admin(self, node: int, method: str, path: str, **kwargs: Any) -> requests.Response:
        session = requests.Session()
        session.trust_env = False
        return session.request(
            method,
            f"{self.nodes[node]}/admin/api{path}",
            headers={"Authorization": f"Bearer {OPERATOR_TOKEN}"},
            timeout=10,
            **kwargs,
        )


def _write_inputs(directory: Path, pki: Pki, register: NemSmsRegister, url: str) -> Path:
    """The files an operator brings: configuration, certificates, agreements, routing table."""
    shutil.copyfile(pki.platform_register_cert, directory / "register.crt")
    shutil.copyfile(pki.platform_register_key, directory / "register.key")
    (directory / "register.key").chmod(0o600)
    shutil.copyfile(pki.client_cert, directory / "case-system.pem")
    (directory / "second-system.pem").write_bytes(make_cert("CN=Acme Borgerservice,C=DK").pem)
    (directory / "agreements.toml").write_text(
        f"""
[[consumer_system]]
uuid = "{SYSTEM_UUID}"
name = "Acme Sag"
supplier_cvr = "12345674"
certificates = ["case-system.pem"]

[[agreement]]
uuid = "{AGREEMENT_UUID}"
authority_cvr = "{AUTHORITY}"
service = "sf2250"
consumer_system = "{SYSTEM_UUID}"
supplier = "Acme"
status = "approved"
register_cert_alias = "platform-register"
""",
        encoding="utf-8",
    )
    (directory / "routing").mkdir()
    (directory / "routing" / "sf2250.csv").write_text(
        f"authority_cvr,service,role,sysid,subject\n{AUTHORITY},sf2250,register,{REGISTER_SYSID},\n",
        encoding="utf-8",
    )
    config = directory / "platform.toml"
    settings = {
        "database": {"url": url},
        "security": {"trusted_sts_certs": [str(pki.sts_cert)], "trusted_issuers": [STS_ISSUER]},
        "soap": {"public_base_url": PUBLIC_BASE_URL},
        "certificates": {"directory": "certs"},
        "peers": {"nemsms": {"base_url": register.base_url, "ca_cert": str(pki.ca_cert)}},
        "services": {"sf2250": {"entity_id": ENTITY_ID}},
        # One directory both nodes share: "use AMQP or a shared directory".
        "distributor": {"transport": "file", "directory": "distributor"},
        "admin": {
            "principals": {
                "ops": {"role": "operator", "token_sha256": token_digest(OPERATOR_TOKEN)}
            }
        },
    }
    config.write_text(tomli_w.dumps(settings), encoding="utf-8")
    # The documented mode: its database URL holds the password (serve refuses it 0644).
    config.chmod(0o600)
    return config


def _operator() -> str:
    return token_digest(OPERATOR_TOKEN)


def _start_node(unit: str, env: dict[str, str], port: int) -> subprocess.Popen[bytes]:
    """Start a node the way the documented unit does: its ExecStart, on a port of ours."""
    exec_start = re.search(r"^ExecStart=(.*)$", unit, re.M)
    assert exec_start is not None
    argv = shlex.split(exec_start.group(1))
    assert Path(argv[0]).name == "serviceplatform"
    args = argv[1:]
    args[args.index("--bind") + 1] = f"127.0.0.1:{port}"
    # Two cores run the whole suite: one worker per node is enough to show what is shared.
    args[args.index("--workers") + 1] = "1"
    return subprocess.Popen([str(_bin() / "serviceplatform"), *args], env=env)


def _wait_healthy(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    session = requests.Session()
    session.trust_env = False
    while time.monotonic() < deadline:
        assert process.poll() is None, f"the node exited with {process.returncode}"
        try:
            if session.get(url + "/healthz", timeout=1).status_code == 200:
                return
        except requests.RequestException:
            time.sleep(0.2)
    raise AssertionError(f"{url} did not answer /healthz within {STARTUP_SECONDS} s")


@pytest.fixture(scope="module")
def deployment(
    tmp_path_factory: pytest.TempPathFactory,
    postgres_url: str,
    pki: Pki,
    register: NemSmsRegister,
) -> Iterator[Deployment]:
    directory = tmp_path_factory.mktemp("deployment")
    blocks = _tested_blocks()
    require_roles(postgres_url)
    with postgres_schema(postgres_url) as url:
        config = _write_inputs(directory, pki, register, url)
        # Before the first upgrade: every table comes later, under the default privileges.
        grant_documented_roles(url)
        env = {k: v for k, v in os.environ.items() if not k.startswith("SP_")}
        env["PATH"] = f"{_bin()}{os.pathsep}{env.get('PATH', '')}"
        # The documented preparation, command by command, against the empty database.
        script = blocks["sh"].replace(DOC_CONFIG, str(config))
        prepared = subprocess.run(
            ["bash", "-e", "-x", "-c", script],
            env=env,
            cwd=directory,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert prepared.returncode == 0, prepared.stdout + prepared.stderr
        assert "Acme Sag" in prepared.stdout and AGREEMENT_UUID in prepared.stdout
        assert "Acme Borgerservice" in prepared.stdout

        unit = blocks["ini"].replace(DOC_CONFIG, str(config))
        node_env = dict(env)
        for name, value in re.findall(r"^Environment=(\w+)=(.*)$", unit, re.M):
            node_env[name] = value
        assert node_env["SP_CONFIG"] == str(config)
        # What the document's secrets.env holds: the serving role's URL.
        node_env["SP_DATABASE__URL"] = role_url(url, APP_ROLE)
        ports = [free_port(), free_port()]
        processes = [_start_node(unit, node_env, port) for port in ports]
        nodes = [f"http://127.0.0.1:{port}" for port in ports]
        try:
            for node, process in zip(nodes, processes, strict=True):
                _wait_healthy(node, process)
            yield Deployment(directory, config, url, nodes, node_env)
        finally:
            for process in processes:
                process.terminate()
            for process in processes:
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()


def _request(case_system: CaseSystem, message_id: str | None = None) -> bytes:
    # Behind a load balancer every node has the same public address: that is what is signed.
    return case_system.envelope(
        opdater("0202902345"),
        PUBLIC_BASE_URL + SF2250_PATH,
        token={"cvr": AUTHORITY, "audience": ENTITY_ID},
        message_id=message_id or f"urn:uuid:{uuid.uuid4()}",
    )


def _call(node: str, payload: bytes) -> tuple[int, str | None]:
    answer = post(node + SF2250_PATH, payload)
    if answer.status_code == 200:
        return status_code(answer), None
    return answer.status_code, fault_code(answer)


def test_a_request_replayed_to_the_other_node_is_refused(
    deployment: Deployment, case_system: CaseSystem, hooks: RegisterHooks
) -> None:
    payload = _request(case_system)
    assert _call(deployment.nodes[0], payload) == (20, None)
    assert len(hooks.requests()) == 1
    assert _call(deployment.nodes[1], payload) == (400, "SP-215")
    assert len(hooks.requests()) == 1, "the replay must not go out"


def test_an_agreement_suspended_on_one_node_is_refused_on_the_other_at_the_next_call(
    deployment: Deployment, case_system: CaseSystem
) -> None:
    suspended = deployment.admin(
        0, "POST", f"/agreements/{AGREEMENT_UUID}/suspend", json={"reason": "audit"}
    )
    assert suspended.status_code == 200, suspended.text
    try:
        assert _call(deployment.nodes[1], _request(case_system)) == (400, "SP-302")
    finally:
        resumed = deployment.admin(0, "POST", f"/agreements/{AGREEMENT_UUID}/resume", json={})
        assert resumed.status_code == 200, resumed.text
    assert _call(deployment.nodes[1], _request(case_system)) == (20, None)


def test_two_nightly_runs_started_at_once_make_one_run_and_no_duplicate(
    deployment: Deployment, hooks: RegisterHooks
) -> None:
    today = datetime.now(ZoneInfo("Europe/Copenhagen")).date()
    # Yesterday's list as a completed night, so tonight's list has changes to hand over.
    database = Database(deployment.database_url)
    try:
        store = SnapshotStore(database)
        night = store.begin(AUTHORITY, today - timedelta(days=1), datetime.now(UTC))
        store.add(night, [("cpr", "0101901234")])
        store.complete(
            night,
            topic="beskedfordeler",
            message_for=lambda *_: pytest.fail("a first night sends nothing"),
            completed_at=datetime.now(UTC),
        )
    finally:
        database.dispose()
    hooks.subscribe(REGISTER_SYSID, cpr=["0202902345"])

    command = [str(_bin() / "serviceplatform"), "subscriptions", "run"]
    runs = [
        subprocess.Popen(
            command,
            env=deployment.env,
            cwd=deployment.directory,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [run.communicate(timeout=120) for run in runs]
    ran = [out for out, _ in outputs if f"{AUTHORITY}  complete" in out]
    assert len(ran) == 1, outputs
    other = next(
        (run.returncode, out + err)
        for run, (out, err) in zip(runs, outputs, strict=True)
        if f"{AUTHORITY}  complete" not in out
    )
    # Refused while the first runs, or told afterwards that the night is done.
    assert (other[0] == 1 and "SP-521" in other[1]) or (
        other[0] == 0 and "completed before; nothing to fetch" in other[1]
    ), other
    files = sorted((deployment.directory / "distributor").glob("*.xml"))
    assert len(files) == 2, files  # one unsubscribed, one subscribed: once each
    references = [r for r in hooks.requests() if r["path"].endswith("/slutbrugerliste")]
    assert len(references) == 1, "one process fetched the list"


def test_the_audit_of_calls_to_both_nodes_is_in_the_one_database(
    deployment: Deployment, case_system: CaseSystem
) -> None:
    sent = [f"urn:uuid:{uuid.uuid4()}" for _ in deployment.nodes]
    for node, message_id in zip(deployment.nodes, sent, strict=True):
        assert _call(node, _request(case_system, message_id)) == (20, None)
    tail = deployment.cli("audit", "tail", "-n", "50", "--json", role=REPORT_ROLE)
    assert tail.returncode == 0, tail.stderr
    audited = {record["message_id"]: record for record in json.loads(tail.stdout)}
    for message_id in sent:
        assert audited[message_id]["outcome"] == "ok"
        assert audited[message_id]["authority_cvr"] == AUTHORITY
