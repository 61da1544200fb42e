"""Tests for harness.search: hand-made graphs, hypothesis properties, and git itself."""

from __future__ import annotations

import random
import shutil
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from harness.model.search import (
    Bisection,
    InconsistentOutcomes,
    Outcome,
    Result,
    ancestors,
    first_parent_chain,
    merged_via,
    next_testable_after,
)
from tests.conftest import git
from tests.graphs import FAST, Graph, dags, linear, planted, scenarios, sha_of

pytestmark = pytest.mark.pure


# -- helpers ---------------------------------------------------------------------


def drive(b: Bisection, outcome, k: int = 1, max_rounds: int | None = None) -> list[str]:
    """Run the search loop; return the commits tested, in order."""
    limit = max_rounds if max_rounds is not None else b.remaining()
    done: list[str] = []
    rounds = 0
    while b.result().status == "pending":
        revs = b.next_steps(k)
        assert revs, "pending but nothing to test"
        assert len(revs) <= k
        assert len(set(revs)) == len(revs)
        for sha in revs:
            assert sha not in b.tested()
            b.record(sha, outcome(sha))
            done.append(sha)
        rounds += 1
        assert rounds <= limit, "search did not terminate in time"
    assert b.next_steps(k) == []
    return done


# The branch graph used by several tests:
#
#   o -- m1 -- m2 -- M -- m3 (new)
#          \        /
#           b1 -- b2
BRANCH: Graph = {
    "o": [],
    "m1": ["o"],
    "m2": ["m1"],
    "b1": ["m1"],
    "b2": ["b1"],
    "M": ["m2", "b2"],
    "m3": ["M"],
}


# -- ancestors / first_parent_chain ------------------------------------------------


def test_ancestors_inclusive_and_first_parent() -> None:
    assert ancestors(BRANCH, "M") == {"M", "m2", "b2", "b1", "m1", "o"}
    assert ancestors(BRANCH, "M", first_parent=True) == {"M", "m2", "m1", "o"}
    assert ancestors(BRANCH, "o") == {"o"}
    # Parents outside the mapping are leaves, not errors.
    assert ancestors({"a": ["outside"]}, "a") == {"a", "outside"}


def test_ancestors_deep_history_no_recursion() -> None:
    names = [f"c{i}" for i in range(20000)]
    assert len(ancestors(linear(names), names[-1])) == 20000


def test_first_parent_chain() -> None:
    assert first_parent_chain(BRANCH, "m3") == ["m3", "M", "m2", "m1", "o"]


# -- Bisection on hand-made graphs -----------------------------------------------


def test_linear_finds_first_new_with_log_steps() -> None:
    names = [f"c{i:03d}" for i in range(129)]
    graph = linear(names)
    b = Bisection(graph, names[0], names[-1])
    assert b.remaining() == 128
    assert b.steps_left() == 7
    tested = drive(b, planted(graph, "c077"))
    assert b.result() == Result("found", "c077", ("c077",))
    assert len(tested) <= 7
    assert b.steps_left() == 0
    assert b.remaining() == 1


def test_linear_first_step_is_middle() -> None:
    graph = linear(list("oabcdefg"))
    b = Bisection(graph, "o", "g")
    # candidates a..g (N=7): d reaches a..d (4), min(4, 3) = 3 is the best split;
    # c reaches 3, min(3, 4) = 3 too, ties broken by sha.
    assert b.next_steps() == ["c"]


def test_new_is_first_new_when_everything_else_old() -> None:
    graph = linear(list("oabc"))
    b = Bisection(graph, "o", "c")
    drive(b, planted(graph, "c"))
    assert b.result().commit == "c"


def test_branch_commit_found_and_merged_via() -> None:
    b = Bisection(BRANCH, "o", "m3")
    tested = drive(b, planted(BRANCH, "b2"))
    assert b.result() == Result("found", "b2", ("b2",))
    assert set(tested) <= set(BRANCH) - {"o", "m3"}
    assert merged_via(BRANCH, "b2", "m3") == "M"
    assert merged_via(BRANCH, "b1", "m3") == "M"
    assert merged_via(BRANCH, "m2", "m3") is None  # on the mainline
    assert merged_via(BRANCH, "M", "m3") is None
    assert merged_via(BRANCH, "m3", "m2") is None  # not an ancestor of the tip
    assert merged_via(BRANCH, "b2", "b2") is None


def test_branch_first_parent_finds_the_merge() -> None:
    b = Bisection(BRANCH, "o", "m3", first_parent=True)
    assert set(b.candidates()) == {"m1", "m2", "M", "m3"}
    assert b.remaining() == 4
    tested = drive(b, planted(BRANCH, "b2"))
    assert b.result() == Result("found", "M", ("M",))
    assert not {"b1", "b2"} & set(tested)


