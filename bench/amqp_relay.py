"""The outbox relay over AMQP, its batches overlapped or one after the other, in turn.

Run ``.venv/bin/python bench/amqp_relay.py`` with ``SP_TEST_AMQP_URL`` set (and
``SP_TEST_POSTGRES_URL`` for PostgreSQL). Per database it puts ``--messages`` night messages
(as ``bench/amqp_delivery.py`` builds them) into a fresh outbox, then ``--rounds`` times
delivers them all with ``OutboxRelay`` to the simulated Beskedfordeler (a process of its own,
publisher confirms and StandardRetur), alternating two ways: ``overlap`` (the relay's own
choice, ``Outbox.claims_overlap``: on PostgreSQL the next batch is claimed and published while
the last one's answers come in) and ``serial`` (claims never overlap, as before). Each run
starts from every row pending again; the two ways share the same moments of the machine's
noise, so their difference is the overlap's. Prints wall seconds, messages a second and the
platform's CPU per message, with the load average, per run.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # run as a script, the project root is not on the path

from bench.amqp_delivery import night_messages, simulator_process  # noqa: E402
from bench.nightly import database_url  # noqa: E402

TOPIC = "bench"


def run(kind: str, args: argparse.Namespace, scratch: Path) -> list[dict[str, Any]]:
    from sqlalchemy import update

    from serviceplatform.config import AmqpDistributorSettings, DistributorSettings
    from serviceplatform.distribution.amqp import AmqpDistributor
    from serviceplatform.relay import OutboxRelay
    from serviceplatform.sandbox.pki import STS_ISSUER, ensure_pki
    from serviceplatform.sandbox.sts_tokens import SandboxStsTokenSource
    from serviceplatform.store.db import Database
    from serviceplatform.store.models import outbox, outbox_state
    from serviceplatform.store.outbox import Outbox

    url = os.environ.get("SP_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
    pki = ensure_pki(scratch / "pki")
    exchange = f"BENCH_{uuid.uuid4().hex[:12]}"
    batch = args.batch or DistributorSettings(transport="amqp").relay_batch_size()
    runs: list[dict[str, Any]] = []
    with database_url(kind, scratch) as db_url, simulator_process(url, exchange, pki.sts_cert):
        database = Database(db_url)
        database.upgrade()
        now = time.time
        with database.transaction(write_first=True) as connection:
            connection.execute(
                outbox.insert(),
                [
                    {
                        "message_id": m.besked_id,
                        "topic": TOPIC,
                        "authority_cvr": m.authority_cvr,
                        "body": m.body.decode("utf-8"),
                        "created_at": _now(),
                    }
                    for m in night_messages(args.messages, 2)
                ],
            )
        settings = AmqpDistributorSettings(url=url, exchange=exchange)
        tokens = SandboxStsTokenSource.from_files(
            pki.sts_key, pki.sts_cert, STS_ISSUER, settings.token_audience
        )
        with AmqpDistributor(settings, tokens, base_dir=scratch) as distributor:
            distributor.deliver_batch(night_messages(10, 1))  # connection, token, parsers
            for round_ in range(args.rounds):
                for way in ("serial", "overlap") if round_ % 2 == 0 else ("overlap", "serial"):
                    with database.transaction(write_first=True) as connection:
                        connection.execute(update(outbox_state).values(state="pending"))
                    box = Outbox(database)
                    if way == "serial":
                        # As before: one claim at a time, the window empties between batches.
                        box.__class__ = _Serial
                    load = os.getloadavg()[0]
                    started, cpu = now(), time.process_time()
                    result = OutboxRelay(
                        box, distributor, clock=_now, topic=TOPIC, batch_size=batch
                    ).run()
                    seconds = now() - started
                    runs.append(
                        {
                            "database": kind,
                            "way": way,
                            "batch": batch,
                            "delivered": result.delivered,
                            "seconds": round(seconds, 2),
                            "msg_per_s": round(result.delivered / seconds),
                            "platform_ms_per_msg": round(
                                (time.process_time() - cpu) * 1000 / max(result.delivered, 1), 3
                            ),
                            "load_before": round(load, 2),
                            "load_after": round(os.getloadavg()[0], 2),
                        }
                    )
                    print(json.dumps(runs[-1]), file=sys.stderr, flush=True)
        database.dispose()
    return runs


def _now() -> Any:
    from datetime import UTC, datetime

    return datetime.now(UTC)


def _serial_class() -> type:
    from serviceplatform.store.outbox import Outbox

    class Serial(Outbox):
        @property
        def claims_overlap(self) -> bool:
            return False

    return Serial


_Serial = _serial_class()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--batch", type=int, default=0, help="default: the relay's for AMQP")
    parser.add_argument("--databases", default="postgresql,sqlite")
    args = parser.parse_args(argv)
    results = []
    for kind in args.databases.split(","):
        with tempfile.TemporaryDirectory(prefix="sp-bench-relay-") as scratch:
            results += run(kind, args, Path(scratch))
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
