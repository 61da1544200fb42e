"""What a run established: targets x deployments of rows, transitions read off them (never
stored), findings, header facts, and what it amounts to (``answer``); and a check-all
(``--check X --scenario all [--from Y]``): what each scenario says about X (and Y).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from harness.model.results import Finding, Row
from harness.model.search import Transition, transitions
from harness.model.verdict import DEFAULT_AXIS, Axis, Verdict


@dataclass(frozen=True)
class Deployment:
    """One deployment (a worker class on a bind) as the report names it."""

    label: str  # "gthread/unix"
    worker_class: str | None
    bind: str
    summary: str = ""  # the deployment's scenario in one line
    parameters: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict:
        return {
            "column": self.label,
            "worker_class": self.worker_class or "auto",
            "bind": self.bind,
            "summary": self.summary,
            "parameters": self.parameters,
        }


def deployment_label(worker_class: str | None, bind: str) -> str:
    return f"{worker_class or 'auto'}/{bind}"


@dataclass
class Table:
    """Rows by (target, deployment), in the order targets were asked for."""

    deployments: list[Deployment]
    axes: list[Axis] = field(default_factory=lambda: [DEFAULT_AXIS])
    targets: list[str] = field(default_factory=list)  # every target asked for, in order
    cells: dict[tuple[str, str], Row] = field(default_factory=dict)

    @property
    def primary(self) -> Axis:
        return self.axes[0]

    @property
    def labels(self) -> list[str]:
        return [c.label for c in self.deployments]

    @property
    def single(self) -> bool:
        """One deployment: the plain table (the renderers' only layout choice)."""
        return len(self.deployments) == 1

    def put(self, target: str, deployment: str, row: Row) -> None:
        self.cells[(target, deployment)] = row

    def cell(self, target: str, deployment: str) -> Row | None:
        return self.cells.get((target, deployment))

    def tested(self) -> list[str]:
        """Targets with at least one cell."""
        return [t for t in self.targets if any((t, c) in self.cells for c in self.labels)]

    def rows(self) -> list[tuple[Row, str]]:
        """(row, deployment) in target order, then deployment order."""
        return [
            (r, c) for t in self.targets for c in self.labels if (r := self.cell(t, c)) is not None
        ]

    def deployment_rows(self, deployment: str) -> list[Row]:
        return [r for r, c in self.rows() if c == deployment]

    def transitions(self, deployment: str, axis: Axis | None = None) -> list[Transition]:
        ax = axis or self.primary
        states = [(r.target, ax.state(r.verdict)) for r in self.deployment_rows(deployment)]
        return transitions(states)

    def all_transitions(self) -> list[tuple[str, Axis, Transition]]:
        """(deployment, axis, transition) in deployment order, then axis order."""
        return [
            (c, ax, t) for c in self.labels for ax in self.axes for t in self.transitions(c, ax)
        ]


@dataclass
class Report:
    """Everything a run established: the header, the table, findings and notes."""

    command: str
    host: dict
    params: str  # the scenario in one line
    table: Table
    scenario: dict = field(default_factory=dict)  # name, parameters, file/command + sha256
    title: str = "Gunicorn bisection report"
    findings: list[Finding] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    interrupted: bool = False
    resume: str = ""  # the command that resumes an interrupted run
    package: str = "gunicorn"  # what the targets are releases of (--package)

    @property
    def heading(self) -> str:
        """The target column's heading: "release", or the package's name (--package)."""
        return "release" if self.package == "gunicorn" else self.package

    @property
    def primary(self) -> Axis:
        return self.table.primary

    def axis(self, key: str) -> Axis:
        return next((a for a in self.table.axes if a.key == key), self.primary)

    def finding_for(self, t: Transition, axis: str, deployment: str) -> Finding | None:
        key = (t.before, t.after, axis, "" if self.table.single else deployment)
        return next(
            (f for f in self.findings if (f.before, f.after, f.axis, f.deployment) == key), None
        )

    @property
    def partial(self) -> str:
        """'' when every cell is in, else what a reader must know first."""
        table = self.table
        if not self.interrupted or len(table.cells) == len(table.targets) * len(table.labels):
            return ""
        return f"partial: {len(table.tested())} of {len(table.targets)} releases tested"


#: what a range run amounts to; the CLI maps each to an exit status
AnswerKind = Literal["conclusive", "inconclusive", "interrupted", "broken-command"]

# the shell's own failures: not found (127), not executable (126), a syntax error,
# a script it cannot open: the command never reached the target
_SHELL = re.compile(r"^exit (126|127)\b|syntax error|cannot open|can't open", re.I)


@dataclass(frozen=True)
class Answer:
    kind: AnswerKind
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
    table = report.table
    if not any(ax.state(r.verdict) is not None for r, _ in table.rows() for ax in table.axes):
        what = "every row is an error" if table.cells else "no row"
        return Answer("inconclusive", f"inconclusive: no release could be tested ({what})")
    unsettled = [f for f in report.findings if f.status == "uncertain"]
    if unsettled:  # --confidence: a search that did not reach its level is no answer yet
        return Answer("inconclusive", f"inconclusive: {unsettled[0].reason}")
    return Answer("conclusive", "")


#: what ``--from Y`` beside ``--check X`` says per scenario
FIXED, STILL, BOTH_PASS = "fixed by upgrading", "still fails", "passes in both"
UNKNOWN = "cannot tell"  # one of the two gave no answer (an error), or it did not run


def new_in(candidate: str) -> str:
    return f"new in {candidate}"


@dataclass(frozen=True)
class Entry:
    """One scenario's answer: ``row`` the candidate's, ``before`` the ``--from`` release's,
    ``refused`` why it did not run (an option it cannot honour, or it could not be made)."""

    scenario: str
    axes: tuple[Axis, ...] = ()
    row: Row | None = None
    before: Row | None = None
    refused: str = ""

    @property
    def ran(self) -> bool:
        return self.row is not None

    def fails(self, row: Row | None = None) -> bool | None:
        """True in a failing state of any of the scenario's questions (fail, outage), False
        when it passes, None when it cannot tell (error, flaky, not run)."""
        return failing(self.row if row is None else row, self.axes)

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
    old = axes[0].old if axes else Verdict.PASS
    return False if row.verdict in (Verdict.PASS, old) else None


def compare(before: bool | None, after: bool | None, candidate: str) -> str:
    """The release in use now -> the candidate, for one scenario."""
    if before is None or after is None:
        return UNKNOWN
    if before:
        return STILL if after else FIXED
    return new_in(candidate) if after else BOTH_PASS


def exit_kind(entries: Sequence[Entry]) -> str:
    """``fail`` when the candidate fails a scenario that ran, ``cannot tell`` when one that ran
    gave no answer or none ran, else ``pass`` (one refused is shown, not counted)."""
    ran = [e for e in entries if e.ran]
    if any(e.fails() for e in ran):
        return "fail"
    if not ran or any(e.fails() is None for e in ran):
        return "cannot tell"
    return "pass"


def summary(entries: Sequence[Entry], candidate: str) -> list[str]:
    """Which scenarios fail, which did not run (and with ``--from``, what upgrading does)."""
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
        changes = {"breaks": new_in(candidate), "fixes": FIXED}
        for verb, change in changes.items():
            names = [e.scenario for e in entries if e.change == change]
            lines += [f"upgrading {verb}: {', '.join(names)}"] if names else []
        if not any(e.change in changes.values() for e in entries):
            lines.append("upgrading changes none of the scenarios that ran in both")
    return lines


@dataclass
class Checked:
    """A whole check-all; ``reports``: each scenario's header and rows (what the JSON and OSV
    records are made from)."""

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
        return self.candidate + ("" if self.asked == self.candidate else f" ({self.asked})")
