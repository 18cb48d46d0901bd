"""Soak test of the SF2250 pass-through: steady load for a long time, with register faults.

Run ``.venv/bin/python bench/soak.py`` (or ``make soak MINUTES=30``). It starts the real
sandbox as ``bench/passthrough.py`` does (the platform under gunicorn, the simulated NemSMS
register over mutual TLS in the sandbox process), then:

1. **Warm-up and capacity.** A closed loop (``--concurrency`` clients, each sending as soon as
   its previous answer is in) for ``--warmup-seconds``; the requests/s of its second half is
   the capacity. Requests are signed while the test runs (each needs a fresh MessageID and
   timestamp), so the capacity is the one the soak's own client leaves the platform on this
   machine. ``--rate`` sets the soak's rate instead.
2. **Soak.** An open loop at ``--load-share`` (default 80%) of the capacity for ``--minutes``:
   request *i* is due at ``start + i / rate`` whatever the earlier answers took, and its
   latency is counted from when it was due (a stalled platform shows as latency, not as a
   quietly lower rate; a request still due at the end is not sent). Every
   ``--fault-seconds`` the register's ``faults`` hook injects a 503 or a connection reset for
   the next 1-16 register requests (``FAULT_PLAN``, in turn).
3. **Each minute** it prints: requests, failures explained by the injected faults and
   unexplained ones, p50/p99 latency, and the RSS and open files of every process: the
   register (the sandbox process, which also runs the other simulated peers), the platform
   (the gunicorn master and workers, summed) and the load generator (this process). The
   register's ``requests`` record is cleared at every sample: it keeps up to 100,000
   requests, which would otherwise show as the register's growth.

Pass (exit 0) or fail (exit 2) by the rules of ``bench/soak_rules.py``: every failed request
must be explained by an injected fault, and no process group's RSS or open files may grow
after the settle time (last third's median against the first third's, with a tolerance).
Exit 1: the run itself failed (a server did not start or died). ``docs/benchmark.md`` has
the details.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import queue
import re
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import urlsplit

import requests
from lxml import etree

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # run as a script, the project root is not on the path

from bench import load  # noqa: E402
from bench.passthrough import (  # noqa: E402
    SOAP12,
    BenchError,
    Child,
    Signer,
    progress,
    start,
    wait_until,
)
from bench.soak_rules import (  # noqa: E402
    Failure,
    Growth,
    Injection,
    Tolerance,
    explain,
    growth,
    settle_seconds,
)

EXPECT = b"StatusKode>20<"
#: Injected faults in turn: (kind, count). The platform retries a register request twice
#: (max_retries = 2), so small counts are absorbed; a call fails only when all three of its
#: attempts draw a fault, and concurrent calls share the faults, so it takes the larger ones.
FAULT_PLAN = [("503", 1), ("reset", 3), ("503", 8), ("reset", 8), ("503", 16), ("reset", 16)]
#: How long after an injection a failure may be charged to it (it is used up in milliseconds).
EXPLAIN_WINDOW = 5.0
RSS_TOLERANCE = Tolerance(absolute=16 * 1024 * 1024, share=0.05)
FD_TOLERANCE = Tolerance(absolute=8, share=0.0)
_CODE = re.compile(rb"ErrorCode>\s*(SP-\d+)\s*<")
MIB = 1024 * 1024


# --- processes --------------------------------------------------------------------------------


def rss_and_files(pid: int) -> tuple[int, int]:
    """(RSS bytes, open file descriptors) of ``pid``; (0, 0) when it is gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
        files = len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return 0, 0
    match = re.search(r"^VmRSS:\s+(\d+) kB", status, re.MULTILINE)
    return (int(match.group(1)) * 1024 if match else 0), files


@dataclass
class Sample:
    at: float
    #: group -> (RSS bytes, open files, processes)
    groups: dict[str, tuple[int, int, int]]


