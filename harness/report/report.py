"""Output: a tabulate table (default), paste-ready markdown, or JSON; and run records.

Formatting only: the facts (rows, conclusions, findings, host) are built elsewhere.
Records go into results/ atomically, so a reader never sees half a file.
"""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from tabulate import tabulate

from harness.host.fsutil import atomic_write_text
from harness.model.results import Finding, Row
from harness.model.search import Transition
from harness.model.verdict import Axis, Verdict

_COLOURS = {
    Verdict.PASS: "32",
    Verdict.FAIL: "31",
    Verdict.OUTAGE: "31;1",
    Verdict.ERROR: "33",
    Verdict.FLAKY: "35",
}
_PRIMARY = Axis("primary", Verdict.PASS, Verdict.FAIL, "pass", "fail")


@dataclass(frozen=True)
class ColumnInfo:
    """One deployment of a matrix run (a worker class on a bind) as the report names it."""

    label: str  # "gthread/unix"
    worker_class: str | None
    bind: str
    summary: str = ""  # the column's scenario in one line
    parameters: dict = field(default_factory=dict)

    def as_json(self) -> dict:
        return {
            "column": self.label,
            "worker_class": self.worker_class or "auto",
            "bind": self.bind,
            "summary": self.summary,
            "parameters": self.parameters,
        }


