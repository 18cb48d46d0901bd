"""resolve(): every branch from agreement to route."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import pytest

from serviceplatform.errors import AgreementNotActive, CertificateUnavailable, NoAgreement, NoRoute
from serviceplatform.routing.model import Agreement, AgreementStatus, Route
from serviceplatform.routing.resolve import resolve

A = "29189846"
SYSTEM = "0d7fcabb-3505-4065-a006-d48b1cf50cc2"
TODAY = date(2025, 6, 1)
ROLES = ("register",)
SYSIDS = {"register": "2250001", "nemsms": "2250002"}
APPROVED = Agreement(
    uuid="9d3d53a2-af28-4372-9c0a-25550c8d048a",
    authority_cvr=A,
    service="sf2250",
    consumer_system=SYSTEM,
    supplier="Supplier",
    status=AgreementStatus.APPROVED,
    register_cert_alias="platform-register",
    valid_from=date(2024, 1, 1),
)


def _resolve(
    agreements: list[Agreement],
    sysids: dict[str, str] | None = None,
    roles: tuple[str, ...] = ROLES,
    subject: str | None = None,
) -> Route:
    return resolve(
        authority_cvr=A,
        service="sf2250",
        consumer_system=SYSTEM,
        subject=subject,
        agreements=agreements,
        sysids=SYSIDS if sysids is None else sysids,
        required_roles=roles,
        today=TODAY,
    )


def test_an_active_approved_agreement_and_the_roles_give_a_route() -> None:
    route = _resolve([APPROVED])
    assert route.agreement == APPROVED
    assert route.sysids == SYSIDS
    assert route.cert_alias == "platform-register"


def test_no_agreement_at_all() -> None:
    with pytest.raises(NoAgreement) as caught:
        _resolve([])
    assert caught.value.code == "SP-301"
    assert A in (caught.value.detail or "")


@pytest.mark.parametrize(
    "other",
    [
        replace(APPROVED, authority_cvr="29189854"),
        replace(APPROVED, service="sf1600"),
        replace(APPROVED, consumer_system="12069fae-abb0-4431-b6d2-7ac06824d203"),
    ],
)
def test_agreements_for_something_else_do_not_count(other: Agreement) -> None:
    with pytest.raises(NoAgreement):
        _resolve([other])


@pytest.mark.parametrize(
    ("agreement", "why"),
    [
        (replace(APPROVED, status=AgreementStatus.SUSPENDED), "is suspended"),
        (replace(APPROVED, status=AgreementStatus.REVOKED), "is revoked"),
        (replace(APPROVED, status=AgreementStatus.REQUESTED), "is requested"),
        (replace(APPROVED, status=AgreementStatus.REJECTED), "is rejected"),
        (replace(APPROVED, valid_from=date(2025, 6, 2)), "starts 2025-06-02"),
        (replace(APPROVED, valid_to=date(2025, 5, 31)), "ended 2025-05-31"),
    ],
)
def test_only_inactive_agreements(agreement: Agreement, why: str) -> None:
    with pytest.raises(AgreementNotActive) as caught:
        _resolve([agreement])
    assert caught.value.code == "SP-302"
    assert f"{agreement.uuid} {why}" in (caught.value.detail or "")


def test_validity_bounds_are_inclusive() -> None:
    first_day = replace(APPROVED, valid_from=TODAY, valid_to=TODAY)
    assert _resolve([first_day]).agreement == first_day


def test_the_active_one_wins_over_inactive_ones() -> None:
    old = replace(
        APPROVED, uuid="34b50286-7ef2-487a-85e9-4b28bcb1daa8", valid_to=date(2024, 12, 31)
    )
    suspended = replace(
        APPROVED, uuid="5c7cdb9a-1b4f-43c1-a006-6ceeda4af3f5", status=AgreementStatus.SUSPENDED
    )
    assert _resolve([old, APPROVED, suspended]).agreement == APPROVED


def test_of_several_active_agreements_the_newest_is_chosen() -> None:
    newer = replace(
        APPROVED, uuid="34b50286-7ef2-487a-85e9-4b28bcb1daa8", valid_from=date(2025, 1, 1)
    )
    assert _resolve([newer, APPROVED]).agreement == newer
    assert _resolve([APPROVED, newer]).agreement == newer


def test_a_missing_role_is_no_route_naming_it() -> None:
    with pytest.raises(NoRoute) as caught:
        _resolve([APPROVED], sysids={"nemsms": "2250002"}, roles=("register", "nemsms"))
    assert caught.value.code == "SP-303"
    assert "role register" in (caught.value.detail or "")


def test_no_sysids_at_all_is_no_route() -> None:
    with pytest.raises(NoRoute, match="afsender"):
        _resolve([APPROVED], sysids={}, roles=("afsender",))


def test_the_subject_is_never_echoed_in_a_fault() -> None:
    with pytest.raises(NoRoute) as caught:
        _resolve([APPROVED], sysids={}, subject="0101901234")
    assert "0101901234" not in caught.value.error_text
    assert "for this subject or authority-wide" in caught.value.error_text


def test_agreement_is_checked_before_routes() -> None:
    with pytest.raises(NoAgreement):
        _resolve([], sysids={})
    with pytest.raises(AgreementNotActive):
        _resolve([replace(APPROVED, status=AgreementStatus.REVOKED)], sysids={})


def test_no_roles_required_needs_only_the_agreement() -> None:
    assert _resolve([APPROVED], sysids={}, roles=()).sysids == {}


def test_every_inactive_agreement_is_described_in_uuid_order() -> None:
    later = replace(
        APPROVED, uuid="fb6a4b0c-0d1c-4b8e-9d5e-1a2b3c4d5e6f", status=AgreementStatus.REVOKED
    )
    earlier = replace(
        APPROVED, uuid="0a6a4b0c-0d1c-4b8e-9d5e-1a2b3c4d5e6f", valid_to=date(2025, 5, 31)
    )
    with pytest.raises(AgreementNotActive) as caught:
        _resolve([later, earlier])
    assert (caught.value.detail or "").endswith(
        f": {earlier.uuid} ended 2025-05-31; {later.uuid} is revoked"
    )


def test_an_agreement_starting_tomorrow_is_described_as_starting() -> None:
    tomorrow = replace(APPROVED, valid_from=date(2025, 6, 2), valid_to=date(2025, 6, 30))
    with pytest.raises(AgreementNotActive) as caught:
        _resolve([tomorrow])
    assert (caught.value.detail or "").endswith(f": {APPROVED.uuid} starts 2025-06-02")


def test_of_active_agreements_starting_the_same_day_the_highest_uuid_is_chosen() -> None:
    low = replace(APPROVED, uuid="0a6a4b0c-0d1c-4b8e-9d5e-1a2b3c4d5e6f")
    high = replace(APPROVED, uuid="fb6a4b0c-0d1c-4b8e-9d5e-1a2b3c4d5e6f")
    assert _resolve([high, low]).agreement == high
    assert _resolve([low, high]).agreement == high


def test_an_agreement_with_a_start_day_wins_over_one_without() -> None:
    unbounded = replace(APPROVED, uuid="fb6a4b0c-0d1c-4b8e-9d5e-1a2b3c4d5e6f", valid_from=None)
    assert _resolve([unbounded, APPROVED]).agreement == APPROVED
    assert _resolve([APPROVED, unbounded]).agreement == APPROVED


def test_a_missing_authority_wide_role_says_so() -> None:
    with pytest.raises(NoRoute) as caught:
        _resolve([APPROVED], sysids={})
    assert "(authority-wide)" in caught.value.error_text


def test_the_route_keeps_its_own_copy_of_the_sysids() -> None:
    sysids = {"register": "2250001"}
    route = _resolve([APPROVED], sysids=sysids)
    sysids["register"] = "changed"
    assert route.sysids == {"register": "2250001"}


def _with_certificate(agreement: Agreement, needs_certificate: bool) -> Route:
    return resolve(
        authority_cvr=A,
        service="sf2250",
        consumer_system=SYSTEM,
        subject=None,
        agreements=[agreement],
        sysids=SYSIDS,
        required_roles=ROLES,
        today=TODAY,
        needs_certificate=needs_certificate,
    )


def test_a_certificate_is_needed_only_when_the_service_calls_out_with_one() -> None:
    without = replace(APPROVED, register_cert_alias=None)
    assert _resolve([without]).cert_alias is None  # by default no certificate is needed
    assert _with_certificate(without, needs_certificate=False).agreement == without
    assert _with_certificate(APPROVED, needs_certificate=True).cert_alias == "platform-register"
    with pytest.raises(CertificateUnavailable) as caught:
        _with_certificate(without, needs_certificate=True)
    assert caught.value.code == "SP-420"


def test_a_missing_role_is_reported_before_a_missing_certificate() -> None:
    with pytest.raises(NoRoute):
        resolve(
            authority_cvr=A,
            service="sf2250",
            consumer_system=SYSTEM,
            subject=None,
            agreements=[replace(APPROVED, register_cert_alias=None)],
            sysids={},
            required_roles=ROLES,
            today=TODAY,
            needs_certificate=True,
        )


def test_the_scope_of_a_missing_role_for_a_subject() -> None:
    with pytest.raises(NoRoute) as caught:
        _resolve([APPROVED], sysids={}, subject="12345674")
    assert "(for this subject or authority-wide)" in caught.value.error_text


def test_an_agreement_starting_today_but_already_ended_is_described_as_ended() -> None:
    # Not yet started means strictly after today; the agreements file refuses such a pair.
    odd = replace(APPROVED, valid_from=TODAY, valid_to=date(2025, 5, 31))
    with pytest.raises(AgreementNotActive) as caught:
        _resolve([odd])
    assert (caught.value.detail or "").endswith(f": {APPROVED.uuid} ended 2025-05-31")
