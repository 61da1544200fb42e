"""The commit bisections that follow the release table: one per transition, side by
side, every evaluation drawn from the one budget."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from packaging.version import InvalidVersion, Version

from harness.host.git import SourceError
from harness.host.progress import Progress, SharedBar
from harness.jobs.bisector import Bisector
from harness.jobs.budget import Budget, result
from harness.jobs.confident import Confidence, ConfidentBisector
from harness.jobs.protocols import Evaluator, History
from harness.model.results import Finding
from harness.model.search import Transition
from harness.model.table import Table
from harness.model.verdict import Axis


def bisect_commits(
    lab: Evaluator,
    table: Table,
    history: History,
    budget: Budget,
    progress: Progress,
    first_parent: bool = False,
    confidence: Confidence | None = None,
    picks: tuple[str, ...] = (),
) -> tuple[list[Finding], list[str]]:
    """(findings in the order of the transitions, notes): a range whose own history
    cannot be read (no tag, git trouble) is skipped with a note."""
    work = table.all_transitions()
    if not work:
        return [], []
    shared = SharedBar(progress)
    # an estimate: a bisection between two releases tests about 6-11 commits
    shared.start(8 * len(work), "commits")
    drivers = ThreadPoolExecutor(max_workers=len(work), thread_name_prefix="bisect")
    futures = [
        drivers.submit(
            _bisect_one,
            lab,
            table,
            history,
            budget,
            shared,
            (first_parent, confidence, picks),
            *job,
        )
        for job in work
    ]
    try:
        done = [result(f, budget.cancel) for f in futures]  # in slices: see budget.TICK
    except BaseException:
        budget.abandon()
        drivers.shutdown(wait=False, cancel_futures=True)
        raise
    drivers.shutdown(wait=True)
    findings = [f for f, _ in done if f is not None]
    return findings, [n for _, n in done if n]


def _bisect_one(
    lab: Evaluator,
    table: Table,
    history: History,
    budget: Budget,
    progress: Progress,
    how: tuple[bool, Confidence | None, tuple[str, ...]],
    column: str,
    axis: Axis,
    t: Transition,
) -> tuple[Finding | None, str]:
    """One transition: its finding, or a note saying why its history cannot be read."""
    first_parent, confidence, picks = how
    before = table.cell(t.before, column)
    python = before.python if before else None
    bisector: Bisector | ConfidentBisector
    if confidence is not None:
        bisector = ConfidentBisector(
            history, lab, budget, column, python, axis, confidence,
            before, table.cell(t.after, column), progress=progress, given=picks,
        )  # fmt: skip
    else:
        bisector = Bisector(
            history, lab, budget, column, python, axis, first_parent, progress, picks
        )  # fmt: skip
    try:
        finding = bisector.run(t.before, t.after, t.old_state, _older(table, column, axis, t))
    except SourceError as exc:
        where = "" if table.single else f" ({column})"
        return None, f"commit bisection {t.before}..{t.after}{where} skipped: {exc}"
    if not table.single:
        finding.column = column
    _releases_of(finding, history, lab, table, column, axis, t)
    after = table.cell(t.after, column)
    if python and after is not None and after.python and after.python != python:
        finding.notes.append(
            f"{t.before} ran on Python {python} and {t.after} on Python {after.python}: "
            "the transition compares two interpreters"
        )
    return finding, ""


def _older(table: Table, column: str, axis: Axis, t: Transition) -> list[str]:
    """The column's releases before ``t.before`` in its state, newest first: where a
    bisection may start when ``t.before`` is not in ``t.after``'s history."""
    rows = table.column_rows(column)
    names = [r.target for r in rows]
    if t.before not in names:
        return []
    earlier = rows[: names.index(t.before)]
    return [r.target for r in reversed(earlier) if axis.state(r.verdict) == t.old_state]


def _final_releases(lab: Evaluator) -> dict[Version, str]:
    out = {}
    for v in lab.versions():
        try:
            parsed = Version(v)
        except InvalidVersion:
            continue
        if not parsed.is_prerelease and not parsed.is_devrelease:
            out[parsed] = v
    return out


def _releases_of(
    finding: Finding, history: History, lab: Evaluator, table: Table, column: str,
    axis: Axis, t: Transition,
) -> None:  # fmt: skip
    """The releases a finding's commit is in, read from the tags: the first release
    whose tag contains it (said when the table names a later one, with what that
    release did); a regression no later release fixes says the newest release still
    has it."""
    releases = _final_releases(lab)
    if finding.status == "found" and finding.commit is not None:
        tagged = []
        for tag in history.tags_containing(finding.commit.sha):
            try:
                version = Version(tag.removeprefix("v"))
            except InvalidVersion:
                continue
            if version in releases:
                tagged.append(version)
        if tagged:
            finding.shipped_in = first = releases[min(tagged)]
            if first != t.after:
                row = table.cell(first, column)
                how = "was not tested" if row is None else f"is {row.verdict.value} here"
                if row is not None and axis.state(row.verdict) is None:
                    how = f"could not be tested ({row.verdict.value})"
                finding.notes.append(
                    f"first released in {first}, the first release whose tag contains it "
                    f"({first} {how})"
                )
    ts = table.transitions(column, axis)
    rows = [r for r in table.column_rows(column) if axis.state(r.verdict) is not None]
    if t.old_state and ts and ts[-1] == t and releases and rows:
        newest = releases[max(releases)]
        if rows[-1].target == newest:
            finding.still_fails = newest
            term = "fails" if axis.new_term == "fail" else axis.new_term
            finding.notes.append(f"still {term} in {newest}, the newest release")