@dataclass
class Report:
    """Everything a run established, in the order it was established.

    With several ``columns`` (a worker class x bind matrix) each row belongs to one
    column (``row.facts["column"]``) and the transitions are per column in
    ``by_column``; with one, ``by_axis`` holds them and the output is the plain table.
    """

    command: str
    host: dict
    params: str  # the scenario in one line
    scenario: dict = field(default_factory=dict)  # name, parameters, file/command + sha256
    title: str = "Gunicorn bisection report"
    axes: list[Axis] = field(default_factory=lambda: [_PRIMARY])
    rows: list[Row] = field(default_factory=list)
    by_axis: dict[str, list[Transition]] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    interrupted: bool = False
    columns: list[ColumnInfo] = field(default_factory=list)
    by_column: dict[str, dict[str, list[Transition]]] = field(default_factory=dict)

    @property
    def matrix(self) -> bool:
        return len(self.columns) > 1

    @property
    def labels(self) -> list[str]:
        return [c.label for c in self.columns]

    def targets(self) -> list[str]:
        """Every target once, in the order of the rows."""
        return list(dict.fromkeys(r.target for r in self.rows))

    def rows_of(self, column: str) -> list[Row]:
        return [r for r in self.rows if r.facts.get("column") == column]

    def cell(self, target: str, column: str) -> Row | None:
        return next(
            (r for r in self.rows if r.target == target and r.facts.get("column") == column),
            None,
        )

    def has_transitions(self) -> bool:
        """Anything for commit bisection, in any column, on any axis."""
        return any(self.by_axis.values()) or any(
            ts for axes in self.by_column.values() for ts in axes.values()
        )

    def transitions_of(self, column: str, axis: str = "primary") -> list[Transition]:
        return self.by_column.get(column, {}).get(axis, [])

    @property
    def primary(self) -> Axis:
        return self.axes[0]

    @property
    def transitions(self) -> list[Transition]:
        """The scenario's own question's transitions (pass <-> fail)."""
        return self.by_axis.get(self.primary.key, [])

    def axis(self, key: str) -> Axis:
        return next(a for a in self.axes if a.key == key)

    def regressions(self) -> list[Transition]:
        return [t for t in self.transitions if t.old_state and not t.new_state]

    def fixes(self) -> list[Transition]:
        return [t for t in self.transitions if not t.old_state and t.new_state]

    def affected(self) -> list[str]:
        return [r.target for r in self.rows if r.verdict is self.primary.new]

    def finding_for(self, t: Transition, axis: str = "primary", column: str = "") -> Finding | None:
        return next(
            (
                f
                for f in self.findings
                if f.before == t.before
                and f.after == t.after
                and f.axis == axis
                and f.column == column
            ),
            None,
        )

    def as_json(self) -> dict:
        if self.matrix:
            return self._matrix_json()

        def finding_for(t: Transition, axis: str = "primary") -> dict | None:
            f = self.finding_for(t, axis)
            return f.as_json() if f else None

        others = []
        for ax in self.axes[1:]:
            ts = self.by_axis.get(ax.key, [])
            others.append(
                {
                    "axis": ax.key,
                    "label": ax.label,
                    "verdict": ax.new.value,
                    "affected": [r.target for r in self.rows if r.verdict is ax.new],
                    "introduced": [
                        {
                            "last_good": t.before,
                            "first_bad": t.after,
                            "untested": list(t.between),
                            "commit": finding_for(t, ax.key),
                        }
                        for t in ts
                        if t.old_state
                    ],
                    "fixed": [
                        {
                            "last_bad": t.before,
                            "first_good": t.after,
                            "untested": list(t.between),
                            "commit": finding_for(t, ax.key),
                        }
                        for t in ts
                        if not t.old_state
                    ],
                }
            )

        regs, fixes = [], []
        for t in self.regressions():
            regs.append(
                {
                    "last_good": t.before,
                    "first_bad": t.after,
                    "untested": list(t.between),
                    "commit": finding_for(t),
                }
            )
        for t in self.fixes():
            fixes.append(
                {
                    "last_bad": t.before,
                    "first_good": t.after,
                    "untested": list(t.between),
                    "commit": finding_for(t),
                }
            )
        return {
            "command": self.command,
            "host": self.host,
            "scenario": {**self.scenario, "summary": self.params},
            "terms": [self.primary.old_term, self.primary.new_term],
            "rows": [r.as_json() for r in self.rows],
            "regressions": regs,
            "fixes": fixes,
            "affected": self.affected(),
            "other_problems": others,
            "columns": [c.as_json() for c in self.columns],
            "notes": self.notes,
            "interrupted": self.interrupted,
        }

    def _matrix_json(self) -> dict:
        """The same document with one row per (target, column) and a ``column`` key on
        every transition; ``affected_by_release`` says which deployments fail where."""

        def entry(t: Transition, axis: str, column: str) -> dict:
            f = self.finding_for(t, axis, column)
            ends = ("last_good", "first_bad") if t.old_state else ("last_bad", "first_good")
            return {
                "column": column,
                ends[0]: t.before,
                ends[1]: t.after,
                "untested": list(t.between),
                "commit": f.as_json() if f else None,
            }

        regs, fixes, others = [], [], []
        for col in self.labels:
            for t in self.transitions_of(col):
                (regs if t.old_state else fixes).append(entry(t, "primary", col))
        for ax in self.axes[1:]:
            ts = [(col, t) for col in self.labels for t in self.transitions_of(col, ax.key)]
            others.append(
                {
                    "axis": ax.key,
                    "label": ax.label,
                    "verdict": ax.new.value,
                    "affected": [
                        {"target": r.target, "column": r.facts.get("column")}
                        for r in self.rows
                        if r.verdict is ax.new
                    ],
                    "introduced": [entry(t, ax.key, c) for c, t in ts if t.old_state],
                    "fixed": [entry(t, ax.key, c) for c, t in ts if not t.old_state],
                }
            )
        new = self.primary.new
        by_release = {
            target: [c for c in self.labels if (r := self.cell(target, c)) and r.verdict is new]
            for target in self.targets()
        }
        return {
            "command": self.command,
            "host": self.host,
            "scenario": {**self.scenario, "summary": self.params},
            "terms": [self.primary.old_term, self.primary.new_term],
            "columns": [c.as_json() for c in self.columns],
            "rows": [_matrix_row_json(r) for r in self.rows],
            "regressions": regs,
            "fixes": fixes,
            "affected": [t for t, cols in by_release.items() if cols],
            "affected_by_release": {t: cols for t, cols in by_release.items() if cols},
            "other_problems": others,
            "notes": self.notes,
            "interrupted": self.interrupted,
        }


