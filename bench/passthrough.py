"""Load benchmark of the whole SF2250 pass-through, beside a bare spyne echo service.

Run ``.venv/bin/python bench/passthrough.py`` (or ``make bench``). It starts the real sandbox
(``serviceplatform sandbox``: the platform under gunicorn plus the simulated NemSMS register
over mutual TLS) and, as the baseline, ``bench.echo_app`` under gunicorn with the platform's
worker settings. It pre-signs distinct KOMBIT-style ``OpdaterBorgerNemSMS`` requests (one
token, a fresh MessageID each, varying CPR numbers), then drives the servers alternately at
the same concurrency and prints requests/s and p50/p90/p99 latency per target and the ratio
platform/echo. A third target, ``bench.floor_app`` (the echo plus one mutual-TLS PUT to the
register, nothing else), shows what is left of the echo's throughput before the platform's own
work; ``--no-floor`` leaves it out. A fourth target, ``sf1601``, sends SF1600 ``afsendBrev``
for the sandbox authority on the SF1601 route (a token from the simulated STS, cached; one
KombiPostAfsend with a NEMSMS MeMo per request, each with its own AfsendelseIdentifikator);
NemSMS sends only 08:00-22:00 Danish time, so outside those hours it is left out, as with
``--no-sf1601``. ``docs/benchmark.md`` explains how to read the figures.

The goals (issue 18) are judged against the floor of the same run: platform/floor throughput
at least 0.70 and platform server CPU per request (register excluded) at most 1.6 times the
floor's, p99 under 25 ms at concurrency 8, and p99 under 10 ms in an open-loop run (fixed
arrival rate) at half the platform's measured capacity (``--no-open`` skips it). Right after
that run, the floor and the echo are driven at the same arrival rate: their p99 is the tail
this machine, gunicorn and the load generator give before any work of the platform's own,
printed for reading the open-loop goal (they are references, not goals).

Exit status: 0 when every goal is met, 2 when a goal is missed, 1 when the run failed (any
request answered other than 200 with the expected content, or a server did not start).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from types import FrameType
from typing import Any, NoReturn
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from lxml import etree

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # run as a script, the project root is not on the path

from bench import load  # noqa: E402
from bench.echo_app import echo_request  # noqa: E402
from integrations.sf2250.service import TNS  # noqa: E402
from integrations.sf2250.sf1600.service import TNS as PRINT_TNS  # noqa: E402
from integrations.sf2250.sf1600.sms_rules import within_sending_hours  # noqa: E402
from serviceplatform.client.request_signer import build_signed_envelope, mint_assertion  # noqa: E402
from serviceplatform.routing.identifiers import is_valid_cpr  # noqa: E402
from serviceplatform.sandbox.runner import free_port  # noqa: E402
from serviceplatform.server import socket_per_worker  # noqa: E402

#: The goals of issue 18, judged against the floor measured in the same run.
GOAL_FLOOR_RATIO = 0.70  # platform / floor requests per second at concurrency 8, at least
GOAL_CPU_FACTOR = 1.6  # platform / floor server CPU per request, register excluded, at most
GOAL_P99_MS = 25.0  # platform p99 at concurrency 8, under
GOAL_OPEN_P99_MS = 10.0  # platform p99 in the open-loop run at half its capacity, under
#: The open-loop run's arrival rate as a share of the platform's measured capacity.
OPEN_LOAD = 0.5
#: Connections the open-loop run may have in flight (enough that the client never holds back).
OPEN_CONNECTIONS = 32
#: The platform's gunicorn settings (serviceplatform/server.py, and ``serve``'s default
#: ``--threads``, which the sandbox uses); the baseline runs under the same.
THREADS = 4
KEEPALIVE = 30
SOAP12 = "application/soap+xml; charset=utf-8"
#: The citizen the sandbox's SF1601 host knows as registered for NemSMS.
CITIZEN = "0101901234"
STARTUP_TIMEOUT = 60.0
#: Other processes' CPU (share of one core) above which the report warns of a busy machine.
NOISE_WARNING = 0.15
OPDATER_ACTION = TNS + "OpdaterBorgerNemSMS"
OPDATER_BODY = (
    '<t:OpdaterBorgerNemSMSRequest xmlns:t="{tns}" xmlns:d="urn:oio:dkal:1.0.0">'
    "<t:CPRCVR><t:CPR-nr>{cpr}</t:CPR-nr></t:CPRCVR><d:SlutbrugerStamdata>"
    "<d:Navn>Anne Hansen</d:Navn><d:MobiltelefonNummer>12345678</d:MobiltelefonNummer>"
    "</d:SlutbrugerStamdata></t:OpdaterBorgerNemSMSRequest>"
)

AFSEND_ACTION = PRINT_TNS + "afsendBrev"
AFSEND_BODY = (
    '<t:PrintAfsendBrevRequest xmlns:t="{tns}" xmlns:fp="urn:oio:fjernprint:1.0.0" '
    'xmlns:d="urn:oio:dkal:1.0.0" xmlns:a="urn:oio:adir:dagpenge:2009.07.01" '
    'xmlns:s="urn:oio:sagdok:3.0.0"><t:BrevSPBody><t:Kanalvalg>D</t:Kanalvalg>'
    "<t:Prioritet>D</t:Prioritet><t:ForsendelseI>"
    "<fp:AfsendelseIdentifikator>{sending}</fp:AfsendelseIdentifikator>"
    "<fp:ForsendelseModtager><d:AfsendelseModtager>"
    "<a:CPRnummerIdentifikator>{cpr}</a:CPRnummerIdentifikator>"
    "</d:AfsendelseModtager></fp:ForsendelseModtager><d:FilformatNavn>TXT</d:FilformatNavn>"
    "<d:MeddelelseIndholdData>SHVzayBkaW4gdGlkIGkgbW9yZ2Vu</d:MeddelelseIndholdData>"
    "<fp:DokumentParametre><s:TitelTekst>NemSMS</s:TitelTekst></fp:DokumentParametre>"
    "</t:ForsendelseI></t:BrevSPBody></t:PrintAfsendBrevRequest>"
)


class BenchError(Exception):
    """The benchmark could not run: a server did not start or died."""


@dataclass
class Outcome:
    """The closed-loop rounds and the open-loop run of the platform (None if not reached)."""

    summary: load.Comparison
    open_run: load.RoundResult | None = None
    open_rate: float = 0.0
    #: The floor and the echo at the same arrival rate, right after: the tail this machine,
    #: gunicorn and the load generator give before any work of the platform's own (references
    #: for reading the open-loop goal, not goals).
    reference_open_runs: list[load.RoundResult] = field(default_factory=list)
    concurrency: int = 8

    @property
    def errors(self) -> int:
        runs = [self.open_run, *self.reference_open_runs]
        return self.summary.errors + sum(run.errors for run in runs if run is not None)


# --- the servers ------------------------------------------------------------------------------


@dataclass
class Child:
    """A server process this script started, in its own session so Ctrl-C reaches only us."""

    name: str
    process: subprocess.Popen[bytes]
    log: Path
    port: int = 0

    def check_alive(self) -> None:
        if self.process.poll() is not None:
            raise BenchError(
                f"{self.name} exited with code {self.process.returncode}; "
                f"end of {self.log}:\n{tail(self.log)}"
            )

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def tail(path: Path, lines: int = 20) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def start(
    name: str, argv: list[str], log: Path, port: int = 0, env: dict[str, str] | None = None
) -> Child:
    with log.open("wb") as out:
        process = subprocess.Popen(
            argv,
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={**os.environ, **env} if env else None,
        )
    return Child(name, process, log, port)


def gunicorn_argv(port: int, workers: int, threads: int, app: str) -> list[str]:
    """A baseline server under the platform's gunicorn settings (serviceplatform/server.py)."""
    bind = f"127.0.0.1:{port}"
    argv = [sys.executable, "-m", "gunicorn", "--bind", bind]
    argv += ["--workers", str(workers), "--threads", str(threads), "--worker-class", "gthread"]
    if socket_per_worker(bind, workers):
        argv.append("--reuse-port")
    argv += ["--keep-alive", str(KEEPALIVE), "--graceful-timeout", "10"]
    return [*argv, "--no-control-socket", "--log-level", "warning", app]


