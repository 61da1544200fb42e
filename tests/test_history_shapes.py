"""History as git sees it, with a fake lab and in-memory histories: maintenance
branches, merged branches on broken bases, long untestable stretches, the release a
commit ships in.  Milliseconds each; the shapes are the real ones (19.10.0 beside
20.0.0, PR #2918 on an unbootable base, 24.0.0's outage stretch)."""

from __future__ import annotations

from harness.host.cancel import Cancel
from harness.host.progress import Progress
from harness.jobs.budget import Budget
from harness.jobs.confident import Confidence
from harness.jobs.run import Bisect, range_run
from harness.model.verdict import Verdict
from harness.report.json import as_json
from harness.report.render import render
from tests.fakes import History, Lab, RacyLab, report_for

F, P = Verdict.FAIL, Verdict.PASS
MAINT = ["19.9.0", "19.10.0", "20.0.0"]


def maintenance(first_bad: str, first_good: str | None = None) -> Lab:
    """Mainline c000..c029 (19.9.0 at c005, 20.0.0 at c029); the 19.x branch leaves it
    at c008 (m00..m02, 19.10.0 at m02), like 19.10.0 tagged after 20.0.0."""
    names = [f"c{i:03d}" for i in range(30)]
    parents = {names[0]: ()} | {cur: (prev,) for prev, cur in zip(names, names[1:])}
    parents |= {"m00": ("c008",), "m01": ("m00",), "m02": ("m01",)}
    history = History(parents, {"19.9.0": "c005", "19.10.0": "m02", "20.0.0": "c029"})
    the_lab = Lab(MAINT, history=history, first_bad=first_bad, first_good=first_good)
    for version, sha in history.tags.items():
        verdict = the_lab._commit_verdict(sha, None)
        the_lab.verdicts[(version, "auto/unix")] = verdict
    return the_lab


def run(lab: Lab, spec: str, jobs: int = 2):
    budget = Budget(jobs, Cancel())
    try:
        return range_run(
            lab, report_for(["auto/unix"]), spec, budget, Progress(), Bisect(lambda: lab.history)
        )
    finally:
        budget.close()


def test_a_maintenance_release_at_the_start_bisects_from_the_merge_base() -> None:
    the_lab = maintenance("c017")
    rep = run(the_lab, "19.10.0..20.0.0")
    (f,) = rep.findings
    assert (f.status, f.commit.sha) == ("found", "c017")
    assert any("merge base c008" in n and "tested like 19.10.0" in n for n in f.notes)
    assert ("c008", None, "auto/unix") in the_lab.evaluated  # the merge base was tested
    assert not any(sha.startswith("m") for sha, _, _ in the_lab.evaluated)
    assert "bisected from their merge base c008" in render(rep, "table")
    assert "merge base c008" in as_json(rep)["regressions"][0]["commit"]["notes"][0]


def test_ranges_from_the_maintenance_release_and_from_its_ancestor_agree() -> None:
    named = set()
    for spec in ("19.10.0..20.0.0", "19.9.0..20.0.0"):
        (f,) = run(maintenance("c017"), spec).findings
        named.add((f.status, f.commit.sha))
    assert named == {("found", "c017")}


def test_a_bad_merge_base_falls_back_to_the_newest_good_ancestor_release() -> None:
    # broken at c007 on the mainline, repaired on the 19.x branch only (m01)
    the_lab = maintenance("c007", first_good="m01")
    rep = run(the_lab, "19.9.0..20.0.0")
    (f,) = rep.findings
    assert (f.status, f.commit.sha) == ("found", "c007")
    assert any("merge base c008 is like 20.0.0" in n and "from 19.9.0" in n for n in f.notes)


def test_without_a_good_ancestor_the_range_says_why_in_one_line() -> None:
    rep = run(maintenance("c007", first_good="m01"), "19.10.0..20.0.0")
    (f,) = rep.findings
    assert f.status == "skipped" and f.commit is None
    assert "19.10.0 is not in 20.0.0's history" in f.reason and "merge base c008" in f.reason


def test_confidence_mode_starts_from_the_merge_base_too() -> None:
    plain = maintenance("c017")
    racy = RacyLab(MAINT, history=plain.history, first_bad="c017", rate=0.7, seed=1)
    budget = Budget(2, Cancel())
    how = Bisect(lambda: racy.history, confidence=Confidence(0.9, 300))
    try:
        rep = range_run(racy, report_for(["auto/unix"]), "19.10.0..20.0.0", budget, Progress(), how)
    finally:
        budget.close()
    (f,) = rep.findings
    assert (f.status, f.commit.sha) == ("found", "c017")
    assert any("merge base c008" in n for n in f.notes)
