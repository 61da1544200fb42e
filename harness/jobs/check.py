"""``--check``: one release (a version number) or one git ref, evaluated once (or
``--repeat`` times) in the one column."""

from __future__ import annotations

from collections.abc import Callable

from harness.jobs.protocols import Evaluator, History
from harness.model import targets
from harness.model.results import Row


def check(lab: Evaluator, column: str, target: str, open_history: Callable[[], History]) -> Row:
    if targets.looks_like_version(target):
        version = targets.resolve(targets.parse(target), lab.versions(), lab.package)[0]
        return lab.release(lab.fetch(version), column)
    history = open_history()
    return lab.ref(history, history.resolve(target), column, target)
