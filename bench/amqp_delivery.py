"""CPU per message of AMQP delivery, split by process: the platform, the simulator, the broker.

Run ``.venv/bin/python bench/amqp_delivery.py --messages 10000`` with ``SP_TEST_AMQP_URL``
set (default ``amqp://guest:guest@127.0.0.1:5672/``, virtual host ``BF``). It starts the
simulated Beskedfordeler in a process of its own (trusting the sandbox STS, as
``bench/nightly.py`` does), hands ``--messages`` messages (built as a night builds
them, four authorities, one token each) to ``AmqpDistributor.deliver_batch`` in batches
of ``--batch`` (500 unless given; with ``--overlap`` to ``deliver_stream(overlap=True)``, as
the relay on PostgreSQL does, so the window does not empty between batches) and prints, for
the measured messages:

- the wall time and messages a second;
- CPU milliseconds a message of this process (the platform's distributor, no database), of
  the simulator's process and of RabbitMQ (``beam.smp``, read from ``/proc/<pid>/stat``; the
  broker is shared with whatever else runs on it, so its figure is an upper bound).

``--profile platform`` or ``--profile simulator`` prints that side's cProfile (top functions
by own time). A warm-up batch (connections, parsers, the token's first verification) is not
counted. The machine's load average is printed beside the figures: the three processes share
the CPUs with everything else.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # run as a script, the project root is not on the path

AUTHORITIES = ("29189846", "12345674", "11111111", "22222222")
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User plus system CPU seconds of process ``pid`` so far (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def broker_pid() -> int | None:
    """The pid of RabbitMQ's Erlang VM on this machine, if one runs."""
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() == "beam.smp":
                    return int(entry.name)
            except OSError:
                continue
    return None


def night_messages(count: int, seed: int) -> list[Any]:
    """``count`` messages as a night builds them (``build_message``), spread over authorities."""
    import random
    from datetime import date

    from integrations.sf2250.haendelsesbesked import (
        MessageVocabulary,
        SubscriptionChange,
        besked_id,
        build_message,
    )
    from serviceplatform.distribution.base import OutgoingMessage

    vocabulary = MessageVocabulary(
        message_type_uuid=str(uuid.UUID(int=1)), actor_uuid=str(uuid.UUID(int=2))
    )
    created = datetime(2026, 11, 17, 1, 0, tzinfo=UTC)
    chance = random.Random(seed)
    made = []
    for index in range(count):
        change = SubscriptionChange(
            authority_cvr=AUTHORITIES[index % len(AUTHORITIES)],
            list_date=date(2026, 11, 17),
            kind="cpr",
            number=f"{chance.randrange(10**10):010d}",
            change="tilmeldt" if chance.random() < 0.5 else "afmeldt",
        )
        body = build_message(change, vocabulary, created_at=created)
        made.append(OutgoingMessage(besked_id(change), change.authority_cvr, body))
    return made


# --- the simulator, in a process of its own ----------------------------------------------------


def child_simulator(spec: dict[str, Any]) -> None:
    """Run the simulator until stdin closes; with ``profile``, print its consumer's profile."""
    from serviceplatform.sandbox.beskedfordeler import SimulatedBeskedfordeler

    profiler = cProfile.Profile() if spec.get("profile") else None
    if profiler is not None:
        run = SimulatedBeskedfordeler._run

        def profiled(self: SimulatedBeskedfordeler) -> None:
            profiler.runcall(run, self)

        SimulatedBeskedfordeler._run = profiled  # type: ignore[method-assign]
    with SimulatedBeskedfordeler(
        spec["url"],
        exchange=spec["exchange"],
        trusted_sts_cert=Path(spec["sts_cert"]),
        delete_on_stop=True,
    ) as simulator:
        print("ready", flush=True)
        for line in sys.stdin:
            if line.strip() == "received":
                print(len(simulator.received), flush=True)
                simulator.clear()
    if profiler is not None:
        pstats.Stats(profiler, stream=sys.stderr).sort_stats("tottime").print_stats(25)


