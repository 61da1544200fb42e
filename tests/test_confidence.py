"""Tests for harness.model.confidence: the flake-aware culprit search against simulated oracles.

The oracle is a history of ``n`` revisions with a planted first changed one; a broken
revision fails at ``rate``, a healthy one at ``false``.  Seeds are fixed, so every test
gives the same answer on every machine.
"""

from __future__ import annotations

import math
import random
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.model.confidence import (
    ContradictoryRuns,
    CulpritSearch,
    Finding,
    Prior,
    drive,
    judge,
    passes_to_clear,
)
from harness.model.errors import HarnessError
from harness.model.search import Bisection, Outcome

pytestmark = pytest.mark.pure

DETERMINISTIC = Prior.deterministic()


def names(n: int) -> list[str]:
    return [f"r{i:02d}" for i in range(n)]


def oracle(culprit: int, rate: float, false: float, seed: int, fix: bool = False):
    """observe() for drive(): revision i is broken from ``culprit`` on (before it, for a fix)."""
    rng = random.Random(seed)

    def observe(batch: list[str]) -> list[bool]:
        out = []
        for rev in batch:
            i = int(rev[1:])
            broken = (i < culprit) if fix else (i >= culprit)
            out.append(rng.random() < (rate if broken else false))
        return out

    return observe


def plain_bisection_runs(n: int, culprit: int) -> int:
    """How many tests search.Bisection (git's rule) takes on the same linear history."""
    revs = names(n)
    b = Bisection({r: [p] for p, r in zip(revs, revs[1:])} | {revs[0]: []}, revs[0], revs[-1])
    runs = 0
    while b.result().status == "pending":
        (rev,) = b.next_steps(1)
        b.record(rev, Outcome.NEW if int(rev[1:]) >= culprit else Outcome.OLD)
        runs += 1
    assert b.result().commit == revs[culprit]
    return runs


# -- deterministic: plain bisection's answer at plain bisection's cost -----------------------


@given(st.integers(2, 40).flatmap(lambda n: st.tuples(st.just(n), st.integers(1, n - 1))))
@settings(max_examples=60, deadline=None)
def test_deterministic_prior_is_plain_bisection(case: tuple[int, int]) -> None:
    n, culprit = case
    search = CulpritSearch(names(n), DETERMINISTIC)
    found = drive(search, oracle(culprit, 1.0, 0.0, seed=0))
    assert found.status == "confident" and found.culprit == names(n)[culprit]
    assert found.posterior == 1.0
    assert found.runs <= math.ceil(math.log2(n - 1))  # git's worst case, never more


@pytest.mark.parametrize("fix", [False, True])
@pytest.mark.parametrize("n", [2, 3, 9, 16, 33])
def test_deterministic_costs_what_git_bisect_costs_over_every_culprit(n: int, fix: bool) -> None:
    """A fix too: its search runs the other way (failing before, passing from the culprit)."""
    ours = sum(
        drive(CulpritSearch(names(n), DETERMINISTIC, fix=fix), oracle(c, 1.0, 0.0, 0, fix)).runs
        for c in range(1, n)
    )
    assert ours == sum(plain_bisection_runs(n, c) for c in range(1, n))


@given(st.integers(3, 30), st.integers(2, 4), st.data())
@settings(max_examples=30, deadline=None)
def test_k_steps_at_once_name_the_same_culprit_in_fewer_rounds(n: int, k: int, data) -> None:
    culprit = data.draw(st.integers(1, n - 1))
    rounds = {}
    for width in (1, k):
        search = CulpritSearch(names(n), DETERMINISTIC)
        rounds[width] = 0
        while search.result().status == "pending":
            batch = search.next_steps(width)
            assert 1 <= len(batch) <= width
            for rev, failed in zip(batch, oracle(culprit, 1.0, 0.0, 0)(batch)):
                search.record(rev, failed)
            rounds[width] += 1
        assert search.result().culprit == names(n)[culprit]
    assert rounds[k] <= rounds[1]


