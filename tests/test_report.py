"""Tests for harness.report (table, markdown, JSON, records) and search.transitions."""

from __future__ import annotations

import json
import re

import pytest

from harness.model.results import COMPAT_NOTE, Finding, Row
from harness.model.search import Transition, transitions
from harness.model.table import Deployment, Report, Table
from harness.model.verdict import Verdict
from harness.report.json import as_json
from harness.report.markdown import render_markdown
from harness.report.render import render, write_record
from harness.report.text import render_table

pytestmark = pytest.mark.pure

COMMAND = "python bisect.py 19.5.0..19.7.0"
HOST = {
    "kernel": "6.1.0",
    "compat": "SO_REUSEPORT on AF_UNIX accepted",
    "pythons": ["3.9.18 (pyenv)"],
}
PARAMS = "workers=2 threads=4 max_requests=20"
ANSI = re.compile(r"\x1b\[")

PASS_DETAIL = "socket kept through 6 worker restarts; 5/5 new connections served"
FAIL_DETAIL = "socket file gone after the 1st worker restart; 0/5 new connections served"


def row(target: str, verdict: Verdict, detail: str) -> Row:
    return Row(target, verdict, detail, python="3.9.18")


def make_report(rows: list[Row], **kw) -> Report:
    """A plain run: one column, the rows in the order asked."""
    table = Table([Deployment("auto/unix", None, "unix")], targets=[r.target for r in rows])
    for r in rows:
        table.put(r.target, "auto/unix", r)
    return Report(COMMAND, HOST, PARAMS, table, **kw)


@pytest.fixture
def rep() -> Report:
    return make_report(
        [
            row("19.5.0", Verdict.PASS, PASS_DETAIL),
            row("19.6.0", Verdict.FAIL, FAIL_DETAIL),
            row("19.7.0", Verdict.PASS, PASS_DETAIL),
        ]
    )


# -- JSON ------------------------------------------------------------------------


def test_json_rows(rep):
    doc = json.loads(render(rep, "json"))
    assert [r["target"] for r in doc["rows"]] == ["19.5.0", "19.6.0", "19.7.0"]
    for r in doc["rows"]:
        assert r["python"] == "3.9.18"
        assert r["detail"]
    assert [r["verdict"] for r in doc["rows"]] == ["pass", "fail", "pass"]
    assert doc["rows"][1]["detail"] == FAIL_DETAIL


def test_json_conclusions(rep):
    doc = json.loads(render(rep, "json"))
    assert doc["regressions"] == [
        {"last_good": "19.5.0", "first_bad": "19.6.0", "untested": [], "commit": None}
    ]
    assert doc["fixes"] == [
        {"last_bad": "19.6.0", "first_good": "19.7.0", "untested": [], "commit": None}
    ]
    assert doc["affected"] == ["19.6.0"]
    assert doc["command"] == COMMAND
    assert doc["interrupted"] is False


def test_json_attaches_the_commit_finding_to_its_transition(rep):
    rep.findings.append(Finding("regression", "19.5.0", "19.6.0", "skipped", reason="no network"))
    doc = as_json(rep)
    assert doc["regressions"][0]["commit"]["status"] == "skipped"
    assert doc["regressions"][0]["commit"]["reason"] == "no network"
    assert doc["fixes"][0]["commit"] is None


def test_json_names_untestable_releases_in_a_gap():
    rep = make_report(
        [
            row("19.4.5", Verdict.PASS, PASS_DETAIL),
            row("19.5.0", Verdict.ERROR, "server did not start: boom"),
            row("19.6.0", Verdict.FAIL, FAIL_DETAIL),
        ]
    )
    doc = as_json(rep)
    assert doc["regressions"] == [
        {"last_good": "19.4.5", "first_bad": "19.6.0", "untested": ["19.5.0"], "commit": None}
    ]
    assert doc["fixes"] == []
    assert doc["affected"] == ["19.6.0"]
    assert "untestable in between: 19.5.0" in render_table(rep)


# -- table -----------------------------------------------------------------------


