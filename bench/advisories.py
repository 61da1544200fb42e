"""results/advisories.md and results/advisories.svg: every Gunicorn advisory, claimed beside measured.

One command runs every advisory case of the catalogue on a release range (with commit
bisection when --repo is given), keeps each run's JSON document in results/advisories/,
and writes the document and the picture from them::

    python bench/advisories.py 19.0.0..latest --repo ~/src/gunicorn -j 2
    python bench/advisories.py --render-only      # rewrite both from the kept JSON

Claimed ranges come from each case's ``CLAIMED`` (as the databases publish them);
measured ones from the runs' rows.  Advisories found but without a case are listed in
``UNREPRODUCED`` with the reason.
"""

from __future__ import annotations

import argparse
import html
import importlib.util
import json
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from packaging.version import InvalidVersion, Version

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from harness.scenarios import registry  # noqa: E402

OUT = ROOT / "results"
RUNS = OUT / "advisories"
COMMAND = "python bench/advisories.py 0.9.0..latest --repo ~/src/gunicorn -j 2"
#: why 19.10.0 -> 20.0.0 is no transition to bisect
BRANCH = (
    "19.10.0 is a release of the 19.x branch (Nov 2019), not an ancestor of 20.0.0: a change "
    "between them is 20.0.0 lacking (or having) the 19.x backport, not a commit on one line."
)
#: what the runs cannot reach, said once in the document
NOT_RUN = (
    "Releases 0.1 ... 0.8.x are not run: they have no gunicorn.app.wsgiapp, through which "
    "the harness launches every release (0.9.x has it without run(): an error row). Every "
    "database that says 'introduced 0' claims them untested. Errors among the releases run: "
    "0.10.x (NameError: errno), 0.11.x (OSError EPERM at start), 0.13.0 (TypeError in its "
    "arbiter), 0.17.3 (its parse_address turns unix:/path into a relative path: 'Can't "
    "connect to tmp/...', on 2.7.18 and 3.10.13 alike), each on the Python its boot probe chose."
)
GITHUB = "https://github.com/benoitc/gunicorn"

#: advisories the search found that have no case here, and why
UNREPRODUCED = [
    (
        "SNYK-PYTHON-GUNICORN-7856105",
        "worker timeout computed with time.time(): a system clock change times workers out; "
        "claimed [,21.2.0)",
        "not reproducible here: it needs the host's wall clock moved, which would disturb every "
        "other process on this shared machine (a container with its own clock could)",
    ),
    (
        "Snyk entry [,19.4.0) (pip:gunicorn)",
        "listed on Snyk's gunicorn page without a title in the pages found",
        "not identified: the search found no description of what it is, so there is no "
        "behaviour to probe",
    ),
    (
        "PYSEC-0000-CVE-2018-1000164",
        "an older PyPA record of CVE-2018-1000164 (same text, same range)",
        "the same advisory as PYSEC-2018-55: reproduced by adv-cve-2018-1000164",
    ),
]


def cases() -> dict[str, Path]:
    return {n: c.path for n, c in registry.cases().items() if n.startswith("adv-")}


def clamp(spec: str, m: dict[str, Any]) -> str:
    """``A..B`` from the case's ``SINCE`` on when A is older (the ASGI case: 24.0.0)."""
    first, dots, last = spec.partition("..")
    since = m.get("since")
    if dots and since and (version(first) or Version("0")) < Version(since):
        return f"{since}..{last}"
    return spec


def run(spec: str, repo: str | None, jobs: int, extra: list[str]) -> None:
    """Each case on ``spec``: its JSON document (results/advisories/NAME.json), then its
    OSV record (NAME.osv.json: the same runs again, from the cache)."""
    RUNS.mkdir(parents=True, exist_ok=True)
    for name, path in cases().items():
        base = [sys.executable, str(ROOT / "bisect.py"), clamp(spec, meta(path))]
        base += ["--scenario", name, "-j", str(jobs), *extra]
        base += ["--repo", repo] if repo else ["--no-commits"]
        for kind, out in (("json", f"{name}.json"), ("osv", f"{name}.osv.json")):
            argv = [*base, "--format", kind, "--output", str(RUNS / out)]
            print("+", " ".join(argv[1:]), file=sys.stderr, flush=True)
            got = subprocess.run(argv, cwd=ROOT, stdout=subprocess.DEVNULL)
            print(f"{name} {kind}: exit {got.returncode}", file=sys.stderr, flush=True)