def _matrix_row_json(r: Row) -> dict:
    """A row of one column: ``worker_class`` is what ran (gunicorn's log; null when no
    server ran), ``column`` what was asked."""
    out = r.as_json()
    column = str(r.facts.get("column", ""))
    out.setdefault("column", column)
    out.setdefault("bind", column.rsplit("/", 1)[-1])
    out.setdefault("worker_class", None)
    return out


def use_colour(stream=sys.stdout) -> bool:
    return stream.isatty() and "NO_COLOR" not in os.environ and os.environ.get("TERM") != "dumb"


def _name(v: Verdict, rep: Report | None) -> str:
    """What users call a verdict: pass/fail, or the --terms they chose."""
    if rep is not None and v is rep.primary.old:
        return rep.primary.old_term
    if rep is not None and v is rep.primary.new:
        return rep.primary.new_term
    return v.value


verdict_name = _name


def _verdict(v: Verdict, colour: bool, rep: Report | None = None) -> str:
    text = _name(v, rep).upper()
    return f"\033[{_COLOURS[v]}m{text}\033[0m" if colour else text


def _default_terms(ax: Axis) -> bool:
    return (ax.old_term, ax.new_term) == ("pass", "fail")


def _transition_line(ax: Axis, t: Transition) -> str:
    gap = f" (untestable in between: {', '.join(t.between)})" if t.between else ""
    if ax.primary and _default_terms(ax):
        if t.old_state:
            return f"regression introduced in {t.after} (last good {t.before}){gap}"
        return f"fixed in {t.after} (last bad {t.before}){gap}"
    if ax.primary:
        frm, to = (ax.old_term, ax.new_term) if t.old_state else (ax.new_term, ax.old_term)
        return f"{frm} -> {to}: changed in {t.after} (last {frm} {t.before}){gap}"
    if t.old_state:
        return f"{ax.label}: introduced in {t.after} (last good {t.before}){gap}"
    return f"{ax.label}: fixed in {t.after} (last {ax.new_term} {t.before}){gap}"


def _conclusions(rep: Report) -> list[str]:
    if not rep.matrix:
        return _column_conclusions(rep, rep.rows, rep.by_axis)
    lines = []
    for col in rep.labels:
        found = _column_conclusions(rep, rep.rows_of(col), rep.by_column.get(col, {}))
        lines += [f"{col}: {line}" for line in found]
    return lines


def _column_conclusions(
    rep: Report, rows: list[Row], by_axis: dict[str, list[Transition]]
) -> list[str]:
    transitions = by_axis.get(rep.primary.key, [])
    lines = [_transition_line(rep.primary, t) for t in transitions]
    testable = [r for r in rows if r.verdict in (rep.primary.old, rep.primary.new)]
    if rows and not transitions:
        if not testable:
            lines.append("no conclusion: no release could be tested")
        else:
            state = _name(testable[0].verdict, rep)
            lines.append(f"no change: every testable release is {state}")
    for ax in rep.axes[1:]:
        hit = [r.target for r in rows if r.verdict is ax.new]
        if not hit:
            continue
        lines.append(f"{ax.label}: {ax.new_term} in {', '.join(hit)}")
        lines += [_transition_line(ax, t) for t in by_axis.get(ax.key, [])]
    return lines


def _finding_head(f: Finding, rep: Report) -> tuple[str, str]:
    """The finding's heading and what its commit is called."""
    ax = rep.axis(f.axis) if any(a.key == f.axis for a in rep.axes) else rep.primary
    if ax.primary and _default_terms(ax):
        label = "first failing commit" if f.kind == "regression" else "first passing commit"
        return f"{f.kind}: {f.before} -> {f.after}", label
    if ax.primary:
        to = ax.new_term if f.kind == "regression" else ax.old_term
        frm = ax.old_term if f.kind == "regression" else ax.new_term
        return f"{frm} -> {to}: {f.before} -> {f.after}", f"first {to!r} commit"
    what = "introduced" if f.kind == "regression" else "fixed"
    label = f"first commit {'with' if what == 'introduced' else 'without'} it"
    return f"{ax.label}, {what}: {f.before} -> {f.after}", label