@contextmanager
def servers(scratch: Path, workers: int, threads: int = THREADS) -> Iterator[tuple[Child, Child]]:
    """The sandbox and the echo baseline; both stopped with SIGTERM whatever happens."""
    started: list[Child] = []
    try:
        sandbox_argv = [sys.executable, "-m", "serviceplatform.cli", "sandbox", "--workdir"]
        sandbox_argv += [str(scratch / "sandbox"), "--port", "0", "--workers", str(workers)]
        sandbox_argv += ["--threads", str(threads)]
        started.append(start("the sandbox", sandbox_argv, scratch / "sandbox.log"))
        port = free_port()
        echo_argv = gunicorn_argv(port, workers, threads, "bench.echo_app:app")
        started.append(start("the echo baseline", echo_argv, scratch / "echo.log", port))
        yield started[0], started[1]
    finally:
        for child in reversed(started):
            child.stop()


@contextmanager
def floor_server(
    scratch: Path, manifest: dict[str, Any], workers: int, threads: int
) -> Iterator[Child]:
    """``bench.floor_app`` pointed at the sandbox's register; stopped whatever happens."""
    authority, pki = manifest["authorities"][0], manifest["pki"]
    env = {
        "BENCH_FLOOR_URL": manifest["peers"]["nemsms"]["base_url"],
        "BENCH_FLOOR_SYSID": authority["sysids"]["register"],
        "BENCH_FLOOR_CERT": pki["client_cert"],
        "BENCH_FLOOR_KEY": pki["client_key"],
        "BENCH_FLOOR_CA": pki["ca_cert"],
    }
    port = free_port()
    argv = gunicorn_argv(port, workers, threads, "bench.floor_app:app")
    child = start("the floor", argv, scratch / "floor.log", port, env)
    try:
        yield child
    finally:
        child.stop()


