"""--confidence end to end on a fake racy lab and an in-memory history: the jobs,
the flake-aware search and the report, in milliseconds."""

from __future__ import annotations

import re
import sys

import pytest

from harness import cli
from harness.host.processes import Cancel
from harness.host.progress import Progress
from harness.jobs.bisector import Confidence
from harness.jobs.budget import Budget
from harness.jobs.run import Bisect, check_at, range_run
from harness.jobs.setup import Setup
from harness.model.confidence import passes_to_clear
from harness.model.errors import HarnessError
from harness.model.table import DEFAULT_AXIS, answer
from harness.model.verdict import Verdict
from harness.report.json import as_json
from harness.report.render import render
from tests.fakes import RacyLab, linear_history, report_for

pytestmark = pytest.mark.pure

VERSIONS = ["19.4.0", "19.5.0"]


def racy(table: bool = True, **kw) -> RacyLab:
    """``table``: the release table shows 19.5.0 failing (its own runs are the lab's)."""
    history = linear_history(40, {"19.4.0": 0, "19.5.0": 39})
    kw.setdefault("first_bad", "c023")
    if table:  # only the table's run: one rate for every broken target, as the model says
        kw.setdefault("verdicts", {("19.5.0", "auto/unix"): Verdict.FAIL})
        kw.setdefault("first_only", True)
    return RacyLab(VERSIONS, history=history, **kw)


def run(lab: RacyLab, want: Confidence | None, jobs: int = 2):
    budget = Budget(jobs, Cancel())
    how = Bisect(lambda: lab.history, confidence=want)
    try:
        return range_run(lab, report_for(["auto/unix"]), "19.4.0,19.5.0", budget, Progress(), how)
    finally:
        budget.close()


def test_a_racy_culprit_is_named_with_its_confidence() -> None:
    lab = racy(rate=0.5, seed=3)
    rep = run(lab, Confidence(0.9, max_runs=400))
    (f,) = rep.findings
    assert (f.status, f.commit.sha) == ("found", "c023")
    assert f.estimate["posterior"] >= 0.9 and f.estimate["parent"] == "c022"
    assert "c023: 0.9" in f.reason and "fail here" in f.reason and "at its parent" in f.reason
    assert f"confidence: {f.reason}" in render(rep, "table")
    assert f"confidence: {f.reason}" in render(rep, "markdown")
    entry = as_json(rep)["regressions"][0]["commit"]
    assert entry["sha"] == "c023" and entry["confidence"]["culprit"] == "c023"
    assert entry["confidence"]["runs"] == f.estimate["runs"]


def test_the_named_culprit_is_right_about_as_often_as_claimed() -> None:
    """Over seeds, a claim at 0.9 names the right commit at least ~0.9 of the time
    (some slack: 30 seeds; the bench measures it over thousands)."""
    named = [run(racy(rate=0.3, seed=s), Confidence(0.9, 400)).findings[0] for s in range(30)]
    claims = [f.commit.sha for f in named if f.status == "found"]
    assert len(claims) >= 25 and claims.count("c023") >= 0.8 * len(claims)


def test_the_culprit_and_its_parent_are_run_more_than_once() -> None:
    """The point of the search: the commits next to a racy culprit get the runs."""
    lab = racy(rate=0.4, seed=1)
    run(lab, Confidence(0.9, max_runs=400))
    assert lab.runs_of("c023") >= 2 and lab.runs_of("c022") >= 2


@pytest.mark.parametrize("first_bad", ["c001", "c017", "c039"])
def test_a_deterministic_scenario_gets_plain_bisections_answer(first_bad: str) -> None:
    lab = racy(rate=1.0, first_bad=first_bad)
    plain = racy(rate=1.0, first_bad=first_bad)
    rep, ref = run(lab, Confidence(0.95)), run(plain, None)
    assert rep.findings[0].commit.sha == ref.findings[0].commit.sha == first_bad


def test_a_spent_budget_says_so() -> None:
    lab = racy(rate=0.1, seed=2)
    rep = run(lab, Confidence(0.99, max_runs=12))
    (f,) = rep.findings
    assert f.status == "uncertain" and "not settled at 0.99" in f.reason
    assert "budget" in f.reason
    assert f.estimate["runs"] <= 12
    assert len(lab.evaluated) <= 12 + 2  # the table's two cells, then the budget
    # no answer yet: exit 125, the reason as the line (it exited 0)
    said = answer(rep)
    assert (said.kind, said.line) == ("inconclusive", f"inconclusive: {f.reason}")


def test_a_settled_search_is_an_answer() -> None:
    rep = run(racy(rate=0.5, seed=3), Confidence(0.9, max_runs=400))
    assert answer(rep).kind == "conclusive"


def test_a_transition_that_was_noise_names_no_commit() -> None:
    """The table saw one false failure on a healthy release: re-runs say no change."""
    lab = racy(rate=0.5, first_bad="nothing", first_only=True, seed=0)
    rep = run(lab, Confidence(0.9, max_runs=200))
    (f,) = rep.findings
    assert f.commit is None and f.status == "no culprit" and not f.steps
    assert "no culprit (no change up to 19.5.0)" in f.reason


def test_untestable_commits_are_never_counted_as_runs() -> None:
    lab = racy(rate=1.0, unbootable=frozenset({"c010", "c011"}))
    rep = run(lab, Confidence(0.95))
    (f,) = rep.findings
    assert f.commit.sha == "c023"
    assert {"c010", "c011"}.isdisjoint({s for s, n in _tallies(f).items() if n})


