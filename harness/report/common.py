"""What every renderer says the same way (verdict names, transitions, conclusions, findings)
and text that fits a terminal ``width`` (None: not a terminal, everything whole)."""

from __future__ import annotations

import os
import sys
import textwrap
from collections.abc import Sequence

from tabulate import tabulate

from harness.model.results import COMPAT_NOTE, Finding, Row, Step
from harness.model.search import Transition
from harness.model.table import Report
from harness.model.verdict import Axis, Verdict, printable

_COLOURS = {"pass": "32", "fail": "31", "outage": "31;1", "error": "33", "flaky": "35"}
COMPAT_MARK = "*"


def bare(detail: str) -> str:
    """The evidence without the compat suffix (the mark and the note say it)."""
    return detail[: -len(COMPAT_NOTE)] if detail.endswith(COMPAT_NOTE) else detail


def shimmed(r: Row | Step | None) -> bool:
    """A row or step that ran with the compat shim (a row's flag, or its evidence says so)."""
    return r is not None and (getattr(r, "compat", False) or r.detail.endswith(COMPAT_NOTE))


def compat_notes(notes: Sequence[str], used: bool, marked: bool = True) -> list[str]:
    """The compat note only when the shim was used; ``marked``: the table marks such rows."""
    about_shim = [n.startswith("compat: ") for n in notes]
    mark = f" (rows marked {COMPAT_MARK})" if marked else ""
    return [n + mark if shim else n for n, shim in zip(notes, about_shim) if used or not shim]


def notes(rep: Report, marked: bool = True) -> list[str]:
    """The notes that apply (the JSON, unmarked, has each row's ``compat``)."""
    rows = [r for r, _ in rep.table.rows()] + [s for f in rep.findings for s in f.steps]
    return compat_notes(rep.notes, any(map(shimmed, rows)), marked)


def use_colour(stream=sys.stdout) -> bool:
    return stream.isatty() and "NO_COLOR" not in os.environ and os.environ.get("TERM") != "dumb"


def verdict_name(v: Verdict, rep: Report | None) -> str:
    """What users call a verdict: pass/fail, or the --terms they chose."""
    if rep is not None and v is rep.primary.old:
        return rep.primary.old_term
    if rep is not None and v is rep.primary.new:
        return rep.primary.new_term
    return v.value


def shown(v: Verdict, colour: bool, rep: Report | None = None) -> str:
    text = verdict_name(v, rep).upper()
    return f"\033[{_COLOURS[v.value]}m{text}\033[0m" if colour else text


def default_terms(ax: Axis) -> bool:
    return (ax.old_term, ax.new_term) == ("pass", "fail")


def transition_line(ax: Axis, t: Transition) -> str:
    gap = f" (untestable in between: {', '.join(t.between)})" if t.between else ""
    if ax.primary and default_terms(ax):
        if t.regression:
            return f"regression introduced in {t.after} (last good {t.before}){gap}"
        return f"fixed in {t.after} (last bad {t.before}){gap}"
    if ax.primary:
        frm, to = (ax.old_term, ax.new_term) if t.regression else (ax.new_term, ax.old_term)
        return f"{frm} -> {to}: changed in {t.after} (last {frm} {t.before}){gap}"
    if t.regression:
        return f"{ax.label}: introduced in {t.after} (last good {t.before}){gap}"
    return f"{ax.label}: fixed in {t.after} (last {ax.new_term} {t.before}){gap}"


def conclusions(rep: Report) -> list[str]:
    """Per deployment (named when there are several); none from a partial table."""
    if rep.partial:
        return [f"{rep.partial}; no conclusion drawn from it"]
    table, primary = rep.table, rep.primary
    lines = []
    for deployment in table.labels:
        rows = table.deployment_rows(deployment)
        found = table.transitions(deployment)
        said = [transition_line(primary, t) for t in found]
        testable = [r.verdict for r in rows if r.verdict in (primary.old, primary.new)]
        if rows and not found and testable:
            said.append(f"no change: every testable release is {verdict_name(testable[0], rep)}")
        elif rows and not found:
            said.append("no conclusion: no release could be tested")
        for ax in table.axes[1:]:
            hit = [r.target for r in rows if r.verdict is ax.new]
            if hit:
                said.append(f"{ax.label}: {ax.new_term} in {', '.join(hit)}")
                said += [transition_line(ax, t) for t in table.transitions(deployment, ax)]
        lines += [("" if table.single else f"{deployment}: ") + line for line in said]
    return lines


def finding_head(f: Finding, rep: Report) -> tuple[str, str]:
    """The finding's heading and what its commit is called."""
    ax = rep.axis(f.axis)
    if ax.primary and default_terms(ax):
        label = "first failing commit" if f.kind == "regression" else "first passing commit"
        return f"{f.kind}: {f.before} -> {f.after}", label
    if ax.primary:
        to = ax.new_term if f.kind == "regression" else ax.old_term
        frm = ax.old_term if f.kind == "regression" else ax.new_term
        return f"{frm} -> {to}: {f.before} -> {f.after}", f"first {to!r} commit"
    what = "introduced" if f.kind == "regression" else "fixed"
    label = f"first commit {'with' if what == 'introduced' else 'without'} it"
    return f"{ax.label}, {what}: {f.before} -> {f.after}", label


