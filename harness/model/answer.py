"""What a range run's report amounts to, for the exit status and its one line: an
answer, no answer, an interrupted run, or a ``--run`` command that never ran the check.

Pure: the CLI maps the kind to an exit status; the rules live here, tested alone.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from harness.model.table import Report
from harness.model.verdict import Verdict

Kind = Literal["conclusive", "inconclusive", "interrupted", "broken-command"]

# the shell's own failures: not found (127), not executable (126), a syntax error,
# a script it cannot open: the command never reached the target
_SHELL = re.compile(r"^exit (126|127)\b|syntax error|cannot open|can't open", re.I)


@dataclass(frozen=True)
class Answer:
    kind: Kind
    line: str  # one line for stderr ("" when conclusive)


def _broken(report: Report) -> str | None:
    """The one detail every row shares when a ``--run`` command failed the same way on
    every target through the shell's own fault, else None."""
    rows = [r for r, _ in report.table.rows()]
    if report.scenario.get("name") != "run" or not rows:
        return None
    details = {r.detail.split(" (compat:")[0] for r in rows}
    if len(details) != 1 or any(r.verdict is not Verdict.FAIL for r in rows):
        return None
    (detail,) = details
    return detail if _SHELL.search(detail) else None


def answer(report: Report) -> Answer:
    if report.interrupted:
        what = report.partial or "the release table is complete; the commit bisection is not"
        return Answer("interrupted", f"interrupted: {what}")
    broken = _broken(report)
    if broken is not None:
        return Answer(
            "broken-command",
            f"--run fails the same way on every target ({broken}); it runs in each "
            "target's environment from the current directory: check the command",
        )
    if not report.conclusive():
        what = "every row is an error" if report.table.cells else "no row"
        return Answer("inconclusive", f"inconclusive: no release could be tested ({what})")
    unsettled = [f for f in report.findings if f.status == "uncertain"]
    if unsettled:  # --confidence: a search that did not reach its level is no answer yet
        return Answer("inconclusive", f"inconclusive: {unsettled[0].reason}")
    return Answer("conclusive", "")
