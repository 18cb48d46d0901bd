"""The pieces that carry the nightly diff at national scale: the sorted entry buffer, the part
parser, batch delivery (relay, file drop) and the register's list forms."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from integrations.sf2250.entry_buffer import EntryBuffer
from integrations.sf2250.entry_codes import code_of
from integrations.sf2250.haendelsesbesked import (
    MessageBuilder,
    MessageVocabulary,
    SubscriptionChange,
    besked_id,
    build_message,
)
from integrations.sf2250.settings import SubscriptionSettings
from integrations.sf2250.snapshot_store import Change, SnapshotStore
from integrations.sf2250.subscription_list import REGISTER_NS, SubscriptionListClient
from serviceplatform.config import AmqpDistributorSettings
from serviceplatform.distribution.amqp import AmqpDistributor
from serviceplatform.distribution.base import MemoryDistributor, OutgoingMessage
from serviceplatform.distribution.file_drop import FileDropDistributor
from serviceplatform.distribution.tokens import FileTokenSource
from serviceplatform.errors import DistributorRejected, DistributorUnavailable, UpstreamBadResponse
from serviceplatform.outbound.base import OutboundRequest, OutboundResponse
from serviceplatform.outbound.credentials import Credential
from serviceplatform.relay import OutboxRelay
from serviceplatform.sandbox.register_lists import GeneratedList, StoredList
from serviceplatform.store.db import Database
from serviceplatform.store.models import outbox
from serviceplatform.store.outbox import Outbox

NOW = datetime(2026, 11, 17, 1, 0, tzinfo=UTC)
CVR = "29189846"


def test_the_entry_buffer_hands_out_sorted_entries_once() -> None:
    buffer = EntryBuffer()
    first = [("cvr", "29189846"), ("cpr", "3112999999"), ("cpr", "0101901234")]
    second = [("cpr", "0101901234"), ("cpr", "0000000001"), ("cvr", "00000001")]
    buffer.extend([code_of(*entry) for entry in first])
    buffer.extend([code_of(*entry) for entry in second])
    assert list(buffer.sorted()) == [
        ("cpr", "0000000001"),
        ("cpr", "0101901234"),
        ("cpr", "3112999999"),
        ("cvr", "00000001"),
        ("cvr", "29189846"),
    ]
    assert buffer.received == 6
    assert list(buffer.sorted()) == []  # handed out once


class _Answer:
    """A transport answering one fixed body."""

    def __init__(self, body: bytes) -> None:
        self.body = body
        self.requests: list[OutboundRequest] = []

    def send(self, request: OutboundRequest, *, credential: Credential) -> OutboundResponse:
        self.requests.append(request)
        return OutboundResponse(200, self.body, {}, 0.0)


def _part(*entries: str) -> bytes:
    return (
        f'<SlutbrugerDelliste xmlns="{REGISTER_NS}"><DelNummer>1</DelNummer>'
        + "".join(f"<Slutbruger>{entry}</Slutbruger>" for entry in entries)
        + "</SlutbrugerDelliste>"
    ).encode()


def test_the_part_parser_reads_cpr_and_cvr_entries() -> None:
    transport = _Answer(_part("<CPR>0101901234</CPR>", "<CVR>:29189846</CVR>"))
    client = SubscriptionListClient(transport, cert_alias="c")  # type: ignore[arg-type]
    # Coded as the entry buffer holds them: a CPR number as itself, a CVR as 10**10 + itself.
    assert client.part("S", "ref", 1) == [101901234, 10**10 + 29189846]
    (request,) = transport.requests
    # A part has a timeout of its own, longer than a SOAP call's.
    assert request.read_timeout_seconds == 30.0 and request.budget_seconds == 90.0


@pytest.mark.parametrize(
    "entry",
    [
        "<CPR>0101901234</CPR><CVR>29189846</CVR>",
        "<CPR>010190123</CPR>",
        "<CVR>2918984</CVR>",
        "<CPR>01019O1234</CPR>",
        "<Telefon>12345678</Telefon>",
        "",
    ],
)
def test_the_part_parser_refuses_an_entry_that_is_no_cpr_or_cvr(entry: str) -> None:
    client = SubscriptionListClient(_Answer(_part(entry)), cert_alias="c")  # type: ignore[arg-type]
    with pytest.raises(UpstreamBadResponse):
        client.part("S", "ref", 1)


def _messages(count: int) -> list[OutgoingMessage]:
    return [OutgoingMessage(str(uuid.uuid4()), CVR, b"<besked/>") for _ in range(count)]


def test_the_file_drop_makes_a_batch_durable_together(tmp_path: Path) -> None:
    drop = FileDropDistributor(tmp_path / "drop")
    messages = _messages(5)
    assert drop.deliver_batch(messages) == dict.fromkeys(range(5))
    assert sorted(p.name for p in (tmp_path / "drop").iterdir()) == sorted(
        f"{m.besked_id}.xml" for m in messages
    )
    assert all(drop.path_for(m.besked_id).read_bytes() == b"<besked/>" for m in messages)
    # Again: nothing changes, and no temporary file stays behind.
    assert drop.deliver_batch(messages) == dict.fromkeys(range(5))
    assert len(list((tmp_path / "drop").iterdir())) == 5


def test_the_file_drop_reports_an_unwritable_directory_for_the_batch(tmp_path: Path) -> None:
    (tmp_path / "drop").write_text("a file, not a directory")
    outcome = FileDropDistributor(tmp_path / "drop").deliver_batch(_messages(3))
    assert list(outcome) == [0] and isinstance(outcome[0], DistributorUnavailable)


def _pending(database: Database, count: int) -> None:
    with database.transaction(write_first=True) as connection:
        connection.execute(
            outbox.insert(),
            [
                {
                    "message_id": str(uuid.uuid4()),
                    "topic": "t",
                    "authority_cvr": CVR,
                    "body": "<besked/>",
                    "created_at": NOW,
                }
                for _ in range(count)
            ],
        )


def test_a_stream_takes_each_batch_after_the_last_outcome_and_stops_when_down() -> None:
    def batch(size: int) -> list[OutgoingMessage]:
        return [OutgoingMessage(str(uuid.uuid4()), CVR, b"<m/>") for _ in range(size)]

    taken: list[int] = []

    def batches() -> Any:
        for size in (2, 3, 2, 4):
            taken.append(size)
            yield batch(size)

    distributor = MemoryDistributor()
    stream = distributor.deliver_stream(batches(), overlap=True)
    # Without a pipeline the next batch is taken only after the last outcome was taken.
    assert next(stream) == {0: None, 1: None} and taken == [2]
    distributor.fail_next(DistributorUnavailable("down"))
    second = next(stream)
    assert list(second) == [0] and isinstance(second[0], DistributorUnavailable)
    # The second batch found the distributor down: no further batch is taken.
    assert list(stream) == [] and taken == [2, 3]


def test_the_relay_delivers_in_batches_and_marks_each_batch(database: Database) -> None:
    _pending(database, 7)
    distributor = MemoryDistributor()
    calls: list[int] = []
    relay = OutboxRelay(Outbox(database), distributor, clock=lambda: NOW, topic="t", batch_size=3)
    result = relay.run(on_delivered=calls.append)
    assert (result.delivered, result.unavailable) == (7, False)
    assert calls == [3, 3, 1]
    assert len(distributor.delivered) == 7
    assert Outbox(database).counts("t").pending == 0


def test_a_relay_that_dies_mid_batch_leaves_its_claimed_rows_pending(database: Database) -> None:
    _pending(database, 5)

    class Dying(MemoryDistributor):
        def deliver_batch(self, messages: Any) -> Any:
            super().deliver_batch(messages[:2])
            raise RuntimeError("the process dies here")

    relay = OutboxRelay(Outbox(database), Dying(), clock=lambda: NOW, topic="t", batch_size=5)
    with pytest.raises(RuntimeError):
        relay.run()
    # The claim rolled back: nothing marked, every row is there for the next relay.
    assert Outbox(database).counts("t").pending == 5
    again = MemoryDistributor()
    result = OutboxRelay(Outbox(database), again, clock=lambda: NOW, topic="t").run()
    assert result.delivered == 5 and len(again.delivered) == 5


def test_the_relay_keeps_the_rest_of_a_batch_when_the_distributor_goes_down(
    database: Database,
) -> None:
    _pending(database, 6)
    distributor = MemoryDistributor()
    distributor.fail_next(DistributorRejected("no", status=40))
    relay = OutboxRelay(Outbox(database), distributor, clock=lambda: NOW, topic="t", batch_size=6)

    original = distributor.deliver
    delivered: list[Any] = []

    def deliver(message: OutgoingMessage) -> None:
        if len(delivered) == 3:
            raise DistributorUnavailable("down")
        original(message)
        delivered.append(message)

    distributor.deliver = deliver  # type: ignore[method-assign]
    result = relay.run()
    # Row 1 rejected, rows 2-4 delivered, row 5 found the distributor down, row 6 untried.
    assert (result.delivered, result.rejected, result.unavailable) == (3, 1, True)
    counts = Outbox(database).counts("t")
    assert (counts.pending, counts.delivered, counts.failing) == (3, 3, 2)


def test_a_generated_list_answers_look_ups_as_it_serves_its_parts() -> None:
    start = date(2026, 11, 16)
    listed = GeneratedList(5_000, 3, 10, start)
    day_1 = listed.view(start, "k").part(0, 5_000)
    day_2 = listed.view(start + timedelta(days=1), "k").part(0, 5_000)
    assert len(set(day_1)) == len(set(day_2)) == 5_000
    assert len(set(day_1) - set(day_2)) == len(set(day_2) - set(day_1)) == 25
    for subject in set(day_1) | set(day_2):
        assert listed.contains(subject, start) == (subject in set(day_1))
        assert listed.contains(subject, start + timedelta(days=1)) == (subject in set(day_2))


@pytest.mark.parametrize("ordered", [False, True])
def test_a_list_view_codes_a_slice_as_its_entries(ordered: bool) -> None:
    start = date(2026, 11, 16)
    listed = GeneratedList(5_000, 3, 20, start, ordered)
    for day in range(4):
        view = listed.view(start + timedelta(days=day), "k")
        # Computed a part at a time, not entry by entry (what keeps the register cheap).
        assert view.coded is not None
        # Slices across the end of the kept entries (5,000 - 50 a day), of odd lengths.
        for first, last in [(0, 1_000), (4_850, 4_950), (4_899, 5_000), (4_990, 6_000), (7, 7)]:
            expected = [code_of(*subject) for subject in view.part(first, last)]
            assert view.codes(first, last) == expected
    stored = StoredList(["0101901234", "3112999999"], ["29189846"]).view(start, "k")
    assert stored.codes(0, 10) == [code_of(*subject) for subject in stored.part(0, 10)]


def test_a_stored_list_is_served_whole_in_another_order() -> None:
    cprs = [f"{n:010d}" for n in range(1_000)]
    view = StoredList(list(cprs), ["29189846"]).view(date(2026, 11, 16), "key")
    served = view.part(0, view.count)
    assert sorted(served) == [("cpr", n) for n in cprs] + [("cvr", "29189846")]
    assert served != sorted(served)


@pytest.mark.parametrize("kind", ["cpr", "cvr"])
@pytest.mark.parametrize("change", ["tilmeldt", "afmeldt"])
def test_the_message_builder_gives_the_bytes_of_build_message(kind: Any, change: Any) -> None:
    vocabulary = MessageVocabulary.from_settings(SubscriptionSettings())
    builder = MessageBuilder(
        vocabulary, authority_cvr=CVR, list_date=date(2026, 11, 17), created_at=NOW
    )
    numbers = (
        ["0101901234", "9999999999", "1234567890"]
        if kind == "cpr"
        else ["29189846", "99999999", "12345678"]
    )
    for number in numbers:
        expected = SubscriptionChange(
            authority_cvr=CVR, list_date=date(2026, 11, 17), kind=kind, number=number, change=change
        )
        identifier, body = builder(kind, number, change)
        assert identifier == besked_id(expected)
        assert body.encode() == build_message(expected, vocabulary, created_at=NOW)


def test_a_closed_amqp_distributor_answers_a_batch_unavailable(tmp_path: Path) -> None:
    distributor = AmqpDistributor(
        AmqpDistributorSettings(in_flight=4), FileTokenSource(tmp_path), base_dir=tmp_path
    )
    distributor.close()
    outcome = distributor.deliver_batch(_messages(3))
    assert list(outcome) == [0] and isinstance(outcome[0], DistributorUnavailable)


def test_the_diff_counts_the_outbox_rows_it_wrote_on_every_database(database: Database) -> None:
    store = SnapshotStore(database)

    def message_for(kind: str, number: str, change: Change) -> tuple[str, str]:
        return str(uuid.uuid5(uuid.NAMESPACE_OID, f"{kind}{number}{change}")), "<m/>"

    def night(day: int, numbers: list[int]) -> int:
        snapshot = store.begin(CVR, date(2026, 11, day), NOW)
        store.add(snapshot, [("cpr", f"{n:010d}") for n in numbers])
        return store.complete(
            snapshot, topic="t", message_for=message_for, completed_at=NOW
        ).messages

    assert night(1, list(range(1_500))) == 0
    assert night(2, list(range(500, 2_500))) == 1_500  # 500 gone, 1,000 new
    assert night(3, list(range(1_500))) == 1_500  # the way back: 500 new, 1,000 gone
    # Night 2's changes once more: the same message ids, so no row is written.
    assert night(4, list(range(500, 2_500))) == 0


@pytest.mark.parametrize(
    ("kind", "number", "change"),
    [
        ("cpr", "01019012", "tilmeldt"),
        ("cpr", "010190123x", "afmeldt"),
        ("cvr", "2918984", "tilmeldt"),
        ("cpr", "0101901234", "slettet"),
        ("xyz", "0101901234", "tilmeldt"),
    ],
)
def test_the_message_builder_refuses_a_malformed_change_after_its_template(
    kind: str, number: str, change: str
) -> None:
    builder = MessageBuilder(
        MessageVocabulary.from_settings(SubscriptionSettings()),
        authority_cvr=CVR,
        list_date=date(2026, 11, 17),
        created_at=NOW,
    )
    builder("cpr", "0101901234", "tilmeldt")  # the templates exist: the fast path is taken
    builder("cvr", "29189846", "tilmeldt")
    with pytest.raises(ValueError) as refused:
        builder(kind, number, change)
    assert number not in str(refused.value)
