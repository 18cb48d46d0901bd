"""Sequential SF2250 calls of the platform's WSGI application in this process: CPU per call.

Run ``.venv/bin/python bench/inprocess.py`` to see where one call's CPU goes, without gunicorn,
sockets on the inbound side or concurrency. It starts the real sandbox as a child process (for
its simulated register, PKI and seeded database), builds the platform's application in this
process from the sandbox's ``platform.toml``, pre-signs the requests, and calls the
application directly, one call after another. It prints this thread's CPU time and the wall
time per call; with ``--profile`` it also runs the calls under cProfile (timed by the
thread's CPU clock) and prints the functions by cumulative and by own time.

With ``--floor`` it also calls the floor (``bench/floor_app.py``: spyne and one PUT to the same
register, nothing else) in this process, alternating with the platform, and prints the ratio
of the two: the platform's own work per call with no server around it. With ``--steps`` it
times the platform's main steps (thread CPU per call, nested steps indented under the step
that contains them) in one more run: what each costs without cProfile's inflation.

This is a tool for finding work to remove. The performance goals are checked by
``bench/passthrough.py`` only: these figures leave out the HTTP server, the threads
contending for the GIL and the register's own CPU.
"""

from __future__ import annotations

import argparse
import cProfile
import functools
import importlib
import io
import json
import logging
import os
import pstats
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # run as a script, the project root is not on the path

from bench.echo_app import echo_request  # noqa: E402
from bench.passthrough import Signer, cpr_number, servers, wait_until  # noqa: E402
from serviceplatform.app import PlatformApp  # noqa: E402
from serviceplatform.config import load_settings  # noqa: E402


def environ_for(path: str, body: bytes) -> dict[str, Any]:
    """A minimal WSGI environ of a SOAP 1.2 POST, as gunicorn would pass it."""
    return {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": path,
        "SCRIPT_NAME": "",
        "QUERY_STRING": "",
        "CONTENT_TYPE": "application/soap+xml; charset=utf-8",
        "CONTENT_LENGTH": str(len(body)),
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "HTTP_HOST": "127.0.0.1:8000",
        "wsgi.input": io.BytesIO(body),
        "wsgi.url_scheme": "http",
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
        "wsgi.version": (1, 0),
    }


WsgiCallable = Callable[..., Any]

_FRONT = "serviceplatform.soap.front"
_CHECKS = "serviceplatform.security.validator"
_OUT = "serviceplatform.outbound.transport"
#: The platform's main steps for ``--steps``: (label, module, attribute path, depth). A step's
#: time includes that of the steps indented under it.
STEPS: tuple[tuple[str, str, str, int], ...] = (
    ("parse the request (lxml)", _FRONT, "parse_xml", 0),
    ("envelope and mustUnderstand checks", _FRONT, "check_envelope", 0),
    ("token and signature checks", _CHECKS, "TokenValidator.validate", 0),
    ("find the security header's parts", _CHECKS, "read_message", 1),
    ("token facts (cached by its bytes)", _CHECKS, "TokenValidator._read_assertion", 1),
    ("claims", _CHECKS, "TokenValidator._check_claims", 1),
    ("holder-of-key certificate", _CHECKS, "TokenValidator._holder", 1),
    ("message signature: shape, ids, coverage", _CHECKS, "TokenValidator._message_signature", 1),
    ("message signature: digests and RSA", _CHECKS, "TokenValidator._verify_message", 1),
    ("RSA and SignedInfo c14n", _CHECKS, "signature_value_valid", 2),
    ("replay entry (database write)", _CHECKS, "TokenValidator._remember", 1),
    ("routing", "serviceplatform.platform", "Platform.route", 0),
    ("outbound PUT, whole", _OUT, "HttpTransport.send", 0),
    ("one attempt (requests adapter, read)", _OUT, "HttpTransport._attempt", 1),
    ("log line, metrics, audit", _FRONT, "SoapEndpoint._finish", 0),
    ("audit record (database write)", "serviceplatform.store.audit", "AuditLog.write", 1),
    ("metrics", "serviceplatform.observability.metrics", "observe_call", 1),
)


