"""Tests for harness.verdict: what a verdict is, how runs combine, the axes a table answers."""

from __future__ import annotations

import pytest

from harness.model.verdict import Axis, Decision, Verdict, combine

pytestmark = pytest.mark.pure

# -- combine ---------------------------------------------------------------------

PASS = Decision(Verdict.PASS, "socket kept through 3 worker restarts; 5/5 new connections served")
FAIL = Decision(
    Verdict.FAIL, "socket file gone after the 1st worker restart; 0/5 new connections served", "tb"
)
ERROR = Decision(Verdict.ERROR, "no worker ever recycled (load finished after 10 requests)")


def test_combine_single_outcome_is_unchanged():
    out = combine([FAIL])
    assert out.verdict is Verdict.FAIL
    assert out.detail == FAIL.detail
    assert out.runs == (Verdict.FAIL,)


@pytest.mark.parametrize("outcome", [PASS, FAIL, ERROR])
def test_combine_agreement_keeps_the_verdict(outcome):
    out = combine([outcome] * 3)
    assert out.verdict is outcome.verdict
    assert outcome.detail in out.detail
    assert "3/3 runs" in out.detail
    assert out.runs == (outcome.verdict,) * 3


def test_combine_disagreement_is_flaky_with_counts_and_a_failing_example():
    out = combine([PASS, FAIL, PASS])
    assert out.verdict is Verdict.FLAKY
    assert "3 runs" in out.detail
    assert "2 pass" in out.detail
    assert "1 fail" in out.detail
    assert FAIL.detail in out.detail
    assert out.traceback == "tb"
    assert out.runs == (Verdict.PASS, Verdict.FAIL, Verdict.PASS)
    assert not out.verdict.testable


def test_combine_error_among_passes_is_flaky():
    out = combine([PASS, PASS, ERROR])
    assert out.verdict is Verdict.FLAKY
    assert "2 pass" in out.detail
    assert "1 error" in out.detail
    assert not out.verdict.testable


def test_combine_needs_an_outcome():
    with pytest.raises(ValueError):
        combine([])


def test_only_pass_and_fail_are_testable():
    assert Verdict.PASS.testable and Verdict.FAIL.testable
    assert not Verdict.ERROR.testable and not Verdict.FLAKY.testable
    assert not Verdict.OUTAGE.testable


def test_an_outage_among_passes_is_flaky_and_quoted():
    outage = Decision(Verdict.OUTAGE, "socket file kept, but no answer")
    out = combine([PASS, outage])
    assert out.verdict is Verdict.FLAKY
    assert "e.g. socket file kept, but no answer" in out.detail


def test_axis_states():
    """The #1298 axis skips an outage; the outage axis skips a #1298 fail."""
    primary = Axis("primary", Verdict.PASS, Verdict.FAIL, "pass", "fail")
    outage = Axis("outage", Verdict.PASS, Verdict.OUTAGE, "serves", "outage", label="x")
    assert [primary.state(v) for v in Verdict] == [True, False, None, None, None]
    assert [outage.state(v) for v in Verdict] == [True, None, False, None, None]
    assert primary.primary and not outage.primary