@contextmanager
def simulator_process(
    url: str, exchange: str, sts_cert: Path, *, profile: bool = False
) -> Iterator[subprocess.Popen[str]]:
    """The simulated Beskedfordeler running in a process of its own, until the block ends."""
    spec = {"url": url, "exchange": exchange, "sts_cert": str(sts_cert), "profile": profile}
    simulator = subprocess.Popen(
        [sys.executable, str(Path(__file__).resolve()), "--simulator", json.dumps(spec)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert simulator.stdin is not None and simulator.stdout is not None
    try:
        if simulator.stdout.readline().strip() != "ready":
            raise SystemExit("the simulated Beskedfordeler did not start")
        yield simulator
    finally:
        # Closing its input ends it (it deletes its queue and exchange).
        simulator.stdin.close()
        simulator.wait(60)


def simulator_received(simulator: subprocess.Popen[str]) -> int:
    """How many messages the simulator accepted (and forgets them)."""
    assert simulator.stdin is not None and simulator.stdout is not None
    simulator.stdin.write("received\n")
    simulator.stdin.flush()
    return int(simulator.stdout.readline())


# --- the platform side -------------------------------------------------------------------------


def run(args: argparse.Namespace) -> dict[str, Any]:
    from serviceplatform.config import AmqpDistributorSettings
    from serviceplatform.distribution.amqp import AmqpDistributor
    from serviceplatform.sandbox.pki import STS_ISSUER, ensure_pki
    from serviceplatform.sandbox.sts_tokens import SandboxStsTokenSource

    url = os.environ.get("SP_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
    scratch = Path(tempfile.mkdtemp(prefix="sp-bench-amqp-"))
    pki = ensure_pki(scratch / "pki")
    exchange = f"BENCH_{uuid.uuid4().hex[:12]}"
    with simulator_process(
        url, exchange, pki.sts_cert, profile=args.profile == "simulator"
    ) as simulator:
        settings = AmqpDistributorSettings(url=url, exchange=exchange, in_flight=args.in_flight)
        tokens = SandboxStsTokenSource.from_files(
            pki.sts_key, pki.sts_cert, STS_ISSUER, settings.token_audience
        )
        warm, measured = night_messages(args.batch, 1), night_messages(args.messages, 2)
        beam = broker_pid()
        with AmqpDistributor(settings, tokens, base_dir=scratch) as distributor:
            assert all(e is None for e in distributor.deliver_batch(warm).values())
            profiler = cProfile.Profile() if args.profile == "platform" else None
            load = os.getloadavg()
            marks = (
                time.perf_counter(),
                time.process_time(),
                cpu_seconds(simulator.pid),
                cpu_seconds(beam) if beam else 0.0,
            )
            batches = [
                measured[start : start + args.batch]
                for start in range(0, len(measured), args.batch)
            ]

            def deliver() -> int:
                if args.overlap:
                    outcomes = list(distributor.deliver_stream(batches, overlap=True))
                else:
                    outcomes = [distributor.deliver_batch(batch) for batch in batches]
                return sum(1 for o in outcomes for e in o.values() if e is None)

            delivered = profiler.runcall(deliver) if profiler is not None else deliver()
            seconds = time.perf_counter() - marks[0]
            platform_cpu = time.process_time() - marks[1]
            simulator_cpu = cpu_seconds(simulator.pid) - marks[2]
            broker_cpu = (cpu_seconds(beam) - marks[3]) if beam else None
        received = simulator_received(simulator)
    if profiler is not None:
        pstats.Stats(profiler, stream=sys.stderr).sort_stats("tottime").print_stats(25)
    per = 1000 / max(delivered, 1)
    return {
        "messages": len(measured),
        "batch": args.batch,
        "overlap": args.overlap,
        "delivered": delivered,
        "received_by_simulator": received - len(warm),
        "seconds": round(seconds, 2),
        "msg_per_s": round(delivered / seconds),
        "platform_ms_per_msg": round(platform_cpu * per, 3),
        "simulator_ms_per_msg": round(simulator_cpu * per, 3),
        "broker_ms_per_msg": None if broker_cpu is None else round(broker_cpu * per, 3),
        "load_average_before": [round(x, 2) for x in load],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--in-flight", type=int, default=256)
    parser.add_argument(
        "--overlap",
        action="store_true",
        help="deliver_stream(overlap=True): the next batch fills the window while the last drains",
    )
    parser.add_argument("--profile", choices=("platform", "simulator"))
    parser.add_argument("--simulator", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.simulator:
        child_simulator(json.loads(args.simulator))
        return 0
    print(json.dumps(run(args), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