def _finding_lines(f: Finding, rep: Report) -> list[str]:
    head, label = _finding_head(f, rep)
    if f.column:
        head = f"{f.column}: {head}"
    if f.status == "skipped":
        return [f"{head}  commit bisection skipped: {f.reason}"]
    if f.status == "ambiguous":
        out = [f"{head}  not settled: {f.reason}:"]
        out += [
            f"    {c.short} {c.subject!r} ({c.date[:10]}, {c.author.split(' <')[0]})"
            for c in f.candidates
        ]
        return out
    if f.status != "found" or f.commit is None:
        return [f"{head}  {f.reason}"]
    c = f.commit
    refs = []
    if c.pr:
        refs.append(f"PR #{c.pr}")
    refs += [f'"Fix #{n}"' for n in c.fixes]
    ref = f" ({', '.join(refs)})" if refs else ""
    out = [
        f"{head}  {label} {c.sha[:12]} {c.subject!r} "
        f"({c.date[:10]}, {c.author.split(' <')[0]}){ref}"
    ]
    pad = " " * (len(head) + 2)
    if f.merge is not None:
        pr = f" (PR #{f.merge.pr})" if f.merge.pr else ""
        out.append(f"{pad}reached the mainline in {f.merge.sha[:12]}{pr} {f.merge.subject!r}")
    if f.needed:
        out.append(
            f"{pad}untestable alone: tested with {', '.join(n[:12] for n in f.needed)} "
            "picked on top so that it could boot"
        )
    if f.url:
        out.append(f"{pad}{f.url}")
    return out


def _steps_table(f: Finding, fmt: str, colour: bool, rep: Report) -> str:
    rows = [
        [
            s.sha[:12] + (f"+{s.picked[:7]}" if s.picked else ""),
            _verdict(s.verdict, colour, rep),
            s.python or "-",
            s.detail,
        ]
        for s in f.steps
    ]
    return tabulate(rows, headers=["commit", "verdict", "python", "evidence"], tablefmt=fmt)


def _matrix_cells(rep: Report, cell) -> list[list[str]]:
    """One line per release: its Python (the one most of its columns ran on) and a
    verdict per column (``cell(row)`` formats it); a cell that ran on another Python
    says which."""
    lines = []
    for target in rep.targets():
        row = [rep.cell(target, c) for c in rep.labels]
        pythons = [r.python for r in row if r is not None and r.python]
        python = max(dict.fromkeys(pythons), key=pythons.count) if pythons else None
        cells = []
        for r in row:
            if r is None:
                cells.append("-")
                continue
            other = f" (Python {r.python})" if r.python and r.python != python else ""
            cells.append(cell(r) + other)
        lines.append([target, python or "-", *cells])
    return lines


def _evidence(rep: Report, verbose: bool) -> list[tuple[Row, str]]:
    """(row, column) in table order: every one with ``verbose``, else those not passing."""
    out = []
    for target in rep.targets():
        for col in rep.labels:
            r = rep.cell(target, col)
            if r is not None and (verbose or r.verdict is not rep.primary.old):
                out.append((r, col))
    return out


def _matrix_table(rep: Report, colour: bool, verbose: bool) -> list[str]:
    out = [f"scenario: {rep.params}"]
    out += [f"  {c.label}: {c.summary}" for c in rep.columns]
    out += [
        f"host: {rep.host.get('compat', '?')}; Pythons found: "
        f"{', '.join(rep.host.get('pythons', [])) or 'none'}",
        "",
        tabulate(
            _matrix_cells(rep, lambda r: _verdict(r.verdict, colour, rep)),
            headers=["release", "python", *rep.labels],
            tablefmt="simple",
        ),
        "",
    ]
    evidence = _evidence(rep, verbose)
    what = "every result" if verbose else f"every result that is not {_name(rep.primary.old, rep)}"
    if evidence:
        out.append(f"evidence ({what}{'' if verbose else '; -v for all'}):")
        out.append(
            tabulate(
                [[r.target, c, _verdict(r.verdict, colour, rep), r.detail] for r, c in evidence],
                headers=["release", "deployment", "verdict", "evidence"],
                tablefmt="simple",
            )
        )
    else:
        out.append(f"evidence: every result is {_name(rep.primary.old, rep)} (-v for each)")
    out.append("")
    return out


