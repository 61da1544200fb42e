"""``--check``: one release (a version number) or one git ref, evaluated once (or
``--repeat`` times) in the one column; with ``--confidence``, as often as it takes;
with several scenarios (``--scenario all``), once per scenario, beside the release in
use now when ``--from`` names it."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from harness.host.progress import Progress
from harness.jobs.budget import Budget
from harness.jobs.confident import Confidence, changed
from harness.jobs.protocols import Evaluator, History
from harness.jobs.run import fetch_one
from harness.model import targets
from harness.model.candidate import Entry
from harness.model.confidence import CheckAnswer
from harness.model.confidence import check as model_check
from harness.model.errors import HarnessError
from harness.model.results import Row
from harness.model.verdict import Axis, Verdict, printable
from harness.scenarios.base import ScenarioError


def resolved(lab: Evaluator, target: str, repo_given: bool = False) -> str:
    """The release a version number (or ``latest``) names on the index; a git ref as
    given (with ``--repo``, a tag the index lacks too).  A release that does not exist
    is the user's error, raised once."""
    if targets.looks_like_version(target):
        spec = targets.parse(target)
        return targets.resolve(spec, lab.versions(), lab.package, refs=repo_given)[0]
    return target


def check(
    lab: Evaluator,
    column: str,
    target: str,
    open_history: Callable[[], History],
    repo_given: bool = False,
) -> Row:
    return lab.release(fetch_one(lab, target, open_history, repo_given), column)


def check_at(
    lab: Evaluator,
    column: str,
    target: str,
    open_history: Callable[[], History],
    want: Confidence,
    axis: Axis,
    repo_given: bool = False,
) -> tuple[CheckAnswer, Row]:
    """``--check`` at ``--confidence``: run until pass or fail holds at P, or
    ``--max-runs`` is spent (cannot tell); ``error`` runs are not counted.  The last row
    is returned for its Python and detail."""
    fetched = fetch_one(lab, target, open_history, repo_given)
    run = lambda: lab.release(fetched, column)  # noqa: E731
    fails = runs = attempts = 0
    while True:
        row = run()
        attempts += 1
        failed = changed(row.verdict, axis)
        if failed is not None:
            fails, runs = fails + failed, runs + 1
        said = model_check(fails, runs, want.level)
        if said.verdict != "cannot tell" or attempts >= want.max_runs:
            return said, row


# -- one candidate against every scenario (--scenario a,b / all, --from Y) ---------------


@dataclass(frozen=True)
class Case:
    """One scenario of a check-all: its lab and column, or why it cannot run at all."""

    name: str
    lab: Evaluator | None = None
    column: str = ""
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
    """Every case on ``target`` (and ``before``), within the one ``-j`` budget, in the
    order given.  A case that refuses an option (``ScenarioError``) is an entry that did
    not run; any other problem of one case is its ``error`` row, unless every run had
    the same one: then it is the user's (raised, one line)."""
    history = _once(open_history)
    wanted = [t for t in (before, target) if t is not None]
    work = [(i, t) for i, c in enumerate(cases) if c.lab is not None for t in wanted]
    progress.start(len(work), "runs")

    def run(job: tuple[int, str]) -> Row | ScenarioError | HarnessError:
        case = cases[job[0]]
        try:
            return check(case.lab, case.column, job[1], history, repo_given)
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