def wait_until(child: Child, ready: Callable[[], bool]) -> None:
    """Poll ``ready`` until it is true; fail when ``child`` dies or takes too long."""
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while not ready():
        child.check_alive()
        if time.monotonic() > deadline:
            raise BenchError(
                f"{child.name} not ready in {STARTUP_TIMEOUT:.0f} s:\n{tail(child.log)}"
            )
        time.sleep(0.2)


def answers(target: load.Target, body: bytes) -> Callable[[], bool]:
    return lambda: load.run_round(target, [body], concurrency=1, timeout=5).errors == 0


# --- the requests -----------------------------------------------------------------------------


class Signer:
    """A case system: one token from the sandbox STS, reused for every request it signs."""

    def __init__(
        self,
        manifest: dict[str, Any],
        service_key: str = "sf2250",
        cvr: str | None = None,
        action: str = OPDATER_ACTION,
        body: Callable[[int], str] | None = None,
    ) -> None:
        pki, service = manifest["pki"], manifest["services"][service_key]
        assertion = mint_assertion(
            sts_key=_private_key(pki["sts_key"]),
            sts_cert=x509.load_pem_x509_certificate(Path(pki["sts_cert"]).read_bytes()),
            issuer=pki["sts_issuer"],
            audience=service["entity_id"],
            authority_cvr=cvr or manifest["authorities"][0]["cvr"],
            holder_cert=x509.load_pem_x509_certificate(Path(pki["client_cert"]).read_bytes()),
        )
        self.sign = partial(
            build_signed_envelope,
            assertion=assertion,
            holder_key=_private_key(pki["client_key"]),
            to=service["url"],
            action=action,
        )
        self.body = body or (lambda n: OPDATER_BODY.format(tns=TNS, cpr=cpr_number(n)))
        self.signed = 0

    def bodies(self, count: int) -> list[bytes]:
        """``count`` signed requests, each with its own MessageID and timestamp (now)."""
        out: list[bytes] = []
        began = time.perf_counter()
        for _ in range(count):
            number = self.signed
            self.signed += 1
            out.append(self.sign(etree.fromstring(self.body(number))))
            if sys.stderr.isatty() and len(out) % 250 == 0:
                print(f"\r  signing {len(out)}/{count}", end="", file=sys.stderr, flush=True)
        spent = time.perf_counter() - began
        progress(f"\r  signed {count} requests, {1000 * spent / count:.2f} ms each")
        return out


