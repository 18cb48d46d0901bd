"""``bench/mutation.py``'s report: each mutant is counted under its own module."""

from __future__ import annotations

from bench.mutation import module_of, report


def test_every_mutant_is_counted_under_its_own_module() -> None:
    assert module_of("serviceplatform.security.xmldsig_verify.x_verify__mutmut_3") == (
        "serviceplatform.security.xmldsig_verify"
    )
    assert module_of("serviceplatform.store.replay.xǁDbReplayCacheǁpurge__mutmut_1") == (
        "serviceplatform.store.replay"
    )
    states = {
        "serviceplatform.security.xmldsig_verify.x_verify__mutmut_1": "killed",
        "serviceplatform.security.xmldsig_verify.x_verify__mutmut_2": "survived",
        "serviceplatform.security.token.x_read__mutmut_1": "killed",
    }
    table, met = report(states, ["serviceplatform.security.*"])
    assert not met
    rows = {line.split()[0]: line.split()[1:] for line in table.splitlines() if line.strip()}
    assert rows["serviceplatform.security.xmldsig_verify"][:2] == ["1", "1"]
    assert rows["serviceplatform.security.token"][:2] == ["1", "0"]
