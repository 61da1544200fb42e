"""A range run: the release table (every release or git ref, in every deployment), then the
commit bisections of its transitions side by side, every evaluation from the one budget.
And ``--check``: one release or git ref in the one deployment (with ``--confidence``, as
often as it takes; with several scenarios, once each, beside ``--from``'s release)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from functools import partial
from typing import Any

from packaging.version import InvalidVersion, Version

from harness.host.git import SourceError
from harness.host.progress import Progress
from harness.jobs.bisector import (
    Bisector,
    Confidence,
    ConfidentBisector,
    Evaluator,
    History,
    changed,
)
from harness.jobs.budget import Budget, result
from harness.model import targets
from harness.model.confidence import CheckAnswer, judge
from harness.model.errors import HarnessError
from harness.model.results import Finding, Row
from harness.model.search import Transition
from harness.model.table import Entry, Report, Table
from harness.model.verdict import Axis, Verdict, printable
from harness.scenarios.base import ScenarioError


@dataclass(frozen=True)
class Bisect:
    """How the commit bisection is asked for: where the history is and how to walk it."""

    open_history: Callable[[], History]
    repo_given: bool = False  # the user named --repo: an unreadable one is their error
    first_parent: bool = False
    confidence: Confidence | None = None  # --confidence: the flake-aware search
    picks: tuple[str, ...] = ()  # --pick: repairs every commit without them gets on top


class WithRefs:
    """The history, where each git ref of the table stands for itself as a tag (its row
    is named "REF (SHA)"), so a transition to or from it is bisected like any other."""

    def __init__(self, history: History, refs: dict[str, str]) -> None:
        self.history, self.refs = history, refs

    def tag_for_version(self, version: str) -> str | None:
        return self.refs.get(version) or self.history.tag_for_version(version)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.history, name)


def range_run(
    lab: Evaluator,
    report: Report,
    spec_text: str,
    budget: Budget,
    progress: Progress,
    bisect: Bisect | None,
    refs: Callable[[], History] | None = None,
) -> Report:
    """Fill ``report``; on Ctrl-C stop everything at once and mark it interrupted. With
    ``refs`` (the clone the user gave) a range end the index does not know is a git ref."""
    try:
        found = release_table(lab, report.table, spec_text, budget, progress, refs)
        report.notes += worker_class_notes(report.table)
        if bisect is not None and report.table.all_transitions():
            _commits(lab, report, budget, progress, bisect, found)
    except KeyboardInterrupt:
        budget.abandon()
        report.interrupted = True
    except BaseException:  # a user error in one cell ends the run: stop the others too
        budget.abandon()
        raise
    return report


def _commits(
    lab: Evaluator, report: Report, budget: Budget, progress: Progress, how: Bisect, refs: dict
) -> None:
    """Every transition bisected side by side; findings in the order of the transitions, a
    note for a range whose history cannot be read (no tag, git trouble)."""
    try:
        history = how.open_history()
        how = replace(how, picks=tuple(history.resolve(p) for p in how.picks))  # git names them
    except SourceError as exc:
        if how.repo_given:
            raise
        report.notes.append(f"commit bisection skipped: {exc}")
        progress(f"commit bisection skipped: {exc}")
        return
    work = report.table.all_transitions()
    progress.start(8 * len(work), "commits")  # an estimate: a bisection tests 6-11 commits
    history = WithRefs(history, refs) if refs else history
    one = partial(_bisect_one, lab, report.table, history, budget, progress, how)
    drivers = ThreadPoolExecutor(max_workers=len(work), thread_name_prefix="bisect")
    futures = [drivers.submit(one, *job) for job in work]
    try:
        done = [result(f, budget.cancel) for f in futures]  # in slices: see budget.TICK
    except BaseException:
        budget.abandon()
        drivers.shutdown(wait=False, cancel_futures=True)
        raise
    drivers.shutdown(wait=True)
    report.findings += [f for f, _ in done if f is not None]
    report.notes += [n for _, n in done if n]


def _ref(lab: Evaluator, history: History, name: str) -> tuple[str, str, Any]:
    """(its row's name, its sha, what ``lab.release`` evaluates) for a git ref."""
    sha = history.resolve(name)
    label = targets.ref_label(name, sha)
    return label, sha, lab.fetch_ref(history, sha, label)


def fetch_one(
    lab: Evaluator, name: str, open_history: Callable[[], History], repo_given: bool
) -> Any:
    """``--check``'s target: a release on the index, or a git ref built from the history."""
    name = resolved(lab, name, repo_given)
    if targets.looks_like_version(name) and name in lab.versions():
        return lab.fetch(name)
    return _ref(lab, open_history(), name)[2]


def release_table(
    lab: Evaluator,
    table: Table,
    spec_text: str,
    budget: Budget,
    progress: Progress,
    refs: Callable[[], History] | None = None,
) -> dict[str, str]:
    """Fill ``table`` cell by cell as results arrive (an interrupt leaves what was
    established), each target fetched first. Returns the table's git refs: row -> sha."""
    versions = lab.versions()
    spec = targets.parse(spec_text, refs is not None)
    names = targets.resolve(spec, versions, lab.package, refs is not None)
    history = refs() if refs is not None and any(n not in versions for n in names) else None
    table.targets = list(names)
    labels = table.labels
    cells = len(names) * len(labels)
    progress(f"{len(names)} release(s) to test: {', '.join(names)}")
    if not table.single:
        progress(f"{len(labels)} deployments each: {', '.join(labels)}")
    progress.start(len(names) + cells, "steps")
    fetched, shas = [], {}
    for name in names:
        progress(f"{name}: {'fetching the wheel' if name in versions else 'the git ref'}")
        if name in versions:
            fetched.append((name, lab.fetch(name)))
        else:  # a git ref (refs given: every other name is on the index)
            label, sha, target = _ref(lab, history, name)
            fetched.append((label, target))
            shas[label] = sha
        progress.advance()
    table.targets = [label for label, _ in fetched]
    work = [(v, f, c) for v, f in fetched for c in labels]
    evaluate = lambda job: lab.release(job[1], job[2])  # noqa: E731
    for done, (i, row) in enumerate(budget.unordered(evaluate, work), 1):
        version, _, deployment = work[i]
        table.put(version, deployment, row)
        progress.advance()
        where = "" if table.single else f" {deployment}"
        progress(f"{row.target}{where}: {row.verdict.value} ({cells - done} remain)")
    return shas


def worker_class_notes(table: Table) -> list[str]:
    """Never let a table claim a worker class that did not run: say where it differed."""
    notes = []
    for col in table.deployments:
        asked = col.worker_class
        ran = sorted(
            {
                str(r.facts.get("worker_class"))
                for r in table.deployment_rows(col.label)
                if r.facts.get("worker_class") not in (None, asked)
            }
        )
        if asked and ran:
            notes.append(
                f"warning: --worker-class {asked} was asked, but gunicorn ran {', '.join(ran)} "
                "(see each row's worker_class); gunicorn turns sync into gthread when threads > 1"
            )
    return notes


def _bisect_one(
    lab: Evaluator,
    table: Table,
    history: History,
    budget: Budget,
    progress: Progress,
    how: Bisect,
    deployment: str,
    axis: Axis,
    t: Transition,
) -> tuple[Finding | None, str]:
    """One transition: its finding, or a note saying why its history cannot be read."""
    before = table.cell(t.before, deployment)
    python = before.python if before else None
    bisector: Bisector | ConfidentBisector
    if how.confidence is not None:
        bisector = ConfidentBisector(
            history, lab, budget, deployment, python, axis, how.confidence,
            before, table.cell(t.after, deployment), progress=progress, given=how.picks,
        )  # fmt: skip
    else:
        bisector = Bisector(
            history, lab, budget, deployment, python, axis, how.first_parent, progress, how.picks
        )  # fmt: skip
    try:
        finding = bisector.run(t.before, t.after, t.regression, _older(table, deployment, axis, t))
    except SourceError as exc:
        where = "" if table.single else f" ({deployment})"
        return None, f"commit bisection {t.before}..{t.after}{where} skipped: {exc}"
    if not table.single:
        finding.deployment = deployment
    _releases_of(finding, history, lab, table, deployment, axis, t)
    after = table.cell(t.after, deployment)
    if python and after is not None and after.python and after.python != python:
        finding.notes.append(
            f"{t.before} ran on Python {python} and {t.after} on Python {after.python}: "
            "the transition compares two interpreters"
        )
    return finding, ""


def _older(table: Table, deployment: str, axis: Axis, t: Transition) -> list[str]:
    """The deployment's releases before ``t.before`` in its state, newest first."""
    rows = table.deployment_rows(deployment)
    names = [r.target for r in rows]
    if t.before not in names:
        return []
    earlier = rows[: names.index(t.before)]
    return [r.target for r in reversed(earlier) if axis.state(r.verdict) == t.regression]


def _version(text: str) -> Version | None:
    try:
        return Version(text)
    except InvalidVersion:
        return None


def _releases_of(
    finding: Finding, history: History, lab: Evaluator, table: Table, deployment: str,
    axis: Axis, t: Transition,
) -> None:  # fmt: skip
    """The first release whose tag contains the finding's commit (said when the table names a
    later one); a regression no later release fixes says the newest release still has it."""
    parsed = {v: _version(v) for v in lab.versions()}
    releases = {p: v for v, p in parsed.items() if p and not (p.is_prerelease or p.is_devrelease)}
    if finding.status == "found" and finding.commit is not None:
        tags = history.tags_containing(finding.commit.sha)
        tagged = [v for t in tags if (v := _version(t.removeprefix("v"))) in releases]
        if tagged:
            finding.shipped_in = first = releases[min(tagged)]
            if first != t.after:
                row = table.cell(first, deployment)
                how = "was not tested" if row is None else f"is {row.verdict.value} here"
                if row is not None and axis.state(row.verdict) is None:
                    how = f"could not be tested ({row.verdict.value})"
                finding.notes.append(
                    f"first released in {first}, the first release whose tag contains it "
                    f"({first} {how})"
                )
    ts = table.transitions(deployment, axis)
    rows = [r for r in table.deployment_rows(deployment) if axis.state(r.verdict) is not None]
    if t.regression and ts and ts[-1] == t and releases and rows:
        newest = releases[max(releases)]
        if rows[-1].target == newest:
            finding.still_fails = newest
            term = "fails" if axis.new_term == "fail" else axis.new_term
            finding.notes.append(f"still {term} in {newest}, the newest release")


def resolved(lab: Evaluator, target: str, repo_given: bool = False) -> str:
    """The release a version number (or ``latest``) names on the index (with ``--repo``, a
    tag the index lacks too); a git ref as given. A missing release is the user's error."""
    if targets.looks_like_version(target):
        spec = targets.parse(target)
        return targets.resolve(spec, lab.versions(), lab.package, refs=repo_given)[0]
    return target


def check(
    lab: Evaluator,
    deployment: str,
    target: str,
    open_history: Callable[[], History],
    repo_given: bool = False,
) -> Row:
    return lab.release(fetch_one(lab, target, open_history, repo_given), deployment)


def check_at(
    lab: Evaluator,
    deployment: str,
    target: str,
    open_history: Callable[[], History],
    want: Confidence,
    axis: Axis,
    repo_given: bool = False,
) -> tuple[CheckAnswer, Row]:
    """``--check`` at ``--confidence``: run until pass or fail holds at P, or ``--max-runs``
    is spent; ``error`` runs are not counted. The last row gives its Python and detail."""
    fetched = fetch_one(lab, target, open_history, repo_given)
    fails = runs = attempts = 0
    while True:
        row = lab.release(fetched, deployment)
        attempts += 1
        failed = changed(row.verdict, axis)
        if failed is not None:
            fails, runs = fails + failed, runs + 1
        said = judge(fails, runs, want.level)
        if said.verdict != "cannot tell" or attempts >= want.max_runs:
            return said, row


@dataclass(frozen=True)
class Case:
    """One scenario of a check-all: its lab and deployment, or why it cannot run at all."""

    name: str
    lab: Evaluator | None = None
    deployment: str = ""
    axes: tuple[Axis, ...] = ()
    refused: str = ""


def _once(open_history: Callable[[], History]) -> Callable[[], History]:
    """The history opened once for every case (a clone is not made twice)."""
    lock = threading.Lock()
    kept: list[History] = []

    def opened() -> History:
        with lock:
            if not kept:
                kept.append(open_history())
            return kept[0]

    return opened


def check_all(
    cases: Sequence[Case],
    target: str,
    before: str | None,
    open_history: Callable[[], History],
    budget: Budget,
    progress: Progress,
    repo_given: bool = False,
) -> list[Entry]:
    """Every case on ``target`` (and ``before``) from the one budget, in the order given. A
    case refusing an option is an entry that did not run; another problem is its ``error``
    row, unless every run had the same one: then it is the user's (raised)."""
    history = _once(open_history)
    wanted = [t for t in (before, target) if t is not None]
    work = [(i, t) for i, c in enumerate(cases) if c.lab is not None for t in wanted]
    progress.start(len(work), "runs")

    def run(job: tuple[int, str]) -> Row | ScenarioError | HarnessError:
        case = cases[job[0]]
        try:
            return check(case.lab, case.deployment, job[1], history, repo_given)
        except HarnessError as exc:  # ScenarioError included: told apart below
            return exc

    found: dict[tuple[int, str], Row | HarnessError] = {}
    for n, (i, out) in enumerate(budget.unordered(run, work), 1):
        found[work[i]] = out
        progress.advance()
        what = out.verdict.value if isinstance(out, Row) else "not run"
        progress(f"{cases[work[i][0]].name} on {work[i][1]}: {what} ({len(work) - n} remain)")
    errors = [e for e in found.values() if isinstance(e, HarnessError)]
    if errors and len(errors) == len(found) and len({str(e) for e in errors}) == 1:
        raise errors[0]
    return [_entry(i, c, found, target, before) for i, c in enumerate(cases)]


def _entry(i: int, case: Case, found: dict, target: str, before: str | None) -> Entry:
    if case.lab is None:
        return Entry(case.name, case.axes, refused=case.refused)
    outs = [found[(i, t)] for t in (target, before) if t is not None]
    refusal = next((o for o in outs if isinstance(o, ScenarioError)), None)
    if refusal is not None:
        return Entry(case.name, case.axes, refused=printable(str(refusal)))
    rows = [
        o if isinstance(o, Row) else Row(t, Verdict.ERROR, printable(str(o)))
        for o, t in zip(outs, (target, before))
    ]
    return Entry(case.name, case.axes, rows[0], rows[1] if len(rows) > 1 else None)