def call(app: WsgiCallable, path: str, body: bytes, expect: bytes = b"StatusKode>20<") -> bytes:
    status: list[str] = []

    def start_response(line: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        status.append(line)
        return lambda _data: None

    answer = b"".join(app(environ_for(path, body), start_response))
    if not status or not status[0].startswith("200") or expect not in answer:
        raise SystemExit(f"call failed: {status} {answer[:600]!r}")
    return answer


def floor_app(manifest: dict[str, Any]) -> WsgiCallable:
    """``bench.floor_app``'s application, pointed at the sandbox's register."""
    authority, pki = manifest["authorities"][0], manifest["pki"]
    os.environ.update(
        {
            "BENCH_FLOOR_URL": manifest["peers"]["nemsms"]["base_url"],
            "BENCH_FLOOR_SYSID": authority["sysids"]["register"],
            "BENCH_FLOOR_CERT": pki["client_cert"],
            "BENCH_FLOOR_KEY": pki["client_key"],
            "BENCH_FLOOR_CA": pki["ca_cert"],
        }
    )
    # The floor's spyne application shares the echo's namespace on purpose (they differ by the
    # PUT alone); spyne's registry warns about the second one, which is expected here.
    registry_log = logging.getLogger("spyne.util.appreg")
    level = registry_log.level
    registry_log.setLevel(logging.ERROR)
    try:
        app: WsgiCallable = importlib.import_module("bench.floor_app").app  # reads the env
    finally:
        registry_log.setLevel(level)
    return app


def floor_cpu_ms(app: WsgiCallable, count: int) -> float:
    """Thread CPU ms per floor call over ``count`` calls."""
    bodies = [echo_request(cpr_number(i)) for i in range(count)]
    cpu0 = time.thread_time()
    for body in bodies:
        call(app, "/", body, expect=b"echoResponse")
    return 1000 * (time.thread_time() - cpu0) / count


@contextmanager
def timed_steps(spent: dict[str, float]) -> Iterator[None]:
    """Wrap each of ``STEPS`` to add its thread CPU seconds to ``spent``; unwrapped after."""
    undo: list[tuple[Any, str, Any]] = []

    def timed(label: str, function: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(function)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            started = time.thread_time()
            try:
                return function(*args, **kwargs)
            finally:
                spent[label] += time.thread_time() - started

        return wrapper

    try:
        for label, module, attribute, _depth in STEPS:
            owner: Any = importlib.import_module(module)
            *outer, name = attribute.split(".")
            for part in outer:
                owner = getattr(owner, part)
            original = owner.__dict__[name] if isinstance(owner, type) else getattr(owner, name)
            undo.append((owner, name, original))
            setattr(owner, name, timed(label, getattr(owner, name)))
        yield
    finally:
        for owner, name, original in reversed(undo):
            setattr(owner, name, original)


def measure(app: PlatformApp, path: str, bodies: list[bytes]) -> tuple[float, float]:
    """(thread CPU ms, wall ms) per call over ``bodies``."""
    cpu0, wall0 = time.thread_time(), time.perf_counter()
    for body in bodies:
        call(app, path, body)
    count = len(bodies)
    return (
        1000 * (time.thread_time() - cpu0) / count,
        1000 * (time.perf_counter() - wall0) / count,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=2000, help="calls per measured run")
    parser.add_argument("--runs", type=int, default=3, help="measured runs (minimum reported)")
    parser.add_argument("--profile", action="store_true", help="also one run under cProfile")
    parser.add_argument("--top", type=int, default=45, help="functions listed with --profile")
    parser.add_argument(
        "--floor", action="store_true", help="also the floor in this process, and the ratio"
    )
    parser.add_argument(
        "--steps", action="store_true", help="also one run timing the platform's main steps"
    )
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="sp-inprocess-") as tmp:
        scratch = Path(tmp)
        with servers(scratch, workers=1) as (sandbox, _echo):
            manifest_path = scratch / "sandbox" / "sandbox.json"
            wait_until(sandbox, manifest_path.exists)
            manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
            settings = load_settings(manifest["config"])
            app = PlatformApp(settings)
            app.warm_up()
            path = "/" + manifest["services"]["sf2250"]["url"].split("/", 3)[3]
            signer = Signer(manifest)
            for body in signer.bodies(200):  # warm-up: connections, caches, first imports
                call(app, path, body)
            floor = floor_app(manifest) if args.floor else None
            if floor is not None:
                floor_cpu_ms(floor, 200)
            results = []
            floors = []
            for run in range(1, args.runs + 1):
                cpu, wall = measure(app, path, signer.bodies(args.requests))
                results.append((cpu, wall))
                line = f"run {run}: {cpu:.3f} ms CPU, {wall:.3f} ms wall per call"
                if floor is not None:
                    floors.append(floor_cpu_ms(floor, args.requests))
                    line += f"; floor {floors[-1]:.3f} ms CPU, ratio {cpu / floors[-1]:.2f}"
                print(line, flush=True)
            best = min(r[0] for r in results)
            print(f"best: {best:.3f} ms CPU per call")
            if floors:
                print(
                    f"floor best: {min(floors):.3f} ms CPU per call, ratio {best / min(floors):.2f}"
                )
            if args.steps:
                spent: dict[str, float] = defaultdict(float)
                bodies = signer.bodies(args.requests)
                with timed_steps(spent):
                    cpu, _wall = measure(app, path, bodies)
                print(f"steps ({cpu:.3f} ms CPU per call with the timers), us per call:")
                for label, _module, _attribute, depth in STEPS:
                    micros = 1e6 * spent[label] / len(bodies)
                    print(f"  {'  ' * depth}{label:<{44 - 2 * depth}} {micros:7.1f}")
            if args.profile:
                bodies = signer.bodies(args.requests)
                # This thread's CPU time, not wall time: waiting for the register (another
                # process) is not work this process could remove.
                profiler = cProfile.Profile(time.thread_time)
                profiler.enable()
                for body in bodies:
                    call(app, path, body)
                profiler.disable()
                for order in ("cumulative", "tottime"):
                    out = io.StringIO()
                    stats = pstats.Stats(profiler, stream=out).strip_dirs().sort_stats(order)
                    stats.print_stats(args.top)
                    print(out.getvalue())
            app.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