def _private_key(path: str) -> RSAPrivateKey:
    key = load_pem_private_key(Path(path).read_bytes(), password=None)
    if not isinstance(key, RSAPrivateKey):
        raise BenchError(f"{path} holds no RSA private key")
    return key


def cpr_number(index: int) -> str:
    """The ``index``-th of 33,600 distinct valid CPR numbers (births 1900-1999, 7th digit 0-3)."""
    index %= 28 * 12 * 100
    day, month, year = index % 28 + 1, index // 28 % 12 + 1, index // 336
    serial = (index * 7919) % 4000  # first digit 0-3: the 1900s
    cpr = f"{day:02d}{month:02d}{year:02d}{serial:04d}"
    assert is_valid_cpr(cpr), cpr
    return cpr


def progress(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


# --- the run ----------------------------------------------------------------------------------


def own_cpu_ms(figures: load.Figures) -> float:
    """Server CPU ms per request without the simulated register's share."""
    cpu = figures.server_cpu_ms
    return cpu["server"] - cpu.get("register", 0.0)


@dataclass(frozen=True)
class Goal:
    name: str
    text: str  # the measured figures behind the verdict
    met: bool  # a goal not measured in this run counts as missed


def goals(outcome: Outcome) -> list[Goal]:
    """Every goal of issue 18 with its figures, judged against the floor of the same run."""
    summary, c = outcome.summary, outcome.concurrency
    platform = summary.figures("platform")
    found: list[Goal] = []
    throughput = f"platform/floor throughput >= {GOAL_FLOOR_RATIO:.2f} at c={c}"
    cpu_name = f"platform/floor server CPU per request, register excluded, <= {GOAL_CPU_FACTOR:g}"
    if "floor" in summary.targets:
        floor = summary.figures("floor")
        ratio = platform.rate / floor.rate if floor.rate else 0.0
        text = f"{platform.rate:,.0f} / {floor.rate:,.0f} req/s = {ratio:.3f}"
        found.append(Goal(throughput, text, ratio >= GOAL_FLOOR_RATIO))
        mine, theirs = own_cpu_ms(platform), own_cpu_ms(floor)
        factor = mine / theirs if theirs > 0 else float("inf")
        text = f"{mine:.2f} / {theirs:.2f} ms = {factor:.2f}"
        found.append(Goal(cpu_name, text, factor <= GOAL_CPU_FACTOR))
    else:
        found.append(Goal(throughput, "not measured (--no-floor)", False))
        found.append(Goal(cpu_name, "not measured (--no-floor)", False))
    p99 = platform.p99_ms
    found.append(
        Goal(f"platform p99 < {GOAL_P99_MS:g} ms at c={c}", f"{p99:.2f} ms", p99 < GOAL_P99_MS)
    )
    open_name = f"platform p99 < {GOAL_OPEN_P99_MS:g} ms, open loop at {OPEN_LOAD:g} x capacity"
    if outcome.open_run is not None:
        p99 = load.Figures.pool([outcome.open_run]).p99_ms
        text = f"{p99:.2f} ms at {outcome.open_rate:,.0f} req/s"
        found.append(Goal(open_name, text, p99 < GOAL_OPEN_P99_MS))
    else:
        found.append(Goal(open_name, "not measured (--no-open)", False))
    return found


def run(args: argparse.Namespace, scratch: Path) -> Outcome:
    with ExitStack() as stack:
        sandbox, echo = stack.enter_context(servers(scratch, args.workers, args.threads))
        path = scratch / "sandbox" / "sandbox.json"
        wait_until(sandbox, path.exists)
        manifest = json.loads(path.read_text(encoding="utf-8"))
        url = urlsplit(manifest["services"]["sf2250"]["url"])
        assert url.hostname is not None and url.port is not None
        platform = load.Target(
            "platform", url.hostname, url.port, url.path, SOAP12, b"StatusKode>20<"
        )
        baseline = load.Target("echo", "127.0.0.1", echo.port, "/", SOAP12, b"echoResponse")
        wait_until(echo, answers(baseline, echo_request("ping")))
        signer = Signer(manifest)
        cpu = load.tree_cpu_seconds
        # The sandbox process itself runs the simulated register (HTTPS threads); its
        # descendants are the platform's gunicorn master and workers.
        register = partial(cpu, sandbox.process.pid, root_only=True)
        probes: dict[str, dict[str, Callable[[], float]]] = {
            "echo": {"server": partial(cpu, echo.process.pid)},
            "platform": {"server": partial(cpu, sandbox.process.pid), "register": register},
        }
        targets = [baseline]
        children = [sandbox, echo]
        floor_target: load.Target | None = None
        if args.floor:
            floor = stack.enter_context(floor_server(scratch, manifest, args.workers, args.threads))
            children.append(floor)
            floor_target = load.Target(
                "floor", "127.0.0.1", floor.port, "/", SOAP12, b"echoResponse"
            )
            wait_until(floor, answers(floor_target, echo_request(cpr_number(0))))
            targets.append(floor_target)
            # Like the platform's, the floor's server CPU includes the register it calls.
            probes["floor"] = {
                "server": lambda: cpu(floor.process.pid) + register(),
                "register": register,
            }
        targets.append(platform)
        sf1601: load.Target | None = None
        sf1601_signer: Signer | None = None
        if args.sf1601 and not within_sending_hours(datetime.now(UTC)):
            progress("sf1601 left out: NemSMS sends only 08:00-22:00 Danish time")
        elif args.sf1601:
            sf1601, sf1601_signer = sf1601_target(manifest, scratch.name)
            # The simulated STS and SF1601 host run in the sandbox process itself.
            probes["sf1601"] = {"server": partial(cpu, sandbox.process.pid), "peers": register}
            targets.append(sf1601)
        progress(
            f"platform {manifest['platform']['base_url']}, echo http://127.0.0.1:{echo.port}: "
            f"{args.workers} workers x {args.threads} threads each; concurrency {args.concurrency}"
        )

        def drive(target: load.Target, count: int, label: str) -> load.RoundResult:
            if target is baseline:
                bodies = [echo_request(f"hello {i}") for i in range(count)]
            elif target is platform:
                bodies = signer.bodies(count)  # just before the round: timestamps live 5 min
            elif target is sf1601 and sf1601_signer is not None:
                bodies = sf1601_signer.bodies(count)
            else:
                bodies = [echo_request(cpr_number(i)) for i in range(count)]
            result = load.run_round(
                target, bodies, concurrency=args.concurrency, server_cpu=probes[target.name]
            )
            progress(f"{label} {target.name:<8} {result.rate:7,.0f} req/s  {result.errors} errors")
            for sample in dict.fromkeys(result.error_samples):  # the same fault, once
                progress(f"  e.g. {sample}")
            for child in children:
                child.check_alive()
            return result

        for target in targets:
            if drive(target, args.warmup, "warm-up").errors:
                raise BenchError(f"{target.name} failed during the warm-up (see above)")
        rounds = [
            drive(target, args.requests, f"round {number}")
            for number in range(1, args.rounds + 1)
            for target in targets
        ]
        outcome = Outcome(load.Comparison("echo", "platform", rounds))
        outcome.concurrency = args.concurrency
        if args.open:
            # Half the capacity just measured, at a fixed arrival rate: the latency a caller
            # sees when the platform is not saturated.
            outcome.open_rate = OPEN_LOAD * outcome.summary.figures("platform").rate
            bodies = signer.bodies(args.open_requests)
            outcome.open_run = load.run_open(
                platform,
                bodies,
                rate=outcome.open_rate,
                connections=OPEN_CONNECTIONS,
                server_cpu=probes["platform"],
            )
            result = outcome.open_run
            progress(
                f"open loop platform {result.rate:7,.0f} req/s (due {outcome.open_rate:,.0f})"
                f"  {result.errors} errors"
            )
            for sample in dict.fromkeys(result.error_samples):
                progress(f"  e.g. {sample}")
            for reference in (floor_target, baseline):
                if reference is None:
                    continue
                result = load.run_open(
                    reference,
                    [echo_request(cpr_number(i)) for i in range(args.open_requests)],
                    rate=outcome.open_rate,
                    connections=OPEN_CONNECTIONS,
                    server_cpu=probes[reference.name],
                )
                outcome.reference_open_runs.append(result)
                progress(
                    f"open loop {reference.name:<8} {result.rate:7,.0f} req/s"
                    f" (due {outcome.open_rate:,.0f})  {result.errors} errors"
                )
            for child in children:
                child.check_alive()
    return outcome


def sf1601_target(manifest: dict[str, Any], run_id: str) -> tuple[load.Target, Signer]:
    """The afsendBrev target of the sandbox authority whose print route is SF1601."""
    chosen = [a for a in manifest["authorities"] if a.get("print_route") == "sf1601"]
    if not chosen:
        raise BenchError("the sandbox has no authority on the SF1601 print route")
    url = urlsplit(manifest["services"]["sf1600"]["url"])
    assert url.hostname is not None and url.port is not None
    target = load.Target("sf1601", url.hostname, url.port, url.path, SOAP12, b"resultat>true<")
    prefix = "".join(ch for ch in run_id if ch.isalnum())[-12:]

    def body(number: int) -> str:
        # A fresh AfsendelseIdentifikator each: a repeated one would send nothing.
        return AFSEND_BODY.format(tns=PRINT_TNS, sending=f"b-{prefix}-{number}", cpr=CITIZEN)

    return target, Signer(manifest, "sf1600", chosen[0]["cvr"], AFSEND_ACTION, body)


# --- the report -------------------------------------------------------------------------------


def render_table(outcome: Outcome, args: argparse.Namespace) -> str:
    summary = outcome.summary
    header = (
        f"{'target':<9}{'round':>6}{'requests':>10}{'errors':>8}{'req/s':>9}"
        f"{'p50 ms':>8}{'p90 ms':>8}{'p99 ms':>8}{'client':>8}{'others':>8}"
        f"{'server CPU ms/req':>22}"
    )
    lines = [header, "-" * len(header)]
    targets = summary.targets
    numbered = [(index // len(targets) + 1, r) for index, r in enumerate(summary.rounds)]
    rows = [(str(n), load.Figures.pool([r])) for n, r in numbered]
    rows += [("all", summary.figures(name)) for name in targets]
    for run in [outcome.open_run, *outcome.reference_open_runs]:
        if run is not None:
            rows.append(("open", load.Figures.pool([run])))
    for label, f in rows:
        cpu = f"{f.server_cpu_ms['server']:.2f}"
        if "register" in f.server_cpu_ms:
            cpu = f"(reg {f.server_cpu_ms['register']:.2f}) {cpu}"
        lines.append(
            f"{f.target:<9}{label:>6}{f.requests:>10}{f.errors:>8}{f.rate:>9,.0f}"
            f"{f.p50_ms:>8.2f}{f.p90_ms:>8.2f}{f.p99_ms:>8.2f}{f.client_cpu_share:>8.0%}"
            f"{f.other_cpu_share:>8.0%}"
            f"{cpu:>22}"
        )
    platform = summary.figures("platform")
    register = platform.server_cpu_ms.get("register", 0.0)
    lines += [
        "",
        f"Server CPU: the server's process tree; the platform's includes {register:.2f} ms/req"
        " (reg) in the sandbox process, i.e. the simulated register"
        + (", and so does the floor's." if "floor" in targets else "."),
        "client: the load generator's CPU time / wall time (100% = one core); others: the"
        " CPU time of every other process on the machine (noise: keep it near 0%).",
        "ratio per round: "
        + ", ".join(f"{ratio:.3f}" for ratio in summary.round_ratios)
        + f" (median {statistics.median(summary.round_ratios):.3f})",
        f"ratio platform/echo (total requests / total measured time over {args.rounds}"
        f" rounds): {summary.ratio:.3f}",
    ]
    if outcome.open_run is not None:
        lines.append(
            f"open: the platform at a fixed arrival rate of {outcome.open_rate:,.0f} req/s"
            f" ({OPEN_LOAD:g} x its closed-loop rate), up to {OPEN_CONNECTIONS} connections;"
            " latency counted from each request's due time."
            + (
                " The other open rows are the same rate, right after, against the floor and the"
                " echo: references for the tail before any of the platform's own work, not goals."
                if outcome.reference_open_runs
                else ""
            )
        )
    if "floor" in targets:
        lines.append(
            f"ratio floor/echo: {summary.ratio_of('floor'):.3f} (spyne and one requests PUT"
            " over mutual TLS, nothing else: what a pass-through keeps before its own work)"
        )
    if summary.noise > NOISE_WARNING:
        lines.append(
            f"WARNING: other processes used up to {summary.noise:.0%} of a core during a round;"
            " the machine was not quiet, so these figures understate both servers."
        )
    lines += [
        f"goal {goal.name}: {goal.text} {'met' if goal.met else 'MISSED'}"
        for goal in goals(outcome)
    ]
    if outcome.errors:
        lines.append(f"FAILED: {outcome.errors} requests were not answered 200 as expected")
    return "\n".join(lines)


def to_json(outcome: Outcome, args: argparse.Namespace) -> str:
    summary = outcome.summary

    def figures(f: load.Figures) -> dict[str, Any]:
        data = {k: _rounded(v) for k, v in f.__dict__.items() if k != "target"}
        return {"target": f.target, "req_per_s": round(f.rate, 1), **data}

    return json.dumps(
        {
            "settings": vars(args),
            "rounds": [figures(load.Figures.pool([r])) for r in summary.rounds],
            "totals": {name: figures(summary.figures(name)) for name in summary.targets},
            "ratio": round(summary.ratio, 4),
            "floor_ratio": (
                round(summary.ratio_of("floor"), 4) if "floor" in summary.targets else None
            ),
            "ratio_basis": "total requests / total measured time over all rounds, per target",
            "round_ratios": [round(ratio, 4) for ratio in summary.round_ratios],
            "open_loop": (
                {"rate_due": round(outcome.open_rate, 1), **figures(open_figures)}
                if (open_figures := _open_figures(outcome)) is not None
                else None
            ),
            "reference_open_loops": [
                {"rate_due": round(outcome.open_rate, 1), **figures(load.Figures.pool([run]))}
                for run in outcome.reference_open_runs
            ],
            "max_other_cpu_share": round(summary.noise, 3),
            "goals": [goal.__dict__ for goal in goals(outcome)],
            "errors": outcome.errors,
            "ok": outcome.errors == 0 and all(goal.met for goal in goals(outcome)),
        },
        indent=2,
    )


def _open_figures(outcome: Outcome) -> load.Figures | None:
    return load.Figures.pool([outcome.open_run]) if outcome.open_run is not None else None


def _rounded(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _rounded(item) for key, item in value.items()}
    return round(value, 3) if isinstance(value, float) else value


# --- the command ------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=3000, help="per target per round")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers, every server")
    parser.add_argument(
        "--threads", type=int, default=THREADS, help="threads per gunicorn worker, every server"
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--no-floor",
        dest="floor",
        action="store_false",
        help="skip the floor target (bench/floor_app.py: spyne plus one PUT, nothing else)",
    )
    parser.add_argument(
        "--no-sf1601",
        dest="sf1601",
        action="store_false",
        help="skip the sf1601 target (afsendBrev through the SF1601 route, token-secured)",
    )
    parser.add_argument(
        "--no-open",
        dest="open",
        action="store_false",
        help="skip the open-loop run of the platform at half its measured capacity",
    )
    parser.add_argument(
        "--open-requests", type=int, default=3000, help="requests in the open-loop run"
    )
    parser.add_argument("--warmup", type=int, default=300, help="untimed requests per target")
    parser.add_argument("--keep", action="store_true", help="keep the sandbox directory and logs")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    for name in (
        "requests",
        "concurrency",
        "workers",
        "threads",
        "rounds",
        "warmup",
        "open_requests",
    ):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    return args


def _terminate(signum: int, frame: FrameType | None) -> NoReturn:
    raise SystemExit(128 + signum)  # unwinds through the finally blocks that stop the servers


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate)
    scratch = Path(tempfile.mkdtemp(prefix="sp-bench-"))
    try:
        outcome = run(args, scratch)
    except BenchError as error:
        print(f"benchmark failed: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    finally:
        if args.keep:
            progress(f"kept {scratch} (sandbox/, sandbox.log, echo.log)")
        else:
            shutil.rmtree(scratch, ignore_errors=True)
    print(to_json(outcome, args) if args.json else render_table(outcome, args))
    if outcome.errors:
        return 1
    return 0 if all(goal.met for goal in goals(outcome)) else 2


if __name__ == "__main__":
    sys.exit(main())
