"""The commit bisections that follow the release table: one per transition, side by
side, every evaluation drawn from the one budget."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

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
            _bisect_one, lab, table, history, budget, shared, (first_parent, confidence), *job
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
    how: tuple[bool, Confidence | None],
    column: str,
    axis: Axis,
    t: Transition,
) -> tuple[Finding | None, str]:
    """One transition: its finding, or a note saying why its history cannot be read."""
    first_parent, confidence = how
    before = table.cell(t.before, column)
    python = before.python if before else None
    bisector: Bisector | ConfidentBisector
    if confidence is not None:
        bisector = ConfidentBisector(
            history, lab, budget, column, python, axis, confidence,
            before, table.cell(t.after, column), progress=progress,
        )  # fmt: skip
    else:
        bisector = Bisector(
            history, lab, budget, column, python, axis, first_parent, progress
        )  # fmt: skip
    try:
        finding = bisector.run(t.before, t.after, old_is_pass=t.old_state)
    except SourceError as exc:
        where = "" if table.single else f" ({column})"
        return None, f"commit bisection {t.before}..{t.after}{where} skipped: {exc}"
    if not table.single:
        finding.column = column
    return finding, ""
