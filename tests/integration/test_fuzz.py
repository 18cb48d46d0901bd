"""A short fuzz run (``bench/fuzz.py``) against a real sandbox: only valid answers or faults.

The long run (10,000 cases and more) is ``.venv/bin/python bench/fuzz.py``; this one keeps the
fuzzer working and the front's answers sound in every ``make test``.
"""

from __future__ import annotations

import logging

from bench.fuzz import BYTE_MUTATORS, TREE_MUTATORS, LogWatch, judge, run_fuzz

CASES = 300


def test_short_fuzz_run_finds_no_problem() -> None:
    report = run_fuzz(CASES, seed=16)

    assert report.problems == []
    assert report.cases == CASES
    # The run reached past the front: valid answers and faults of several layers.
    assert report.outcomes["ok"] > 0
    codes = {outcome[6:10] for outcome in report.outcomes if outcome.startswith("fault")}
    assert {"SP-1", "SP-2"} <= codes
    assert report.outward_calls > 0
    # Every kind of mutation was tried.
    kinds = {"none", *(f"body-{name}" for name in TREE_MUTATORS), *BYTE_MUTATORS}
    assert set(report.mutations) == kinds


def test_the_judge_refuses_what_is_not_a_platform_answer() -> None:
    spf = "http://serviceplatformen.dk/xml/schemas/ServiceplatformFault/1/"
    soap = "http://www.w3.org/2003/05/soap-envelope"

    def fault(code: str) -> bytes:
        return (
            f'<s:Envelope xmlns:s="{soap}"><s:Body><s:Fault><s:Detail>'
            f'<f:ServiceplatformFault xmlns:f="{spf}"><f:ErrorList><f:Error>'
            f"<f:ErrorCode>{code}</f:ErrorCode><f:ErrorText>x</f:ErrorText>"
            "</f:Error></f:ErrorList></f:ServiceplatformFault></s:Detail></s:Fault>"
            "</s:Body></s:Envelope>"
        ).encode()

    assert judge("400 Bad Request", fault("SP-101")) == "fault SP-101"
    assert judge("500 Internal Server Error", fault("SP-900")).startswith("problem: SP-900")
    assert judge("500 Internal Server Error", b"Internal Server Error").startswith("problem")
    empty_fault = f'<s:Envelope xmlns:s="{soap}"><s:Body><s:Fault/></s:Body></s:Envelope>'
    assert judge("500 x", empty_fault.encode()).startswith("problem")
    answer = f'<s:Envelope xmlns:s="{soap}"><s:Body><r/></s:Body></s:Envelope>'.encode()
    assert judge("200 OK", answer) == "ok"
    assert judge("500 x", answer).startswith("problem")


def test_the_log_watch_sees_tracebacks() -> None:
    watch = LogWatch()
    logger = logging.getLogger("fuzz-test")
    logger.addHandler(watch)
    try:
        logger.warning("plain")
        try:
            raise ValueError("boom")
        except ValueError:
            logger.exception("failed")
    finally:
        logger.removeHandler(watch)
    assert len(watch.bad) == 1 and "failed" in watch.bad[0]