def test_first_parent_old_history_excluded_through_all_parents() -> None:
    # Mainline o -- x -- y(new) where x merges a side branch s that sits on top of
    # the OLD commit: first-parent search must still never propose anything in
    # OLD's history, like git (uninteresting propagates to every parent).
    graph: Graph = {"r": [], "o": ["r"], "s": ["o"], "x": ["r", "s"], "y": ["x"]}
    b = Bisection(graph, "o", "y", first_parent=True)
    assert set(b.candidates()) == {"x", "y"}


def test_range_only_mapping_and_several_olds() -> None:
    # Only old..new is in the mapping (as from `git rev-list --parents old..new`).
    graph: Graph = {"a": ["o"], "b": ["a"], "c": ["b", "side"], "d": ["c"]}
    b = Bisection(graph, ["o", "side"], "d")
    assert b.candidates() == ("a", "b", "c", "d")
    drive(b, planted({**graph, "o": [], "side": []}, "b"))
    assert b.result().commit == "b"


def test_skips_ambiguous_then_resolved_by_re_record() -> None:
    graph = linear(list("oabcd"))
    b = Bisection(graph, "o", "d")
    b.record("a", Outcome.OLD)
    b.record("b", Outcome.SKIP)
    assert b.result().status == "pending"
    assert b.next_steps() == ["c"]
    b.record("c", Outcome.SKIP)
    assert b.result() == Result("ambiguous", None, ("b", "c", "d"))
    assert b.next_steps() == []
    assert b.steps_left() == 0
    # Healing: c re-tested and found NEW -> the bound moves, still ambiguous on b.
    b.record("c", Outcome.NEW)
    assert b.result() == Result("ambiguous", None, ("b", "c"))
    b.record("b", Outcome.OLD)
    assert b.result() == Result("found", "c", ("c",))
    assert b.tested() == {"a": Outcome.OLD, "b": Outcome.OLD, "c": Outcome.NEW}


def test_skip_on_branch_is_ambiguous_with_topological_candidates() -> None:
    b = Bisection(BRANCH, "o", "m3")
    for sha, out in [("m2", "old"), ("b1", "skip"), ("b2", "skip"), ("M", "new"), ("m1", "old")]:
        b.record(sha, Outcome(out))
    assert b.result() == Result("ambiguous", None, ("b1", "b2", "M"))


def test_override_skip_with_old_reopens_search() -> None:
    graph = linear(list("oabcd"))
    b = Bisection(graph, "o", "d")
    b.record("b", Outcome.SKIP)
    b.record("b", Outcome.OLD)
    assert b.candidates() == ("c", "d")
    assert b.next_steps() == ["c"]


def test_parallel_steps_distinct_untested_in_range() -> None:
    names = [f"c{i:02d}" for i in range(41)]
    graph = linear(names)
    b = Bisection(graph, names[0], names[-1])
    b.record("c05", Outcome.SKIP)
    revs = b.next_steps(3)
    assert len(revs) == 3 == len(set(revs))
    assert set(revs) <= set(b.candidates()) - {b.bound, "c05"}
    # Quartiles of the 40 candidates c01..c40.
    assert revs == ["c10", "c20", "c30"]
    for sha, out in zip(revs, [Outcome.OLD, Outcome.NEW, Outcome.NEW]):
        b.record(sha, out)
    assert b.bound == "c20"
    assert b.candidates() == tuple(f"c{i}" for i in range(11, 21))
    # Asking for more than is left returns everything that is left.
    assert set(b.next_steps(50)) == set(b.candidates()) - {"c20"}


def test_parallel_new_results_in_any_order_give_same_bound() -> None:
    b1 = Bisection(BRANCH, "o", "m3")
    b2 = Bisection(BRANCH, "o", "m3")
    for sha in ("b2", "m2"):
        b1.record(sha, Outcome.NEW)
    for sha in ("m2", "b2"):
        b2.record(sha, Outcome.NEW)
    assert b1.bound == b2.bound == "m2"  # m2's history is the smaller one
    assert b1.candidates() == b2.candidates() == ("m1", "m2")


