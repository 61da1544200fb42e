"""The jobs with a fake lab and an in-memory history: the release table, transitions,
commit bisection and healing, a matrix, --check, an interrupt, the one -j budget."""

from __future__ import annotations

import json
import signal
import threading
import time
from dataclasses import dataclass

import pytest

from harness.host.processes import Cancel
from harness.host.progress import Progress
from harness.jobs.budget import Budget
from harness.jobs.run import Bisect, check, range_run
from harness.model.table import answer
from harness.model.targets import TargetError
from harness.model.verdict import Verdict
from harness.report.json import as_json
from harness.report.render import render
from tests.fakes import Lab, linear_history, report_for

pytestmark = pytest.mark.pure

VERSIONS = ["19.4.0", "19.5.0", "19.6.0", "19.7.0", "19.8.0"]
PLAIN = ["auto/unix"]
F, P, E = Verdict.FAIL, Verdict.PASS, Verdict.ERROR


def history():
    """60 commits; 19.6.0 (c030) fails, 19.7.0 (c045) passes again."""
    return linear_history(60, {"19.4.0": 0, "19.5.0": 15, "19.6.0": 30, "19.7.0": 45, "19.8.0": 59})


def lab(**kw) -> Lab:
    kw.setdefault("history", history())
    return Lab(VERSIONS, **kw)


def run(lab: Lab, deployments=PLAIN, jobs: int = 2, commits: bool = True, spec="19.4.0..19.8.0"):
    budget = Budget(jobs, Cancel())
    how = Bisect(lambda: lab.history) if commits else None
    try:
        return range_run(lab, report_for(deployments), spec, budget, Progress(), how)
    finally:
        budget.close()


def regression_lab(**kw) -> Lab:
    verdicts = {("19.6.0", c): F for c in ("auto/unix", "gthread/unix")}
    return lab(verdicts=verdicts, first_bad="c022", first_good="c040", **kw)


def test_the_release_table_and_its_transitions() -> None:
    rep = run(regression_lab(), commits=False)
    assert rep.table.targets == VERSIONS
    assert [r.verdict for r in rep.table.deployment_rows("auto/unix")] == [P, P, F, P, P]
    text = render(rep, "table")
    assert "regression introduced in 19.6.0 (last good 19.5.0)" in text
    assert "fixed in 19.7.0 (last bad 19.6.0)" in text
    assert answer(rep).kind == "conclusive" and not rep.findings


def test_commit_bisection_names_the_commits_behind_both_transitions() -> None:
    rep = run(regression_lab())
    found = {(f.kind, f.status, f.commit.sha if f.commit else None) for f in rep.findings}
    assert found == {("regression", "found", "c022"), ("fix", "found", "c040")}
    doc = as_json(rep)
    assert doc["regressions"][0]["commit"]["sha"] == "c022"
    assert doc["fixes"][0]["commit"]["url"].endswith("/c040")


def test_an_unbootable_first_bad_commit_is_healed_with_the_next_change() -> None:
    the_lab = regression_lab(unbootable=frozenset({"c022"}))
    rep = run(the_lab)
    reg = next(f for f in rep.findings if f.kind == "regression")
    assert (reg.status, reg.commit.sha) == ("found", "c022")
    assert reg.needed and reg.needed[0] > "c022"
    assert ("c022", reg.needed[0], "auto/unix") in the_lab.evaluated
    assert "untestable alone: tested with" in render(rep, "table")


def test_without_tags_the_bisection_is_skipped_with_a_reason() -> None:
    the_lab = regression_lab()
    del the_lab.history.tags["19.5.0"]
    rep = run(the_lab)
    reg = next(f for f in rep.findings if f.kind == "regression")
    assert reg.status == "skipped" and "no git tag for 19.5.0" in reg.reason


def test_a_matrix_bisects_only_the_column_that_changed() -> None:
    rep = run(regression_lab(), deployments=["gthread/unix", "sync/unix"])
    assert {f.deployment for f in rep.findings} == {"gthread/unix"}
    text = render(rep, "table")
    assert "gthread/unix: regression introduced in 19.6.0" in text
    assert "sync/unix: no change: every testable release is pass" in text
    doc = json.loads(render(rep, "json"))
    assert doc["affected_by_release"] == {"19.6.0": ["gthread/unix"]}


@pytest.mark.parametrize("jobs", [1, 3])
def test_one_budget_bounds_every_evaluation_at_once(jobs: int) -> None:
    """Two bisections side by side never run more than -j evaluations together."""
    the_lab = regression_lab(pause=0.004)
    rep = run(the_lab, jobs=jobs)
    assert len(rep.findings) == 2
    assert the_lab.most_at_once <= jobs


def test_an_interrupt_leaves_the_partial_table_and_no_conclusion() -> None:
    rep = run(regression_lab(stop_after=2), jobs=1)
    assert rep.interrupted and rep.partial == "partial: 2 of 5 releases tested"
    verdict = answer(rep)
    assert verdict.kind == "interrupted" and "2 of 5" in verdict.line
    text = render(rep, "table")
    assert "partial: 2 of 5 releases tested; no conclusion drawn from it" in text
    assert "no change" not in text and "regression" not in text
    assert as_json(rep)["regressions"] == [] and as_json(rep)["interrupted"] is True


@dataclass
class SignalledLab(Lab):
    """The first evaluation of a release (or of a commit) gets a SIGINT on its own thread,
    as the kernel may deliver a Ctrl-C, then runs on until the run is cancelled, as a
    long --repeat does."""

    signal_on: str = "release"
    cancel: Cancel | None = None
    _sent: bool = False

    def _busy(self, what, work):
        kind = "release" if what[0].startswith("19.") else "commit"
        if kind == self.signal_on and not self._sent:
            self._sent = True
            time.sleep(0.2)  # the main thread is asleep in its wait by now
            signal.pthread_kill(threading.get_ident(), signal.SIGINT)
            self.cancel.wait(10)
        return super()._busy(what, work)


