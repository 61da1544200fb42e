"""A range run: the release table, then the commit bisections of its transitions, and
what became of it (complete, or interrupted with the table so far)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from harness.host.git import SourceError
from harness.host.progress import Progress
from harness.jobs.budget import Budget
from harness.jobs.commits import bisect_commits
from harness.jobs.confident import Confidence
from harness.jobs.protocols import Evaluator, History
from harness.jobs.releases import release_table, worker_class_notes
from harness.model.table import Report


@dataclass(frozen=True)
class Bisect:
    """How the commit bisection is asked for: where the history is and how to walk it."""

    open_history: Callable[[], History]
    repo_given: bool = False  # the user named --repo: an unreadable one is their error
    first_parent: bool = False
    confidence: Confidence | None = None  # --confidence: the flake-aware search
    picks: tuple[str, ...] = ()  # --pick: repairs every commit without them gets on top


def range_run(
    lab: Evaluator,
    report: Report,
    spec_text: str,
    budget: Budget,
    progress: Progress,
    bisect: Bisect | None,
) -> Report:
    """Fill ``report``; on Ctrl-C stop everything at once and mark it interrupted (the
    caller prints the table so far and the command that resumes)."""
    try:
        release_table(lab, report.table, spec_text, budget, progress)
        report.notes += worker_class_notes(report.table)
        if bisect is not None and report.table.all_transitions():
            _commits(lab, report, budget, progress, bisect)
    except KeyboardInterrupt:
        budget.abandon()
        report.interrupted = True
    except BaseException:  # a user error in one cell ends the run: stop the others too
        budget.abandon()
        raise
    return report


def _commits(lab: Evaluator, report: Report, budget: Budget, progress: Progress, how: Bisect):
    try:
        history = how.open_history()
        picks = tuple(history.resolve(p) for p in how.picks)  # a --pick git cannot name
    except SourceError as exc:
        if how.repo_given:
            raise
        report.notes.append(f"commit bisection skipped: {exc}")
        progress(f"commit bisection skipped: {exc}")
        return
    findings, notes = bisect_commits(
        lab, report.table, history, budget, progress, how.first_parent, how.confidence, picks
    )
    report.findings += findings
    report.notes += notes
