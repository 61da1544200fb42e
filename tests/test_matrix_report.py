"""The worker-class x bind matrix in the table, markdown and JSON (pure Report objects)."""

from __future__ import annotations

import json
import re

import pytest

from harness.model.results import Finding, Row
from harness.model.table import Deployment, Report, Table
from harness.model.verdict import Verdict
from harness.report.json import as_json
from harness.report.markdown import render_markdown
from harness.report.render import render
from harness.report.text import render_table

pytestmark = pytest.mark.pure

COMMAND = "python bisect.py 19.5.0..19.7.0 --worker-class gthread,sync --bind unix,tcp"
HOST = {"kernel": "6.1.0", "compat": "SO_REUSEPORT on AF_UNIX accepted", "pythons": ["3.9.18"]}
COLUMNS = ["gthread/unix", "gthread/tcp", "sync/unix", "sync/tcp"]
PASS = "socket kept through 3 worker restarts; 20/20 new connections served"
TCP_PASS = "kept serving on TCP (no socket file to lose) through 3 worker restarts; 20/20 ..."
FAIL = "socket file gone after the 1st worker restart; 0/20 new connections served"


def cell(target: str, deployment: str, verdict: Verdict, detail: str, python="3.9.18") -> Row:
    wc, bind = deployment.split("/")
    return Row(target, verdict, detail, python=python, facts={"worker_class": wc, "bind": bind})


def matrix(cells: dict[tuple[str, str], tuple[Verdict, str]], **kw) -> Report:
    """A report as the release table leaves it: a row per (release, column)."""
    deployments = [Deployment(c, *c.split("/"), summary=f"workers=3 {c}") for c in COLUMNS]
    table = Table(deployments, targets=list(dict.fromkeys(t for t, _ in cells)))
    for (t, c), (v, d) in cells.items():
        table.put(t, c, cell(t, c, v, d))
    return Report(COMMAND, HOST, "socket-loss, 4 deployments (worker class x bind)", table, **kw)


@pytest.fixture
def rep() -> Report:
    cells = {}
    for target in ("19.5.0", "19.6.0", "19.7.0"):
        for col in COLUMNS:
            bad = target == "19.6.0" and col == "gthread/unix"
            ok = TCP_PASS if col.endswith("tcp") else PASS
            cells[(target, col)] = (Verdict.FAIL, FAIL) if bad else (Verdict.PASS, ok)
    return matrix(cells)


# -- table -----------------------------------------------------------------------


def test_table_has_one_verdict_column_per_deployment(rep):
    lines = render_table(rep).splitlines()
    header = next(ln for ln in lines if ln.startswith("release"))
    assert header.split() == ["release", "python", *COLUMNS]
    row = next(ln for ln in lines if ln.startswith("19.6.0 "))
    assert row.split() == ["19.6.0", "3.9.18", "FAIL", "PASS", "PASS", "PASS"]
    row = next(ln for ln in lines if ln.startswith("19.5.0 "))
    assert row.split() == ["19.5.0", "3.9.18", "PASS", "PASS", "PASS", "PASS"]


def test_table_evidence_lists_what_is_not_pass_and_everything_with_verbose(rep):
    text = render_table(rep)
    evidence = text[text.index("evidence (") :].splitlines()
    assert [ln for ln in evidence if ln.startswith("19.")] == [
        next(ln for ln in evidence if ln.startswith("19.6.0"))
    ]
    assert re.search(r"^19\.6\.0\s+gthread/unix\s+FAIL\s+" + re.escape(FAIL), text, re.M)
    assert "kept serving on TCP" not in text
    verbose = render_table(rep, verbose=True)
    assert len(re.findall(r"^19\.\d\.0\s+\S+/\S+\s+(PASS|FAIL)\s", verbose, re.M)) == 12
    assert re.search(r"^19\.6\.0\s+sync/tcp\s+PASS\s+kept serving on TCP", verbose, re.M)


def test_table_concludes_per_column(rep):
    text = render_table(rep)
    assert "gthread/unix: regression introduced in 19.6.0 (last good 19.5.0)" in text
    assert "gthread/unix: fixed in 19.7.0 (last bad 19.6.0)" in text
    for col in COLUMNS[1:]:
        assert f"{col}: no change: every testable release is pass" in text
    assert "  sync/tcp: workers=3 sync/tcp" in text  # each column's scenario


def test_table_marks_a_cell_that_ran_on_another_python():
    cells = {
        ("19.6.0", c): (Verdict.PASS, PASS) for c in ("gthread/unix", "gthread/tcp", "sync/unix")
    }
    rep = matrix(cells)
    rep.table.put(
        "19.6.0", "sync/tcp", cell("19.6.0", "sync/tcp", Verdict.ERROR, "install failed", None)
    )
    rep.table.put(
        "19.6.0", "gthread/unix", cell("19.6.0", "gthread/unix", Verdict.FAIL, FAIL, "3.6.15")
    )
    row = next(ln for ln in render_table(rep).splitlines() if ln.startswith("19.6.0 "))
    assert row.split() == [
        "19.6.0",
        "3.9.18",
        "FAIL",
        "(Python",
        "3.6.15)",
        "PASS",
        "PASS",
        "ERROR",
    ]