def render_table(rep: Report, colour: bool = False, verbose: bool = False) -> str:
    if rep.matrix:
        out = _matrix_table(rep, colour, verbose)
    else:
        rows = [
            [r.target, r.python or "-", _verdict(r.verdict, colour, rep), r.detail]
            for r in rep.rows
        ]
        out = [
            f"scenario: {rep.params}",
            f"host: {rep.host.get('compat', '?')}; Pythons found: "
            f"{', '.join(rep.host.get('pythons', [])) or 'none'}",
            "",
            tabulate(rows, headers=["release", "python", "verdict", "evidence"], tablefmt="simple"),
            "",
        ]
    out += _conclusions(rep)
    for f in rep.findings:
        out.append("")
        out += _finding_lines(f, rep)
        if f.steps:
            out.append(f"steps ({len(f.steps)} commits tested):")
            out.append(_steps_table(f, "simple", colour, rep))
    out += [f"note: {n}" for n in rep.notes]
    return "\n".join(out)


def _who(c) -> str:
    return f"{c.date[:10]}, {c.author.split(' <')[0]}"


def _finding_markdown(f: Finding, rep: Report) -> list[str]:
    """The finding as a list a maintainer can paste into an upstream issue."""
    if f.status == "skipped":
        return [f"- commit bisection skipped: {f.reason}"]
    if f.status == "ambiguous":
        return [f"- not settled: {f.reason}:"] + [
            f"  - `{c.short}` {c.subject!r} ({_who(c)})" for c in f.candidates
        ]
    if f.status != "found" or f.commit is None:
        return [f"- {f.reason}"]
    c = f.commit
    label = _finding_head(f, rep)[1]
    sha = f"[`{c.sha[:12]}`]({f.url})" if f.url else f"`{c.sha[:12]}`"
    refs = ([f"PR #{c.pr}"] if c.pr else []) + [f'"Fix #{n}"' for n in c.fixes]
    out = [f"- {label}: {sha} {c.subject!r} ({_who(c)})" + (f", {', '.join(refs)}" if refs else "")]
    out.append(f"  - full sha: `{c.sha}`")
    if f.merge is not None:
        pr = f" (PR #{f.merge.pr})" if f.merge.pr else ""
        out.append(f"- reached the mainline in `{f.merge.sha[:12]}`{pr} {f.merge.subject!r}")
    if f.needed:
        picks = ", ".join(f"`{n[:12]}`" for n in f.needed)
        out.append(f"- untestable alone: tested with {picks} picked on top so that it could boot")
    out.append(f"- {len(f.steps)} commits tested:")
    return out


def _matrix_markdown(rep: Report, verbose: bool) -> list[str]:
    """The matrix as a github table, the evidence, and which deployments fail where."""
    out = [
        tabulate(
            [
                [f"`{line[0]}`", *line[1:]]
                for line in _matrix_cells(rep, lambda r: f"**{_name(r.verdict, rep).upper()}**")
            ],
            headers=["release", "python", *rep.labels],
            tablefmt="github",
        ),
        "",
        "### Evidence",
        "",
    ]
    evidence = _evidence(rep, verbose)
    out += [
        f"- `{r.target}` {c}: **{_name(r.verdict, rep).upper()}** {r.detail}" for r, c in evidence
    ] or [f"- every result is {_name(rep.primary.old, rep)}"]
    out.append("")
    concl = _conclusions(rep)
    if concl:
        out += ["### Conclusions", ""] + [f"- {c}" for c in concl] + [""]
    out += ["### Which deployments are affected", ""]
    new = rep.primary.new
    lines = []
    for target in rep.targets():
        cells = [(c, rep.cell(target, c)) for c in rep.labels]
        if not any(r is not None and r.verdict is new for _, r in cells):
            continue
        by_verdict: dict[Verdict, list[str]] = {}
        for c, r in cells:
            if r is not None:
                by_verdict.setdefault(r.verdict, []).append(c)
        order = [new, rep.primary.old] + [v for v in by_verdict if v not in (new, rep.primary.old)]
        parts = [
            f"{_name(v, rep)} with {', '.join(by_verdict[v])}" for v in order if v in by_verdict
        ]
        lines.append(f"- `{target}`: " + "; ".join(parts))
    out += lines or [f"- no tested release is {_name(new, rep)} in any deployment"]
    out.append("")
    return out