def test_a_run_the_deterministic_prior_cannot_explain_is_refused_and_forgotten() -> None:
    search = CulpritSearch(names(5), DETERMINISTIC)
    search.record("r02", failed=True)
    with pytest.raises(ContradictoryRuns) as raised:
        search.record("r03", failed=False)  # broken from r02 at the latest, yet r03 passed
    assert isinstance(raised.value, HarnessError)
    assert search.tally("r03").runs == 0 and search.runs == 1


# -- the posterior -----------------------------------------------------------------------

runs_st = st.lists(st.tuples(st.integers(0, 7), st.booleans()), max_size=25)


@given(runs_st, st.booleans())
@settings(max_examples=60, deadline=None)
def test_posterior_is_a_distribution_that_ignores_the_order_of_runs(runs, fix: bool) -> None:
    revs = names(8)
    forward, backward = CulpritSearch(revs, fix=fix), CulpritSearch(revs, fix=fix)
    for i, failed in runs:
        forward.record(revs[i], failed)
    for i, failed in reversed(runs):
        backward.record(revs[i], failed)
    post = forward.posterior()
    assert set(post) == set(revs[1:])
    assert math.isclose(sum(post.values()), 1.0) and min(post.values()) >= 0.0
    for rev, p in backward.posterior().items():
        assert math.isclose(p, post[rev], abs_tol=1e-12)


@given(st.integers(1, 7), runs_st)
@settings(max_examples=60, deadline=None)
def test_with_no_false_failures_a_fail_rules_out_every_later_culprit(j: int, runs) -> None:
    revs = names(8)
    search = CulpritSearch(revs, Prior(false_rates=(0.0,)))
    for i, failed in runs:
        if not (failed and i == 0):  # r00 is the known good one: it cannot fail
            search.record(revs[i], failed)
    search.record(revs[j], failed=True)
    for rev, p in search.posterior().items():
        if int(rev[1:]) > j:
            assert p == 0.0


def test_a_fix_is_a_regression_read_backwards() -> None:
    """Same runs, mirrored: the same posterior and the same steps (the fix's rules are the
    regression's, turned around, not a second model)."""
    revs = names(11)
    fix, regression = CulpritSearch(revs, fix=True), CulpritSearch(revs[::-1])
    rng = random.Random(5)
    for _ in range(40):
        (rev,) = fix.next_steps(1)
        assert regression.next_steps(1) == [rev]
        failed = rng.random() < (0.6 if int(rev[1:]) < 6 else 0.03)
        fix.record(rev, failed)
        regression.record(rev, failed)
    backwards = regression.posterior()
    for i, p in enumerate(fix.posterior().values(), start=1):
        assert math.isclose(p, backwards[revs[i - 1]], abs_tol=1e-12)


@given(runs_st, st.sets(st.integers(1, 6)), st.integers(1, 4), st.integers(0, 30))
@settings(max_examples=25, deadline=None)
def test_steps_stay_inside_the_budget_and_off_untestable_revisions(
    runs, untestable, k: int, budget: int
) -> None:
    revs = names(8)
    search = CulpritSearch(revs, max_runs=budget + len(runs))
    for i, failed in runs:
        search.record(revs[i], failed)
    for i in untestable:
        search.untestable(revs[i])
    steps = search.next_steps(k)
    assert len(steps) <= min(k, budget)
    skipped = {revs[i] for i in untestable if search.tally(revs[i]).runs == 0}
    assert not skipped & set(steps)
    if search.result().status == "pending":  # the bounds are always testable
        assert steps


def test_bounds_unknown_can_answer_no_culprit() -> None:
    search = CulpritSearch(names(4), bounds_known=False, max_runs=400)
    found = drive(search, oracle(culprit=99, rate=1.0, false=0.0, seed=1))
    assert found.status == "no culprit" and found.culprit is None
    assert "no change up to r03" in found.line()