def who(c) -> str:
    return f"{c.date[:10]}, {c.author.split(' <')[0]}"


def unsettled(f: Finding) -> str | None:
    """What a finding without a commit says (None: it has one)."""
    if f.status == "skipped":
        return f"commit bisection skipped: {f.reason}"
    if f.status == "ambiguous":
        return f"not settled: {f.reason}:"
    return f.reason if f.status != "found" or f.commit is None else None


def refs(c) -> list[str]:
    return ([f"PR #{c.pr}"] if c.pr else []) + [f'"Fix #{n}"' for n in c.fixes]


def finding_details(f: Finding, code=str) -> list[str]:
    """A found commit's lines after its first (``code`` marks a sha)."""
    out = []
    if f.merge is not None:
        pr = f" (PR #{f.merge.pr})" if f.merge.pr else ""
        out.append(f"reached the mainline in {code(f.merge.sha[:12])}{pr} {f.merge.subject!r}")
    if f.needed:
        picks = ", ".join(code(n[:12]) for n in f.needed)
        out.append(f"untestable alone: tested with {picks} picked on top so that it could boot")
    if f.estimate is not None:
        out.append(f"confidence: {f.reason}")
    return out + f.notes


def matrix_cells(rep: Report, cell) -> list[list[str]]:
    """Per release: the Python most of its deployments ran on, and a ``cell(row)`` per
    deployment (saying so when it ran on another Python)."""
    table = rep.table
    lines = []
    for target in table.tested():
        row = [table.cell(target, c) for c in table.labels]
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


def evidence(rep: Report, verbose: bool) -> list[tuple[Row, str]]:
    """(row, deployment) in table order: every one with ``verbose``, else those not passing."""
    return [(r, c) for r, c in rep.table.rows() if verbose or r.verdict is not rep.primary.old]


GAP = 2  # tabulate's "simple" format puts two spaces between columns
PAD = 2  # and makes a column at least its header + 2 wide (tabulate.MIN_PADDING)
MIN_CELL = 12  # a column is never wrapped narrower than this


def visible(text: str) -> int:
    """The width of the longest line of ``text`` on a terminal (colour codes count 0)."""
    return max((len(printable(line)) for line in str(text).split("\n")), default=0)


def widths(rows: Sequence[Sequence[str]], headers: Sequence[str], width: int) -> list[int]:
    """Column widths that fit ``width``: the widest gives way first, none below ``MIN_CELL``
    (nor its header); narrow columns that alone overflow stay as they are."""
    natural = [
        max([visible(h) + PAD] + [visible(r[i]) for r in rows]) for i, h in enumerate(headers)
    ]
    floor = [min(n, max(MIN_CELL, visible(h) + PAD)) for n, h in zip(natural, headers)]
    out = list(natural)
    room = width - GAP * (len(headers) - 1)
    while sum(out) > room:
        i = max(range(len(out)), key=lambda k: out[k] - floor[k])
        give = min(sum(out) - room, out[i] - floor[i])
        if give <= 0:
            break
        out[i] -= give
    return out


def _wrap(cell: str, width: int) -> str:
    if visible(cell) <= width or "\x1b" in cell:  # a coloured cell is a short verdict
        return cell
    lines = []
    for part in str(cell).split("\n"):
        lines += textwrap.wrap(part, width, break_on_hyphens=False) or [""]
    return "\n".join(lines)


def fit_table(
    rows: Sequence[Sequence[str]],
    headers: Sequence[str],
    width: int | None = None,
    fmt: str = "simple",
) -> str:
    """``tabulate`` in ``fmt``; with ``width``, the cells wrapped so that it fits."""
    rows = [[str(c) for c in r] for r in rows]
    if fmt == "github":  # a "|" in a cell (a --run tail "a | b") would end the cell
        rows = [[c.replace("|", "\\|") for c in r] for r in rows]
    if width is not None and rows:
        w = widths(rows, headers, width)
        rows = [[_wrap(c, w[i]) for i, c in enumerate(r)] for r in rows]
    return tabulate(rows, headers=list(headers), tablefmt=fmt, disable_numparse=True)


def fit_line(text: str, width: int | None, indent: int = 2) -> list[str]:
    """A long line wrapped, its leading spaces kept, continued at ``indent``; a word longer
    than the width (a URL) stays whole: cut, it would not work."""
    if width is None or len(text) <= width:
        return [text]
    body = text.lstrip(" ")
    lead = " " * (len(text) - len(body))
    wrapped = textwrap.wrap(
        body,
        width,
        initial_indent=lead,
        subsequent_indent=" " * indent,
        break_on_hyphens=False,
        break_long_words=False,
    )
    return wrapped or [text]
