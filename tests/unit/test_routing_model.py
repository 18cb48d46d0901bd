"""The routing values' own rules: a row's key, an active system, a certificate's acceptance
window (a rotation's overlap) and an agreement's validity days, each at its edge."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from serviceplatform.routing.model import (
    Agreement,
    AgreementStatus,
    ConsumerSystem,
    Route,
    RouteRow,
    SystemCertificate,
)

FROM = datetime(2026, 12, 6, 13, 20, tzinfo=UTC)
UNTIL = datetime(2026, 12, 20, 13, 20, tzinfo=UTC)
TICK = timedelta(microseconds=1)


def _certificate(accepted_until: datetime | None) -> SystemCertificate:
    return SystemCertificate(
        consumer_system="0d7fcabb-3505-4065-a006-d48b1cf50cc2",
        fingerprint="ab" * 32,
        subject="CN=Case",
        issuer="CN=CA",
        not_before=FROM - timedelta(days=30),
        not_after=FROM + timedelta(days=365),
        accepted_from=FROM,
        accepted_until=accepted_until,
    )


def _agreement(
    status: AgreementStatus = AgreementStatus.APPROVED,
    valid_from: date | None = date(2025, 1, 1),
    valid_to: date | None = date(2025, 12, 31),
    alias: str | None = None,
) -> Agreement:
    return Agreement(
        uuid="9d3d53a2-af28-4372-9c0a-25550c8d048a",
        authority_cvr="29189846",
        service="sf2250",
        consumer_system="0d7fcabb-3505-4065-a006-d48b1cf50cc2",
        supplier="Supplier",
        status=status,
        register_cert_alias=alias,
        valid_from=valid_from,
        valid_to=valid_to,
    )


def test_a_route_rows_key_tells_the_subject_row_from_the_authority_wide_one() -> None:
    wide = RouteRow("29189846", "sf2250", "register", "2250001")
    narrow = RouteRow("29189846", "sf2250", "register", "2250002", subject="0101901234")
    assert wide.key == ("29189846", "sf2250", "register", "")
    assert narrow.key == ("29189846", "sf2250", "register", "0101901234")


def test_a_consumer_system_is_active_until_deactivated() -> None:
    system = ConsumerSystem("u", "Case", "12345674")
    assert system.active
    assert not ConsumerSystem("u", "Case", "12345674", deactivated_at=FROM).active


@pytest.mark.parametrize(
    ("moment", "accepted"),
    [
        (FROM - TICK, False),
        (FROM, True),
        (UNTIL - TICK, True),
        (UNTIL, False),  # the old certificate's last instant is exclusive
        (UNTIL + TICK, False),
    ],
)
def test_a_certificate_is_accepted_inside_its_window(moment: datetime, accepted: bool) -> None:
    assert _certificate(UNTIL).accepted_at(moment) is accepted


def test_a_certificate_without_an_end_is_accepted_from_its_start_on() -> None:
    open_ended = _certificate(None)
    assert not open_ended.accepted_at(FROM - TICK)
    assert open_ended.accepted_at(FROM)
    assert open_ended.accepted_at(FROM + timedelta(days=3650))


def test_the_window_for_people() -> None:
    assert _certificate(UNTIL).window == "2026-12-06 13:20Z .. 2026-12-20 13:20Z"
    assert _certificate(None).window == "2026-12-06 13:20Z .. -"


@pytest.mark.parametrize(
    ("day", "active"),
    [
        (date(2024, 12, 31), False),
        (date(2025, 1, 1), True),  # the first day counts
        (date(2025, 12, 31), True),  # and so does the last
        (date(2026, 1, 1), False),
    ],
)
def test_an_approved_agreement_routes_on_its_validity_days(day: date, active: bool) -> None:
    assert _agreement().active_on(day) is active


def test_an_agreement_without_bounds_is_active_on_any_day() -> None:
    unbounded = _agreement(valid_from=None, valid_to=None)
    assert unbounded.active_on(date(1900, 1, 1))
    assert unbounded.active_on(date(2999, 12, 31))
    assert not _agreement(valid_to=None).active_on(date(2024, 12, 31))
    assert _agreement(valid_to=None).active_on(date(2999, 12, 31))
    assert not _agreement(valid_from=None).active_on(date(2026, 1, 1))
    assert _agreement(valid_from=None).active_on(date(1900, 1, 1))


@pytest.mark.parametrize(
    "status", [s for s in AgreementStatus if s is not AgreementStatus.APPROVED]
)
def test_only_an_approved_agreement_routes(status: AgreementStatus) -> None:
    assert not _agreement(status=status, valid_from=None, valid_to=None).active_on(date(2025, 6, 1))


def test_a_route_calls_out_with_its_agreements_certificate() -> None:
    assert Route(_agreement(alias="reg-cert")).cert_alias == "reg-cert"
    assert Route(_agreement()).cert_alias is None
    assert Route(_agreement()).sysids == {}