def meta(path: Path) -> dict[str, Any]:
    """A case's metadata (its module's names), read by importing the file."""
    spec = importlib.util.spec_from_file_location(f"advisory_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    doc = (module.__doc__ or "").strip()
    return {
        "id": module.ID,
        "aliases": list(getattr(module, "ALIASES", [])),
        "claimed": {db: [list(r) for r in rs] for db, rs in module.CLAIMED.items()},
        "title": doc.splitlines()[0],
        "file": f"harness/catalogue/{path.name}",
        "since": getattr(module, "SINCE", None),
    }


# -- pure: versions, claims, measured spans ---------------------------------------------------
def version(label: str) -> Version | None:
    try:
        return Version(label)
    except InvalidVersion:
        return None


def claimed(ranges: Sequence[Sequence[str]], label: str) -> bool:
    """Is release ``label`` inside one of the database's [introduced, fixed) ranges?"""
    v = version(label)
    return v is not None and any(
        Version(lo) <= v and (not hi or v < Version(hi)) for lo, hi in ranges
    )


def spans(rows: Sequence[dict]) -> list[tuple[str, str]]:
    """Runs of failing releases in release order: [(first, last)], an error breaking none."""
    out: list[tuple[str, str]] = []
    open_: list[str] = []
    for r in sorted(rows, key=lambda r: version(r["target"]) or Version("0")):
        if r["verdict"] == "fail":
            open_.append(r["target"])
        elif r["verdict"] == "pass" and open_:
            out.append((open_[0], open_[-1]))
            open_ = []
    if open_:
        out.append((open_[0], open_[-1]))
    return out


def compare(ranges: Sequence[Sequence[str]], rows: Sequence[dict]) -> dict[str, list[str]]:
    """Releases a claim gets wrong: ``too_wide`` (claimed, measured pass), ``too_narrow``
    (measured fail, not claimed), ``agree`` (decided and the claim matches)."""
    out: dict[str, list[str]] = {"too_wide": [], "too_narrow": [], "agree": []}
    for r in rows:
        if r["verdict"] not in ("pass", "fail"):
            continue
        inside = claimed(ranges, r["target"])
        if inside and r["verdict"] == "pass":
            out["too_wide"].append(r["target"])
        elif not inside and r["verdict"] == "fail":
            out["too_narrow"].append(r["target"])
        else:
            out["agree"].append(r["target"])
    return out


def shown_ranges(ranges: Sequence[Sequence[str]]) -> str:
    return ", ".join(f"[{lo}, {hi or '...'})" for lo, hi in ranges)


def shown_spans(found: Sequence[tuple[str, str]]) -> str:
    if not found:
        return "none"
    return ", ".join(a if a == b else f"{a} ... {b}" for a, b in found)


def collapsed(labels: Sequence[str], order: Sequence[str]) -> str:
    """``labels`` as runs of neighbours in ``order`` (the releases tested): "a ... b, c"."""
    where = {t: i for i, t in enumerate(order)}
    groups: list[list[str]] = []
    for t in sorted(labels, key=lambda t: where[t]):
        if groups and where[t] == where[groups[-1][-1]] + 1:
            groups[-1].append(t)
        else:
            groups.append([t])
    return ", ".join(g[0] if len(g) == 1 else f"{g[0]} ... {g[-1]}" for g in groups)


def listed(labels: Sequence[str], most: int = 12) -> str:
    if len(labels) <= most:
        return ", ".join(labels)
    return ", ".join(labels[:most]) + f" ... ({len(labels)} releases)"


# -- the document -------------------------------------------------------------------------------
def _found(entry: dict) -> bool:
    return (entry.get("commit") or {}).get("status") == "found"


def _commit(entry: dict) -> str:
    c = entry.get("commit") or {}
    if c.get("status") != "found":
        why = c.get("reason") or c.get("status") or "not bisected"
        return f"commit not named ({why})"
    pr = f", PR #{c['pr']}" if c.get("pr") else ""
    fixes = "".join(f', "Fix #{n}"' for n in c.get("fixes") or [])
    merged = f"; reached the mainline in `{c['merged_by'][:12]}`" if c.get("merged_by") else ""
    return (
        f"[`{c['short']}`]({GITHUB}/commit/{c['sha']}) '{c['subject']}' "
        f"({c['date'][:10]}, {c['author'].split(' <')[0]}){pr}{fixes}{merged}"
    )


def _changes(doc: dict) -> list[str]:
    lines = []
    for e in doc.get("regressions", []):
        lines.append(f"- introduced in {e['first_bad']} (last good {e['last_good']}): {_commit(e)}")
    for e in doc.get("fixes", []):
        lines.append(f"- fixed in {e['first_good']} (last bad {e['last_bad']}): {_commit(e)}")
    return lines


def _verdicts(name: str, m: dict, doc: dict) -> list[str]:
    """Each database's claim against the measured rows, said plainly."""
    rows = [r for r in doc["rows"] if r.get("kind", "release") == "release"]
    tested = [r["target"] for r in rows if r["verdict"] in ("pass", "fail")]
    low = min((version(t) for t in tested if version(t)), default=None)
    out = []
    for db, ranges in m["claimed"].items():
        c = compare(ranges, rows)
        said = f"**{db}** claims {shown_ranges(ranges)}"
        if not c["too_wide"] and not c["too_narrow"]:
            out.append(f"- {said}: agrees on all {len(c['agree'])} releases decided.")
        if c["too_wide"]:
            out.append(
                f"- {said}: **too wide**: {collapsed(c['too_wide'], tested)} refuse or handle "
                "the probe."
            )
        if c["too_narrow"]:
            out.append(
                f"- {said}: **too narrow**: {collapsed(c['too_narrow'], tested)} fail the probe "
                "yet are not claimed."
            )
        if low is not None and any(Version(lo) < low for lo, _ in ranges):
            out.append(
                f"  It also claims the releases older than {low}, which no run here decided."
            )
    return out


def _table(doc: dict) -> list[str]:
    lines = ["| release | python | verdict | evidence |", "|---|---|---|---|"]
    for r in doc["rows"]:
        detail = r["detail"].replace("|", "\\|")
        lines.append(f"| `{r['target']}` | {r.get('python') or '-'} | {r['verdict']} | {detail} |")
    return lines


def section(name: str, m: dict, doc: dict | None) -> list[str]:
    ids = ", ".join([m["id"].removeprefix("x_"), *m["aliases"]])
    out = [f"## {m['title']}", "", f"Ids: {ids}. Case: `{m['file']}` (`--scenario {name}`).", ""]
    out += [f"Claimed: {db} {shown_ranges(r)}" + "  " for db, r in m["claimed"].items()]
    if doc is None:
        return out + ["", "Not run yet: no results/advisories/" + name + ".json.", ""]
    rows = doc["rows"]
    found = spans(rows)
    fails = [r for r in rows if r["verdict"] == "fail"]
    errors = [r["target"] for r in rows if r["verdict"] not in ("pass", "fail")]
    out += [
        "",
        f"**Measured: affected {shown_spans(found)}** ({len(fails)} of {len(rows)} "
        f"releases fail; {rows[0]['target']} ... {rows[-1]['target']} tested).",
    ]
    if fails:
        first, last = fails[0], fails[-1]
        out += [
            f"First affected {first['target']}: {first['detail']}  ",
            f"Last affected {last['target']}: {last['detail']}",
        ]
    if errors:
        out += ["", f"Not decided (error): {listed(errors)}."]
    out += ["", *(_changes(doc) or ["- no transition: nothing to bisect"]), ""]
    notes = [n for n in doc.get("notes", []) if not n.startswith("compat:")]
    if any("19.10.0..20.0.0" in n for n in notes):
        notes.append(BRANCH)
    out += [*(f"Note: {n}" for n in notes), *([""] if notes else [])]
    out += [*_verdicts(name, m, doc), "", f"Command: `{doc['command']}`", ""]
    out += ["<details><summary>every release</summary>", "", *_table(doc), "", "</details>", ""]
    return out


def plainly(metas: dict, docs: dict) -> list[str]:
    """One sentence per claim that disagrees with the measurement."""
    out = []
    for name, m in metas.items():
        doc = docs.get(name)
        if doc is None:
            continue
        rows = [r for r in doc["rows"] if r.get("kind", "release") == "release"]
        order = [r["target"] for r in rows if r["verdict"] in ("pass", "fail")]
        for db, ranges in m["claimed"].items():
            c = compare(ranges, rows)
            if c["too_wide"]:
                found = [e for e in doc.get("regressions", []) if _found(e)]
                by = " and ".join(f"in {e['first_bad']} by {_commit(e)}" for e in found)
                by = f"; measured: introduced {by}" if by else ""
                out.append(
                    f"- **{db}** is too wide: it claims {shown_ranges(ranges)}, yet "
                    f"{collapsed(c['too_wide'], order)} refuse or handle the probe{by}."
                )
            if c["too_narrow"]:
                out.append(
                    f"- **{db}** is too narrow: {collapsed(c['too_narrow'], order)} fail the "
                    f"probe outside its {shown_ranges(ranges)}."
                )
    return out or ["- every claim agrees with every release decided."]


def summary(metas: dict, docs: dict) -> list[str]:
    lines = ["| advisory | claimed | measured affected | claims |", "|---|---|---|---|"]
    for name, m in metas.items():
        doc = docs.get(name)
        claims = "; ".join(f"{db} {shown_ranges(r)}" for db, r in m["claimed"].items())
        if doc is None:
            lines.append(f"| {m['id'].removeprefix('x_')} | {claims} | not run | - |")
            continue
        rows = [r for r in doc["rows"] if r.get("kind", "release") == "release"]
        said = []
        for db, r in m["claimed"].items():
            c = compare(r, rows)
            kind = [k for k in ("too_wide", "too_narrow") if c[k]]
            said.append(f"{db}: {' and '.join(k.replace('_', ' ') for k in kind) or 'agrees'}")
        lines.append(
            f"| {m['id'].removeprefix('x_')} | {claims} | {shown_spans(spans(doc['rows']))} "
            f"| {'; '.join(said)} |"
        )
    return lines


def markdown(metas: dict, docs: dict) -> str:
    host = next((d.get("host", {}) for d in docs.values()), {})
    out = [
        "# Gunicorn advisories: what the databases claim, what the releases do",
        "",
        "Every advisory for gunicorn found in the PyPA advisory database (PYSEC), GitHub's "
        "(GHSA), OSV, CVE and Snyk, each probed on the wire by a catalogue case (the exact "
        "request bytes are in its file) after a control request, on every release tested. "
        "fail = the advisory's behaviour; pass = the probe refused or handled.",
        "",
        f"Regenerated by one command: `{COMMAND}` "
        f"(`--render-only` rewrites this file and advisories.svg from results/advisories/*.json).",
        f"Host: {host.get('kernel', '?')}, {host.get('date', '?')}.",
        "",
        "![every release x every advisory case](advisories.svg)",
        "",
        "## Summary",
        "",
        *summary(metas, docs),
        "",
        *plainly(metas, docs),
        "",
        NOT_RUN,
        "",
    ]
    for name, m in metas.items():
        out += section(name, m, docs.get(name))
    out += ["## Advisories found without a case", ""]
    out += [f"- **{ident}**: {what}. {why}." for ident, what, why in UNREPRODUCED]
    return "\n".join(out) + "\n"


# -- the picture ----------------------------------------------------------------------------------
COLOURS = {"pass": "#4caf50", "fail": "#e53935", "error": "#9e9e9e", "outage": "#fb8c00"}


def svg(metas: dict, docs: dict, cell: int = 14, left: int = 190, top: int = 70) -> str:
    """Every release tested along x, every case along y; a cell's colour is its verdict,
    a dark bar under it marks a release some database claims affected."""
    labels = sorted(
        {r["target"] for d in docs.values() for r in d["rows"]},
        key=lambda t: version(t) or Version("0"),
    )
    names = list(metas)
    width, height = left + cell * len(labels) + 20, top + (cell + 6) * len(names) + 60
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        'font-family="sans-serif" font-size="10">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
    ]
    for i, t in enumerate(labels):
        x = left + i * cell + cell // 2
        out.append(f'<text transform="translate({x},{top - 4}) rotate(-70)">{t}</text>')
    for j, name in enumerate(names):
        y = top + j * (cell + 6)
        m, rows = metas[name], {r["target"]: r for r in docs.get(name, {}).get("rows", [])}
        label = html.escape(m["id"].removeprefix("x_"))
        out.append(f'<text x="4" y="{y + cell - 3}">{label}</text>')
        for i, t in enumerate(labels):
            x = left + i * cell
            r = rows.get(t)
            fill = COLOURS.get(r["verdict"], "#9e9e9e") if r else "#ffffff"
            tip = html.escape(
                f"{name} {t}: " + (f"{r['verdict']}: {r['detail']}" if r else "not run")
            )
            out.append(
                f'<rect x="{x}" y="{y}" width="{cell - 1}" height="{cell}" fill="{fill}" '
                f'stroke="#ddd"><title>{tip}</title></rect>'
            )
            if any(claimed(rs, t) for rs in m["claimed"].values()):
                out.append(
                    f'<rect x="{x}" y="{y + cell + 1}" width="{cell - 1}" height="3" fill="#333"/>'
                )
    y = top + (cell + 6) * len(names) + 20
    for k, (verdict, colour) in enumerate([*COLOURS.items(), ("not run", "#ffffff")]):
        out.append(
            f'<rect x="{left + k * 80}" y="{y}" width="{cell}" height="{cell}" fill="{colour}" stroke="#999"/>'
        )
        out.append(f'<text x="{left + k * 80 + cell + 4}" y="{y + cell - 3}">{verdict}</text>')
    out.append(f'<rect x="{left + 400}" y="{y + 5}" width="{cell}" height="3" fill="#333"/>')
    out.append(f'<text x="{left + 400 + cell + 4}" y="{y + cell - 3}">claimed by a database</text>')
    return "\n".join([*out, "</svg>"]) + "\n"


