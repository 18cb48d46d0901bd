"""Benchmark of the nightly subscription-list diff at national scale, beside ``sort | comm -3``.

Run ``.venv/bin/python bench/nightly.py`` (``make bench`` runs it after the pass-through
benchmark). Per database (SQLite; PostgreSQL when ``SP_TEST_POSTGRES_URL`` is set) and per
shape (1 M entries as one list, 6 M as one list, 6 M as 98 authorities whose largest list has
650,000 entries) it:

1. starts the simulated NemSMS register in a process of its own (mutual TLS, the sandbox's
   PKI) and gives every authority a generated list (``{"generate": ...}``, random order, 1%
   changed per list date);
2. runs night 1 (the baseline) and night 2 with the product's nightly code and the default
   configuration, each in a fresh process, and measures per phase (fetch and store; diff and
   outbox; delivery to the file drop) the wall time, the peak resident memory and the bytes
   written to disk (the process's own writes; on PostgreSQL also the server's WAL and
   buffer writes), and per night the CPU seconds of the register's process, which serves
   the parts on the same CPUs;
3. delivers night 2's messages again over AMQP with publisher confirms to the simulated
   Beskedfordeler (when ``SP_TEST_AMQP_URL`` is set), which runs in a process of its own as
   Beskedfordeler does in a deployment, with the relay's AMQP batch size; prints the CPU
   milliseconds a message of the platform, the simulator and the broker (``beam.smp``,
   shared with whatever else uses it: an upper bound);
4. times ``LC_ALL=C sort`` of both nights' lists and ``comm -3`` on the same lists and checks
   that it finds as many changes as the night sent messages.

The goals (issue 18) are judged at 6 M on both databases: night 2 whole at most 60 s; diff and
outbox at most 3 times ``sort | comm``; at most 2 GB written; peak memory under 256 MiB;
delivery at least 2,000 messages a second to the file drop and over AMQP.

``--profile DIR`` writes a cProfile file of the platform's process per night and phase into
DIR (the main thread only: the list's parts are read in threads, whose CPU is the transport's
and the parts' parsing).

Exit status: 0 when every goal is met, 2 when one is missed, 1 when the run failed (wrong
results, a night failed, a server did not start).
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # run as a script, the project root is not on the path

GOAL_NIGHT_SECONDS = 60.0
GOAL_DIFF_RATIO = 3.0
GOAL_WRITTEN_BYTES = 2 * 1000**3
GOAL_PEAK_BYTES = 256 * 1024**2
GOAL_DELIVERY_RATE = 2000.0
#: Monday 2026-11-16 02:00 Danish time; night 2 is a day later.
NIGHT_1 = datetime(2026, 11, 16, 1, 0, tzinfo=UTC)
CONSUMER_SYSTEM = "0d7fcabb-3505-4065-a006-d48b1cf50cc2"
CERT_ALIAS = "platform-register"
ENTITY_ID = "http://entityid.bench.serviceplatform/service/sf2250/2"
MiB = 1024**2


# --- shapes ---------------------------------------------------------------------------------


def cvr_numbers(count: int) -> list[str]:
    """``count`` valid (modulus-11) CVR numbers, for the benchmark's authorities."""
    weights = (2, 7, 6, 5, 4, 3, 2, 1)
    found: list[str] = []
    candidate = 30_000_000
    while len(found) < count:
        digits = f"{candidate:08d}"
        if sum(int(d) * w for d, w in zip(digits, weights, strict=True)) % 11 == 0:
            found.append(digits)
        candidate += 1
    return found


