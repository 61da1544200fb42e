"""One entry for every output format: ``render(report, fmt)``."""

from __future__ import annotations

import json

from harness.model.table import Report
from harness.report.json import as_json
from harness.report.markdown import render_markdown
from harness.report.osv import as_osv
from harness.report.text import render_table

FORMATS = ("table", "markdown", "json", "osv")


def render(
    rep: Report, fmt: str, colour: bool = False, verbose: bool = False, width: int | None = None
) -> str:
    """``verbose``: a matrix lists the evidence of every cell, not only those not passing;
    ``width``: the terminal's, which the text table fits (JSON and markdown stay whole)."""
    if fmt == "json":
        return json.dumps(as_json(rep), indent=2)
    if fmt == "osv":
        return json.dumps(as_osv(rep), indent=2)
    if fmt == "markdown":
        return render_markdown(rep, verbose)
    return render_table(rep, colour, verbose, width)