def _tallies(f) -> dict[str, int]:
    counts: dict[str, int] = {}
    for s in f.steps:
        counts[s.sha] = counts.get(s.sha, 0) + (s.verdict.testable)
    return counts


def _check(lab: RacyLab, target: str, want: Confidence):
    return check_at(lab, "auto/unix", target, lambda: lab.history, want, DEFAULT_AXIS)


def test_check_at_p_runs_until_it_can_tell() -> None:
    lab = racy(table=False, rate=0.5, seed=4)
    bad, _ = _check(lab, "c030", Confidence(0.95))
    assert (bad.verdict, bad.exit_status) == ("fail", 1) and bad.tally.fails >= 1
    good, row = _check(lab, "c005", Confidence(0.95))
    assert (good.verdict, good.exit_status) == ("pass", 0)
    assert good.tally.runs == passes_to_clear(0.95) and row.sha == "c005"


def test_check_at_p_out_of_runs_cannot_tell() -> None:
    lab = racy(table=False, rate=0.5)
    said, _ = _check(lab, "c005", Confidence(0.99, max_runs=5))
    assert (said.verdict, said.exit_status, said.tally.runs) == ("cannot tell", 125, 5)


def test_check_at_p_of_a_release_uses_the_release() -> None:
    lab = racy(rate=1.0)
    said, row = _check(lab, "19.5.0", Confidence(0.9))
    assert said.verdict == "fail" and row.target == "19.5.0"


def test_check_at_p_of_a_tag_the_index_lacks_runs_the_tag_with_a_clone() -> None:
    lab = racy(table=False, rate=1.0)
    lab.history.tags["19.4.5"] = "c030"  # a git tag only
    said, row = check_at(
        lab, "auto/unix", "19.4.5", lambda: lab.history, Confidence(0.9), DEFAULT_AXIS, True
    )
    assert said.verdict == "fail" and (row.target, row.sha) == ("19.4.5 (c030)", "c030")
    assert {sha for sha, _, _ in lab.evaluated} == {"c030"}


def test_check_at_p_through_the_cli_prints_the_answer_and_exits_by_it(capsys) -> None:
    req = cli.parse(["--check", "19.5.0", "--confidence", "0.9", "--cache-dir", "/tmp"], "g")
    lab = racy(table=False, rate=1.0)
    status = cli._check(req, Setup(lab, report_for(["auto/unix"])), Progress(), sys.stdout)
    out = capsys.readouterr().out
    assert status == 1 and out.startswith("19.5.0: fail: broken at ")


@pytest.mark.parametrize(
    "argv, why",
    [
        (["--confidence", "1.5"], "a probability in (0.5, 1)"),
        (["--confidence", "0.3"], "a probability in (0.5, 1)"),
        (["--confidence", "0.9", "--repeat", "3"], "drop --repeat"),
        (["--confidence", "0.9", "--first-parent"], "drop --first-parent"),
        (["--confidence", "0.9", "--max-runs", "0"], "--max-runs must be at least 1"),
        (["--confidence", "0.9", "--no-commits"], "drop --no-commits"),
    ],
)
def test_confidence_options_the_user_can_get_wrong(argv: list[str], why: str) -> None:
    with pytest.raises(HarnessError, match=re.escape(why)):
        cli.parse(["19.4.0,19.5.0", *argv], "g")


def test_confidence_is_off_unless_asked() -> None:
    assert cli.parse(["19.4.0,19.5.0"], "g").confidence is None
    req = cli.parse(["19.4.0,19.5.0", "--confidence", "0.95", "--max-runs", "80"], "g")
    assert req.confidence == Confidence(0.95, 80)


def test_each_column_of_a_matrix_gets_its_own_search() -> None:
    """gthread/unix shows the transition in the table; each finding names its column."""
    lab = racy(rate=0.5, seed=5)
    lab.verdicts = {("19.5.0", "gthread/unix"): Verdict.FAIL}
    budget = Budget(2, Cancel())
    how = Bisect(lambda: lab.history, confidence=Confidence(0.9, 400))
    deployments = ["sync/unix", "gthread/unix"]
    try:
        rep = range_run(lab, report_for(deployments), "19.4.0,19.5.0", budget, Progress(), how)
    finally:
        budget.close()
    named = {(f.deployment, f.commit.sha if f.commit else None) for f in rep.findings}
    assert ("gthread/unix", "c023") in named
    assert all(f.estimate is not None and f.deployment for f in rep.findings)


def test_an_untestable_culprit_is_healed_with_the_next_change_on_top() -> None:
    lab = racy(rate=0.6, seed=6, unbootable=frozenset({"c023"}))
    rep = run(lab, Confidence(0.9, 400))
    (f,) = rep.findings
    assert (f.status, f.commit.sha, f.needed) == ("found", "c023", ["c024"])
    assert ("c023", "c024", "auto/unix") in lab.evaluated
    assert "picked on top" in render(rep, "table")


def test_an_untestable_commit_that_stays_untestable_is_named_beside_the_culprit() -> None:
    lab = racy(rate=1.0, unhealable=frozenset({"c023"}))
    rep = run(lab, Confidence(0.9))
    (f,) = rep.findings
    assert (f.status, f.commit, f.estimate["between"]) == ("ambiguous", None, ("c023",))
    assert [c.sha for c in f.candidates] == ["c023", "c024"]
    assert "c024 (or the untestable c023 before it)" in f.reason
    assert ("c023", "c024", "auto/unix") in lab.evaluated  # the heal was tried, once