#: cases shown in the picture beside the advisories (no claims, no commits): #1298 and
#: the 24.0.0 outage
PICTURE_ONLY = {  # name: (label, the first release it can run on: gthread, --reload)
    "socket-loss": ("#1298 socket-loss", None),
    "respawn": ("24.0.0 outage (respawn)", None),
    "keepalive-slow": ("#3025 keepalive-slow", "19.4.0"),  # the short name "gthread": 19.4
    "reload-broken-app": ("#2244 reload-broken-app", "19.0.0"),
    "reload-leak": ("#3648 reload-leak", "19.0.0"),
    "reload-drops": ("#3394 reload-drops", "19.4.0"),
}


def run_picture_only(spec: str, jobs: int) -> None:
    for name, (_, since) in PICTURE_ONLY.items():
        where = clamp(spec, {"since": since})
        argv = [sys.executable, str(ROOT / "bisect.py"), where, "--scenario", name, "--no-commits"]
        argv += ["-j", str(jobs), "--format", "json", "--output", str(RUNS / f"{name}.json")]
        print("+", " ".join(argv[1:]), file=sys.stderr, flush=True)
        got = subprocess.run(argv, cwd=ROOT, stdout=subprocess.DEVNULL)
        print(f"{name}: exit {got.returncode}", file=sys.stderr, flush=True)


