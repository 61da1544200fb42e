"""The terminal report: a tabulate table (one verdict column per deployment when there
are several), the conclusions, each finding with its steps, the notes."""

from __future__ import annotations

import re

from harness.model.results import Finding, Row, Step
from harness.model.table import Report
from harness.report.common import (
    COMPAT_MARK,
    bare,
    conclusions,
    evidence,
    finding_head,
    fit_line,
    fit_table,
    matrix_cells,
    notes,
    shown,
    used_compat,
    verdict_name,
)


def host_line(host: dict, width: int | None = None) -> str:
    """``host:``: what the kernel does with SO_REUSEPORT on AF_UNIX and the Pythons found by version (their sources,
    paths and the errno are in the JSON record), wrapped to the width."""
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


def verdict_cell(r: Row | Step, colour: bool, rep: Report) -> str:
    """The verdict, marked when the compat shim was used (the note says what it means)."""
    used = getattr(r, "compat", False) or used_compat(r.detail)
    return shown(r.verdict, colour, rep) + (f" {COMPAT_MARK}" if used else "")


def _plain(rep: Report, colour: bool, width: int | None) -> list[str]:
    rows = [
        [r.target, r.python or "-", verdict_cell(r, colour, rep), bare(r.detail)]
        for r, _ in rep.table.rows()
    ]
    return [fit_table(rows, [rep.heading, "python", "verdict", "evidence"], width), ""]


def _matrix(rep: Report, colour: bool, verbose: bool, width: int | None = None) -> list[str]:
    out = [
        fit_table(
            matrix_cells(rep, lambda r: verdict_cell(r, colour, rep)),
            [rep.heading, "python", *rep.table.labels],
            width,
        ),
        "",
    ]
    found = evidence(rep, verbose)
    passing = verdict_name(rep.primary.old, rep)
    what = "every result" if verbose else f"every result that is not {passing}"
    if found:
        out.append(f"evidence ({what}{'' if verbose else '; -v for all'}):")
        out.append(
            fit_table(
                [[r.target, c, verdict_cell(r, colour, rep), bare(r.detail)] for r, c in found],
                [rep.heading, "deployment", "verdict", "evidence"],
                width,
            )
        )
    else:
        out.append(f"evidence: every result is {passing} (-v for each)")
    return out + [""]


def _finding(f: Finding, rep: Report) -> list[str]:
    head, label = finding_head(f, rep)
    if f.deployment:
        head = f"{f.deployment}: {head}"
    notes = [f"    {n}" for n in f.notes]
    if f.status == "skipped":
        return [f"{head}  commit bisection skipped: {f.reason}", *notes]
    if f.status == "ambiguous":
        out = [f"{head}  not settled: {f.reason}:"]
        out += [
            f"    {c.short} {c.subject!r} ({c.date[:10]}, {c.author.split(' <')[0]})"
            for c in f.candidates
        ]
        return out + notes
    if f.status != "found" or f.commit is None:
        return [f"{head}  {f.reason}", *notes]
    c = f.commit
    refs = ([f"PR #{c.pr}"] if c.pr else []) + [f'"Fix #{n}"' for n in c.fixes]
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
    if f.estimate is not None:
        out.append(f"{pad}confidence: {f.reason}")
    out += [f"{pad}{n}" for n in f.notes]
    if f.url:
        out.append(f"{pad}{f.url}")
    return out


def _hang(line: str) -> int:
    """Where a finding's wrapped line continues: under its text, past the heading."""
    lead = len(line) - len(line.lstrip(" "))
    return lead if lead or "  " not in line else line.index("  ") + 2


def steps_table(f: Finding, fmt: str, colour: bool, rep: Report, width: int | None = None) -> str:
    rows = [
        [
            s.sha[:12] + (f"+{s.picked[:7]}" if s.picked else ""),
            verdict_cell(s, colour, rep),
            s.python or "-",
            bare(s.detail),
        ]
        for s in f.steps
    ]
    return fit_table(rows, ["commit", "verdict", "python", "evidence"], width, fmt)


def render_table(
    rep: Report, colour: bool = False, verbose: bool = False, width: int | None = None
) -> str:
    """The report for a terminal ``width`` columns wide (None: every cell whole)."""
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
