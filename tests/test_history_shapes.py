"""History as git sees it, with a fake lab and in-memory histories: maintenance
branches, merged branches on broken bases, long untestable stretches, the release a
commit ships in.  Milliseconds each; the shapes are the real ones (19.10.0 beside
20.0.0, PR #2918 on an unbootable base, 24.0.0's outage stretch)."""

from __future__ import annotations

import pytest

from harness.host.processes import Cancel
from harness.host.progress import Progress
from harness.jobs.bisector import Confidence
from harness.jobs.budget import Budget
from harness.jobs.run import Bisect, range_run
from harness.model.verdict import Verdict
from harness.report.json import as_json
from harness.report.render import render
from tests.fakes import History, Lab, RacyLab, report_for

pytestmark = pytest.mark.pure

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


def line(n: int) -> dict[str, tuple[str, ...]]:
    names = [f"c{i:03d}" for i in range(n)]
    return {names[0]: ()} | {cur: (prev,) for prev, cur in zip(names, names[1:])}


def outage_stretch(**kw) -> Lab:
    """Like 24.0.0's: c030..c095 only boot with c096 picked on top; the check's fix
    is c050, inside the stretch."""
    history = History(line(100), {"23.0.0": "c000", "24.0.0": "c040", "24.1.0": "c099"})
    stretch = frozenset(f"c{i:03d}" for i in range(30, 96))
    verdicts = {("23.0.0", "auto/unix"): F, ("24.0.0", "auto/unix"): Verdict.ERROR}
    kw.setdefault("first_bad", "c000")
    kw.setdefault("first_good", "c050")
    return Lab(
        ["23.0.0", "24.0.0", "24.1.0"], history=history, verdicts=verdicts,
        unbootable=stretch, repair="c096", **kw,
    )  # fmt: skip


def test_a_long_untestable_stretch_is_bisected_with_its_repair_picked_on_top() -> None:
    the_lab = outage_stretch()
    rep = run(the_lab, "23.0.0..24.1.0")
    (f,) = rep.findings
    assert (f.kind, f.status, f.commit.sha, f.needed) == ("fix", "found", "c050", ["c096"])
    commits = [e for e in the_lab.evaluated if e[0] not in the_lab.versions_known]
    # a bisection of 100 commits and one of the repair's line: far from 66 + 66 runs
    assert len(commits) <= 30, commits
    assert sum(1 for sha, pick, _ in commits if sha in the_lab.unbootable and pick is None) <= 12


def test_a_pick_given_up_front_is_applied_from_the_start() -> None:
    the_lab = outage_stretch()
    budget = Budget(2, Cancel())
    how = Bisect(lambda: the_lab.history, picks=("c096",))
    try:
        rep = range_run(the_lab, report_for(["auto/unix"]), "23.0.0..24.1.0", budget,
                        Progress(), how)  # fmt: skip
    finally:
        budget.close()
    (f,) = rep.findings
    assert (f.status, f.commit.sha, f.needed) == ("found", "c050", ["c096"])
    plain_in_stretch = [s for s, p, _ in the_lab.evaluated if s in the_lab.unbootable and not p]
    assert plain_in_stretch == []


def branch_on_a_broken_base(**kw) -> Lab:
    """Like PR #2918: branch commit b00 on mainline c010, in a stretch c010..c013 that
    cannot boot (c014 repairs it); merged by c020 (parents c019, b00)."""
    parents = line(30) | {"b00": ("c010",)}
    parents["c020"] = ("c019", "b00")
    history = History(parents, {"20.1.0": "c000", "21.0.0": "c029"})
    broken = frozenset({"c010", "c011", "c012", "c013", "b00"})
    verdicts = {("21.0.0", "auto/unix"): F}
    kw.setdefault("repair", "c014")
    return Lab(["20.1.0", "21.0.0"], history=history, verdicts=verdicts,
               unbootable=broken, first_bad="b00", **kw)  # fmt: skip


def test_a_branch_commit_on_a_broken_base_is_tested_with_the_mainlines_repair() -> None:
    the_lab = branch_on_a_broken_base()
    rep = run(the_lab, "20.1.0..21.0.0")
    (f,) = rep.findings
    assert (f.status, f.commit.sha, f.needed) == ("found", "b00", ["c014"])
    assert f.merge is not None and f.merge.sha == "c020"
    assert ("b00", "c014", "auto/unix") in the_lab.evaluated


def test_a_merge_is_never_named_while_its_branch_commit_is_untested() -> None:
    the_lab = branch_on_a_broken_base(repair="nothing-repairs-it")
    rep = run(the_lab, "20.1.0..21.0.0")
    (f,) = rep.findings
    assert f.status == "ambiguous" and f.commit is None
    assert [c.sha for c in f.candidates] == ["b00", "c020"]
    assert "b00: error alone, error with c014" in f.reason


def confident(lab: Lab, spec: str, level: float = 0.9, runs: int = 300):
    budget = Budget(2, Cancel())
    how = Bisect(lambda: lab.history, confidence=Confidence(level, runs))
    try:
        return range_run(lab, report_for(["auto/unix"]), spec, budget, Progress(), how)
    finally:
        budget.close()


