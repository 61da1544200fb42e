"""``render(report, fmt)`` for every format, a check-all's renderings, and the run records:
the JSON and the markdown side by side in results/, each written atomically."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from harness.host.fsutil import atomic_write_text
from harness.model.results import Row
from harness.model.table import Checked, Entry, Report, summary
from harness.report.common import bare, compat_notes, fit_line, fit_table, shimmed
from harness.report.json import as_json, tool
from harness.report.markdown import host_lines, render_markdown
from harness.report.osv import as_osv
from harness.report.text import host_line, render_table, verdict_cell

FORMATS = ("table", "markdown", "json", "osv")


def render(
    rep: Report, fmt: str, colour: bool = False, verbose: bool = False, width: int | None = None
) -> str:
    """``verbose``: a matrix's evidence for every cell, not only those not passing; ``width``:
    the terminal's, which the text table fits."""
    if fmt == "json":
        return json.dumps(as_json(rep), indent=2)
    if fmt == "osv":
        return json.dumps(as_osv(rep), indent=2)
    if fmt == "markdown":
        return render_markdown(rep, verbose)
    return render_table(rep, colour, verbose, width)


NOT_RUN = "not run"


def _verdict(row: Row | None, colour: bool) -> str:
    return NOT_RUN.upper() if row is None else verdict_cell(row, colour, None)


def _evidence(e: Entry) -> str:
    """Why it did not run, or the candidate's evidence (the --from release's when only that
    one fails: fixed by upgrading)."""
    if e.row is None:
        return f"could not run as asked: {e.refused}"
    if e.before is not None and e.fails(e.before) and not e.fails():
        return f"{e.before.target}: {bare(e.before.detail)}"
    return bare(e.row.detail)


def _rows(c: Checked, colour: bool, bold: bool = False) -> tuple[list[list[str]], list[str]]:
    """The table's cells and headers, the same for the terminal and markdown."""
    name = (lambda n: f"`{n}`") if bold else (lambda n: n)  # noqa: E731
    verdict = (lambda r: f"**{_verdict(r, False)}**") if bold else (lambda r: _verdict(r, colour))  # noqa: E731
    rows = []
    for e in c.entries:
        python = e.row.python if e.row is not None and e.row.python else "-"
        before = [verdict(e.before) if e.ran else "-"] if c.before is not None else []
        change = [e.change if e.ran else "-"] if c.before is not None else []
        rows.append([name(e.scenario), *before, verdict(e.row), *change, python, _evidence(e)])
    heads = ["verdict"] if c.before is None else [c.before, c.candidate, "change"]
    return rows, ["scenario", *heads, "python", "evidence"]


def _deployment(c: Checked) -> str:
    if c.deployment:
        return f"yours ({' '.join(c.deployment)}); a scenario that cannot honour it is not run"
    return "each scenario's own (no --app, --with, --gunicorn-config, --proxy or --bind given)"


def _notes(c: Checked) -> list[str]:
    return compat_notes(c.notes, any(shimmed(e.row) or shimmed(e.before) for e in c.entries))


def text_checked(c: Checked, colour: bool = False, width: int | None = None) -> str:
    beside = f", beside {c.before} (--from)" if c.before else ""
    out = fit_line(f"check: {c.named} against {len(c.entries)} scenario(s){beside}", width)
    out += fit_line(f"deployment: {_deployment(c)}", width)
    out += [host_line(c.host, width), ""]
    rows, headers = _rows(c, colour)
    out += [fit_table(rows, headers, width), ""]
    for ln in summary(c.entries, c.candidate):
        out += fit_line(ln, width)
    for n in _notes(c):
        out += fit_line(f"note: {n}", width, indent=6)
    return "\n".join(out)


def markdown_checked(c: Checked) -> str:
    beside = f" beside {c.before}" if c.before else ""
    out = [f"## Checking {c.named}{beside}: {len(c.entries)} scenario(s)", "", *host_lines(c.host)]
    out += [f"- deployment: {_deployment(c)}", ""]
    rows, headers = _rows(c, False, bold=True)
    out += [fit_table(rows, headers, None, "github"), ""]
    out += [f"- {ln}" for ln in summary(c.entries, c.candidate)] + [""]
    out += [f"> {n}" for n in _notes(c)] + ([""] if _notes(c) else [])
    out += ["Reproduce with:", "", "```", c.command, "```"]
    return "\n".join(out)


def _entry_json(c: Checked, e: Entry) -> dict:
    rep = c.reports.get(e.scenario)
    return {
        "scenario": e.scenario,
        "ran": e.ran,
        "as_your_deployment": e.ran and bool(c.deployment),
        "not_run": e.refused or None,
        "verdict": e.row.verdict.value if e.row is not None else NOT_RUN,
        "fails": e.fails(),
        "detail": e.row.detail if e.row is not None else e.refused,
        "change": e.change if c.before is not None else None,
        "row": e.row.as_json() if e.row is not None else None,
        "from_row": e.before.as_json() if e.before is not None else None,
        "record": rep.scenario if rep is not None else None,
    }


def as_json_checked(c: Checked) -> dict:
    return {
        "tool": tool(),
        "command": c.command,
        "check": c.candidate,
        "asked": c.asked,
        "from": c.before,
        "host": c.host,
        "deployment": list(c.deployment),
        "answer": c.kind,
        "scenarios": [_entry_json(c, e) for e in c.entries],
        "summary": summary(c.entries, c.candidate),
        "notes": _notes(c),
    }


def as_osv_checked(c: Checked) -> list:
    """One OSV record per scenario that ran (each from its own rows)."""
    return [as_osv(c.reports[e.scenario]) for e in c.entries if e.ran and e.scenario in c.reports]


def render_checked(c: Checked, fmt: str, colour: bool = False, width: int | None = None) -> str:
    if fmt == "json":
        return json.dumps(as_json_checked(c), indent=2)
    if fmt == "osv":
        return json.dumps(as_osv_checked(c), indent=2)
    if fmt == "markdown":
        return markdown_checked(c)
    return text_checked(c, colour, width)


def write_document(doc: dict, markdown: str, results_dir: Path, label: str) -> Path:
    """``<stamp>-<label>-<pid>.json`` and its ``.md`` beside it; the JSON's path."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    safe = "".join(c if c.isalnum() or c in ".-_" else "_" for c in label)[:60]
    base = results_dir / f"{stamp}-{safe}-{os.getpid()}"
    record = Path(f"{base}.json")
    atomic_write_text(record, json.dumps(doc, indent=2) + "\n")
    atomic_write_text(Path(f"{base}.md"), markdown + "\n")
    return record


def write_record(rep: Report, results_dir: Path, label: str) -> Path:
    """Save the run's record (JSON) and its markdown report beside it."""
    return write_document(as_json(rep), render_markdown(rep), results_dir, label)


def write_checked(c: Checked, results_dir: Path) -> Path:
    """A check-all's record: ``check-<release>``."""
    return write_document(
        as_json_checked(c), markdown_checked(c), results_dir, f"check-{c.candidate}"
    )