def sample(sandbox_pid: int, at: float) -> Sample:
    groups: dict[str, tuple[int, int, int]] = {}
    for name, pids in (
        ("register", [sandbox_pid]),
        ("platform", load.descendants(sandbox_pid)),
        ("loadgen", [os.getpid()]),
    ):
        figures = [rss_and_files(pid) for pid in pids]
        alive = [f for f in figures if f != (0, 0)]
        groups[name] = (sum(f[0] for f in alive), sum(f[1] for f in alive), len(alive))
    return Sample(at, groups)


# --- the load ---------------------------------------------------------------------------------


class Frames:
    """Signed request frames, made by a thread of their own just ahead of the senders."""

    def __init__(self, signer: Signer, target: load.Target, ahead: int) -> None:
        self._signer = signer
        self._target = target
        self.queue: queue.Queue[bytes] = queue.Queue(maxsize=max(ahead, 16))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._fill, name="soak-signer", daemon=True)
        self._thread.start()

    def _fill(self) -> None:
        while not self._stop.is_set():
            # One at a time: Signer.bodies prints a line per call when given many.
            number = self._signer.signed
            self._signer.signed += 1
            body = self._signer.sign(etree.fromstring(self._signer.body(number)))
            frame = self._target.frame(body)
            while not self._stop.is_set():
                try:
                    self.queue.put(frame, timeout=0.5)
                    break
                except queue.Full:
                    continue

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)


#: A request sent this long after it was due counts as late (the load fell behind).
LATE_SECONDS = 1.0


@dataclass
class Minute:
    requests: int = 0
    late: int = 0
    #: From the due time (what a client on schedule waits).
    latencies: list[float] = field(default_factory=list)
    #: From the send (the platform's own answer time, without the generator's backlog).
    service: list[float] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)