def test_inconsistent_outcomes_rejected_and_state_kept() -> None:
    graph = linear(list("oabcd"))
    b = Bisection(graph, "o", "d")
    b.record("b", Outcome.NEW)
    with pytest.raises(InconsistentOutcomes):
        b.record("c", Outcome.OLD)  # c descends from b, which is NEW
    assert b.tested() == {"b": Outcome.NEW}
    assert b.candidates() == ("a", "b")
    with pytest.raises(InconsistentOutcomes):
        b.record("d", Outcome.SKIP)
    with pytest.raises(InconsistentOutcomes):
        b.record("o", Outcome.NEW)
    with pytest.raises(InconsistentOutcomes):
        Bisection(graph, "c", "b")
    with pytest.raises(ValueError):
        Bisection(graph, [], "d")
    with pytest.raises(ValueError):
        Bisection(graph, "o", "missing")
    with pytest.raises(ValueError):
        b.next_steps(0)


# -- next_testable_after ---------------------------------------------------------


def test_next_testable_after() -> None:
    tested = {"b1": Outcome.SKIP, "b2": Outcome.SKIP, "M": Outcome.NEW, "m2": Outcome.OLD}
    within = ["b1", "b2", "M", "m3"]
    assert next_testable_after(BRANCH, "b1", tested, within) == "M"
    assert next_testable_after(BRANCH, "b2", {**tested, "M": Outcome.SKIP}, within) is None
    # Untested commits are walked through, not returned.
    assert next_testable_after(BRANCH, "b1", {"m3": Outcome.NEW}, within) == "m3"
    # Nearest wins over farther; ties broken by sha.
    diamond: Graph = {"s": [], "x": ["s"], "y": ["s"], "z": ["x", "y"], "w": ["z"]}
    t = {"x": Outcome.OLD, "y": Outcome.NEW, "w": Outcome.NEW}
    assert next_testable_after(diamond, "s", t, diamond) == "x"
    assert next_testable_after(diamond, "s", {"w": Outcome.NEW}, diamond) == "w"
    # A Bisection's known outcomes include the given NEW commit without a record.
    b = Bisection(BRANCH, "o", "m3")
    b.record("M", Outcome.SKIP)
    assert next_testable_after(BRANCH, "M", b.known(), b.candidates()) == "m3"
    assert b.known() == {"o": Outcome.OLD, "m3": Outcome.NEW, "M": Outcome.SKIP}
    # Only paths inside `within` count.
    assert next_testable_after(diamond, "s", t, ["s", "y", "z", "w"]) == "y"


# -- property tests --------------------------------------------------------------


@FAST
@given(scenarios())
def test_property_dag_search(scenario) -> None:
    graph, old, new, first_new, skips, k = scenario
    in_range = ancestors(graph, new) - ancestors(graph, old)
    b = Bisection(graph, old, new)
    assert set(b.candidates()) == in_range
    tested = drive(b, planted(graph, first_new, skips), k=k, max_rounds=len(graph))
    assert set(tested) <= in_range - {new}
    res = b.result()
    if not skips:
        assert res == Result("found", first_new, (first_new,))
    elif res.status == "found":
        assert res.commit == first_new
    else:
        assert res.status == "ambiguous"
        assert first_new in res.candidates
        assert set(res.candidates[:-1]) <= skips
        assert res.candidates[-1] == b.bound
        # Oldest first: no candidate is an ancestor of an earlier one.
        for i, c in enumerate(res.candidates):
            assert not ancestors(graph, c) & set(res.candidates[i + 1 :])


@FAST
@given(scenarios())
def test_property_healing_resolves_ambiguity(scenario) -> None:
    """Re-recording skipped commits with their true outcome always ends in 'found'."""
    graph, old, new, first_new, skips, k = scenario
    b = Bisection(graph, old, new)
    drive(b, planted(graph, first_new, skips), k=k, max_rounds=len(graph))
    healed = planted(graph, first_new)
    rounds = 0
    while b.result().status == "ambiguous":
        for sha in b.result().candidates[:-1]:
            if sha not in b.candidates():  # cut off by an earlier re-test
                continue
            # The bound is NEW and descends from every candidate, so a source always exists.
            source = next_testable_after(graph, sha, b.known(), b.candidates())
            assert source is not None
            assert source in b.candidates() and sha in ancestors(graph, source)
            assert b.known()[source] is not Outcome.SKIP
            b.record(sha, healed(sha))
        drive(b, healed, k=k, max_rounds=len(graph))
        rounds += 1
        assert rounds <= len(graph)
    assert b.result().commit == first_new


@FAST
@given(scenarios())
def test_property_first_parent_finds_mainline_commit(scenario) -> None:
    graph, old, new, first_new, skips, k = scenario
    mainline = first_parent_chain(graph, new)
    b = Bisection(graph, old, new, first_parent=True)
    tested = drive(b, planted(graph, first_new, skips), k=k, max_rounds=len(mainline))
    assert set(tested) <= set(mainline) - {old, new}
    # The first mainline commit containing first_new: itself, or the merge that brought it.
    via = merged_via(graph, first_new, new)
    expected = first_new if first_new in mainline else via
    assert (via is None) == (first_new in mainline)
    res = b.result()
    if not skips & set(mainline):
        assert res == Result("found", expected, (expected,))
    else:
        assert res.status in ("found", "ambiguous")
        assert expected in res.candidates


