"""A candidate release checked against every known scenario (``--check X --scenario
all``), optionally beside the release in use now (``--from Y``): one entry per scenario,
what each says about X (and Y), and the run's exit status.

Pure: rows in, words and an exit status out; the jobs fill the entries, the renderers
read them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from harness.model.results import Row
from harness.model.verdict import Axis, Verdict

#: what ``--from Y`` beside ``--check X`` says per scenario
FIXED, STILL, BOTH_PASS = "fixed by upgrading", "still fails", "passes in both"
UNKNOWN = "cannot tell"  # one of the two gave no answer (an error), or it did not run


def new_in(candidate: str) -> str:
    return f"new in {candidate}"


@dataclass(frozen=True)
class Entry:
    """One scenario's answer.  ``row`` is the candidate's, ``before`` the ``--from``
    release's; ``refused`` says why the scenario did not run at all (it cannot honour
    an option given, or could not be made)."""

    scenario: str
    axes: tuple[Axis, ...] = ()
    row: Row | None = None
    before: Row | None = None
    refused: str = ""

    @property
    def ran(self) -> bool:
        return self.row is not None

    def fails(self, row: Row | None = None) -> bool | None:
        """True when the row is in a failing state of one of the scenario's questions (a
        fail, an outage); False when it passes; None when it cannot tell (an error, a
        flaky result, not run)."""
        row = self.row if row is None else row
        return failing(row, self.axes)

    @property
    def change(self) -> str:
        """With ``--from``: what upgrading does to this scenario."""
        if self.before is None or self.row is None:
            return UNKNOWN
        return compare(self.fails(self.before), self.fails(self.row), self.row.target)


def failing(row: Row | None, axes: Sequence[Axis]) -> bool | None:
    if row is None:
        return None
    if any(row.verdict is ax.new for ax in axes):
        return True
    primary = axes[0] if axes else None
    if row.verdict is Verdict.PASS or (primary is not None and row.verdict is primary.old):
        return False
    return None


def compare(before: bool | None, after: bool | None, candidate: str) -> str:
    """The release in use now -> the candidate, for one scenario."""
    if before is None or after is None:
        return UNKNOWN
    if before and after:
        return STILL
    if before:
        return FIXED
    if after:
        return new_in(candidate)
    return BOTH_PASS


def exit_kind(entries: Sequence[Entry]) -> str:
    """``fail`` when the candidate fails any scenario that ran; else ``cannot tell`` when
    one that ran gave no answer (an error) or none ran; else ``pass``.  A scenario not run
    because it cannot honour an option is shown, not counted."""
    ran = [e for e in entries if e.ran]
    if any(e.fails() for e in ran):
        return "fail"
    if not ran or any(e.fails() is None for e in ran):
        return "cannot tell"
    return "pass"


def summary(entries: Sequence[Entry], candidate: str) -> list[str]:
    """The closing lines: which scenarios fail, which could not run (and, with
    ``--from``, what upgrading changes)."""
    ran = [e for e in entries if e.ran]
    failed = [e.scenario for e in ran if e.fails()]
    unsure = [e.scenario for e in ran if e.fails() is None]
    refused = [e.scenario for e in entries if not e.ran]
    lines = []
    if failed:
        lines.append(f"{candidate} fails {len(failed)} of {len(ran)}: {', '.join(failed)}")
    elif ran and not unsure:
        lines.append(f"{candidate} passes all {len(ran)} scenarios that ran")
    if unsure:
        lines.append(f"cannot tell for {', '.join(unsure)} (see the evidence)")
    if refused:
        lines.append(f"not run: {', '.join(refused)}")
    if any(e.before is not None for e in entries):
        new = [e.scenario for e in entries if e.change == new_in(candidate)]
        fixed = [e.scenario for e in entries if e.change == FIXED]
        if new:
            lines.append(f"upgrading breaks: {', '.join(new)}")
        if fixed:
            lines.append(f"upgrading fixes: {', '.join(fixed)}")
        if not new and not fixed:
            lines.append("upgrading changes none of the scenarios that ran in both")
    return lines


@dataclass
class Checked:
    """A whole check-all: the candidate as asked and as resolved, the release beside it,
    the deployment options given, one entry per scenario, and each scenario's report
    (its header and its rows: what the JSON and OSV records are made from)."""

    command: str
    host: dict
    candidate: str  # as resolved (27.0.1)
    asked: str  # as given (latest)
    entries: list[Entry]
    before: str | None = None  # --from, as resolved
    deployment: tuple[str, ...] = ()  # the options given, as typed
    reports: dict = field(default_factory=dict)  # scenario name -> its model.table.Report
    notes: list[str] = field(default_factory=list)

    @property
    def kind(self) -> str:
        return exit_kind(self.entries)

    @property
    def named(self) -> str:
        """``27.0.1 (latest)``: the release, and how it was asked for when that differs."""
        return (
            self.candidate if self.asked == self.candidate else f"{self.candidate} ({self.asked})"
        )