def render_markdown(rep: Report, verbose: bool = False) -> str:
    h = rep.host
    out = [f"## {rep.title}", ""]
    out.append(f"- host: Linux {h.get('kernel')}, {h.get('compat')}")
    out.append(f"- interpreters: {', '.join(h.get('pythons', [])) or 'none'}")
    if h.get("date"):
        out.append(f"- date: {h['date']}")
    out.append(f"- scenario: {rep.params}")
    out += [f"  - `{c.label}`: {c.summary}" for c in rep.columns if rep.matrix]
    out.append("")
    if rep.matrix:
        out += _matrix_markdown(rep, verbose)
    else:
        # where the scenario reports them: the worker that ran, the trigger, the compat shim
        facts = any("worker_class" in r.facts or "trigger" in r.facts for r in rep.rows)
        rows = [
            [f"`{r.target}`", r.python or "-"]
            + (
                [
                    r.facts.get("worker_class") or "-",
                    r.facts.get("trigger") or "-",
                    "shim" if r.compat else "-",
                ]
                if facts
                else []
            )
            + [f"**{_name(r.verdict, rep).upper()}**", r.detail]
            for r in rep.rows
        ]
        headers = ["release", "python"]
        headers += ["worker", "trigger", "compat"] if facts else []
        out.append(tabulate(rows, headers=headers + ["verdict", "evidence"], tablefmt="github"))
        out.append("")
        concl = _conclusions(rep)
        if concl:
            out += ["### Conclusions", ""] + [f"- {c}" for c in concl] + [""]
        affected = rep.affected()
        heading = (
            "Affected releases"
            if _default_terms(rep.primary)
            else (f"Releases that are {rep.primary.new_term!r}")
        )
        out += [f"### {heading}", ""]
        out += [f"- {v}" for v in affected] if affected else ["- none of the tested releases"]
        out.append("")
    for f in rep.findings:
        head = _finding_head(f, rep)[0] + (f" ({f.column})" if f.column else "")
        out += [f"### {head[0].upper()}{head[1:]}", ""]
        out += _finding_markdown(f, rep) + [""]
        if f.steps:
            out += [_steps_table(f, "github", False, rep), ""]
    if rep.notes:
        out += [f"> {n}" for n in rep.notes] + [""]
    out += ["Reproduce with:", "", "```", rep.command, "```"]
    return "\n".join(out)


def render(rep: Report, fmt: str, colour: bool = False, verbose: bool = False) -> str:
    """``verbose``: a matrix lists the evidence of every cell, not only those not passing."""
    if fmt == "json":
        return json.dumps(rep.as_json(), indent=2)
    if fmt == "markdown":
        return render_markdown(rep, verbose)
    return render_table(rep, colour, verbose)


def write_record(rep: Report, results_dir: Path, label: str) -> Path:
    """Save the run's record (JSON) and its markdown report beside it, atomically."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    safe = "".join(c if c.isalnum() or c in ".-_" else "_" for c in label)[:60]
    base = results_dir / f"{stamp}-{safe}-{os.getpid()}"
    record = Path(f"{base}.json")
    atomic_write_text(record, json.dumps(rep.as_json(), indent=2) + "\n")
    atomic_write_text(Path(f"{base}.md"), render_markdown(rep) + "\n")
    return record