def test_table_lists_every_release_and_verdict(rep):
    text = render_table(rep, colour=False)
    lines = text.splitlines()
    for target, verdict in (("19.5.0", "PASS"), ("19.6.0", "FAIL"), ("19.7.0", "PASS")):
        line = next(ln for ln in lines if ln.startswith(target))
        assert verdict in line
        assert "3.9.18" in line
    assert FAIL_DETAIL in text


def test_table_states_the_conclusions(rep):
    text = render_table(rep, colour=False)
    assert "regression introduced in 19.6.0 (last good 19.5.0)" in text
    assert "fixed in 19.7.0 (last bad 19.6.0)" in text


def test_table_without_colour_has_no_ansi_codes(rep):
    assert not ANSI.search(render_table(rep, colour=False))
    assert not ANSI.search(render(rep, "table", colour=False))
    assert not ANSI.search(render_markdown(rep))


def test_table_with_colour_colours_verdicts(rep):
    assert ANSI.search(render_table(rep, colour=True))


def test_table_no_change():
    rep = make_report(
        [row("19.4.0", Verdict.PASS, PASS_DETAIL), row("19.5.0", Verdict.PASS, PASS_DETAIL)]
    )
    assert "no change: every testable release is pass" in render_table(rep)


def test_table_nothing_testable():
    rep = make_report([row("19.4.0", Verdict.ERROR, "no worker ever recycled")])
    assert "no conclusion: no release could be tested" in render_table(rep)


def test_table_shows_notes_and_skipped_bisection(rep):
    rep.notes.append("compat: this kernel rejects SO_REUSEPORT on AF_UNIX")
    rep.findings.append(Finding("regression", "19.5.0", "19.6.0", "skipped", reason="no network"))
    text = render_table(rep)
    assert "regression: 19.5.0 -> 19.6.0  commit bisection skipped: no network" in text
    # the compat note only where it applies: no row here used the shim
    assert "compat" not in text.split("\n", 2)[2]


def test_compat_is_a_mark_and_one_note_not_a_suffix():
    """A row that ran with the shim is marked; the note says once what the mark means;
    the evidence cell carries no suffix (it is whole in the JSON)."""
    shimmed = Row("19.7.0", Verdict.PASS, PASS_DETAIL + COMPAT_NOTE, python="3.9.18", compat=True)
    rep = make_report([row("19.6.0", Verdict.FAIL, FAIL_DETAIL), shimmed])
    rep.notes.append("compat: this kernel rejects SO_REUSEPORT on AF_UNIX")
    text = render_table(rep)
    assert "(compat:" not in text
    assert re.search(r"^19\.7\.0 .*PASS \*", text, re.M)
    assert not re.search(r"^19\.6\.0 .*FAIL \*", text, re.M)
    assert text.count("note: compat: this kernel rejects") == 1
    assert "rows marked *" in text
    md = render_markdown(rep)
    assert "(compat:" not in md and "rows marked *" in md
    assert json.loads(render(rep, "json"))["rows"][1]["detail"].endswith(COMPAT_NOTE)


# -- markdown --------------------------------------------------------------------


def test_markdown_has_a_github_table(rep):
    md = render_markdown(rep)
    lines = md.splitlines()
    header = next(ln for ln in lines if ln.startswith("| release"))
    assert "verdict" in header and "evidence" in header
    sep = lines[lines.index(header) + 1]
    assert re.fullmatch(r"\|[-:| ]+\|", sep)
    assert any(ln.startswith("| `19.6.0`") and "**FAIL**" in ln for ln in lines)
    assert any(ln.startswith("| `19.5.0`") and "**PASS**" in ln for ln in lines)


def test_a_pipe_in_evidence_stays_in_its_cell():
    rep = make_report([row("19.6.0", Verdict.FAIL, "exit 1: grep 'a|b' found nothing")])
    (line,) = [ln for ln in render_markdown(rep).splitlines() if ln.startswith("| `19.6.0`")]
    cells = [c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]]
    assert cells[-1] == "exit 1: grep 'a\\|b' found nothing"  # github shows it as 'a|b'


def test_markdown_lists_affected_releases_and_conclusions(rep):
    md = render_markdown(rep)
    assert "### Affected releases\n\n- 19.6.0\n" in md
    assert "- regression introduced in 19.6.0 (last good 19.5.0)" in md
    assert "- fixed in 19.7.0 (last bad 19.6.0)" in md