def racy_branch(**kw) -> RacyLab:
    plain = branch_on_a_broken_base()
    kw.setdefault("repair", "c014")
    return RacyLab(["20.1.0", "21.0.0"], history=plain.history, verdicts=plain.verdicts,
                   first_only=True, unbootable=plain.unbootable, first_bad="b00", **kw)  # fmt: skip


def test_confidence_mode_names_the_branch_commit_not_its_merge() -> None:
    the_lab = racy_branch(rate=0.8, seed=2)
    rep = confident(the_lab, "20.1.0..21.0.0")
    (f,) = rep.findings
    assert (f.status, f.commit.sha, f.needed) == ("found", "b00", ["c014"])
    assert f.merge is not None and f.merge.sha == "c020"
    assert f.estimate["posterior"] >= 0.9
    assert the_lab.runs_of("b00") >= 1 and ("b00", "c014", "auto/unix") in the_lab.evaluated


def test_confidence_mode_never_claims_a_merge_whose_branch_could_not_be_tested() -> None:
    the_lab = racy_branch(rate=1.0, repair="nothing-repairs-it")
    rep = confident(the_lab, "20.1.0..21.0.0")
    (f,) = rep.findings
    assert f.status != "found"
    assert "b00" in f.reason  # the untestable branch commit is named beside the merge
    assert the_lab.evaluated.count(("b00", None, "auto/unix")) == 1  # an error: once


def test_a_tag_whose_tree_declares_another_version_is_not_bisected() -> None:
    the_lab = maintenance("c017")
    the_lab.history.declared = {"c005": "19.9.0", "c029": "19.9.0"}  # 20.0.0's tag moved
    rep = run(the_lab, "19.9.0..20.0.0")
    (f,) = rep.findings
    assert f.status == "skipped" and f.commit is None
    assert "the tag of 20.0.0 names c029" in f.reason and "says 19.9.0" in f.reason
    assert not any(sha.startswith("c0") for sha, _, _ in the_lab.evaluated)


def test_a_fix_shipped_in_an_untestable_release_is_said_to_be_in_it() -> None:
    the_lab = outage_stretch()  # c050 fixes it; 24.0.0 (c040) is before it: not shipped
    the_lab.history.tags["24.0.5"] = "c060"  # a release after the fix that could not boot
    the_lab.versions_known = ["23.0.0", "24.0.0", "24.0.5", "24.1.0"]
    the_lab.verdicts[("24.0.5", "auto/unix")] = Verdict.ERROR
    rep = run(the_lab, "23.0.0..24.1.0")
    (f,) = rep.findings
    assert (f.commit.sha, f.shipped_in) == ("c050", "24.0.5")
    assert any("first released in 24.0.5" in n and "could not be tested" in n for n in f.notes)
    assert as_json(rep)["fixes"][0]["commit"]["shipped_in"] == "24.0.5"


def test_a_regression_still_failing_at_the_newest_release_says_so() -> None:
    the_lab = maintenance("c017")
    rep = run(the_lab, "19.9.0..20.0.0")
    (f,) = rep.findings
    assert f.still_fails == "20.0.0" and f.shipped_in == "20.0.0"
    line = "still fails in 20.0.0, the newest release"
    for fmt in ("table", "markdown", "json", "osv"):
        assert line in render(rep, fmt), fmt
    osv = render(rep, "osv")
    assert '"fixed"' not in osv
    the_lab.versions_known.append("20.0.1")  # a newer release exists: no such line
    assert "still fails" not in render(run(the_lab, "19.9.0..20.0.0"), "table")


def test_a_commit_that_cannot_boot_on_its_pairs_python_runs_on_one_that_can() -> None:
    the_lab = maintenance("c017")
    the_lab.release_python = "3.13.0"
    the_lab.old_python_only = frozenset(f"c{i:03d}" for i in range(12, 20))
    rep = run(the_lab, "19.9.0..20.0.0", jobs=1)
    (f,) = rep.findings
    assert (f.status, f.commit.sha) == ("found", "c017")
    ran = {s.sha: s for s in f.steps}
    assert ran["c017"].python == "3.9.18" and ran["c017"].verdict is F
    assert "3.13.0 could not run it" in ran["c017"].detail
    assert all(s.python == "3.13.0" for s in f.steps if s.sha not in the_lab.old_python_only)


def test_confidence_mode_heals_a_long_stretch_as_a_search() -> None:
    plain = outage_stretch()
    the_lab = RacyLab(plain.versions_known, history=plain.history, first_bad="c000",
                      first_good="c050", unbootable=plain.unbootable, repair="c096",
                      rate=0.9, seed=4)  # fmt: skip
    rep = confident(the_lab, "23.0.0..24.1.0", level=0.9, runs=400)
    (f,) = rep.findings
    assert (f.kind, f.status, f.commit.sha, f.needed) == ("fix", "found", "c050", ["c096"])
    commits = [e for e in the_lab.evaluated if e[0] not in the_lab.versions_known]
    plain_in_stretch = [s for s, p, _ in commits if s in the_lab.unbootable and p is None]
    assert len(plain_in_stretch) <= 12, plain_in_stretch  # not one each of the 66
    assert len(commits) <= 60, len(commits)
