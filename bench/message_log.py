"""Benchmark of the message log: one page over 10,000 calls and the outward messages.

Run ``.venv/bin/python bench/message_log.py`` (SQLite in a temporary directory) or with
``--database postgresql+psycopg://...`` (a PostgreSQL database, or a schema given by
``options=-csearch_path=...``, that it migrates and fills; use an empty one). It writes
``--records`` audit records (default 10,000) spread over 30 days, authorities, services and
outcomes, plus a tenth as many OOTS requests and outbox rows, then times a page (50 rows) of
the merged log for each filter, the first page and a page 40 pages deep, each ``--repeat``
times, through ``MessageLog`` (the code the admin API and the CLI run). It also times the
usage overview of 30 days.

Goal: every page answers in **under 200 ms** (the slowest repeat). Exit status 0 when met,
2 when missed. ``docs/benchmark.md`` has the figures of a run.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import case, insert, update

from integrations.oots.tables import oots_requests
from serviceplatform.config import DatabaseSettings, Settings
from serviceplatform.messagelog.log import MessageLog
from serviceplatform.messagelog.model import MessageQuery
from serviceplatform.messagelog.usage import usage
from serviceplatform.platform import Platform
from serviceplatform.store.db import Database
from serviceplatform.store.models import audit_records, outbox, outbox_state

GOAL_MS = 200.0
AUTHORITIES = ("29189846", "29189854", "29189862", "29189870", "29189889")
SERVICES = (("sf2250", "opdater"), ("sf2250", "hent"), ("sf1600", "afsendBrev"),
            ("oots", "Bevisanmodning"))  # fmt: skip
ERRORS = ("SP-303", "SP-405", "SP-401", "SP-721")


def fill(db: Database, records: int, now: datetime, seed: int = 17) -> dict[str, str]:
    """Write the records; returns values to search for (one MessageID, subject, conversation)."""
    rnd = random.Random(seed)
    start = now - timedelta(days=30)
    span = (now - start).total_seconds()
    calls: list[dict[str, Any]] = []
    for n in range(records):
        service, operation = SERVICES[n % len(SERVICES)]
        fault = rnd.random() < 0.05
        calls.append(
            {
                "at": start + timedelta(seconds=rnd.random() * span),
                "message_id": f"urn:uuid:{uuid.UUID(int=rnd.getrandbits(128))}",
                "authority_cvr": AUTHORITIES[n % len(AUTHORITIES)],
                "consumer_system": None,
                "service": service,
                "operation": operation,
                "subject": f"{rnd.randint(1, 28):02d}{rnd.randint(1, 12):02d}90{n % 10000:04d}",
                "sysid": None,
                "upstream_status": 200 if not fault else 503,
                "outcome": "fault" if fault else "ok",
                "error_code": rnd.choice(ERRORS) if fault else None,
                "latency_ms": rnd.lognormvariate(3.0, 0.5),
                "detail": None,
            }
        )
    requests: list[dict[str, Any]] = []
    rows: list[dict[str, Any]] = []
    for n in range(max(1, records // 10)):
        at = start + timedelta(seconds=rnd.random() * span)
        request_id = str(uuid.UUID(int=rnd.getrandbits(128)))
        state = rnd.choice(("answered", "answered", "answered", "failed", "submitted"))
        requests.append(
            {
                "request_id": request_id,
                "authority_cvr": AUTHORITIES[n % len(AUTHORITIES)],
                "consumer_system": None,
                "conversation_id": str(uuid.UUID(int=rnd.getrandbits(128))),
                "first_message_id": f"{request_id}@dk",
                "message_id": f"{request_id}@dk",
                "provider_id": "FI-UNIV",
                "provider_scheme": "urn:cef.eu:names:identifier:EAS:0212",
                "to_party": "AP_FI_01",
                "edm_version": "2.0",
                "state": state,
                "error_code": "SP-405" if state == "failed" else None,
                "created_at": at,
                "updated_at": at,
            }
        )
        rows.append(
            {
                "message_id": str(uuid.UUID(int=rnd.getrandbits(128))),
                "topic": "beskedfordeler",
                "authority_cvr": AUTHORITIES[n % len(AUTHORITIES)],
                "body": "<Haendelsesbesked/>",
                "created_at": at,
            }
        )
    with db.transaction(write_first=True) as connection:
        connection.execute(insert(audit_records), calls)
        connection.execute(insert(oots_requests), requests)
        connection.execute(insert(outbox), rows)
        # Tried once each; nine in ten delivered (the trigger wrote every row pending).
        connection.execute(
            update(outbox_state).values(
                attempts=1,
                state=case((outbox_state.c.id % 10 != 0, "delivered"), else_="pending"),
            )
        )
    return {
        "message_id": calls[records // 2]["message_id"],
        "subject": calls[records // 3]["subject"],
        "conversation_id": requests[len(requests) // 2]["conversation_id"],
    }


def timed(action: Callable[[], Any], repeat: int) -> list[float]:
    action()  # warm: compiled statements, caches
    found = []
    for _ in range(repeat):
        started = time.perf_counter()
        action()
        found.append((time.perf_counter() - started) * 1000.0)
    return found


def deep_cursor(log: MessageLog, pages: int) -> MessageQuery:
    query = MessageQuery()
    for _ in range(pages):
        page = log.page(query)
        query = MessageQuery(after=page.next)
    return query


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", help="database URL (default: SQLite in a temp dir)")
    parser.add_argument("--records", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--json", action="store_true", help="figures as JSON")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        url = args.database or f"sqlite:///{Path(tmp) / 'bench.sqlite'}"
        db = Database(url)
        db.upgrade()
        now = datetime.now(UTC)
        values = fill(db, args.records, now)
        settings = Settings(database=DatabaseSettings(url=url), base_dir=tmp)
        log = MessageLog.for_platform(Platform(settings, database=db))
        deep = deep_cursor(log, 40)
        day = (now - timedelta(days=3)).date().isoformat()
        queries: dict[str, MessageQuery] = {
            "first page": MessageQuery(),
            "page 41": deep,
            "time range (one day)": MessageQuery(
                since=datetime.fromisoformat(day).replace(tzinfo=UTC),
                until=datetime.fromisoformat(day).replace(tzinfo=UTC) + timedelta(days=1),
            ),
            "authority": MessageQuery(authority_cvr=AUTHORITIES[2]),
            "service": MessageQuery(service="sf1600"),
            "operation": MessageQuery(operation="hent"),
            "outcome fault": MessageQuery(outcome="fault"),
            "error code": MessageQuery(error_code="SP-721"),
            "message id": MessageQuery(message_id=values["message_id"]),
            "conversation id": MessageQuery(conversation_id=values["conversation_id"]),
            "subject": MessageQuery(subject=values["subject"]),
            "authority + fault": MessageQuery(authority_cvr=AUTHORITIES[1], outcome="fault"),
        }
        figures: dict[str, dict[str, float]] = {}
        for name, query in queries.items():
            times = timed(lambda q=query: log.page(q), args.repeat)  # type: ignore[misc]
            figures[name] = {"p50_ms": statistics.median(times), "max_ms": max(times)}
        usage_times = timed(lambda: usage(db, now=now), max(3, args.repeat // 4))
        figures["usage overview (30 days)"] = {
            "p50_ms": statistics.median(usage_times),
            "max_ms": max(usage_times),
        }
        dialect = db.dialect
        db.dispose()
    pages = {k: v for k, v in figures.items() if not k.startswith("usage")}
    met = all(v["max_ms"] < GOAL_MS for v in pages.values())
    if args.json:
        print(json.dumps({"database": dialect, "records": args.records, "figures": figures,
                          "goal_ms": GOAL_MS, "met": met}, indent=2))  # fmt: skip
    else:
        print(f"message log on {dialect}, {args.records} calls (+ OOTS requests, outbox rows)")
        for name, figure in figures.items():
            print(f"  {name:<28} p50 {figure['p50_ms']:7.1f} ms   max {figure['max_ms']:7.1f} ms")
        print(f"goal: every page under {GOAL_MS:.0f} ms: {'met' if met else 'MISSED'}")
    return 0 if met else 2


if __name__ == "__main__":
    sys.exit(main())
