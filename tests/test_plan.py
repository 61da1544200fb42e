"""The pure plan of steps and heals: driven by an oracle, on hand-made and random graphs."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from harness.model.search import Outcome, Plan, Revision, ancestors, plan
from tests.graphs import FAST, linear, planted, scenarios

pytestmark = pytest.mark.pure

Oracle = Callable[[Revision], Outcome]


def drive(parents, old, new, oracle: Oracle, k: int = 1, limit: int = 500) -> tuple[Plan, list]:
    """Evaluate whatever the plan asks until it is done; every step asked once."""
    outcomes: dict[Revision, Outcome] = {}
    for _ in range(limit):
        p = plan(parents, old, new, outcomes, k)
        if p.done:
            return p, list(outcomes)
        assert len(p.todo) <= k or all(t.heal for t in p.todo)
        for rev in p.todo:
            assert rev not in outcomes, "a step was asked twice"
            outcomes[rev] = oracle(rev)
    raise AssertionError("the plan did not end")


def bootable_with_pick(parents, first_new: str, skips) -> Oracle:
    """A commit in ``skips`` cannot boot alone; with any later change on top it tells the
    truth (the pick carries the fix of the build, not the bug)."""
    alone = planted(parents, first_new, skips)
    truth = planted(parents, first_new)
    return lambda p: truth(p.sha) if p.heal else alone(p.sha)


def test_linear_found_with_no_heal() -> None:
    graph = linear([f"c{i:02d}" for i in range(40)])
    p, asked = drive(graph, "c00", "c39", bootable_with_pick(graph, "c17", ()), k=3)
    assert (p.status, p.commit, p.needed) == ("found", "c17", ())
    assert not any(a.heal for a in asked)


def test_an_unbootable_first_new_commit_is_named_with_the_pick_it_needed() -> None:
    graph = linear(list("oabcdefgh"))
    p, asked = drive(graph, "o", "h", bootable_with_pick(graph, "d", {"d"}))
    assert p.status == "found" and p.commit == "d"
    assert (
        p.needed and p.needed[0] in ancestors(graph, "h") and "d" in ancestors(graph, p.needed[0])
    )
    assert Revision("d", p.needed[0]) in asked


def test_a_heal_that_still_cannot_boot_leaves_it_ambiguous() -> None:
    graph = linear(list("oabcdefgh"))
    stuck = planted(graph, "d", {"d"})
    p, asked = drive(graph, "o", "h", lambda rev: stuck(rev.sha))
    assert p.status == "ambiguous" and "d" in p.candidates
    assert [a for a in asked if a.heal] == [Revision("d", "e")]


def test_contradicting_outcomes_are_inconsistent_not_found() -> None:
    graph = linear(list("oabcdefgh"))
    # NEW then OLD further on: no single boundary
    p, _ = drive(graph, "o", "h", lambda pr: Outcome.NEW if pr.sha < "d" else Outcome.OLD, k=8)
    assert p.status == "inconsistent" and p.reason and p.commit is None


def test_order_of_arrival_does_not_matter() -> None:
    graph = linear([f"c{i:02d}" for i in range(30)])
    oracle = planted(graph, "c11")
    first = plan(graph, "c00", "c29", {}, k=4)
    got = {rev: oracle(rev.sha) for rev in first.todo}
    backwards = dict(reversed(list(got.items())))
    assert plan(graph, "c00", "c29", got, k=4) == plan(graph, "c00", "c29", backwards, k=4)


@FAST
@given(scenarios())
def test_property_plan_names_the_first_new_commit(scenario) -> None:
    """With every skipped commit healable, the plan always ends in the true commit; what
    it asks stays inside old..new, and a commit named with a pick needed it."""
    graph, old, new, first_new, skips, k = scenario
    in_range = ancestors(graph, new) - ancestors(graph, old)
    p, asked = drive(graph, old, new, bootable_with_pick(graph, first_new, skips), k=k)
    assert {a.sha for a in asked} <= in_range - {new}
    assert {a.pick for a in asked if a.heal} <= in_range
    for a in asked:  # a pick is a repair: never a commit the tested one already holds
        assert not a.heal or a.pick not in ancestors(graph, a.sha)
    if p.status == "found":
        assert p.commit == first_new
        if first_new in skips:
            assert p.needed
    else:
        # only a merge's change could have healed: that is no evidence, so the set is named
        assert p.status == "ambiguous" and first_new in p.candidates
        assert set(p.candidates[:-1]) - {first_new} <= skips  # the bound last


@FAST
@given(st.integers(3, 60), st.data())
def test_property_a_line_with_healable_skips_always_names_the_first_new_commit(n, data) -> None:
    names = [f"c{i:02d}" for i in range(n)]
    graph = linear(names)
    first_new = data.draw(st.sampled_from(names[1:]))
    skips = data.draw(st.sets(st.sampled_from(names[1:-1]), max_size=n))
    k = data.draw(st.integers(1, 4))
    p, _ = drive(graph, names[0], names[-1], bootable_with_pick(graph, first_new, skips), k=k)
    assert (p.status, p.commit) == ("found", first_new)
    if first_new in skips:
        assert p.needed


@FAST
@given(scenarios())
def test_property_unhealable_skips_never_name_a_wrong_commit(scenario) -> None:
    graph, old, new, first_new, skips, k = scenario
    stuck = planted(graph, first_new, skips)
    p, _ = drive(graph, old, new, lambda rev: stuck(rev.sha), k=k)
    if p.status == "found":
        assert p.commit == first_new
    else:
        assert p.status == "ambiguous"
        assert first_new in p.candidates and set(p.candidates[:-1]) <= skips
