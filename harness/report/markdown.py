"""The paste-ready report: a github table, conclusions, what is affected, each finding as a
list, and the command that reproduces it."""

from __future__ import annotations

from harness.model.results import Finding
from harness.model.table import Report
from harness.model.verdict import Verdict
from harness.report.common import (
    COMPAT_MARK,
    bare,
    conclusions,
    default_terms,
    evidence,
    finding_details,
    finding_head,
    fit_table,
    matrix_cells,
    notes,
    refs,
    shimmed,
    unsettled,
    verdict_name,
    who,
)
from harness.report.text import steps_table


def _finding(f: Finding, rep: Report) -> list[str]:
    """The finding as a list a maintainer can paste into an upstream issue."""
    notes = [f"- {n}" for n in f.notes]
    said = unsettled(f)
    if said is not None:
        listed = f.candidates if f.status == "ambiguous" else []
        return [f"- {said}", *(f"  - `{c.short}` {c.subject!r} ({who(c)})" for c in listed), *notes]
    c = f.commit
    sha = f"[`{c.sha[:12]}`]({f.url})" if f.url else f"`{c.sha[:12]}`"
    ref = f", {', '.join(refs(c))}" if refs(c) else ""
    out = [f"- {finding_head(f, rep)[1]}: {sha} {c.subject!r} ({who(c)}){ref}"]
    out.append(f"  - full sha: `{c.sha}`")
    out += [f"- {line}" for line in finding_details(f, lambda text: f"`{text}`")]
    return out + [f"- {len(f.steps)} commits tested:"]


def _conclusions(rep: Report) -> list[str]:
    found = conclusions(rep)
    return ["### Conclusions", ""] + [f"- {c}" for c in found] + [""] if found else []


def _affected_deployments(rep: Report) -> list[str]:
    table, new, old = rep.table, rep.primary.new, rep.primary.old
    lines = []
    for target in table.tested():
        by_verdict: dict[Verdict, list[str]] = {}
        for c in table.labels:
            if (r := table.cell(target, c)) is not None:
                by_verdict.setdefault(r.verdict, []).append(c)
        if new in by_verdict:
            order = [v for v in dict.fromkeys([new, old, *by_verdict]) if v in by_verdict]
            said = [f"{verdict_name(v, rep)} with {', '.join(by_verdict[v])}" for v in order]
            lines.append(f"- `{target}`: " + "; ".join(said))
    return lines or [f"- no tested release is {verdict_name(new, rep)} in any deployment"]


def _matrix(rep: Report, verbose: bool) -> list[str]:
    """The matrix as a github table, the evidence, and which deployments fail where."""

    def bold(r) -> str:
        mark = f" {COMPAT_MARK}" if shimmed(r) else ""
        return f"**{verdict_name(r.verdict, rep).upper()}**{mark}"

    cells = [[f"`{line[0]}`", *line[1:]] for line in matrix_cells(rep, bold)]
    out = [fit_table(cells, [rep.heading, "python", *rep.table.labels], fmt="github"), ""]
    found = [f"- `{r.target}` {c}: {bold(r)} {bare(r.detail)}" for r, c in evidence(rep, verbose)]
    passing = f"- every result is {verdict_name(rep.primary.old, rep)}"
    out += ["### Evidence", "", *(found or [passing]), ""] + _conclusions(rep)
    return out + ["### Which deployments are affected", ""] + _affected_deployments(rep) + [""]


def _plain(rep: Report) -> list[str]:
    rows = [r for r, _ in rep.table.rows()]
    # where the scenario reports them: the worker that ran, the trigger, the compat shim
    facts = any("worker_class" in r.facts or "trigger" in r.facts for r in rows)
    lines = []
    for r in rows:
        told = [r.facts.get("worker_class") or "-", r.facts.get("trigger") or "-"]
        told += ["shim" if r.compat else "-"]
        mark = f" {COMPAT_MARK}" if r.compat else ""
        cells = [f"`{r.target}`", r.python or "-", *(told if facts else [])]
        cells.append(f"**{verdict_name(r.verdict, rep).upper()}**{mark}")
        lines.append(cells + [" ".join(bare(r.detail).split("\n"))])  # one line: a github cell
    headers = [rep.heading, "python"] + (["worker", "trigger", "compat"] if facts else [])
    out = [fit_table(lines, headers + ["verdict", "evidence"], fmt="github"), ""]
    ax = rep.primary
    heading = "Affected releases" if default_terms(ax) else f"Releases that are {ax.new_term!r}"
    affected = [f"- {r.target}" for r in rows if r.verdict is ax.new]
    none = ["- none of the tested releases"]
    return out + _conclusions(rep) + [f"### {heading}", "", *(affected or none), ""]


def host_lines(h: dict) -> list[str]:
    out = [f"- host: Linux {h.get('kernel')}, {h.get('compat')}"]
    out.append(f"- interpreters: {', '.join(h.get('pythons', [])) or 'none'}")
    return out + ([f"- date: {h['date']}"] if h.get("date") else [])


def render_markdown(rep: Report, verbose: bool = False) -> str:
    out = [f"## {rep.title}", "", *host_lines(rep.host), f"- scenario: {rep.params}"]
    if not rep.table.single:
        out += [f"  - `{c.label}`: {c.summary}" for c in rep.table.deployments]
    out.append("")
    out += _plain(rep) if rep.table.single else _matrix(rep, verbose)
    for f in rep.findings:
        head = finding_head(f, rep)[0] + (f" ({f.deployment})" if f.deployment else "")
        out += [f"### {head[0].upper()}{head[1:]}", ""]
        out += _finding(f, rep) + [""]
        if f.steps:
            out += [steps_table(f, "github", False, rep), ""]
    if notes(rep):
        out += [f"> {n}" for n in notes(rep)] + [""]
    if rep.resume:
        out += ["Resume with:", "", "```", rep.resume, "```", ""]
    out += ["Reproduce with:", "", "```", rep.command, "```"]
    return "\n".join(out)
