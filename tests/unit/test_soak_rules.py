"""The soak's verdict rules (bench/soak_rules.py): explained failures and growth."""

from __future__ import annotations

from bench.soak_rules import (
    Failure,
    Injection,
    Tolerance,
    explain,
    growth,
    settle_seconds,
)

WINDOW = 5.0


def test_a_failure_of_the_injected_kind_during_its_window_is_explained() -> None:
    injections = [Injection(10.0, "503", 3), Injection(30.0, "reset", 3)]
    failures = [Failure(10.2, 10.4, "SP-404"), Failure(29.9, 30.3, "SP-401")]
    explained, unexplained = explain(failures, injections, WINDOW)
    assert explained == failures and unexplained == []


def test_the_wrong_code_no_code_or_no_injection_around_is_unexplained() -> None:
    injections = [Injection(10.0, "503", 3)]
    wrong_kind = Failure(10.2, 10.4, "SP-401")  # a reset's code, but a 503 was injected
    internal = Failure(10.2, 10.4, "SP-900")
    no_fault = Failure(10.2, 10.4, None, "ConnectionResetError")
    before = Failure(8.0, 9.9, "SP-404")
    after = Failure(15.1, 15.3, "SP-404")
    failures = [wrong_kind, internal, no_fault, before, after]
    explained, unexplained = explain(failures, injections, WINDOW)
    assert explained == [] and sorted(unexplained, key=id) == sorted(failures, key=id)


def test_an_injection_explains_at_most_its_count_and_the_earlier_is_charged_first() -> None:
    injections = [Injection(10.0, "503", 1), Injection(12.0, "503", 1)]
    failures = [Failure(12.1, 12.2, "SP-404"), Failure(12.3, 12.4, "SP-404")]
    failures.append(Failure(12.5, 12.6, "SP-404"))
    explained, unexplained = explain(failures, injections, WINDOW)
    assert explained == failures[:2] and unexplained == failures[2:]


def test_a_request_in_flight_when_the_fault_was_injected_is_covered() -> None:
    explained, _ = explain([Failure(9.5, 10.5, "SP-401")], [Injection(10.0, "reset", 1)], WINDOW)
    assert len(explained) == 1


TOLERANCE = Tolerance(absolute=10.0, share=0.05)


def _series(values: list[float], start: float = 0.0) -> list[tuple[float, float]]:
    return [(start + 5.0 * index, value) for index, value in enumerate(values)]


def test_steady_growth_after_the_settle_time_fails() -> None:
    leak = _series([100.0 + 2.0 * n for n in range(30)])
    verdict = growth(leak, settle_until=0.0, tolerance=TOLERANCE)
    assert verdict.grew and verdict.change > 10.0


def test_noise_and_a_one_off_step_within_the_tolerance_pass() -> None:
    noisy = _series([100.0, 104.0, 98.0, 103.0, 99.0, 101.0] * 5)
    assert not growth(noisy, settle_until=0.0, tolerance=TOLERANCE).grew
    # A spike in the last third does not move its median.
    spiky = _series([100.0] * 29 + [400.0])
    assert not growth(spiky, settle_until=0.0, tolerance=TOLERANCE).grew


def test_growth_must_exceed_both_the_absolute_and_the_relative_tolerance() -> None:
    # +20 on 1000 is above 10 but below 5% (50): flat.
    big = _series([1000.0] * 10 + [1010.0] * 10 + [1020.0] * 10)
    assert not growth(big, settle_until=0.0, tolerance=TOLERANCE).grew
    # +8 on 20 is 40% but below 10: flat.
    small = _series([20.0] * 10 + [24.0] * 10 + [28.0] * 10)
    assert not growth(small, settle_until=0.0, tolerance=TOLERANCE).grew


def test_the_settle_time_is_left_out() -> None:
    # Caches fill in the first minute (to t=60), then it is flat.
    warming = _series([50.0 + 5.0 * n for n in range(12)] + [110.0] * 24)
    assert growth(warming, settle_until=0.0, tolerance=TOLERANCE).grew
    assert not growth(warming, settle_until=60.0, tolerance=TOLERANCE).grew


def test_too_few_samples_give_no_pass() -> None:
    verdict = growth(_series([1.0, 1.0]), settle_until=0.0, tolerance=TOLERANCE)
    assert verdict.grew and verdict.problem


def test_the_settle_time_is_a_fifth_of_the_soak_at_most_five_minutes() -> None:
    assert settle_seconds(120.0) == 24.0
    assert settle_seconds(1800.0) == 300.0