@pytest.mark.parametrize("phase", ["release", "commit"])
def test_a_ctrl_c_delivered_to_a_worker_thread_stops_the_run_at_once(phase: str) -> None:
    cancel = Cancel()
    the_lab = SignalledLab(VERSIONS, history(), first_bad="c022", signal_on=phase, cancel=cancel)
    the_lab.verdicts = {("19.6.0", "auto/unix"): F}
    budget = Budget(2, cancel)
    started = time.monotonic()
    try:
        rep = range_run(
            the_lab,
            report_for(PLAIN),
            "19.4.0..19.8.0",
            budget,
            Progress(),
            Bisect(lambda: the_lab.history),
        )
    finally:
        budget.close()
    assert rep.interrupted
    assert time.monotonic() - started < 5  # not the 10 s the evaluation would run on
    assert cancel.is_set()


def test_a_table_of_errors_is_inconclusive() -> None:
    rep = run(lab(verdicts={(v, "auto/unix"): E for v in VERSIONS}), commits=False)
    assert answer(rep).kind == "inconclusive"
    assert "no conclusion: no release could be tested" in render(rep, "table")


def test_a_run_command_broken_the_same_way_everywhere_is_a_usage_error() -> None:
    rep = report_for(PLAIN, scenario="run")
    rep.table.targets = ["19.5.0", "19.6.0"]
    from harness.model.results import Row

    for v in rep.table.targets:
        rep.table.put(v, "auto/unix", Row(v, F, "exit 2: sh: 0: cannot open x.sh: No such file"))
    assert answer(rep).kind == "broken-command"
    rep.table.put("19.6.0", "auto/unix", Row("19.6.0", F, "exit 1: assertion failed"))
    assert answer(rep).kind == "conclusive"


def test_check_a_release_and_a_ref() -> None:
    the_lab = regression_lab()
    assert check(the_lab, "auto/unix", "19.6.0", lambda: the_lab.history).verdict is F
    row = check(the_lab, "auto/unix", "c010", lambda: the_lab.history)
    assert (row.verdict, row.kind, row.sha) == (P, "commit", "c010")


# -- git refs (--repo): a tag the index does not list, a branch, a sha ----------------


def tagged_lab(**kw) -> Lab:
    """19.6.1 is a git tag only (c035, still failing), as 20.0.1 is in gunicorn's history."""
    the_lab = regression_lab(**kw)
    the_lab.history.tags["19.6.1"] = "c035"
    return the_lab


def run_refs(the_lab: Lab, spec: str, commits: bool = True):
    budget = Budget(2, Cancel())
    how = Bisect(lambda: the_lab.history, repo_given=True) if commits else None
    try:
        return range_run(
            the_lab, report_for(PLAIN), spec, budget, Progress(), how, lambda: the_lab.history
        )
    finally:
        budget.close()


def test_a_range_may_end_at_a_tag_the_index_lacks_when_a_clone_is_given() -> None:
    rep = run_refs(tagged_lab(), "19.6.0..19.6.1", commits=False)
    assert rep.table.targets == ["19.6.0", "19.6.1 (c035)"]
    ref = rep.table.cell("19.6.1 (c035)", "auto/unix")
    assert (ref.verdict, ref.kind, ref.sha) == (F, "commit", "c035")
    rep = run_refs(tagged_lab(), "19.6.1..19.8.0")
    assert rep.table.targets == ["19.6.1 (c035)", "19.7.0", "19.8.0"]
    (fix,) = rep.findings
    assert (fix.kind, fix.before, fix.status, fix.commit.sha) == (
        "fix",
        "19.6.1 (c035)",
        "found",
        "c040",
    )
    assert "fixed in 19.7.0 (last bad 19.6.1 (c035))" in render(rep, "table")


def test_a_branch_or_sha_end_is_bisected_from_its_own_commit() -> None:
    the_lab = lab(verdicts={}, first_bad="c022")
    rep = run_refs(the_lab, "19.5.0..c050")
    assert rep.table.targets == ["19.5.0", "c050"]
    assert [r.verdict for r in rep.table.deployment_rows("auto/unix")] == [P, F]
    (reg,) = rep.findings
    assert (reg.kind, reg.status, reg.commit.sha) == ("regression", "found", "c022")


def test_without_a_clone_a_missing_release_is_one_line_naming_repo() -> None:
    the_lab = tagged_lab()
    for spec in ("19.5.0..19.6.1", "19.6.1"):
        with pytest.raises(TargetError) as err:
            run(the_lab, spec=spec)
        assert "19.6.1 is not a release on the package index" in str(err.value)
        assert "--repo" in str(err.value)
    with pytest.raises(TargetError, match="--repo"):
        check(the_lab, "auto/unix", "19.6.1", lambda: the_lab.history)
    assert not the_lab.evaluated


def test_check_takes_a_tag_the_index_lacks_when_a_clone_is_given() -> None:
    the_lab = tagged_lab()
    row = check(the_lab, "auto/unix", "19.6.1", lambda: the_lab.history, repo_given=True)
    assert (row.target, row.verdict, row.kind, row.sha) == ("19.6.1 (c035)", F, "commit", "c035")
    on_index = check(the_lab, "auto/unix", "19.7.0", lambda: the_lab.history, repo_given=True)
    assert (on_index.target, on_index.kind) == ("19.7.0", "release")  # the index first
