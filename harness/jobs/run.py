"""A range run: the release table (every requested release, or git ref, in every
column), then the commit bisections of its transitions, and what became of it
(complete, or interrupted with the table so far)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from harness.host.git import SourceError
from harness.host.progress import Progress
from harness.jobs.budget import Budget
from harness.jobs.commits import bisect_commits
from harness.jobs.confident import Confidence
from harness.jobs.protocols import Evaluator, History
from harness.model import targets
from harness.model.table import Report, Table


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
    """Fill ``report``; on Ctrl-C stop everything at once and mark it interrupted (the
    caller prints the table so far and the command that resumes).  With ``refs`` (the
    clone the user gave) a range end the index does not know is a git ref."""
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
        lab,
        report.table,
        WithRefs(history, refs) if refs else history,
        budget,
        progress,
        how.first_parent,
        how.confidence,
        picks,
    )
    report.findings += findings
    report.notes += notes


def _ref(lab: Evaluator, history: History, name: str) -> tuple[str, str, Any]:
    """(its row's name, its sha, what ``lab.release`` evaluates) for a git ref."""
    sha = history.resolve(name)
    label = targets.ref_label(name, sha)
    return label, sha, lab.fetch_ref(history, sha, label)


def fetch_one(
    lab: Evaluator, name: str, open_history: Callable[[], History], repo_given: bool
) -> Any:
    """``--check``'s target: a release on the index, or a git ref built from the history.
    A name like a version not on the index is a git ref (a tag) only with --repo."""
    if targets.looks_like_version(name):
        versions = lab.versions()
        spec = targets.parse(name)
        name = targets.resolve(spec, versions, lab.package, refs=repo_given)[0]
        if name in versions:
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
    established); a download (or a build, for a git ref) per target first, then each
    cell.  Returns the git refs of the table: row name -> sha."""
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
        version, _, column = work[i]
        table.put(version, column, row)
        progress.advance()
        where = "" if table.single else f" {column}"
        progress(f"{row.target}{where}: {row.verdict.value} ({cells - done} remain)")
    return shas


def worker_class_notes(table: Table) -> list[str]:
    """Never let a table claim a worker class that did not run: say where it differed."""
    notes = []
    for col in table.columns:
        asked = col.worker_class
        ran = sorted(
            {
                str(r.facts.get("worker_class"))
                for r in table.column_rows(col.label)
                if r.facts.get("worker_class") not in (None, asked)
            }
        )
        if asked and ran:
            notes.append(
                f"warning: --worker-class {asked} was asked, but gunicorn ran {', '.join(ran)} "
                "(see each row's worker_class); gunicorn turns sync into gthread when threads > 1"
            )
    return notes