def test_table_when_every_cell_passes():
    rep = matrix({("19.5.0", c): (Verdict.PASS, PASS) for c in COLUMNS})
    assert "evidence: every result is pass (-v for each)" in render_table(rep)


def plain(rows: list[Row]) -> Report:
    table = Table([Deployment("auto/unix", None, "unix")], targets=[r.target for r in rows])
    for r in rows:
        table.put(r.target, "auto/unix", r)
    return Report("cmd", HOST, "workers=3", table)


def test_a_single_column_renders_as_the_plain_table():
    one = plain([Row("19.6.0", Verdict.FAIL, FAIL, python="3.9.18")])
    text = render_table(one)
    assert "release    python    verdict    evidence" in text
    assert "auto/unix" not in text and "deployment" not in text
    assert "### Affected releases" in render_markdown(one)


def test_commit_finding_names_its_column(rep):
    rep.findings.append(
        Finding(
            "regression",
            "19.5.0",
            "19.6.0",
            "skipped",
            reason="no network",
            deployment="gthread/unix",
        )
    )
    assert (
        "gthread/unix: regression: 19.5.0 -> 19.6.0  commit bisection skipped: no network"
        in render_table(rep)
    )
    assert "### Regression: 19.5.0 -> 19.6.0 (gthread/unix)" in render_markdown(rep)
    doc = as_json(rep)
    reg = next(r for r in doc["regressions"] if r["column"] == "gthread/unix")
    assert reg["commit"]["column"] == "gthread/unix"
    assert reg["commit"]["reason"] == "no network"


# -- markdown --------------------------------------------------------------------


def test_markdown_matrix_is_a_github_table(rep):
    lines = render_markdown(rep).splitlines()
    header = next(ln for ln in lines if ln.startswith("| release"))
    assert [c.strip() for c in header.strip("|").split("|")] == ["release", "python", *COLUMNS]
    assert re.fullmatch(r"\|[-:| ]+\|", lines[lines.index(header) + 1])
    row = next(ln for ln in lines if ln.startswith("| `19.6.0`"))
    assert [c.strip() for c in row.strip("|").split("|")] == [
        "`19.6.0`",
        "3.9.18",
        "**FAIL**",
        "**PASS**",
        "**PASS**",
        "**PASS**",
    ]


def test_markdown_says_which_deployments_are_affected(rep):
    md = render_markdown(rep)
    section = md[md.index("### Which deployments are affected") :].split("\n\n")[1]
    assert (
        section == "- `19.6.0`: fail with gthread/unix; pass with gthread/tcp, sync/unix, sync/tcp"
    )
    assert f"- `19.6.0` gthread/unix: **FAIL** {FAIL}" in md
    assert "- gthread/unix: regression introduced in 19.6.0 (last good 19.5.0)" in md
    assert md.rstrip().endswith(f"```\n{COMMAND}\n```")


def test_markdown_when_no_deployment_fails():
    rep = matrix({("19.5.0", c): (Verdict.PASS, PASS) for c in COLUMNS})
    md = render_markdown(rep)
    assert (
        "### Which deployments are affected\n\n- no tested release is fail in any deployment" in md
    )


# -- JSON ------------------------------------------------------------------------


def test_json_has_a_row_per_release_and_deployment(rep):
    doc = json.loads(render(rep, "json"))
    assert [c["column"] for c in doc["columns"]] == COLUMNS
    assert doc["columns"][3] == {
        "column": "sync/tcp",
        "worker_class": "sync",
        "bind": "tcp",
        "summary": "workers=3 sync/tcp",
        "parameters": {},
    }
    assert len(doc["rows"]) == 12
    got = {(r["target"], r["column"]): r for r in doc["rows"]}
    r = got[("19.6.0", "gthread/unix")]
    assert (r["worker_class"], r["bind"], r["verdict"], r["detail"]) == (
        "gthread",
        "unix",
        "fail",
        FAIL,
    )
    assert got[("19.6.0", "sync/tcp")]["verdict"] == "pass"
    assert got[("19.6.0", "sync/tcp")]["bind"] == "tcp"


def test_json_transitions_name_their_column(rep):
    doc = as_json(rep)
    assert doc["regressions"] == [
        {
            "column": "gthread/unix",
            "last_good": "19.5.0",
            "first_bad": "19.6.0",
            "untested": [],
            "commit": None,
        }
    ]
    assert doc["fixes"] == [
        {
            "column": "gthread/unix",
            "last_bad": "19.6.0",
            "first_good": "19.7.0",
            "untested": [],
            "commit": None,
        }
    ]
    assert doc["affected"] == ["19.6.0"]
    assert doc["affected_by_release"] == {"19.6.0": ["gthread/unix"]}


def test_json_of_a_single_column_keeps_its_shape():
    rep = plain(
        [
            Row("19.5.0", Verdict.PASS, PASS, python="3.9.18"),
            Row("19.6.0", Verdict.FAIL, FAIL, python="3.9.18"),
        ]
    )
    doc = as_json(rep)
    assert doc["regressions"] == [
        {"last_good": "19.5.0", "first_bad": "19.6.0", "untested": [], "commit": None}
    ]
    assert [c["column"] for c in doc["columns"]] == ["auto/unix"]
    assert [r["column"] for r in doc["rows"]] == ["auto/unix", "auto/unix"]
    assert "affected_by_release" not in doc
