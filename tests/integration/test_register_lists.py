"""The simulated register's national-scale list hooks over real mutual TLS: big bodies, the
``generate`` form, random or sorted parts, one snapshot per list date, the ``delay`` fault and
the clock shared with ``--workdir`` commands."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from lxml import etree

from serviceplatform.commands.workdir_clock import CLOCK_FILE, read_fixed_clock
from serviceplatform.sandbox.httpserver import MAX_BODY_BYTES
from serviceplatform.sandbox.nemsms_register import NemSmsRegister
from serviceplatform.sandbox.pki import Pki, ensure_pki
from serviceplatform.sandbox.register_state import REGISTER_NS

SYSID = "REG-L"
NS = {"r": REGISTER_NS}
#: Noon in Copenhagen: the list date is the same in UTC and in Danish time.
NOON = datetime(2026, 3, 10, 11, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def tpki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return ensure_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture()
def workdir(tmp_path: Path) -> Path:
    return tmp_path


@pytest.fixture()
def reg(tpki: Pki, workdir: Path) -> Iterator[NemSmsRegister]:
    with NemSmsRegister(
        server_cert=tpki.nemsms_server_cert,
        server_key=tpki.nemsms_server_key,
        client_ca=tpki.ca_cert,
        list_part_size=1000,
        clock=lambda: NOON,
        clock_dir=workdir,
    ) as running:
        yield running


@pytest.fixture()
def hooks() -> Iterator[requests.Session]:
    session = requests.Session()
    session.trust_env = False
    yield session
    session.close()


@pytest.fixture()
def client(tpki: Pki) -> Iterator[requests.Session]:
    session = requests.Session()
    session.trust_env = False
    session.verify = str(tpki.ca_cert)
    session.cert = (str(tpki.platform_register_cert), str(tpki.platform_register_key))
    yield session
    session.close()


def reference(reg: NemSmsRegister, client: requests.Session) -> tuple[str, int, int]:
    answer = client.get(f"{reg.base_url}/register/{SYSID}/slutbrugerliste", timeout=30)
    answer.raise_for_status()
    root = etree.fromstring(answer.content)
    return (
        root.findtext("r:ReferenceId", namespaces=NS) or "",
        int(root.findtext("r:AntalDele", namespaces=NS) or "-1"),
        int(root.findtext("r:AntalSlutbrugere", namespaces=NS) or "-1"),
    )


def read_list(reg: NemSmsRegister, client: requests.Session) -> list[tuple[str, str]]:
    ref, parts, count = reference(reg, client)
    entries: list[tuple[str, str]] = []
    for number in range(1, parts + 1):
        answer = client.get(
            f"{reg.base_url}/register/{SYSID}/slutbrugerliste/{ref}/dele/{number}", timeout=30
        )
        answer.raise_for_status()
        root = etree.fromstring(answer.content)
        for element in root.iterfind("r:Slutbruger/*", namespaces=NS):
            entries.append((etree.QName(element).localname.lower(), element.text or ""))
    assert len(entries) == count
    return entries


def put_list(reg: NemSmsRegister, hooks: requests.Session, body: Any) -> dict[str, Any]:
    answer = hooks.put(f"{reg.control_url}/subscriptions/{SYSID}", json=body, timeout=60)
    assert answer.status_code == 200, answer.text
    data: dict[str, Any] = answer.json()
    return data


def set_clock(reg: NemSmsRegister, hooks: requests.Session, now: datetime | None) -> None:
    hooks.put(
        f"{reg.control_url}/clock", json={"now": now.isoformat() if now else None}, timeout=5
    ).raise_for_status()


def test_stored_list_above_the_old_body_limit_is_served_in_random_order(reg, hooks, client):
    cprs = [f"{n:010d}" for n in range(1_000_000_000, 1_000_000_000 + 150_000)]
    body = {"cpr": cprs, "cvr": ["29189846"]}
    assert len(json.dumps(body)) > MAX_BODY_BYTES
    put_list(reg, hooks, body)
    served = read_list(reg, client)
    assert sorted(served) == sorted([("cpr", n) for n in cprs] + [("cvr", "29189846")])
    numbers = [number for _, number in served]
    assert numbers != sorted(numbers)


def test_sorted_option_serves_by_kind_and_number(reg, hooks, client):
    cprs = ["0303803456", "0101901234", "0202902345"]
    put_list(reg, hooks, {"cpr": cprs, "cvr": [":29189846"], "sorted": True})
    assert read_list(reg, client) == [("cpr", n) for n in sorted(cprs)] + [("cvr", "29189846")]


def test_generated_list_changes_per_mille_on_the_next_list_date(reg, hooks, client):
    answer = put_list(
        reg, hooks, {"generate": {"count": 20_000, "seed": 7, "changed_per_mille": 10}}
    )
    assert answer["generate"] == {"count": 20_000, "seed": 7, "changed_per_mille": 10}
    first = read_list(reg, client)
    assert len(set(first)) == 20_000
    assert {kind for kind, _ in first} == {"cpr", "cvr"}
    assert all(len(n) == (10 if kind == "cpr" else 8) for kind, n in first)
    numbers = [number for kind, number in first if kind == "cpr"]
    assert numbers != sorted(numbers)
    assert read_list(reg, client) == first  # the same list date: the same snapshot

    set_clock(reg, hooks, NOON + timedelta(days=1))
    second = read_list(reg, client)
    assert len(second) == 20_000
    assert len(set(first) - set(second)) == 100
    assert len(set(second) - set(first)) == 100

    # The subscription look-ups of EP_NS1 agree with the list of the day (an end user the
    # register knows of nothing else about is unknown: 404).
    gone = sorted(set(first) - set(second))[0]
    kept = sorted(set(first) & set(second))[0]
    url = f"{reg.base_url}/register/{SYSID}/boks/{{}}/myndighedstilmelding"
    assert client.get(url.format(gone[1]), timeout=5).status_code == 404
    tilmelding = client.get(url.format(kept[1]), timeout=5)
    assert tilmelding.status_code == 200
    assert ">true<" in tilmelding.text

    put_list(
        reg,
        hooks,
        {"generate": {"count": 3_000, "seed": 7, "changed_per_mille": 10}, "sorted": True},
    )
    ordered = read_list(reg, client)
    assert ordered == sorted(ordered)


def test_one_snapshot_per_list_date_however_often_asked(reg, hooks, client):
    put_list(reg, hooks, {"generate": {"count": 1_000, "seed": 1}})
    refs = {reference(reg, client)[0] for _ in range(3)}
    assert len(refs) == 1
    with reg.state.lock:
        assert len(reg.state.snapshots) == 1
    put_list(reg, hooks, {"generate": {"count": 1_000, "seed": 2}})
    assert reference(reg, client)[0] not in refs  # a new list: a new snapshot


def test_delay_fault_answers_late_then_recovers(reg, hooks, client):
    put_list(reg, hooks, {"cpr": ["0101901234"]})
    fault = {"status": "delay", "seconds": 0.6, "count": 1}
    answer = hooks.post(f"{reg.control_url}/faults", json=fault, timeout=5)
    assert answer.json() == fault
    started = time.monotonic()
    assert reference(reg, client)[2] == 1
    slow = time.monotonic() - started
    started = time.monotonic()
    assert reference(reg, client)[2] == 1
    assert slow >= 0.6 > time.monotonic() - started


@pytest.mark.parametrize(
    "body",
    [
        {"generate": {"count": -1}},
        {"generate": {"count": 10, "colour": 1}},
        {"generate": {"count": 10}, "cpr": []},
        {"cpr": [], "sorted": "yes"},
    ],
)
def test_list_hook_refuses_bad_forms(reg, hooks, body):
    answer = hooks.put(f"{reg.control_url}/subscriptions/{SYSID}", json=body, timeout=5)
    assert answer.status_code == 400


@pytest.mark.parametrize(
    "fault",
    [
        {"status": "delay", "count": 1},
        {"status": "delay", "seconds": -1},
        {"status": 503, "seconds": 1},
    ],
)
def test_faults_hook_refuses_bad_delays(reg, hooks, fault):
    assert hooks.post(f"{reg.control_url}/faults", json=fault, timeout=5).status_code == 400


def test_clock_hook_is_shared_with_the_workdir(reg, hooks, workdir):
    moment = NOON + timedelta(days=1)
    set_clock(reg, hooks, moment)
    assert read_fixed_clock(workdir) == moment
    assert (workdir / CLOCK_FILE).stat().st_mode & 0o777 == 0o600
    set_clock(reg, hooks, None)
    assert read_fixed_clock(workdir) is None
