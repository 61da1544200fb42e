"""Findings as OSV records (what vulnerability databases and ``pip-audit`` read): documenting
the affected versions is the third thing users do with this tool.  One record per run: an
``ECOSYSTEM`` range from the table's own transitions (exactly what the runs saw), a ``GIT``
range on the bisected commits, the failing releases as ``versions``, the evidence under
``database_specific``.  The ``id`` is an advisory case's own (others as ``aliases``), else
``local_id``: ``x_``, the schema's prefix for an unregistered database, as a local run is.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from harness.model.results import Finding, Row
from harness.model.search import Transition, transitions
from harness.model.table import Report
from harness.model.verdict import DEFAULT_AXIS, Axis

#: The OSV schema release these records conform to: checked in the tests against
#: tests/data/osv-schema.json, the published validation/schema.json of 1.7.5.
SCHEMA_VERSION = "1.7.5"
#: the id prefix the schema gives a database that is not registered (its ``prefix``)
UNREGISTERED = "x_"
#: the schema's ``$defs.prefix.pattern`` (1.7.5): the registered home databases
PREFIX = re.compile(
    r"^(x_|(ASB-A|PUB-A|ALPINE|ALSA|ALBA|ALEA|AZL|BELL|BIT|CGA|CLEANSTART|CLSA|CURL|CVE|DEBIAN"
    r"|DHI|DRUPAL|DSA|DLA|ELA|DTSA|ECHO|EEF|FreeBSD|GHSA|GO|GSD|HSEC|JLSEC|KUBE|LBSEC|LSN|MAL"
    r"|MINI|MGASA|OESA|OSEC|OSV|openSUSE-SU|PHSA|PSF|PYSEC|RHBA|RHEA|RHSA|RLSA|RXSA|RSEC|ROOT"
    r"|RUSTSEC|SUSE-[SRFO]U|UBUNTU|USN|V8)-)"
)


@dataclass(frozen=True)
class Advisory:
    """What a record says about itself; the evidence comes from the rows and findings."""

    id: str
    summary: str
    details: str
    published: datetime
    modified: datetime | None = None  # defaults to ``published``
    package: str = "gunicorn"
    repo: str = "https://github.com/benoitc/gunicorn"
    scenario: str = ""
    command: str = ""
    references: tuple[tuple[str, str], ...] = ()  # (OSV reference type, url): the tracker
    aliases: tuple[str, ...] = ()  # the advisory's other ids (CVE, GHSA, PYSEC)


def record_id(ident: str) -> str:
    """``ident`` as the schema takes it: a registered prefix kept, anything else ``x_``."""
    return ident if PREFIX.match(ident) else UNREGISTERED + ident


def local_id(package: str, scenario: str) -> str:
    """An id for a record no database has adopted yet: ``x_gunicorn-bisect-<pkg>-<scenario>``."""
    tail = re.sub(r"[^A-Za-z0-9._-]+", "-", f"{package}-{scenario}").strip("-")
    return f"{UNREGISTERED}gunicorn-bisect-{tail}"


def _timestamp(moment: datetime) -> str:
    """RFC 3339 in UTC with a ``Z``, the only form the schema's pattern takes."""
    if moment.tzinfo is None:
        raise ValueError("OSV timestamps need an aware datetime")
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def ecosystem_events(table: Sequence[Transition], first: tuple[str, bool] | None) -> list[dict]:
    """``introduced``/``fixed`` at each first failing / passing release; ``first``: the first
    testable release and its state (failing already, the range starts there)."""
    events = [{"introduced": first[0]}] if first is not None and not first[1] else []
    return events + [{"introduced": t.after} if t.regression else {"fixed": t.after} for t in table]


def git_events(table: Sequence[Transition], findings: Sequence[Finding], axis: str) -> list[dict]:
    """The bisected commits as events; a fix is kept only after a known introduction."""
    events: list[dict] = []
    for t in table:
        key = (t.before, t.after, axis)
        f = next((f for f in findings if (f.before, f.after, f.axis) == key), None)
        if not (f and f.status == "found" and f.commit):
            continue
        if t.regression:
            events.append({"introduced": f.commit.sha})
        elif any("introduced" in e for e in events):
            events.append({"fixed": f.commit.sha})
    return events


def _evidence(rows: Sequence[Row], findings: Sequence[Finding], table, adv: Advisory) -> dict:
    return {
        "source": "gunicorn-bisect",
        "scenario": adv.scenario,
        "command": adv.command,
        "versions": "the releases this run tested and found failing",
        "rows": [
            {"target": r.target, "verdict": r.verdict.value, "detail": r.detail, "python": r.python}
            for r in rows
        ],
        "transitions": [
            {"before": t.before, "after": t.after, "unknown_between": list(t.between)}
            for t in table
        ],
        "findings": [
            {"kind": f.kind, "before": f.before, "after": f.after} | f.as_json() for f in findings
        ],
    }