def shape_sizes(shape: str) -> list[int]:
    if shape == "1M":
        return [1_000_000]
    if shape == "6M":
        return [6_000_000]
    if shape == "6Mx98":
        largest, rest = 650_000, 6_000_000 - 650_000
        weights = list(range(97, 0, -1))
        sizes = [largest] + [rest * w // sum(weights) for w in weights]
        sizes[-1] += 6_000_000 - sum(sizes)
        return sizes
    if shape.isdigit():
        return [int(shape)]
    raise SystemExit(f"unknown shape {shape!r} (1M, 6M, 6Mx98, or a number of entries)")


# --- measuring ------------------------------------------------------------------------------


def written_bytes() -> int:
    """Bytes this process caused to be written to storage (Linux ``/proc/self/io``)."""
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("write_bytes:"):
            return int(line.split()[1])
    return 0


def peak_resident_bytes() -> int:
    """This process's peak resident set (``VmHWM``).

    Not ``getrusage``'s ``ru_maxrss``: a child started by ``subprocess`` inherits its parent's
    peak there (Linux records the old memory map's high-water mark at ``exec``), so a night
    run after the parent had generated a 6 M list for ``sort`` reported the parent's 690 MiB.
    """
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


class PeakMemory:
    """Samples the resident set every 20 ms; ``take()`` answers the peak since the last take."""

    def __init__(self) -> None:
        self._peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._page = os.sysconf("SC_PAGE_SIZE")
        self._thread.start()

    def _rss(self) -> int:
        return int(Path("/proc/self/statm").read_text().split()[1]) * self._page

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            self._peak = max(self._peak, self._rss())

    def take(self) -> int:
        peak, self._peak = max(self._peak, self._rss()), self._rss()
        return peak


class ServerWrites:
    """PostgreSQL's own writes (WAL and buffers) as the server counts them; 0 on SQLite."""

    def __init__(self, database: Any) -> None:
        self._database = database

    def total(self) -> int:
        if self._database.dialect != "postgresql":
            return 0
        from sqlalchemy import text

        with self._database.transaction() as connection:
            wal = connection.execute(text("SELECT wal_bytes FROM pg_stat_wal")).scalar_one()
            blocks = connection.execute(
                text(
                    "SELECT buffers_checkpoint + buffers_clean + buffers_backend "
                    "FROM pg_stat_bgwriter"
                )
            ).scalar_one()
        return int(wal) + int(blocks) * 8192


@dataclass
class Phase:
    seconds: float = 0.0
    #: CPU seconds of the platform's process (not the register's, the database server's).
    cpu_seconds: float = 0.0
    peak_bytes: int = 0
    written_bytes: int = 0

    def as_json(self) -> dict[str, float]:
        return {
            "seconds": round(self.seconds, 2),
            "cpu_seconds": round(self.cpu_seconds, 2),
            "peak_mib": round(self.peak_bytes / MiB, 1),
            "written_mib": round(self.written_bytes / MiB, 1),
        }


# --- the night, in a process of its own -------------------------------------------------------


def child_night(spec: dict[str, Any]) -> dict[str, Any]:
    """One night with the product's code; prints the figures as JSON."""
    from integrations.sf2250 import snapshot_store as snapshot_module
    from integrations.sf2250.nightly import NightlyDiff
    from serviceplatform.config import load_settings
    from serviceplatform.distribution.file_drop import FileDropDistributor
    from serviceplatform.platform import Platform

    settings = load_settings(Path(spec["settings"]))
    now = datetime.fromisoformat(spec["now"])
    platform = Platform(settings, business_clock=lambda: now)
    memory = PeakMemory()
    server = ServerWrites(platform.db)
    phases: dict[str, Phase] = {}
    profile_dir = Path(spec["profile"]) if spec.get("profile") else None
    profiler = cProfile.Profile() if profile_dir is not None else None
    if profiler is not None:
        profiler.enable()
    marks: dict[str, float] = {
        "at": time.perf_counter(),
        "cpu": time.process_time(),
        "written": written_bytes() + server.total(),
        "closed": 0,
    }

    def close_phase(name: str) -> None:
        now_at, written = time.perf_counter(), written_bytes() + server.total()
        phase = phases.setdefault(name, Phase())
        phase.seconds += now_at - marks["at"]
        phase.cpu_seconds += time.process_time() - marks["cpu"]
        marks["cpu"] = time.process_time()
        phase.written_bytes += int(written - marks["written"])
        phase.peak_bytes = max(phase.peak_bytes, memory.take())
        if profiler is not None and profile_dir is not None:
            # A file per closed phase, numbered: fetch_store is closed twice (its tail ends
            # after the diff). The main thread only: the list's parts are read in threads.
            profiler.disable()
            marks["closed"] += 1
            case = Path(spec["drop"]).parent.name
            profiler.dump_stats(
                profile_dir / f"{case}-{spec['now'][:10]}-{int(marks['closed'])}-{name}.prof"
            )
            profiler.clear()
            profiler.enable()
        marks["at"], marks["written"] = now_at, written

    original = snapshot_module.SnapshotStore.complete

    def timed_complete(self: Any, *args: Any, **kwargs: Any) -> Any:
        close_phase("fetch_store")
        try:
            return original(self, *args, **kwargs)
        finally:
            close_phase("diff_outbox")

    snapshot_module.SnapshotStore.complete = timed_complete  # type: ignore[method-assign]
    drop = Path(spec["drop"])
    with FileDropDistributor(drop) as distributor:
        job = NightlyDiff(platform, distributor, holder="bench")
        summary = job.run(deliver=False)
        close_phase("fetch_store")
        relay = job.deliver()
        close_phase("delivery")
    failed = [f"{a.authority_cvr}: {a.error}" for a in summary.failed]
    result: dict[str, Any] = {
        "entries": summary.entries,
        "changes": summary.changes,
        "messages": sum(a.messages for a in summary.authorities),
        "delivered": relay.delivered,
        "failed": failed,
        "phases": {name: phase.as_json() for name, phase in phases.items()},
        "peak_mib": round(peak_resident_bytes() / MiB, 1),
    }
    if spec.get("amqp") and relay.delivered:
        result["amqp"] = child_amqp(platform, spec, memory)
    platform.close()
    return result


def child_amqp(platform: Any, spec: dict[str, Any], memory: PeakMemory) -> dict[str, Any]:
    """Deliver the night's messages again, over AMQP with publisher confirms."""
    from sqlalchemy import update

    from integrations.sf2250.nightly import TOPIC
    from serviceplatform.config import AmqpDistributorSettings, DistributorSettings
    from serviceplatform.distribution.amqp import AmqpDistributor
    from serviceplatform.relay import OutboxRelay
    from serviceplatform.sandbox.pki import STS_ISSUER
    from serviceplatform.sandbox.sts_tokens import SandboxStsTokenSource
    from serviceplatform.store.models import outbox_state
    from serviceplatform.store.outbox import Outbox

    with platform.db.transaction(write_first=True) as connection:
        connection.execute(update(outbox_state).values(state="pending", delivered_at=None))
    settings = AmqpDistributorSettings(url=spec["amqp"], exchange=spec["exchange"])
    tokens = SandboxStsTokenSource.from_files(
        Path(spec["sts_key"]), Path(spec["sts_cert"]), STS_ISSUER, settings.token_audience
    )
    memory.take()
    started, cpu = time.perf_counter(), time.process_time()
    delivered, rounds, rejected = 0, 0, 0
    with AmqpDistributor(settings, tokens, base_dir=Path(spec["drop"])) as distributor:
        # The broker is shared: a restart meanwhile stops a round, and the next round goes on
        # where it stopped (at least once), as the night's next delivery would.
        while rounds < 10:
            rounds += 1
            relay = OutboxRelay(
                Outbox(platform.db),
                distributor,
                clock=platform.clock,
                topic=TOPIC,
                # What a platform with transport = "amqp" uses (no batch_size set).
                batch_size=DistributorSettings(transport="amqp").relay_batch_size(),
            ).run()
            delivered, rejected = delivered + relay.delivered, rejected + relay.rejected
            if not relay.unavailable:
                break
            time.sleep(5)
    seconds = time.perf_counter() - started
    return {
        "delivered": delivered,
        "rounds": rounds,
        "unavailable": relay.unavailable,
        "rejected": rejected,
        "seconds": round(seconds, 2),
        "cpu_seconds": round(time.process_time() - cpu, 2),
        "peak_mib": round(memory.take() / MiB, 1),
    }


def child_register(pki_dir: Path) -> None:
    """Serve the simulated register until stdin closes; prints its URLs as one JSON line."""
    from serviceplatform.sandbox.nemsms_register import NemSmsRegister
    from serviceplatform.sandbox.pki import ensure_pki

    pki = ensure_pki(pki_dir)
    with NemSmsRegister(
        server_cert=pki.nemsms_server_cert,
        server_key=pki.nemsms_server_key,
        client_ca=pki.ca_cert,
        max_recorded=1000,
    ) as register:
        print(json.dumps({"base_url": register.base_url, "control_url": register.control_url}))
        sys.stdout.flush()
        sys.stdin.read()


# --- the parent ---------------------------------------------------------------------------------


@contextmanager
def register_process(pki_dir: Path) -> Iterator[dict[str, str]]:
    process = subprocess.Popen(
        [sys.executable, __file__, "--register", str(pki_dir)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        if not line:
            raise SystemExit("the simulated register did not start")
        yield {**json.loads(line), "pid": str(process.pid)}
    finally:
        assert process.stdin is not None
        process.stdin.close()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()


def process_cpu_seconds(pid: str) -> float:
    """CPU seconds (user + system) a process has used so far (Linux ``/proc/PID/stat``)."""
    # The fields after the command name, which is in parentheses and may hold spaces.
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def amqp_cpu_marks(simulator: dict[str, Any] | None) -> dict[str, float]:
    """CPU seconds so far of the simulator's process and of the broker on this machine."""
    from bench.amqp_delivery import broker_pid

    if simulator is None:
        return {}
    marks = {"simulator_cpu_seconds": process_cpu_seconds(str(simulator["pid"]))}
    beam = broker_pid()
    if beam is not None:
        marks["broker_cpu_seconds"] = process_cpu_seconds(str(beam))
    return marks


def amqp_cpu_used(simulator: dict[str, Any] | None, marks: dict[str, float]) -> dict[str, float]:
    """What the simulator and the broker used since ``marks`` (the whole night: only its
    AMQP part gives them work; the broker may serve others too, so its figure is an upper
    bound)."""
    now = amqp_cpu_marks(simulator)
    return {name: round(now[name] - marks[name], 2) for name in marks if name in now}


def hooks_session() -> Any:
    import requests

    session = requests.Session()
    session.trust_env = False
    return session


def prepare(
    scratch: Path, pki_dir: Path, register: dict[str, str], database_url: str, sizes: list[int]
) -> tuple[Path, list[tuple[str, str, int]]]:
    """A platform settings file and database with one SF2250 authority per list size."""
    from serviceplatform.registry import known_services
    from serviceplatform.routing_files import load_directory
    from serviceplatform.sandbox.pki import STS_ISSUER, ensure_pki
    from serviceplatform.sandbox.runner import ensure_sample_certificate
    from serviceplatform.store.agreements_import import apply_import, read_import
    from serviceplatform.store.db import Database
    from serviceplatform.store.repository import RoutingRepository

    pki = ensure_pki(pki_dir)
    certs, tables = scratch / "certs", scratch / "tables"
    certs.mkdir()
    tables.mkdir()
    for source, suffix in (
        (pki.platform_register_cert, ".crt"),
        (pki.platform_register_key, ".key"),
    ):
        target = certs / f"{CERT_ALIAS}{suffix}"
        target.write_bytes(source.read_bytes())
        target.chmod(0o600 if suffix == ".key" else 0o644)
    authorities = [
        (cvr, f"REG-{index:03d}", size)
        for index, (cvr, size) in enumerate(zip(cvr_numbers(len(sizes)), sizes, strict=True))
    ]
    rows = ["authority_cvr,service,role,sysid,subject"]
    agreements = [
        f'[[consumer_system]]\nuuid = "{CONSUMER_SYSTEM}"\nname = "Bench"\n'
        'supplier_cvr = "12345674"\n'
    ]
    for cvr, sysid, _ in authorities:
        rows.append(f"{cvr},sf2250,register,{sysid},")
        agreements.append(
            f'[[agreement]]\nuuid = "{uuid.uuid4()}"\nauthority_cvr = "{cvr}"\n'
            f'service = "sf2250"\nconsumer_system = "{CONSUMER_SYSTEM}"\nsupplier = "Bench"\n'
            f'status = "approved"\nregister_cert_alias = "{CERT_ALIAS}"\nvalid_from = 2024-01-01\n'
        )
    (tables / "sf2250.csv").write_text("\n".join(rows) + "\n")
    (tables / "agreements.toml").write_text("\n".join(agreements))
    settings = scratch / "platform.toml"
    settings.write_text(
        f"[database]\nurl = {json.dumps(database_url)}\n\n"
        f"[security]\ntrusted_sts_certs = [{json.dumps(str(pki.sts_cert))}]\n"
        f"trusted_issuers = [{json.dumps(STS_ISSUER)}]\n\n"
        f"[routing]\ndirectory = {json.dumps(str(tables))}\n\n"
        f"[certificates]\ndirectory = {json.dumps(str(certs))}\n\n"
        f"[peers.nemsms]\nbase_url = {json.dumps(register['base_url'])}\n"
        f"ca_cert = {json.dumps(str(pki.ca_cert))}\n\n"
        f"[services.sf2250]\nentity_id = {json.dumps(ENTITY_ID)}\n"
    )
    database = Database(database_url)
    try:
        database.upgrade()
        now = datetime.now(UTC)
        apply_import(
            database,
            *read_import(tables / "agreements.toml", known_services(), now=now),
            now=now,
            actor="bench",
        )
        ensure_sample_certificate(database, pki)
        RoutingRepository(database).replace_routes(load_directory(tables, known_services()))
    finally:
        database.dispose()
    return settings, authorities


def run_child(spec: dict[str, Any]) -> dict[str, Any]:
    answer = subprocess.run(
        [sys.executable, __file__, "--night", json.dumps(spec)],
        capture_output=True,
        text=True,
        check=False,
    )
    if answer.returncode != 0:
        raise SystemExit(f"the night failed:\n{answer.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(answer.stdout.strip().splitlines()[-1])
    return result


def sort_comm(
    scratch: Path, authorities: list[tuple[str, str, int]], seed: int
) -> tuple[float, float, int]:
    """Seconds of ``LC_ALL=C sort`` of both nights' lists and ``comm -3``; lines it found."""
    from serviceplatform.sandbox.register_lists import GeneratedList

    day = NIGHT_1.date()
    files = []
    for night in (0, 1):
        path = scratch / f"night{night + 1}.txt"
        with path.open("w") as handle:
            for index, (_, sysid, size) in enumerate(authorities):
                listed = GeneratedList(size, seed + index, 10, day)
                view = listed.view(day + timedelta(days=night), sysid)
                for start in range(0, view.count, 100_000):
                    handle.writelines(
                        f"{sysid} {kind} {number}\n"
                        for kind, number in view.part(start, start + 100_000)
                    )
        files.append(path)
    started = time.perf_counter()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    answer = subprocess.run(
        [
            "bash",
            "-c",
            'export LC_ALL=C; sort "$1" > "$1.s" && sort "$2" > "$2.s" '
            '&& comm -3 "$1.s" "$2.s" | wc -l',
            "sort-comm",
            str(files[0]),
            str(files[1]),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    seconds = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    for path in files:
        path.unlink()
        Path(f"{path}.s").unlink()
    return seconds, cpu, int(answer.stdout.strip())


@contextmanager
def database_url(kind: str, scratch: Path) -> Iterator[str]:
    if kind == "sqlite":
        yield f"sqlite:///{scratch / 'platform.sqlite'}"
        return
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    base = os.environ["SP_TEST_POSTGRES_URL"]
    schema = f"bench_{uuid.uuid4().hex[:12]}"
    engine = create_engine(base)
    with engine.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield (
            make_url(base)
            .update_query_dict({"options": f"-csearch_path={schema}"})
            .render_as_string(hide_password=False)
        )
    finally:
        with engine.begin() as connection:
            connection.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        engine.dispose()


@contextmanager
def beskedfordeler(amqp_url: str | None, pki_dir: Path) -> Iterator[dict[str, Any] | None]:
    """The simulated Beskedfordeler in a process of its own: its exchange and pid.

    Not a thread of this process: Beskedfordeler runs elsewhere in a deployment, and in its
    own process its CPU is measured apart from the platform's and the broker's.
    """
    if not amqp_url:
        yield None
        return
    from bench.amqp_delivery import simulator_process
    from serviceplatform.sandbox.pki import ensure_pki

    exchange = f"BENCH_{uuid.uuid4().hex[:12]}"
    pki = ensure_pki(pki_dir)
    with simulator_process(amqp_url, exchange, pki.sts_cert) as simulator:
        yield {"exchange": exchange, "pid": simulator.pid}


def bench_case(
    kind: str, shape: str, args: argparse.Namespace, scratch_root: Path, pki_dir: Path
) -> dict[str, Any]:
    scratch = Path(tempfile.mkdtemp(prefix=f"{kind}-{shape}-", dir=scratch_root))
    sizes = shape_sizes(shape)
    seed = 18
    with (
        register_process(pki_dir) as register,
        database_url(kind, scratch) as url,
        beskedfordeler(args.amqp_url, pki_dir) as simulator,
    ):
        settings, authorities = prepare(scratch, pki_dir, register, url, sizes)
        hooks = hooks_session()
        control = register["control_url"]
        hooks.put(
            f"{control}/clock", json={"now": NIGHT_1.isoformat()}, timeout=30
        ).raise_for_status()
        for index, (_, sysid, size) in enumerate(authorities):
            body = {"generate": {"count": size, "seed": seed + index, "changed_per_mille": 10}}
            hooks.put(f"{control}/subscriptions/{sysid}", json=body, timeout=300).raise_for_status()
        from serviceplatform.sandbox.pki import ensure_pki

        pki = ensure_pki(pki_dir)
        nights = []
        for night in (0, 1):
            now = NIGHT_1 + timedelta(days=night)
            hooks.put(
                f"{control}/clock", json={"now": now.isoformat()}, timeout=30
            ).raise_for_status()
            spec: dict[str, Any] = {
                "settings": str(settings),
                "now": now.isoformat(),
                "drop": str(scratch / "drop"),
            }
            if args.profile:
                spec["profile"] = str(Path(args.profile).resolve())
            if night == 1 and simulator is not None:
                spec.update(
                    amqp=args.amqp_url,
                    exchange=simulator["exchange"],
                    sts_key=str(pki.sts_key),
                    sts_cert=str(pki.sts_cert),
                )
            register_cpu = process_cpu_seconds(register["pid"])
            others = amqp_cpu_marks(simulator)
            nights.append(run_child(spec))
            if "amqp" in nights[-1]:
                nights[-1]["amqp"].update(amqp_cpu_used(simulator, others))
            # The register runs on the same CPUs as the night: its share counts too.
            nights[-1]["register_cpu_seconds"] = round(
                process_cpu_seconds(register["pid"]) - register_cpu, 2
            )
        sort_seconds, sort_cpu, sort_lines = sort_comm(scratch, authorities, seed)
    # Left for main() to remove after the last case: on an ext4 file system without a journal
    # (this machine's), files created within a minute of deleting thousands cost up to 0.5 ms
    # each (docs/distribution.md), which would slow the next case's file drop.
    return {
        "database": kind,
        "shape": shape,
        "night1": nights[0],
        "night2": nights[1],
        "sort_comm_seconds": round(sort_seconds, 2),
        "sort_comm_cpu_seconds": round(sort_cpu, 2),
        "sort_comm_lines": sort_lines,
    }


# --- judging and printing -----------------------------------------------------------------------


@dataclass
class Goal:
    case: str
    name: str
    value: float
    limit: float
    higher_is_better: bool = False

    @property
    def met(self) -> bool:
        return self.value >= self.limit if self.higher_is_better else self.value <= self.limit


def judge(case: dict[str, Any]) -> tuple[list[Goal], list[str]]:
    """The goals of one case (6 M shapes only) and any wrong result."""
    label = f"{case['shape']} {case['database']}"
    night2 = case["night2"]
    problems = [
        f"{label}: {failure}" for n in ("night1", "night2") for failure in case[n]["failed"]
    ]
    if night2["messages"] != case["sort_comm_lines"] or night2["delivered"] != night2["messages"]:
        problems.append(
            f"{label}: {night2['messages']} messages, {night2['delivered']} delivered, "
            f"sort|comm found {case['sort_comm_lines']} changes"
        )
    amqp = night2.get("amqp")
    if amqp is not None and amqp["delivered"] != night2["messages"]:
        problems.append(f"{label}: AMQP delivered {amqp['delivered']} of {night2['messages']}")
    if not case["shape"].startswith("6M"):
        return [], problems
    phases = night2["phases"]
    whole = sum(phase["seconds"] for phase in phases.values())
    written = max(
        sum(p["written_mib"] for p in case[n]["phases"].values()) for n in ("night1", "night2")
    )
    peak = max(case[n]["peak_mib"] for n in ("night1", "night2"))
    delivery = phases.get("delivery", {"seconds": 0.0})["seconds"]
    goals = [
        Goal(label, "night 2 whole (s)", whole, GOAL_NIGHT_SECONDS),
        Goal(
            label,
            "diff+outbox / sort|comm",
            phases["diff_outbox"]["seconds"] / max(case["sort_comm_seconds"], 1e-9),
            GOAL_DIFF_RATIO,
        ),
        Goal(label, "written per night (MiB)", written, GOAL_WRITTEN_BYTES / MiB),
        Goal(label, "peak memory (MiB)", peak, GOAL_PEAK_BYTES / MiB - 1e-9),
        Goal(
            label,
            "file drop (msg/s)",
            night2["delivered"] / max(delivery, 1e-9),
            GOAL_DELIVERY_RATE,
            higher_is_better=True,
        ),
    ]
    if amqp is not None:
        goals.append(
            Goal(
                label,
                "AMQP with confirms (msg/s)",
                amqp["delivered"] / max(amqp["seconds"], 1e-9),
                GOAL_DELIVERY_RATE,
                higher_is_better=True,
            )
        )
    return goals, problems


def render(cases: list[dict[str, Any]], goals: list[Goal]) -> str:
    lines = [
        "wall/CPU seconds of the platform's process (peak MiB, MiB written) per phase",
        f"{'case':<16} night  {'fetch+store':<25} {'diff+outbox':<25} {'delivery (file drop)':<25}"
        "  msgs  sort|comm wall/CPU s",
    ]
    for case in cases:
        for night in ("night1", "night2"):
            data = case[night]
            cells = []
            for phase in ("fetch_store", "diff_outbox", "delivery"):
                p = data["phases"].get(phase)
                cells.append(
                    f"{p['seconds']:6.1f}/{p['cpu_seconds']:5.1f} "
                    f"({p['peak_mib']:4.0f}, {p['written_mib']:5.0f})"
                    if p
                    else " " * 25
                )
            sort = (
                f"{case['sort_comm_seconds']}/{case['sort_comm_cpu_seconds']}"
                if night == "night2"
                else ""
            )
            lines.append(
                f"{case['shape'] + ' ' + case['database']:<16} {night[-1]:>5}  {cells[0]:<25} "
                f"{cells[1]:<25} {cells[2]:<25} {data['messages']:>6}  {sort}"
            )
            if "register_cpu_seconds" in data:
                lines.append(f"{'':<16}  register CPU {data['register_cpu_seconds']} s")
        amqp = case["night2"].get("amqp")
        if amqp:
            lines.append(
                f"{'':<16}  AMQP with confirms: {amqp['delivered']} messages in "
                f"{amqp['seconds']} s, CPU {amqp['cpu_seconds']} s (peak {amqp['peak_mib']} MiB)"
            )
            per = 1000 / max(amqp["delivered"], 1)
            lines.append(
                f"{'':<16}  CPU ms a message: platform {amqp['cpu_seconds'] * per:.3f}, "
                f"simulator {amqp.get('simulator_cpu_seconds', 0) * per:.3f}, broker "
                f"{amqp.get('broker_cpu_seconds', 0) * per:.3f} (whole night 2, shared broker)"
            )
    lines.append("")
    lines.append("goals at 6 M (issue 18):")
    for goal in goals:
        relation = ">=" if goal.higher_is_better else "<="
        lines.append(
            f"  {'met   ' if goal.met else 'MISSED'} {goal.case:<17} {goal.name:<28} "
            f"{goal.value:9.2f}  (goal {relation} {goal.limit:g})"
        )
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--shapes", default="1M,6M,6Mx98", help="1M, 6M, 6Mx98 (comma list)")
    parser.add_argument("--databases", default="sqlite,postgresql")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument(
        "--profile",
        metavar="DIR",
        help="write a cProfile file per night and phase of the platform's process into DIR",
    )
    parser.add_argument("--night", help=argparse.SUPPRESS)
    parser.add_argument("--register", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.amqp_url = os.environ.get("SP_TEST_AMQP_URL")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.register:
        child_register(Path(args.register))
        return 0
    if args.night:
        print(json.dumps(child_night(json.loads(args.night))))
        return 0
    databases = [d for d in args.databases.split(",") if d]
    if "postgresql" in databases and not os.environ.get("SP_TEST_POSTGRES_URL"):
        print("SP_TEST_POSTGRES_URL is not set: PostgreSQL left out", file=sys.stderr)
        databases.remove("postgresql")
    scratch = Path(tempfile.mkdtemp(prefix="sp-bench-nightly-"))
    try:
        pki_dir = scratch / "pki"
        cases = []
        for shape in [s for s in args.shapes.split(",") if s]:
            for kind in databases:
                print(f"running {shape} on {kind} ...", file=sys.stderr, flush=True)
                cases.append(bench_case(kind, shape, args, scratch, pki_dir))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    goals: list[Goal] = []
    problems: list[str] = []
    for case in cases:
        found, wrong = judge(case)
        goals += found
        problems += wrong
    print(json.dumps({"cases": cases}, indent=2) if args.json else render(cases, goals))
    for problem in problems:
        print(f"WRONG: {problem}", file=sys.stderr)
    if problems:
        return 1
    return 0 if all(goal.met for goal in goals) else 2


if __name__ == "__main__":
    sys.exit(main())
