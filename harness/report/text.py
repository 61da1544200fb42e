"""The terminal report: a tabulate table (one verdict column per deployment when there
are several), the conclusions, each finding with its steps, the notes."""

from __future__ import annotations

from tabulate import tabulate

from harness.model.results import Finding
from harness.model.table import Report
from harness.report.common import (
    conclusions,
    evidence,
    finding_head,
    matrix_cells,
    shown,
    verdict_name,
)


def _header(rep: Report) -> list[str]:
    out = [f"scenario: {rep.params}"]
    if not rep.table.single:
        out += [f"  {c.label}: {c.summary}" for c in rep.table.columns]
    pythons = ", ".join(rep.host.get("pythons", [])) or "none"
    return out + [f"host: {rep.host.get('compat', '?')}; Pythons found: {pythons}", ""]


def _plain(rep: Report, colour: bool) -> list[str]:
    rows = [
        [r.target, r.python or "-", shown(r.verdict, colour, rep), r.detail]
        for r, _ in rep.table.rows()
    ]
    return [
        tabulate(rows, headers=[rep.heading, "python", "verdict", "evidence"], tablefmt="simple"),
        "",
    ]


def _matrix(rep: Report, colour: bool, verbose: bool) -> list[str]:
    out = [
        tabulate(
            matrix_cells(rep, lambda r: shown(r.verdict, colour, rep)),
            headers=[rep.heading, "python", *rep.table.labels],
            tablefmt="simple",
        ),
        "",
    ]
    found = evidence(rep, verbose)
    passing = verdict_name(rep.primary.old, rep)
    what = "every result" if verbose else f"every result that is not {passing}"
    if found:
        out.append(f"evidence ({what}{'' if verbose else '; -v for all'}):")
        out.append(
            tabulate(
                [[r.target, c, shown(r.verdict, colour, rep), r.detail] for r, c in found],
                headers=[rep.heading, "deployment", "verdict", "evidence"],
                tablefmt="simple",
            )
        )
    else:
        out.append(f"evidence: every result is {passing} (-v for each)")
    return out + [""]


def _finding(f: Finding, rep: Report) -> list[str]:
    head, label = finding_head(f, rep)
    if f.column:
        head = f"{f.column}: {head}"
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


def steps_table(f: Finding, fmt: str, colour: bool, rep: Report) -> str:
    rows = [
        [
            s.sha[:12] + (f"+{s.picked[:7]}" if s.picked else ""),
            shown(s.verdict, colour, rep),
            s.python or "-",
            s.detail,
        ]
        for s in f.steps
    ]
    return tabulate(rows, headers=["commit", "verdict", "python", "evidence"], tablefmt=fmt)


def render_table(rep: Report, colour: bool = False, verbose: bool = False) -> str:
    out = _header(rep)
    out += _plain(rep, colour) if rep.table.single else _matrix(rep, colour, verbose)
    out += conclusions(rep)
    for f in rep.findings:
        out.append("")
        out += _finding(f, rep)
        if f.steps:
            out.append(f"steps ({len(f.steps)} commits tested):")
            out.append(steps_table(f, "simple", colour, rep))
    out += [f"note: {n}" for n in rep.notes]
    return "\n".join(out)
