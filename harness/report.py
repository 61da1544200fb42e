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

from .bisection import Finding
from .fsutil import atomic_write_text
from .runner import Row
from .search import Transition
from .verdict import Verdict

_COLOURS = {Verdict.PASS: "32", Verdict.FAIL: "31", Verdict.ERROR: "33", Verdict.FLAKY: "35"}


@dataclass
class Report:
    """Everything a run established, in the order it was established."""

    command: str
    host: dict
    params: str
    rows: list[Row] = field(default_factory=list)
    transitions: list[Transition] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    interrupted: bool = False

    def regressions(self) -> list[Transition]:
        return [t for t in self.transitions if t.old_state and not t.new_state]

    def fixes(self) -> list[Transition]:
        return [t for t in self.transitions if not t.old_state and t.new_state]

    def affected(self) -> list[str]:
        return [r.target for r in self.rows if r.verdict is Verdict.FAIL]

    def as_json(self) -> dict:
        def finding_for(t: Transition) -> dict | None:
            f = next(
                (f for f in self.findings if f.before == t.before and f.after == t.after), None
            )
            return f.as_json() if f else None

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
            "scenario": self.params,
            "rows": [r.as_json() for r in self.rows],
            "regressions": regs,
            "fixes": fixes,
            "affected": self.affected(),
            "notes": self.notes,
            "interrupted": self.interrupted,
        }


def use_colour(stream=sys.stdout) -> bool:
    return stream.isatty() and "NO_COLOR" not in os.environ and os.environ.get("TERM") != "dumb"


def _verdict(v: Verdict, colour: bool) -> str:
    text = v.value.upper()
    return f"\033[{_COLOURS[v]}m{text}\033[0m" if colour else text


def _conclusions(rep: Report) -> list[str]:
    lines = []
    for t in rep.regressions():
        gap = f" (untestable in between: {', '.join(t.between)})" if t.between else ""
        lines.append(f"regression introduced in {t.after} (last good {t.before}){gap}")
    for t in rep.fixes():
        gap = f" (untestable in between: {', '.join(t.between)})" if t.between else ""
        lines.append(f"fixed in {t.after} (last bad {t.before}){gap}")
    testable = [r for r in rep.rows if r.verdict.testable]
    if rep.rows and not rep.transitions:
        if not testable:
            lines.append("no conclusion: no release could be tested")
        else:
            state = testable[0].verdict.value
            lines.append(f"no change: every testable release is {state}")
    return lines


def _finding_lines(f: Finding) -> list[str]:
    head = f"{f.kind}: {f.before} -> {f.after}"
    label = "first failing commit" if f.kind == "regression" else "first passing commit"
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


def _steps_table(f: Finding, fmt: str, colour: bool) -> str:
    rows = [
        [
            s.sha[:12] + (f"+{s.picked[:7]}" if s.picked else ""),
            _verdict(s.verdict, colour),
            s.python or "-",
            s.detail,
        ]
        for s in f.steps
    ]
    return tabulate(rows, headers=["commit", "verdict", "python", "evidence"], tablefmt=fmt)


def render_table(rep: Report, colour: bool = False) -> str:
    rows = [[r.target, r.python or "-", _verdict(r.verdict, colour), r.detail] for r in rep.rows]
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
        out += _finding_lines(f)
        if f.steps:
            out.append(f"steps ({len(f.steps)} commits tested):")
            out.append(_steps_table(f, "simple", colour))
    out += [f"note: {n}" for n in rep.notes]
    return "\n".join(out)


def _who(c) -> str:
    return f"{c.date[:10]}, {c.author.split(' <')[0]}"


def _finding_markdown(f: Finding) -> list[str]:
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
    label = "first failing commit" if f.kind == "regression" else "first passing commit"
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


def render_markdown(rep: Report) -> str:
    h = rep.host
    out = ["## Gunicorn #1298 socket loss: bisection report", ""]
    out.append(f"- host: Linux {h.get('kernel')}, {h.get('compat')}")
    out.append(f"- interpreters: {', '.join(h.get('pythons', [])) or 'none'}")
    out.append(f"- scenario: {rep.params}")
    out.append("")
    rows = [
        [f"`{r.target}`", r.python or "-", f"**{r.verdict.value.upper()}**", r.detail]
        for r in rep.rows
    ]
    out.append(
        tabulate(rows, headers=["release", "python", "verdict", "evidence"], tablefmt="github")
    )
    out.append("")
    concl = _conclusions(rep)
    if concl:
        out += ["### Conclusions", ""] + [f"- {c}" for c in concl] + [""]
    affected = rep.affected()
    out += ["### Affected releases", ""]
    out += [f"- {v}" for v in affected] if affected else ["- none of the tested releases"]
    out.append("")
    for f in rep.findings:
        out += [f"### {f.kind.capitalize()} {f.before} -> {f.after}", ""]
        out += _finding_markdown(f) + [""]
        if f.steps:
            out += [_steps_table(f, "github", False), ""]
    if rep.notes:
        out += [f"> {n}" for n in rep.notes] + [""]
    out += ["Reproduce with:", "", "```", rep.command, "```"]
    return "\n".join(out)


def render(rep: Report, fmt: str, colour: bool = False) -> str:
    if fmt == "json":
        return json.dumps(rep.as_json(), indent=2)
    if fmt == "markdown":
        return render_markdown(rep)
    return render_table(rep, colour)


def write_record(rep: Report, results_dir: Path, label: str) -> Path:
    """Save the run's record (JSON) and its markdown report beside it, atomically."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    safe = "".join(c if c.isalnum() or c in ".-_" else "_" for c in label)[:60]
    base = results_dir / f"{stamp}-{safe}-{os.getpid()}"
    record = Path(f"{base}.json")
    atomic_write_text(record, json.dumps(rep.as_json(), indent=2) + "\n")
    atomic_write_text(Path(f"{base}.md"), render_markdown(rep) + "\n")
    return record
