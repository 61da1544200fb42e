"""``--check``: one release (a version number) or one git ref, evaluated once (or
``--repeat`` times) in the one column; with ``--confidence``, as often as it takes."""

from __future__ import annotations

from collections.abc import Callable

from harness.jobs.confident import Confidence, changed
from harness.jobs.protocols import Evaluator, History
from harness.jobs.run import fetch_one
from harness.model.confidence import CheckAnswer
from harness.model.confidence import check as model_check
from harness.model.results import Row
from harness.model.verdict import Axis


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
