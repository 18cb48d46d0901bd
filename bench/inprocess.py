"""Sequential SF2250 calls of the platform's WSGI application in this process: CPU per call.

Run ``.venv/bin/python bench/inprocess.py`` to see where one call's CPU goes, without gunicorn,
sockets on the inbound side or concurrency. It starts the real sandbox as a child process (for
its simulated register, PKI and seeded database), builds the platform's application in this
process from the sandbox's ``platform.toml``, pre-signs the requests, and calls the
application directly, one call after another. It prints this thread's CPU time and the wall
time per call; with ``--profile`` it also runs the calls under cProfile (timed by the
thread's CPU clock) and prints the functions by cumulative and by own time.

This is a tool for finding work to remove. The performance goals are checked by
``bench/passthrough.py`` only: these figures leave out the HTTP server, the threads
contending for the GIL and the register's own CPU.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import pstats
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # run as a script, the project root is not on the path

from bench.passthrough import Signer, servers, wait_until  # noqa: E402
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


def call(app: PlatformApp, path: str, body: bytes) -> bytes:
    status: list[str] = []

    def start_response(line: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        status.append(line)
        return lambda _data: None

    answer = b"".join(app(environ_for(path, body), start_response))
    if not status or not status[0].startswith("200") or b"StatusKode>20<" not in answer:
        raise SystemExit(f"call failed: {status} {answer[:600]!r}")
    return answer


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
            results = []
            for run in range(1, args.runs + 1):
                cpu, wall = measure(app, path, signer.bodies(args.requests))
                results.append((cpu, wall))
                print(f"run {run}: {cpu:.3f} ms CPU, {wall:.3f} ms wall per call", flush=True)
            print(f"best: {min(r[0] for r in results):.3f} ms CPU per call")
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
