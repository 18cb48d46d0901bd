"""Load benchmark of the whole SF2250 pass-through, beside a bare spyne echo service.

Run ``.venv/bin/python bench/passthrough.py`` (or ``make bench``). It starts the real sandbox
(``serviceplatform sandbox``: the platform under gunicorn plus the simulated NemSMS register
over mutual TLS) and, as the baseline, ``bench.echo_app`` under gunicorn with the platform's
worker settings. It pre-signs distinct KOMBIT-style ``OpdaterBorgerNemSMS`` requests (one
token, a fresh MessageID each, varying CPR numbers), then drives both servers alternately at
the same concurrency and prints requests/s and p50/p90/p99 latency per target and the ratio
platform/echo. ``docs/benchmark.md`` explains how to read the figures.

Exit status: 0 when both goals are met, 2 when a goal is missed, 1 when the run failed (any
request answered other than 200 with the expected content, or a server did not start).
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any, NoReturn
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # run as a script, the project root is not on the path

from bench.echo_app import echo_request  # noqa: E402
from bench.load import ProcessTreeCpu, RoundResult, Target, request_once, run_round  # noqa: E402
from bench.requests import SignedRequests  # noqa: E402
from bench.report import GOAL_P99_MS, GOAL_RATIO, Summary, render_table, to_json  # noqa: E402
from serviceplatform.sandbox.runner import free_port  # noqa: E402

#: The platform's gunicorn settings (serviceplatform/server.py, and ``serve``'s default
#: ``--threads``, which the sandbox uses); the baseline runs under the same.
THREADS = 4
KEEPALIVE = 30
SOAP12_CONTENT_TYPE = "application/soap+xml; charset=utf-8"
STARTUP_TIMEOUT = 60.0


class BenchError(Exception):
    """The benchmark could not run (a server did not start, bad arguments)."""


@dataclass
class Child:
    """A server process this script started, in its own session so Ctrl-C reaches only us."""

    name: str
    process: subprocess.Popen[bytes]
    log: Path

    def check_alive(self) -> None:
        if self.process.poll() is not None:
            raise BenchError(
                f"{self.name} exited with code {self.process.returncode}; "
                f"last lines of {self.log}:\n{tail(self.log)}"
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
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def start(name: str, argv: list[str], log: Path) -> Child:
    with log.open("wb") as out:
        process = subprocess.Popen(
            argv, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    return Child(name, process, log)


@contextmanager
def servers(workdir: Path, workers: int) -> Iterator[tuple[Child, Child]]:
    """The sandbox and the echo baseline, stopped with SIGTERM whatever happens."""
    started: list[Child] = []
    try:
        sandbox = start(
            "the sandbox",
            [
                *(sys.executable, "-m", "serviceplatform.cli", "sandbox"),
                *("--workdir", str(workdir), "--port", "0", "--workers", str(workers)),
            ],
            workdir.parent / f"{workdir.name}-sandbox.log",
        )
        started.append(sandbox)
        port = free_port()
        echo = start(
            "the echo baseline",
            [
                *(sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}"),
                *("--workers", str(workers), "--threads", str(THREADS)),
                *("--worker-class", "gthread", "--keep-alive", str(KEEPALIVE)),
                *("--graceful-timeout", "10", "--no-control-socket", "--log-level", "warning"),
                "bench.echo_app:app",
            ],
            workdir.parent / f"{workdir.name}-echo.log",
        )
        started.append(echo)
        echo.port = port  # type: ignore[attr-defined]
        yield sandbox, echo
    finally:
        for child in reversed(started):
            child.stop()


def wait_for_manifest(sandbox: Child, path: Path) -> dict[str, Any]:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        sandbox.check_alive()
        if path.exists():
            data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
            return data
        time.sleep(0.2)
    raise BenchError(f"no {path} within {STARTUP_TIMEOUT:.0f} s:\n{tail(sandbox.log)}")


def wait_for_answer(child: Child, target: Target, body: bytes) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        child.check_alive()
        try:
            status, _ = request_once(target, body, timeout=5)
        except OSError:
            time.sleep(0.1)
            continue
        if status == 200:
            return
        raise BenchError(f"{child.name} answered HTTP {status}:\n{tail(child.log)}")
    raise BenchError(f"{child.name} did not answer within {STARTUP_TIMEOUT:.0f} s")


def target_from_url(name: str, url: str, expect: bytes) -> Target:
    parts = urlsplit(url)
    assert parts.hostname is not None and parts.port is not None
    return Target(name, parts.hostname, parts.port, parts.path, SOAP12_CONTENT_TYPE, expect)


def progress(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def run(args: argparse.Namespace, workdir: Path) -> Summary:
    with servers(workdir, args.workers) as (sandbox, echo):
        manifest = wait_for_manifest(sandbox, workdir / "sandbox.json")
        platform = target_from_url("platform", manifest["services"]["sf2250"]["url"], b"")
        platform = Target(**{**platform.__dict__, "expect": b"StatusKode>20</"})
        baseline = Target(
            "echo", "127.0.0.1", echo.port, "/", SOAP12_CONTENT_TYPE, b"echoResponse"
        )  # type: ignore[attr-defined]
        wait_for_answer(echo, baseline, echo_request("ping"))
        signer = SignedRequests.from_manifest(manifest)
        cpu = {
            "echo": {"server": ProcessTreeCpu(echo.process.pid).seconds},
            "platform": _platform_probes(ProcessTreeCpu(sandbox.process.pid)),
        }
        progress(
            f"sandbox {manifest['platform']['base_url']}, echo http://127.0.0.1:{echo.port}, "
            f"{args.workers} workers x {THREADS} threads, concurrency {args.concurrency}"
        )

        def batch(target: Target, count: int) -> list[bytes]:
            if target is baseline:
                return [echo_request(f"hello {i}") for i in range(count)]
            return signer.bodies(count, progress=progress)

        def drive(target: Target, count: int, label: str) -> RoundResult:
            bodies = batch(target, count)
            result = run_round(
                target, bodies, concurrency=args.concurrency, server_cpu=cpu[target.name]
            )
            progress(f"{label} {target.name}: {result.rate:,.0f} req/s, {result.errors} errors")
            sandbox.check_alive()
            echo.check_alive()
            return result

        for target in (baseline, platform):
            drive(target, args.warmup, "warm-up")
        rounds: list[RoundResult] = []
        for number in range(1, args.rounds + 1):
            for target in (baseline, platform):
                rounds.append(drive(target, args.requests, f"round {number}"))
    return Summary(
        rounds=rounds,
        concurrency=args.concurrency,
        workers=args.workers,
        threads=THREADS,
        requests=args.requests,
    )


def _platform_probes(tree: ProcessTreeCpu) -> dict[str, Callable[[], float]]:
    # The sandbox process itself hosts the simulated register (its HTTPS threads); its
    # descendants are the platform's gunicorn master and workers.
    return {"server": tree.seconds, "register": lambda: tree.seconds(root_only=True)}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=3000, help="per target per round")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers, both servers")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--warmup", type=int, default=300, help="requests per target, untimed")
    parser.add_argument("--keep", action="store_true", help="keep the sandbox directory")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    for name in ("requests", "concurrency", "workers", "rounds", "warmup"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1")
    return args


def _terminate(signum: int, frame: FrameType | None) -> NoReturn:
    raise SystemExit(128 + signum)  # unwinds through the finally blocks that stop the servers


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate)
    scratch = Path(tempfile.mkdtemp(prefix="sp-bench-"))
    workdir = scratch / "sandbox"
    try:
        summary = run(args, workdir)
    except BenchError as error:
        print(f"benchmark failed: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    finally:
        if args.keep:
            progress(f"kept {scratch} (sandbox, logs)")
        else:
            shutil.rmtree(scratch, ignore_errors=True)
    print(to_json(summary) if args.json else render_table(summary))
    if summary.errors:
        return 1
    return 0 if summary.goals_met else 2


__all__ = ["GOAL_P99_MS", "GOAL_RATIO", "main"]

if __name__ == "__main__":
    sys.exit(main())