def test_markdown_when_nothing_is_affected():
    rep = make_report([row("19.4.0", Verdict.PASS, PASS_DETAIL)])
    assert "- none of the tested releases" in render_markdown(rep)


def test_markdown_ends_with_the_reproduce_command(rep):
    md = render_markdown(rep)
    assert "Reproduce with:" in md
    assert md.rstrip().endswith(f"```\n{COMMAND}\n```")


# -- records ---------------------------------------------------------------------


def test_write_record_saves_json_and_markdown(rep, tmp_path):
    record = write_record(rep, tmp_path, "19.5.0..19.7.0")
    assert record.parent == tmp_path
    assert json.loads(record.read_text()) == as_json(rep)
    md = record.with_suffix(".md")
    assert md.read_text() == render_markdown(rep) + "\n"
    assert "19.5.0..19.7.0" in record.name
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([record.name, md.name])


def test_write_record_label_with_a_slash_stays_in_the_results_dir(rep, tmp_path):
    record = write_record(rep, tmp_path, "origin/master")
    assert record.parent == tmp_path
    assert "origin_master" in record.name
    assert record.is_file()


# -- transitions -----------------------------------------------------------------


def test_transitions_regression_and_fix():
    assert transitions([("19.5.0", True), ("19.6.0", False), ("19.7.0", True)]) == [
        Transition("19.5.0", "19.6.0", True),
        Transition("19.6.0", "19.7.0", False),
    ]


def test_transitions_none_when_nothing_changes():
    assert transitions([("a", True), ("b", True), ("c", None), ("d", True)]) == []
    assert transitions([]) == []


def test_transitions_skip_untestable_and_report_them_between():
    got = transitions(
        [
            ("19.4.0", None),  # before anything testable: not in any gap
            ("19.4.5", True),
            ("19.5.0", None),
            ("19.5.1", None),
            ("19.6.0", False),
            ("19.6.1", None),
            ("19.7.0", False),
            ("19.8.0", None),
        ]
    )
    assert got == [Transition("19.4.5", "19.6.0", True, ("19.5.0", "19.5.1"))]


def test_transitions_gap_resets_after_a_testable_row_without_change():
    got = transitions([("a", True), ("b", None), ("c", True), ("d", None), ("e", False)])
    assert got == [Transition("c", "e", True, ("d",))]


# -- a terminal's width ------------------------------------------------------------


def test_the_table_fits_the_terminal_and_is_whole_elsewhere() -> None:
    long = FAIL_DETAIL + "; worker traceback: FileNotFoundError: [Errno 2] " + "x/" * 60
    rep = make_report([row("19.5.0", Verdict.PASS, PASS_DETAIL), row("19.6.0", Verdict.FAIL, long)])
    rep.host = {
        "compat": "kernel 6.18 rejects SO_REUSEPORT on AF_UNIX (errno 95 EOPNOTSUPP): compat shim on",
        "pythons": [f"3.{m}.1 (pyenv)" for m in range(6, 14)],
    }
    rep.notes.append("warning: --worker-class sync was asked, but gunicorn ran gthread " * 3)
    rep.findings.append(Finding("regression", "19.5.0", "19.6.0", "skipped", reason="x " * 80))
    narrow = render(rep, "table", width=72)
    assert max(len(line) for line in narrow.splitlines()) <= 72, narrow
    assert "errno" not in narrow and "(pyenv)" not in narrow  # the host line, shortened
    assert "Pythons: 3.6.1, 3.7.1" in narrow.replace("\n", " ")
    whole = render(rep, "table")
    assert long in whole  # piped or in a file: every cell whole
    assert long in render(rep, "markdown") and long in render(rep, "json")


def test_a_pipe_in_the_evidence_stays_inside_its_markdown_cell() -> None:
    rep = make_report([row("19.6.0", Verdict.FAIL, "exit 1: Server: gunicorn | 502 Bad Gateway")])
    (line,) = [ln for ln in render_markdown(rep).splitlines() if ln.startswith("| `19.6.0`")]
    assert line.count(" | ") == 3 and "gunicorn \\| 502" in line  # four cells, the pipe escaped