def _references(adv: Advisory, findings: Sequence[Finding]) -> list[dict]:
    refs = [{"type": kind, "url": url} for kind, url in adv.references]
    for f in findings:
        if f.status == "found" and f.url:
            refs.append({"type": "INTRODUCED" if f.kind == "regression" else "FIX", "url": f.url})
    return refs


def to_osv(
    rows: Sequence[Row], findings: Sequence[Finding], adv: Advisory, axis: Axis = DEFAULT_AXIS
) -> dict:
    """One OSV record for one question of one run (one deployment's rows in order): releases
    make the ECOSYSTEM events and ``versions``; a finding adds a commit event only when
    ``found``, else evidence."""
    rows = [r for r in rows if r.kind == "release"]  # PyPI versions; commits go in GIT
    states = [(r.target, axis.state(r.verdict)) for r in rows]
    table = transitions(states)
    first = next(((t, s) for t, s in states if s is not None), None)
    mine = [f for f in findings if f.axis == axis.key]
    ranges = [{"type": "ECOSYSTEM", "events": ecosystem_events(table, first)}]
    commits = git_events(table, mine, axis.key)
    if commits:
        ranges.append({"type": "GIT", "repo": adv.repo, "events": commits})
    package = {"ecosystem": "PyPI", "name": adv.package, "purl": f"pkg:pypi/{adv.package}"}
    return {
        "schema_version": SCHEMA_VERSION,
        "id": adv.id,
        "modified": _timestamp(adv.modified or adv.published),
        "published": _timestamp(adv.published),
        **({"aliases": list(adv.aliases)} if adv.aliases else {}),
        "summary": adv.summary,
        "details": adv.details,
        "affected": [
            {
                "package": package,
                "ranges": ranges if ranges[0]["events"] else [],
                "versions": [r.target for r in rows if r.verdict is axis.new],
            }
        ],
        "references": _references(adv, mine),
        "database_specific": _evidence(rows, mine, table, adv),
    }


TRACKER_URL = "https://github.com/benoitc/gunicorn/issues/{}"
#: where each kind of advisory id is published (an id of another kind has no link)
ADVISORY_URLS = {
    "CVE-": "https://nvd.nist.gov/vuln/detail/{}",
    "GHSA-": "https://github.com/advisories/{}",
    "PYSEC-": "https://osv.dev/vulnerability/{}",
    "x_SNYK-": "https://security.snyk.io/vuln/{}",
}


def advisory_url(ident: str) -> str:
    """The page of an advisory id (``GHSA-...`` -> github.com/advisories/...), or ""."""
    for prefix, url in ADVISORY_URLS.items():
        if ident.startswith(prefix):
            return url.format(ident.removeprefix("x_"))
    return ""


def advisory_for(rep: Report, deployment: str = "", now: datetime | None = None) -> Advisory:
    """A record's metadata from the scenario: a file's ``ID`` (else ``local_id`` of its name,
    plus the deployment in a matrix) and its ``TRACKER`` as the report."""
    scenario = rep.scenario
    name = str(scenario.get("name") or "scenario")
    if name == "file":
        name = Path(str(scenario.get("file", name))).stem
    own = str(scenario.get("id") or "")
    suffix = f"-{deployment}" if deployment and not rep.table.single else ""
    tracker = scenario.get("tracker")
    refs = (("REPORT", TRACKER_URL.format(tracker)),) if tracker else ()
    aliases = tuple(str(a) for a in scenario.get("aliases") or ())
    refs += tuple(("ADVISORY", url) for url in map(advisory_url, (own, *aliases)) if url)
    return Advisory(
        id=(record_id(own) if own else local_id("gunicorn", name))
        + re.sub(r"[^A-Za-z0-9._-]+", "-", suffix),
        summary=rep.title,
        details=rep.params + (f" ({deployment})" if suffix else ""),
        published=now or datetime.now(timezone.utc),
        scenario=name,
        command=rep.command,
        references=refs,
        aliases=aliases,
    )


def as_osv(rep: Report, now: datetime | None = None) -> dict | list[dict]:
    """``--format osv``: one record for a run, one per deployment for a matrix."""
    records = []
    for deployment in rep.table.labels:
        mine = [f for f in rep.findings if f.deployment == ("" if rep.table.single else deployment)]
        adv = advisory_for(rep, deployment, now)
        records.append(to_osv(rep.table.deployment_rows(deployment), mine, adv, rep.primary))
    return records[0] if rep.table.single else records