class Record:
    """What the senders saw, by the minute the request ended in (seconds on the run clock)."""

    def __init__(self, began: float) -> None:
        self.began = began
        self._lock = threading.Lock()
        self._minutes: dict[int, Minute] = {}

    def add(self, due: float, sent: float, done: float, failure: Failure | None) -> None:
        with self._lock:
            minute = self._minutes.setdefault(int((done - self.began) // 60), Minute())
            minute.requests += 1
            minute.late += sent - due > LATE_SECONDS
            minute.latencies.append(done - due)
            minute.service.append(done - sent)
            if failure is not None:
                minute.failures.append(failure)

    def take(self, index: int) -> Minute:
        with self._lock:
            return self._minutes.pop(index, Minute())

    def take_all(self) -> Minute:
        with self._lock:
            whole = Minute()
            for index in sorted(self._minutes):
                part = self._minutes.pop(index)
                whole.requests += part.requests
                whole.late += part.late
                whole.latencies += part.latencies
                whole.service += part.service
                whole.failures += part.failures
            return whole


def _failure(clock: Callable[[], float], sent: float, status: int, body: bytes) -> Failure | None:
    if status == 200 and EXPECT in body:
        return None
    found = _CODE.search(body)
    code = found.group(1).decode() if found else None
    return Failure(sent, clock(), code, f"HTTP {status}: {body[:200]!r}")


def senders(
    target: load.Target,
    frames: Frames,
    record: Callable[[float, float, float, Failure | None], None],
    *,
    connections: int,
    until: float,
    rate: float | None,
    clock: Callable[[], float],
) -> None:
    """Send until ``until``: paced at ``rate`` (open loop) or, with None, back to back."""
    counter = itertools.count()
    began = clock()

    def run() -> None:
        connection = load._Connection(target, timeout=30.0)
        try:
            while True:
                if rate is None:
                    due = clock()
                else:
                    due = began + next(counter) / rate
                    wait = due - clock()
                    if wait > 0:
                        time.sleep(wait)
                if due >= until or clock() >= until:
                    # Requests still due at the end are not sent: the run ends on time.
                    return
                frame = frames.queue.get()
                sent = clock()
                try:
                    status, body = connection.exchange(frame)
                except (OSError, load.ProtocolError, ValueError) as exc:
                    connection.close()
                    failure: Failure | None = Failure(
                        sent, clock(), None, f"{type(exc).__name__}: {exc}"
                    )
                else:
                    failure = _failure(clock, sent, status, body)
                record(due, sent, clock(), failure)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, daemon=True) for _ in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


# --- the run ----------------------------------------------------------------------------------


@dataclass
class Outcome:
    capacity: float
    rate: float
    rows: list[str]
    injections: list[Injection]
    explained: list[Failure]
    unexplained: list[Failure]
    growth: dict[str, Growth]
    requests: int
    late: int


class Hooks:
    def __init__(self, control_url: str) -> None:
        self.url = control_url
        self.session = requests.Session()
        self.session.trust_env = False

    def fault(self, kind: str, count: int) -> None:
        status: int | str = int(kind) if kind.isdigit() else kind
        answer = self.session.post(
            f"{self.url}/faults", json={"status": status, "count": count}, timeout=5
        )
        answer.raise_for_status()

    def forget_requests(self) -> None:
        self.session.delete(f"{self.url}/requests", timeout=5).raise_for_status()


def header() -> str:
    return (
        f"{'min':>4}{'requests':>9}{'late':>6}{'inj':>5}{'expl':>6}{'unexpl':>7}"
        f"{'p50 ms':>10}{'p99 ms':>10}{'svc p99':>9}"
        f"{'register MiB/fd':>17}{'platform MiB/fd (n)':>22}{'loadgen MiB/fd':>16}"
    )


def row(index: int, minute: Minute, injected: int, explained: int, last: Sample) -> str:
    ordered = sorted(minute.latencies)
    p50, p99 = load.percentile(ordered, 0.5) * 1000, load.percentile(ordered, 0.99) * 1000
    service = load.percentile(sorted(minute.service), 0.99) * 1000
    reg, plat, gen = (last.groups[name] for name in ("register", "platform", "loadgen"))
    unexplained = len(minute.failures) - explained
    return (
        f"{index + 1:>4}{minute.requests:>9}{minute.late:>6}{injected:>5}"
        f"{explained:>6}{unexplained:>7}"
        f"{p50:>10.1f}{p99:>10.1f}{service:>9.1f}"
        f"{f'{reg[0] / MIB:.0f}/{reg[1]}':>17}"
        f"{f'{plat[0] / MIB:.0f}/{plat[1]} ({plat[2]})':>22}"
        f"{f'{gen[0] / MIB:.0f}/{gen[1]}':>16}"
    )


def run(args: argparse.Namespace, scratch: Path) -> Outcome:
    clock = time.monotonic
    with ExitStack() as stack:
        argv = [sys.executable, "-m", "serviceplatform.cli", "sandbox", "--workdir"]
        argv += [str(scratch / "sandbox"), "--port", "0", "--workers", str(args.workers)]
        argv += ["--threads", str(args.threads)]
        sandbox: Child = start("the sandbox", argv, scratch / "sandbox.log")
        stack.callback(sandbox.stop)
        manifest_path = scratch / "sandbox" / "sandbox.json"
        wait_until(sandbox, manifest_path.exists)
        manifest: dict[str, Any] = json.loads(manifest_path.read_text(encoding="utf-8"))
        url = urlsplit(manifest["services"]["sf2250"]["url"])
        assert url.hostname is not None and url.port is not None
        target = load.Target("platform", url.hostname, url.port, url.path, SOAP12, EXPECT)
        signer = Signer(manifest)
        probe = signer.bodies(1)[0]
        wait_until(
            sandbox,
            lambda: load.run_round(target, [probe], concurrency=1, timeout=5).errors == 0,
        )
        hooks = Hooks(manifest["peers"]["nemsms"]["control_url"])
        hooks.forget_requests()
        # A small buffer: a large one, filled before the warm-up, would inflate the capacity.
        frames = Frames(signer, target, ahead=4 * args.concurrency)
        stack.callback(frames.stop)

        # 1. Warm-up, closed loop; its second half is the capacity.
        began = clock()
        warm = Record(began)
        half = began + args.warmup_seconds / 2
        end = began + args.warmup_seconds
        progress(f"warm-up: {args.warmup_seconds:g} s closed loop, concurrency {args.concurrency}")
        counted = Record(half)

        def split(due: float, sent: float, done: float, failure: Failure | None) -> None:
            (counted if done >= half else warm).add(due, sent, done, failure)

        senders(
            target,
            frames,
            split,
            connections=args.concurrency,
            until=end,
            rate=None,
            clock=clock,
        )
        sandbox.check_alive()
        warm_all, counted_all = warm.take_all(), counted.take_all()
        capacity = counted_all.requests / max(clock() - half, 1e-9)
        warm_failures = warm_all.failures + counted_all.failures
        rate = args.rate or capacity * args.load_share
        progress(
            f"capacity {capacity:.0f} req/s (closed loop, signing included); "
            f"soak at {rate:.0f} req/s for {args.minutes:g} min, {args.connections} connections"
        )
        hooks.forget_requests()

        # 2. The soak: open loop, faults, a sample every few seconds, a row each minute.
        soak_began = clock()
        soak_end = soak_began + args.minutes * 60
        record = Record(soak_began)
        injections: list[Injection] = []
        faults = Hooks(hooks.url)  # a session per thread
        samples: list[Sample] = []
        stop = threading.Event()

        def inject() -> None:
            for number in itertools.count():
                if stop.wait(args.fault_seconds) or clock() + EXPLAIN_WINDOW >= soak_end:
                    return
                kind, count = FAULT_PLAN[number % len(FAULT_PLAN)]
                at = clock()
                faults.fault(kind, count)
                injections.append(Injection(at - soak_began, kind, count))

        def watch() -> None:
            while not stop.is_set():
                samples.append(sample(sandbox.process.pid, clock() - soak_began))
                # The register's record of requests would otherwise grow to 100,000 entries.
                hooks.forget_requests()
                stop.wait(args.sample_seconds)

        workers = [
            threading.Thread(target=inject, name="soak-faults", daemon=True),
            threading.Thread(target=watch, name="soak-sampler", daemon=True),
        ]
        load_thread = threading.Thread(
            target=senders,
            args=(target, frames, record.add),
            kwargs={
                "connections": args.connections,
                "until": soak_end,
                "rate": rate,
                "clock": clock,
            },
            name="soak-load",
            daemon=True,
        )
        for thread in [*workers, load_thread]:
            thread.start()
        rows = [header()]
        progress(rows[0])
        all_failures: list[Failure] = []
        total = late = 0
        minutes = int(-(-args.minutes * 60 // 60))
        for index in range(minutes):
            # A minute's requests are all recorded once it is over (bucketed by end time).
            wake = min(soak_began + (index + 1) * 60, soak_end) + 0.5
            while clock() < wake:
                time.sleep(min(1.0, max(0.0, wake - clock())))
                sandbox.check_alive()
            if index == minutes - 1:
                load_thread.join()
                minute = record.take_all()
            else:
                minute = record.take(index)
            relative = [_relative(f, soak_began) for f in minute.failures]
            explained, _ = explain(relative, injections, EXPLAIN_WINDOW)
            in_minute = [i for i in injections if index * 60 <= i.at < (index + 1) * 60]
            last = samples[-1] if samples else sample(sandbox.process.pid, clock() - soak_began)
            line = row(index, minute, len(in_minute), len(explained), last)
            rows.append(line)
            progress(line)
            all_failures += relative
            total += minute.requests
            late += minute.late
        stop.set()
        for thread in workers:
            thread.join(10)
        sandbox.check_alive()

    explained, unexplained = explain(all_failures, injections, EXPLAIN_WINDOW)
    unexplained += [_relative(f, began) for f in warm_failures]
    settle = settle_seconds(args.minutes * 60)
    verdicts: dict[str, Growth] = {}
    for name in ("register", "platform", "loadgen"):
        rss = [(s.at, float(s.groups[name][0])) for s in samples]
        files = [(s.at, float(s.groups[name][1])) for s in samples]
        verdicts[f"{name} RSS"] = growth(rss, settle_until=settle, tolerance=RSS_TOLERANCE)
        verdicts[f"{name} open files"] = growth(files, settle_until=settle, tolerance=FD_TOLERANCE)
    return Outcome(capacity, rate, rows, injections, explained, unexplained, verdicts, total, late)


def _relative(failure: Failure, origin: float) -> Failure:
    return Failure(failure.sent - origin, failure.done - origin, failure.code, failure.what)


def report(outcome: Outcome, args: argparse.Namespace) -> tuple[str, bool]:
    lines = list(outcome.rows)
    lines.append("")
    lines.append(
        f"capacity {outcome.capacity:.0f} req/s, soak rate {outcome.rate:.0f} req/s "
        f"({args.minutes:g} min): {outcome.requests} requests answered of"
        f" {math.ceil(outcome.rate * args.minutes * 60)} due, {outcome.late} sent over"
        f" {LATE_SECONDS:g} s late; latency counted from the due time"
    )
    by_kind = {
        kind: sum(i.count for i in outcome.injections if i.kind == kind)
        for kind in sorted({i.kind for i in outcome.injections})
    }
    lines.append(
        f"injected {len(outcome.injections)} times, register requests faulted by kind"
        f" {by_kind}; failed requests explained {len(outcome.explained)},"
        f" unexplained {len(outcome.unexplained)}"
    )
    for failure in outcome.unexplained[:10]:
        lines.append(
            f"  unexplained at {failure.sent:.1f} s: {failure.code or 'no fault'} {failure.what}"
        )
    settle = settle_seconds(args.minutes * 60)
    lines.append(
        f"growth after the settle time ({settle:.0f} s), median of the last third against the"
        " first:"
    )
    grew = False
    for name, verdict in outcome.growth.items():
        unit, scale = ("MiB", MIB) if name.endswith("RSS") else ("", 1)
        if verdict.problem:
            text = f"no verdict: {verdict.problem}"
        else:
            text = (
                f"{verdict.first / scale:.1f} -> {verdict.last / scale:.1f} {unit}".rstrip()
                + f" ({verdict.change / scale:+.1f})"
            )
        lines.append(f"  {name:<22} {text}  {'GREW' if verdict.grew else 'flat'}")
        grew = grew or verdict.grew
    passed = not outcome.unexplained and not grew
    lines.append("PASS" if passed else "FAIL")
    return "\n".join(lines), passed


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--minutes", type=float, default=30.0, help="soak time")
    parser.add_argument("--rate", type=float, help="requests/s (default: a share of capacity)")
    parser.add_argument("--load-share", type=float, default=0.8, help="of the capacity")
    parser.add_argument("--warmup-seconds", type=float, default=20.0)
    parser.add_argument("--concurrency", type=int, default=8, help="clients in the warm-up")
    parser.add_argument("--connections", type=int, default=16, help="senders in the soak")
    parser.add_argument("--fault-seconds", type=float, default=15.0, help="between injections")
    parser.add_argument("--sample-seconds", type=float, default=5.0, help="RSS/fd sampling")
    parser.add_argument("--workers", type=int, default=2, help="the platform's gunicorn workers")
    parser.add_argument("--threads", type=int, default=4, help="threads per worker")
    parser.add_argument("--keep", action="store_true", help="keep the sandbox directory and logs")
    args = parser.parse_args(argv)
    if args.minutes <= 0 or args.warmup_seconds <= 0 or not 0 < args.load_share <= 1:
        parser.error("--minutes and --warmup-seconds must be positive, --load-share in (0, 1]")
    if args.rate is not None and args.rate <= 0:
        parser.error("--rate must be positive")
    for name in ("concurrency", "connections", "workers", "threads"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1")
    return args


def _terminate(signum: int, frame: object) -> NoReturn:
    raise SystemExit(128 + signum)  # unwinds through the callbacks that stop the sandbox


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate)
    scratch = Path(tempfile.mkdtemp(prefix="sp-soak-"))
    try:
        outcome = run(args, scratch)
    except BenchError as error:
        print(f"soak failed to run: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    finally:
        if args.keep:
            progress(f"kept {scratch} (sandbox/, sandbox.log)")
        else:
            shutil.rmtree(scratch, ignore_errors=True)
    text, passed = report(outcome, args)
    print(text)
    return 0 if passed else 2


if __name__ == "__main__":
    sys.exit(main())