@FAST
@given(dags(), st.data())
def test_property_merged_via_matches_brute_force(dag, data) -> None:
    graph, _old, new = dag
    commit = data.draw(st.sampled_from(sorted(graph)))
    mainline = first_parent_chain(graph, new)
    containing = [m for m in mainline if commit in ancestors(graph, m)]
    expected = None if commit in mainline else containing[-1]
    got = merged_via(graph, commit, new)
    assert got == expected
    if got is not None:
        assert len(graph[got]) >= 2
        assert commit not in ancestors(graph, graph[got][0])


@FAST
@given(st.integers(2, 300), st.data())
def test_property_linear_single_step_is_logarithmic(n, data) -> None:
    names = [sha_of(i) for i in range(n)]
    graph = linear(names)
    first_new = data.draw(st.sampled_from(names[1:]))
    b = Bisection(graph, names[0], names[-1])
    steps = b.steps_left()
    assert steps == (n - 2).bit_length()
    tested = drive(b, planted(graph, first_new))
    assert len(tested) <= steps
    assert b.result().commit == first_new


# -- comparison with real git bisect ---------------------------------------------

GIT = shutil.which("git")


def random_git_repo(repo: Path, seed: int, n: int) -> tuple[Graph, str, str, dict[int, str]]:
    """A random DAG of empty commits (via commit-tree); returns the real sha graph."""
    rng = random.Random(seed)
    git(repo, "init", "-q")
    tree = git(repo, "hash-object", "-t", "tree", "-w", "/dev/null")
    shas: dict[int, str] = {}
    parents: Graph = {}
    has_child: set[str] = set()
    for i in range(n):
        ps: list[str] = []
        if i:
            ps.append(shas[rng.randrange(i)])
            if i > 1 and rng.random() < 0.4:
                second = shas[rng.randrange(i)]
                if second not in ps:
                    ps.append(second)
        args = [x for p in ps for x in ("-p", p)]
        shas[i] = git(repo, "commit-tree", tree, *args, "-m", f"c{i}")
        parents[shas[i]] = ps
        has_child.update(ps)
    new = next(s for s in shas.values() if s not in has_child)
    for j, tip in enumerate(s for s in shas.values() if s not in has_child and s != new):
        merge = git(repo, "commit-tree", tree, "-p", new, "-p", tip, "-m", f"merge{j}")
        parents[merge] = [new, tip]
        new = merge
    git(repo, "update-ref", "refs/heads/main", new)
    git(repo, "symbolic-ref", "HEAD", "refs/heads/main")
    git(repo, "checkout", "-q", "-f", "main")
    return parents, shas[0], new, shas


def git_first_bad(repo: Path, old: str, new: str, first_new: str, first_parent: bool) -> str:
    start = ["bisect", "start", *(["--first-parent"] if first_parent else []), new, old]
    git(repo, *start)
    check = f"if git merge-base --is-ancestor {first_new} HEAD; then exit 1; else exit 0; fi"
    git(repo, "bisect", "run", "sh", "-c", check)
    bad = git(repo, "rev-parse", "refs/bisect/bad")
    git(repo, "bisect", "reset")
    return bad


@pytest.mark.local
@pytest.mark.skipif(GIT is None, reason="git not installed")
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_same_first_bad_commit_as_git_bisect(tmp_path: Path, seed: int) -> None:
    parents, old, new, shas = random_git_repo(tmp_path, seed, n=25)
    rng = random.Random(seed * 7919)
    in_range = sorted(ancestors(parents, new) - ancestors(parents, old))
    mainline = set(first_parent_chain(parents, new))
    off_mainline = sorted(set(in_range) - mainline)
    assert off_mainline, "the generated repo should have side branches"
    cases = [
        (rng.choice(in_range), False),
        (rng.choice(off_mainline), False),
        (rng.choice(off_mainline), True),
        (rng.choice(sorted(mainline & set(in_range))), True),
    ]
    for first_new, first_parent in cases:
        expected = git_first_bad(tmp_path, old, new, first_new, first_parent)
        b = Bisection(parents, old, new, first_parent=first_parent)
        drive(b, planted(parents, first_new), k=1 + seed % 3, max_rounds=len(parents))
        assert b.result().commit == expected
        if first_parent and first_new not in mainline:
            assert expected == merged_via(parents, first_new, new) != first_new
        else:
            assert expected == first_new
