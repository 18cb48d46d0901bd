"""The NemSMS rules: channel, priority, recipient, file format, length and sending hours."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from integrations.sf2250.errors import (
    SmsChannelNotServed,
    SmsContentInvalid,
    SmsFileFormat,
    SmsOutsideSendingHours,
    SmsPriorityNotServed,
    SmsRecipientMissing,
    SmsTooLong,
)
from integrations.sf2250.messages import Subject
from integrations.sf2250.sf1600.messages import AfsendBrev
from integrations.sf2250.sf1600.sms_rules import check_sms, within_sending_hours
from serviceplatform.errors import ServicePlatformError

#: 12:00 Danish winter time.
NOON = datetime(2026, 1, 15, 11, 0, tzinfo=UTC)


def brev(text: str = "Husk din tid i morgen kl. 10", **changes: object) -> AfsendBrev:
    base = AfsendBrev(
        kanalvalg="D",
        prioritet="D",
        afsendelse_id="sms-1",
        recipient=Subject("cpr", "0101901234"),
        filformat="TXT",
        content=text.encode("utf-8"),
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def test_a_good_sms_passes_and_gives_its_text() -> None:
    assert check_sms(brev("Hej"), NOON) == "Hej"


@pytest.mark.parametrize(("length", "ok"), [(159, True), (160, True), (161, False)])
def test_at_most_160_characters(length: int, ok: bool) -> None:
    request = brev("x" * length)
    if ok:
        assert len(check_sms(request, NOON)) == length
    else:
        with pytest.raises(SmsTooLong, match="161 characters"):
            check_sms(request, NOON)


def test_length_counts_characters_not_bytes() -> None:
    # 160 Danish letters are 320 bytes of UTF-8 and still one SMS.
    assert len(check_sms(brev("æ" * 160), NOON)) == 160
    with pytest.raises(SmsTooLong):
        check_sms(brev("ø" * 161), NOON)


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"kanalvalg": "F"}, SmsChannelNotServed),
        ({"kanalvalg": "A"}, SmsChannelNotServed),
        ({"kanalvalg": "P"}, SmsChannelNotServed),
        ({"prioritet": "M"}, SmsPriorityNotServed),
        ({"recipient": None}, SmsRecipientMissing),
        ({"filformat": "PDF"}, SmsFileFormat),
        ({"filformat": ""}, SmsFileFormat),
        ({"content": b"\xff\xfe"}, SmsContentInvalid),
        ({"content": b"   "}, SmsContentInvalid),
    ],
)
def test_each_rule_has_its_own_error(
    changes: dict[str, object], error: type[ServicePlatformError]
) -> None:
    with pytest.raises(error):
        check_sms(brev(**changes), NOON)  # type: ignore[arg-type]


def test_channel_s_is_nemsms_too_and_file_format_ignores_case() -> None:
    assert check_sms(brev("Hej", kanalvalg="S", filformat="txt"), NOON) == "Hej"


def test_the_codes_are_distinct() -> None:
    errors = [
        SmsTooLong,
        SmsFileFormat,
        SmsOutsideSendingHours,
        SmsChannelNotServed,
        SmsPriorityNotServed,
        SmsContentInvalid,
        SmsRecipientMissing,
    ]
    assert len({error.code for error in errors}) == len(errors)


def _utc(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


# Local Danish wall-clock times, written with their UTC offset so the instant is exact.
EDGES = [
    # winter (CET, +01:00)
    ("2026-01-15T07:59:59+01:00", False),
    ("2026-01-15T08:00:00+01:00", True),
    ("2026-01-15T21:59:59+01:00", True),
    ("2026-01-15T22:00:00+01:00", False),
    # summer (CEST, +02:00)
    ("2026-07-15T07:59:59+02:00", False),
    ("2026-07-15T08:00:00+02:00", True),
    ("2026-07-15T21:59:59+02:00", True),
    ("2026-07-15T22:00:00+02:00", False),
    # 2026-03-29: clocks go from 02:00 CET to 03:00 CEST, so both edges are in summer time
    ("2026-03-29T07:59:59+02:00", False),
    ("2026-03-29T08:00:00+02:00", True),
    ("2026-03-29T21:59:59+02:00", True),
    ("2026-03-29T22:00:00+02:00", False),
    # 2026-10-25: clocks go from 03:00 CEST back to 02:00 CET, both edges in winter time
    ("2026-10-25T07:59:59+01:00", False),
    ("2026-10-25T08:00:00+01:00", True),
    ("2026-10-25T21:59:59+01:00", True),
    ("2026-10-25T22:00:00+01:00", False),
]


@pytest.mark.parametrize(("local", "open_"), EDGES)
def test_sending_hours_edges_in_danish_time(local: str, open_: bool) -> None:
    now = _utc(local)
    assert within_sending_hours(now) is open_
    if open_:
        assert check_sms(brev(), now)
    else:
        with pytest.raises(SmsOutsideSendingHours):
            check_sms(brev(), now)


def test_a_utc_clock_that_forgets_daylight_saving_would_be_wrong_here() -> None:
    # 06:30 UTC on the summer change day is 08:30 in Denmark (open), 07:30 in winter time.
    assert within_sending_hours(datetime(2026, 3, 29, 6, 30, tzinfo=UTC))
    assert not within_sending_hours(datetime(2026, 3, 28, 6, 30, tzinfo=UTC))
    # 20:30 UTC the day the clocks go back is 21:30 in Denmark (open); the day before 22:30.
    assert within_sending_hours(datetime(2026, 10, 25, 20, 30, tzinfo=UTC))
    assert not within_sending_hours(datetime(2026, 10, 24, 20, 30, tzinfo=UTC))


def test_naive_time_is_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        within_sending_hours(datetime(2026, 1, 15, 12, 0))


def test_the_outside_hours_fault_names_the_danish_time() -> None:
    with pytest.raises(SmsOutsideSendingHours, match="22:00:00"):
        check_sms(brev(), _utc("2026-01-15T22:00:00+01:00"))
    assert _utc("2026-01-15T22:00:00+01:00") - NOON == timedelta(hours=10)
