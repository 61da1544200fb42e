"""The terminal report: the table (a verdict column per deployment), the conclusions, each
finding with its steps, the notes."""

from __future__ import annotations

import re

from harness.model.results import Finding, Row, Step
from harness.model.table import Report
from harness.report.common import (
    COMPAT_MARK,
    bare,
    conclusions,
    evidence,
    finding_details,
    finding_head,
    fit_line,
    fit_table,
    matrix_cells,
    notes,
    refs,
    shimmed,
    shown,
    unsettled,
    verdict_name,
    who,
)


def host_line(host: dict, width: int | None = None) -> str:
    """What the kernel does with SO_REUSEPORT on AF_UNIX and the Pythons by version (their
    sources, paths and the errno are in the JSON record)."""
    versions = [p.split(" (", 1)[0] for p in host.get("pythons", [])]
    pythons = ", ".join(versions) or "none"
    compat = re.sub(r" \(errno [^)]*\)", "", str(host.get("compat", "?")))
    return "\n".join(fit_line(f"host: {compat}; Pythons: {pythons}", width, indent=6))


def _header(rep: Report, width: int | None) -> list[str]:
    out = fit_line(f"scenario: {rep.params}", width)
    if not rep.table.single:
        for c in rep.table.deployments:
            out += fit_line(f"  {c.label}: {c.summary}", width, indent=4)
    return out + [host_line(rep.host, width), ""]


def verdict_cell(r: Row | Step, colour: bool, rep: Report | None) -> str:
    """The verdict, marked when the compat shim was used (a note says what it means)."""
    return shown(r.verdict, colour, rep) + (f" {COMPAT_MARK}" if shimmed(r) else "")


def _plain(rep: Report, colour: bool, width: int | None) -> list[str]:
    rows = [
        [r.target, r.python or "-", verdict_cell(r, colour, rep), bare(r.detail)]
        for r, _ in rep.table.rows()
    ]
    return [fit_table(rows, [rep.heading, "python", "verdict", "evidence"], width), ""]


def _matrix(rep: Report, colour: bool, verbose: bool, width: int | None = None) -> list[str]:
    def cell(r: Row) -> str:
        return verdict_cell(r, colour, rep)

    out = [fit_table(matrix_cells(rep, cell), [rep.heading, "python", *rep.table.labels], width)]
    found = evidence(rep, verbose)
    passing = verdict_name(rep.primary.old, rep)
    if not found:
        return out + ["", f"evidence: every result is {passing} (-v for each)", ""]
    what = "every result" if verbose else f"every result that is not {passing}; -v for all"
    rows = [[r.target, c, cell(r), bare(r.detail)] for r, c in found]
    table = fit_table(rows, [rep.heading, "deployment", "verdict", "evidence"], width)
    return out + ["", f"evidence ({what}):", table, ""]


def _finding(f: Finding, rep: Report) -> list[str]:
    head, label = finding_head(f, rep)
    if f.deployment:
        head = f"{f.deployment}: {head}"
    said = unsettled(f)
    if said is not None:
        listed = f.candidates if f.status == "ambiguous" else []
        cands = [f"    {c.short} {c.subject!r} ({who(c)})" for c in listed]
        return [f"{head}  {said}", *cands, *(f"    {n}" for n in f.notes)]
    c = f.commit
    ref = f" ({', '.join(refs(c))})" if refs(c) else ""
    pad = " " * (len(head) + 2)
    out = [f"{head}  {label} {c.sha[:12]} {c.subject!r} ({who(c)}){ref}"]
    out += [pad + line for line in finding_details(f)]
    return out + ([f"{pad}{f.url}"] if f.url else [])


def _hang(line: str) -> int:
    """Where a finding's wrapped line continues: under its text, past the heading."""
    lead = len(line) - len(line.lstrip(" "))
    return lead if lead or "  " not in line else line.index("  ") + 2


def steps_table(f: Finding, fmt: str, colour: bool, rep: Report, width: int | None = None) -> str:
    rows = []
    for s in f.steps:
        sha = s.sha[:12] + (f"+{s.picked[:7]}" if s.picked else "")
        rows.append([sha, verdict_cell(s, colour, rep), s.python or "-", bare(s.detail)])
    return fit_table(rows, ["commit", "verdict", "python", "evidence"], width, fmt)


def render_table(
    rep: Report, colour: bool = False, verbose: bool = False, width: int | None = None
) -> str:
    out = _header(rep, width)
    out += _plain(rep, colour, width) if rep.table.single else _matrix(rep, colour, verbose, width)
    for c in conclusions(rep):
        out += fit_line(c, width)
    for f in rep.findings:
        out.append("")
        out += [w for ln in _finding(f, rep) for w in fit_line(ln, width, indent=_hang(ln))]
        if f.steps:
            out.append(f"steps ({len(f.steps)} commits tested):")
            out.append(steps_table(f, "simple", colour, rep, width))
    for n in notes(rep):
        out += fit_line(f"note: {n}", width, indent=6)
    return "\n".join(out)
