"""The agreement lifecycle's rules (SPEC §3.4): which action leads where, and which are refused.

Every (status, action) pair is checked against the diagram in the module's docstring, so a
transition added, dropped or pointed elsewhere fails here, as does a refusal with the wrong
error class (an unknown action is a bad request, a known one from the wrong status a refused
transition) or an action that takes something away accepted without a reason.
"""

from __future__ import annotations

import pytest

from serviceplatform.errors import InvalidAdminRequest, InvalidTransition
from serviceplatform.routing.lifecycle import allowed_actions, next_status
from serviceplatform.routing.model import AgreementStatus as S

#: (from, action) -> to, copied from the diagram; every other pair is refused.
ALLOWED = {
    (S.REQUESTED, "approve"): S.APPROVED,
    (S.REQUESTED, "reject"): S.REJECTED,
    (S.APPROVED, "suspend"): S.SUSPENDED,
    (S.SUSPENDED, "resume"): S.APPROVED,
    (S.APPROVED, "revoke"): S.REVOKED,
    (S.SUSPENDED, "revoke"): S.REVOKED,
}
ACTIONS = ("approve", "reject", "suspend", "resume", "revoke")


@pytest.mark.parametrize("current", list(S))
@pytest.mark.parametrize("action", ACTIONS)
def test_each_status_and_action_follows_the_diagram(current: S, action: str) -> None:
    expected = ALLOWED.get((current, action))
    if expected is None:
        with pytest.raises(InvalidTransition):
            next_status(current, action, "a reason")
    else:
        assert next_status(current, action, "a reason") is expected


@pytest.mark.parametrize(
    ("current", "expected"),
    [
        (S.REQUESTED, ["approve", "reject"]),
        (S.APPROVED, ["suspend", "revoke"]),
        (S.SUSPENDED, ["resume", "revoke"]),
        (S.REJECTED, []),
        (S.REVOKED, []),
    ],
)
def test_allowed_actions_are_those_next_status_accepts(current: S, expected: list[str]) -> None:
    assert allowed_actions(current) == expected
    for action in expected:
        next_status(current, action, "a reason")


@pytest.mark.parametrize(("current", "action"), [(S.REQUESTED, "reject"), (S.APPROVED, "suspend")])
@pytest.mark.parametrize("reason", [None, "", "   \n"])
def test_taking_something_away_needs_a_reason(current: S, action: str, reason: str | None) -> None:
    with pytest.raises(InvalidAdminRequest):
        next_status(current, action, reason)


@pytest.mark.parametrize("current", [S.APPROVED, S.SUSPENDED])
@pytest.mark.parametrize("reason", [None, " "])
def test_revoking_needs_a_reason(current: S, reason: str | None) -> None:
    with pytest.raises(InvalidAdminRequest):
        next_status(current, "revoke", reason)


def test_approving_and_resuming_need_no_reason() -> None:
    assert next_status(S.REQUESTED, "approve", None) is S.APPROVED
    assert next_status(S.SUSPENDED, "resume", None) is S.APPROVED
    assert next_status(S.SUSPENDED, "resume", "") is S.APPROVED


def test_a_reason_with_text_is_enough() -> None:
    assert next_status(S.APPROVED, "suspend", " unpaid ") is S.SUSPENDED


@pytest.mark.parametrize("action", ["delete", "Approve", "", "approve "])
def test_an_unknown_action_is_a_bad_request_not_a_refused_transition(action: str) -> None:
    with pytest.raises(InvalidAdminRequest) as raised:
        next_status(S.REQUESTED, action, "a reason")
    assert not isinstance(raised.value, InvalidTransition)


def test_the_transition_is_checked_before_the_reason() -> None:
    # Suspending a requested agreement is refused as a transition even without a reason.
    with pytest.raises(InvalidTransition):
        next_status(S.REQUESTED, "suspend", None)
