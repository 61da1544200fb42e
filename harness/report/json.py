"""The JSON document (``--format json`` and the run record); with several deployments every
entry names its ``column`` (the JSON's word for a deployment)."""

from __future__ import annotations

from harness import __version__
from harness.model.results import Row
from harness.model.search import Transition
from harness.model.table import Report
from harness.model.verdict import Axis
from harness.report.common import notes


def _entry(rep: Report, t: Transition, axis: str, deployment: str) -> dict:
    f = rep.finding_for(t, axis, deployment)
    ends = ("last_good", "first_bad") if t.regression else ("last_bad", "first_good")
    named = {} if rep.table.single else {"column": deployment}
    return {
        **named,
        ends[0]: t.before,
        ends[1]: t.after,
        "untested": list(t.between),
        "commit": f.as_json() if f else None,
    }


def _changes(rep: Report, ax: Axis) -> dict[str, list[dict]]:
    """Introduced and fixed on one axis over every deployment; none from a partial table."""
    labels = [] if rep.partial else rep.table.labels
    found = [(c, t) for c in labels for t in rep.table.transitions(c, ax)]
    return {
        "introduced": [_entry(rep, t, ax.key, c) for c, t in found if t.regression],
        "fixed": [_entry(rep, t, ax.key, c) for c, t in found if not t.regression],
    }


def _row(rep: Report, r: Row, deployment: str) -> dict:
    """``worker_class``: what ran (gunicorn's log; in a matrix null when no server ran),
    ``column``: the deployment asked for."""
    out = r.as_json()
    out.setdefault("column", deployment)
    out.setdefault("bind", deployment.rsplit("/", 1)[-1])
    if not rep.table.single:
        out.setdefault("worker_class", None)
    return out


def _affected(rep: Report, ax: Axis) -> list:
    hit = [(r, c) for r, c in rep.table.rows() if r.verdict is ax.new]
    return [r.target if rep.table.single else {"target": r.target, "column": c} for r, c in hit]


def tool() -> dict:
    """Which gunicorn-bisect made the document (records from other versions may differ)."""
    return {"name": "gunicorn-bisect", "version": __version__}


def as_json(rep: Report) -> dict:
    table, primary = rep.table, rep.primary
    changes = _changes(rep, primary)
    others = [
        {"axis": ax.key, "label": ax.label, "verdict": ax.new.value, "affected": _affected(rep, ax)}
        | _changes(rep, ax)
        for ax in table.axes[1:]
    ]
    by_release: dict[str, list[str]] = {}
    for r, c in table.rows():
        if r.verdict is primary.new:
            by_release.setdefault(r.target, []).append(c)
    doc = {
        "tool": tool(),
        "command": rep.command,
        "host": rep.host,
        "scenario": {**rep.scenario, "summary": rep.params},
        "terms": [primary.old_term, primary.new_term],
        "rows": [_row(rep, r, c) for r, c in table.rows()],
        "regressions": changes["introduced"],
        "fixes": changes["fixed"],
        "affected": list(by_release),
        "other_problems": others,
        "columns": [c.as_json() for c in table.deployments],
        "notes": notes(rep, marked=False),
        "interrupted": rep.interrupted,
    }
    if rep.package != "gunicorn":  # --package: the rows are that package's releases
        doc["package"] = rep.package
    if not table.single:
        doc["affected_by_release"] = by_release
    if rep.partial:
        doc["partial"] = rep.partial
    return doc