def render() -> None:
    docs = {}
    for name in [*cases(), *PICTURE_ONLY]:
        doc = RUNS / f"{name}.json"
        if doc.exists():
            docs[name] = json.loads(doc.read_text())
    metas = {name: meta(path) for name, path in cases().items()}
    (OUT / "advisories.md").write_text(markdown(metas, {n: docs[n] for n in metas if n in docs}))
    shown = {**metas, **{n: {"id": lab, "claimed": {}} for n, (lab, _) in PICTURE_ONLY.items()}}
    (OUT / "advisories.svg").write_text(svg(shown, docs))
    print(f"wrote {OUT / 'advisories.md'} and {OUT / 'advisories.svg'}", file=sys.stderr)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("releases", nargs="?", default="0.9.0..latest")
    p.add_argument("--repo", help="a local gunicorn clone: bisect to commits")
    p.add_argument("-j", "--jobs", type=int, default=2)
    p.add_argument("--render-only", action="store_true", help="only rewrite from the JSON kept")
    p.add_argument("--picture-only", action="store_true", help="only run the picture's cases")
    a, extra = p.parse_known_args()
    if not a.render_only:
        if not a.picture_only:
            run(a.releases, a.repo, a.jobs, extra)
        run_picture_only(a.releases, a.jobs)
    render()
    return 0


if __name__ == "__main__":
    sys.exit(main())