def test_an_untestable_revision_merges_into_the_next_ones_answer() -> None:
    search = CulpritSearch(names(9), DETERMINISTIC)
    observe = oracle(culprit=5, rate=1.0, false=0.0, seed=0)
    found = drive(search, lambda batch: [None if r == "r04" else observe([r])[0] for r in batch])
    assert found.status == "confident"
    assert (found.culprit, found.between, found.parent) == ("r05", ("r04",), "r03")
    assert "r05 (or the untestable r04 before it): 1.00" in found.line()


# -- racy oracles ------------------------------------------------------------------------

LINE = re.compile(r"^r\d\d: 0\.9\d after \d+ runs; \d+/\d+ fail here, \d+/\d+ at its parent$")


@pytest.mark.parametrize("fix", [False, True])
def test_a_racy_culprit_is_named_with_its_confidence(fix: bool) -> None:
    search = CulpritSearch(names(12), confidence=0.95, max_runs=300, fix=fix)
    found = drive(search, oracle(culprit=7, rate=0.4, false=0.02, seed=3, fix=fix), k=2)
    assert found.status == "confident" and found.culprit == "r07" and found.parent == "r06"
    assert LINE.match(found.line()), found.line()
    broken, healthy = (found.at_parent, found.here) if fix else (found.here, found.at_parent)
    assert broken.fails > 0 and healthy.runs > 0


def test_the_budget_is_a_hard_stop_and_the_answer_says_so() -> None:
    search = CulpritSearch(names(12), max_runs=25)
    found = drive(search, oracle(culprit=6, rate=0.05, false=0.05, seed=2), k=3)
    assert found.status == "budget spent" and found.runs == 25
    assert "when the budget of 25 runs ran out" in found.line()
    assert search.next_steps(3) == []


def test_confident_claims_are_right_at_least_as_often_as_claimed() -> None:
    """Truth drawn from the prior: Bayes says claims at 0.9 are right >= 90% of the time."""
    prior = Prior()
    claims = right = 0
    for seed in range(40):
        rng = random.Random(seed)
        rate, false = rng.choice(prior.rates[6:]), rng.choice(prior.false_rates)
        culprit = rng.randrange(1, 8)
        search = CulpritSearch(names(8), prior, confidence=0.9, max_runs=120)
        found = drive(search, oracle(culprit, rate, false, seed), k=2)
        if found.status == "confident":
            claims += 1
            right += found.culprit == names(8)[culprit]
    assert claims >= 30
    assert right / claims >= 0.9


# -- one target: --check ---------------------------------------------------------------


@given(st.integers(0, 30), st.integers(0, 30))
def test_check_verdicts_move_one_way_with_the_fails(fails: int, passes: int) -> None:
    order = {"pass": 0, "cannot tell": 1, "fail": 2}
    answer = judge(fails, fails + passes)
    assert answer.exit_status == {"pass": 0, "fail": 1, "cannot tell": 125}[answer.verdict]
    more = judge(fails + 1, fails + 1 + passes)
    assert order[more.verdict] >= order[answer.verdict] and more.broken >= answer.broken


def test_check_needs_more_passes_to_clear_a_rarer_race() -> None:
    assert judge(0, 0).verdict == "cannot tell"
    assert judge(3, 3).verdict == "fail"
    assert passes_to_clear(prior=DETERMINISTIC) == 1
    common = passes_to_clear(prior=Prior(rates=(0.5, 1.0)))
    rare = passes_to_clear()
    assert 1 < common < rare < 1000
    assert judge(0, rare).verdict == "pass" and judge(0, rare - 1).verdict == "cannot tell"


def test_finding_line_never_rounds_up_to_a_claim() -> None:
    found = Finding("budget spent", "abc1234", 0.949, 40, at_parent=None)
    assert found.line().startswith("abc1234? 0.94 when the budget of 40 runs ran out")
