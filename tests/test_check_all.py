"""``--check X --scenario all [--from Y]`` without a gunicorn: the pure summary (what
upgrading changes, the exit status), the orchestration with the fake lab (a case that
refuses an option is a row, not the end), the table in every format, and the command
line that asks for it."""

from __future__ import annotations

import json
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from harness import __version__, cli
from harness.host.processes import Cancel
from harness.host.progress import Progress
from harness.jobs.budget import Budget
from harness.jobs.run import Case, check_all
from harness.model.errors import HarnessError
from harness.model.results import Row
from harness.model.table import (
    BOTH_PASS,
    FIXED,
    STILL,
    UNKNOWN,
    Checked,
    Entry,
    compare,
    exit_kind,
    new_in,
    summary,
)
from harness.model.verdict import Axis, Verdict
from harness.report.render import render_checked
from harness.request import UsageError, known_scenarios, parse
from harness.scenarios import registry
from harness.scenarios.base import ScenarioError
from tests.conftest import run_cli
from tests.fakes import HOST, Lab, report_for

pytestmark = pytest.mark.local

PRIMARY = Axis("primary", Verdict.PASS, Verdict.FAIL, "pass", "fail")
OUTAGE = Axis("outage", Verdict.PASS, Verdict.OUTAGE, "serving", "outage", "stops serving")
AXES = (PRIMARY, OUTAGE)
STATES = {True: Verdict.FAIL, False: Verdict.PASS, None: Verdict.ERROR}


def row(target: str, verdict: Verdict, detail: str = "evidence") -> Row:
    return Row(target, verdict, f"{verdict.value}: {detail}", python="3.12.1")


# -- the pure part: what upgrading does, the exit status ---------------------------------


@given(st.sampled_from([True, False, None]), st.sampled_from([True, False, None]))
def test_compare_names_each_pair_once(before, after) -> None:
    said = compare(before, after, "24.0.0")
    expected = {
        (True, True): STILL,
        (True, False): FIXED,
        (False, True): new_in("24.0.0"),
        (False, False): BOTH_PASS,
    }.get((before, after), UNKNOWN)
    assert said == expected


def test_an_outage_is_a_failure_and_an_error_cannot_tell() -> None:
    assert Entry("respawn", AXES, row("24.0.0", Verdict.OUTAGE)).fails() is True
    assert Entry("boots", AXES, row("24.0.0", Verdict.ERROR)).fails() is None
    assert Entry("boots", AXES, row("24.0.0", Verdict.PASS)).fails() is False


@given(
    st.lists(st.tuples(st.sampled_from([None, *Verdict]), st.booleans()), min_size=1, max_size=8)
)
def test_exit_kind_fails_on_any_failure_and_never_counts_a_refusal(cells) -> None:
    entries = [
        Entry(f"s{i}", AXES, row("X", v) if v is not None else None, refused="" if v else "no")
        for i, (v, _) in enumerate(cells)
    ]
    ran = [e for e in entries if e.ran]
    kind = exit_kind(entries)
    if any(e.row.verdict in (Verdict.FAIL, Verdict.OUTAGE) for e in ran):
        assert kind == "fail"
    elif ran and all(e.row.verdict is Verdict.PASS for e in ran):
        assert kind == "pass"
    else:
        assert kind == "cannot tell"


def test_summary_names_what_fails_and_what_upgrading_changes() -> None:
    entries = [
        Entry("respawn", AXES, row("24.0.0", Verdict.FAIL), row("23.0.0", Verdict.PASS)),
        Entry("socket-loss", AXES, row("24.0.0", Verdict.PASS), row("23.0.0", Verdict.FAIL)),
        Entry("boots", AXES, row("24.0.0", Verdict.PASS), row("23.0.0", Verdict.PASS)),
        Entry("reload-drops", AXES, refused="cannot honour --proxy nginx"),
    ]
    lines = summary(entries, "24.0.0")
    assert "24.0.0 fails 1 of 3: respawn" in lines
    assert "not run: reload-drops" in lines
    assert "upgrading breaks: respawn" in lines
    assert "upgrading fixes: socket-loss" in lines
    assert [e.change for e in entries] == [new_in("24.0.0"), FIXED, BOTH_PASS, UNKNOWN]


# -- the orchestration, with the fake lab -------------------------------------------------


class RefusingLab(Lab):
    """A scenario that cannot honour an option: it says so when it is run."""

    def release(self, fetched: str, deployment: str) -> Row:
        raise ScenarioError("reload-drops cannot honour --proxy nginx: it owns its own socket")


def _run(cases, target="24.0.0", before=None, jobs=2):
    budget = Budget(jobs, Cancel())
    try:
        return check_all(cases, target, before, lambda: None, budget, Progress())
    finally:
        budget.close()


def test_every_case_runs_and_a_refusal_is_a_row_not_the_end() -> None:
    bad = Lab(["23.0.0", "24.0.0"], verdicts={("24.0.0", "c"): Verdict.FAIL})
    good = Lab(["23.0.0", "24.0.0"])
    cases = [
        Case("respawn", bad, "c", AXES),
        Case("reload-drops", RefusingLab(["24.0.0"]), "c", AXES),
        Case("made-badly", refused="no such thing"),
        Case("boots", good, "c", AXES),
    ]
    entries = _run(cases, before="23.0.0")
    assert [e.scenario for e in entries] == ["respawn", "reload-drops", "made-badly", "boots"]
    assert entries[0].change == new_in("24.0.0")
    assert not entries[1].ran and "cannot honour --proxy nginx" in entries[1].refused
    assert not entries[2].ran and entries[2].refused == "no such thing"
    assert entries[3].change == BOTH_PASS
    assert sorted(t for t, _, _ in good.evaluated) == ["23.0.0", "24.0.0"]
    assert exit_kind(entries) == "fail"


def test_the_cases_share_the_one_budget() -> None:
    lab = Lab(["23.0.0", "24.0.0"], pause=0.05)
    entries = _run([Case(f"s{i}", lab, "c", AXES) for i in range(6)], before="23.0.0", jobs=3)
    assert len(lab.evaluated) == 12 and all(e.change == BOTH_PASS for e in entries)
    assert 1 < lab.most_at_once <= 3


def test_the_same_problem_in_every_case_is_the_users_one_line() -> None:
    class Broken(Lab):
        def release(self, fetched, deployment):
            raise HarnessError("--python 3.13 cannot run gunicorn 19.0.0")

    with pytest.raises(HarnessError, match="--python 3.13"):
        _run([Case(n, Broken(["19.0.0"]), "c", AXES) for n in ("a", "b")], target="19.0.0")


def test_a_problem_of_one_case_is_its_error_row() -> None:
    class Broken(Lab):
        def release(self, fetched, deployment):
            raise HarnessError("no Python found here can run gunicorn 24.0.0 with bottle")

    entries = _run([Case("a", Broken(["24.0.0"]), "c", AXES), Case("b", Lab(["24.0.0"]), "c")])
    assert entries[0].row.verdict is Verdict.ERROR and "bottle" in entries[0].row.detail
    assert exit_kind(entries) == "cannot tell"


# -- the table, in each format -----------------------------------------------------------


def checked(before: bool = False, deployment=()) -> Checked:
    entries = [
        Entry(
            "respawn",
            AXES,
            row("24.0.0", Verdict.FAIL, "no worker replaced after kill -9 " * 5),
            row("23.0.0", Verdict.PASS) if before else None,
        ),
        Entry(
            "boots",
            AXES,
            row("24.0.0", Verdict.PASS),
            row("23.0.0", Verdict.PASS) if before else None,
        ),
        Entry("reload-drops", AXES, refused="cannot honour --proxy nginx"),
    ]
    return Checked(
        "gunicorn-bisect --check 24.0.0 --scenario all",
        HOST,
        "24.0.0",
        "24.0.0",
        entries,
        "23.0.0" if before else None,
        deployment,
        notes=["compat: this kernel rejects SO_REUSEPORT on AF_UNIX"],
    )


def test_text_has_a_row_per_scenario_and_fits_the_width() -> None:
    text = render_checked(checked(deployment=("--proxy nginx",)), "table", width=80)
    assert all(len(line) <= 80 for line in text.splitlines()), text
    assert re.search(r"^respawn +FAIL", text, re.M)
    assert re.search(r"^boots +PASS", text, re.M)
    assert re.search(r"^reload-drops +NOT RUN .*could not run as asked", text, re.M)
    assert "deployment: yours (--proxy nginx)" in text
    assert "24.0.0 fails 1 of 2: respawn" in text
    assert "compat" not in text  # no row used the shim: no note


def test_with_from_each_row_says_what_upgrading_does() -> None:
    text = render_checked(checked(before=True), "table")
    assert re.search(r"^respawn +PASS +FAIL +new in 24\.0\.0", text, re.M)
    assert re.search(r"^boots +PASS +PASS +passes in both", text, re.M)


def test_json_is_whole_and_names_the_tool() -> None:
    doc = json.loads(render_checked(checked(before=True, deployment=("--app a:app",)), "json"))
    assert doc["tool"] == {"name": "gunicorn-bisect", "version": __version__}
    assert doc["check"] == "24.0.0" and doc["from"] == "23.0.0" and doc["answer"] == "fail"
    by = {s["scenario"]: s for s in doc["scenarios"]}
    assert by["respawn"]["change"] == new_in("24.0.0") and by["respawn"]["as_your_deployment"]
    assert by["respawn"]["detail"].count("kill -9") == 5  # never shortened
    assert by["reload-drops"]["ran"] is False and "--proxy" in by["reload-drops"]["not_run"]


def test_markdown_is_a_github_table_with_the_command() -> None:
    md = render_checked(checked(), "markdown")
    assert "| `respawn`" in md and "**FAIL**" in md and "**NOT RUN**" in md
    assert md.rstrip().endswith("gunicorn-bisect --check 24.0.0 --scenario all\n```")


# -- the command line ---------------------------------------------------------------------


def test_all_is_every_listed_scenario_but_the_users_own_kinds() -> None:
    req = parse(["--check", "24.0.0", "--scenario", "all", "--cache-dir", "/tmp"], "g")
    listed = [n for n, _ in registry.listing()]
    assert req.scenarios == tuple(known_scenarios())
    assert {"socket-loss", "respawn", "boots"} <= set(req.scenarios)
    assert set(listed) - set(req.scenarios) == {"FILE.py", "--run CMD"}
    assert req.check_all


def test_a_comma_list_keeps_its_order_once() -> None:
    req = parse(["--check", "24.0.0", "--scenario", "respawn,boots,respawn"], "g")
    assert req.scenarios == ("respawn", "boots") and req.check_all
    assert not parse(["--check", "24.0.0", "--scenario", "respawn"], "g").check_all
    assert parse(["--check", "24.0.0", "--from", "23.0.0"], "g").check_all


@pytest.mark.parametrize(
    "argv, says",
    [
        (["19.0.0..19.7.0", "--scenario", "all"], "several scenarios take --check"),
        (["19.0.0..19.7.0", "--scenario", "boots,respawn"], "several scenarios take --check"),
        (["--check", "24.0.0", "--scenario", "boots,nope"], "'nope': unknown"),
        (["--check", "24.0.0", "--scenario", "boots,,respawn"], "empty name"),
        (["19.0.0..19.7.0", "--from", "19.0.0"], "--from RELEASE goes with --check"),
        (["--check", "24.0.0", "--scenario", "all", "--confidence", "0.9"], "one scenario"),
        (["--check", "24.0.0", "--worker-clas", "sync"], "unrecognized arguments: --worker-clas"),
    ],
)
def test_what_cannot_be_asked_is_one_line(argv, says) -> None:
    with pytest.raises(UsageError, match=re.escape(says)):
        parse(argv, "g")


def test_version(capsys) -> None:
    with pytest.raises(SystemExit) as ended:
        parse(["--version"], "g")
    assert ended.value.code == 0
    assert capsys.readouterr().out.strip() == f"gunicorn-bisect {__version__}"


@pytest.mark.parametrize(
    "spec, releases, expected",
    [
        ("latest", ["27.0.1"], "27.0.1"),
        ("19.0.0..", ["19.0.0", "27.0.1"], "19.0.0..27.0.1"),
        ("19.0.0..latest", ["19.0.0", "27.0.1"], "19.0.0..27.0.1"),
        ("19.5.0..19.7.0", ["19.5.0", "19.7.0"], "19.5.0..19.7.0"),
        ("19.5.0,19.7.0", ["19.5.0", "19.7.0"], "19.5.0,19.7.0"),
    ],
)
def test_reproduce_names_the_resolved_release(spec, releases, expected) -> None:
    req = parse([spec, "--cache-dir", "/tmp"], "gunicorn-bisect")
    resolved = cli.resolved_spec(spec, releases)
    assert resolved == expected
    assert req.reproduce(spec, resolved) == f"gunicorn-bisect {expected} --cache-dir /tmp"
    check = parse(["--check=latest"], "gunicorn-bisect")
    assert check.reproduce("latest", "27.0.1") == "gunicorn-bisect --check=27.0.1"


# -- for real: every known scenario on two releases ------------------------------------


@pytest.mark.real
def test_24_0_0_fails_respawn_and_the_newest_release_passes_everything(
    tmp_path, cache_dir, no_leaks
) -> None:
    """The issue's done-when: 24.0.0 (stops serving once workers recycle: its workers
    are not reaped) exits 1 naming respawn; the newest release, asked as ``latest``,
    exits 0 with a row per scenario and its JSON names the release it resolved."""
    common = ["--scenario", "all", "--format", "json", "-j", "2", "-q"]
    common += ["--cache-dir", str(cache_dir), "--results-dir", str(tmp_path)]
    old = run_cli("--check", "24.0.0", *common)
    assert old.returncode == 1, old.stderr
    doc = json.loads(old.stdout)
    by = {s["scenario"]: s for s in doc["scenarios"]}
    assert list(by) == known_scenarios()
    assert by["respawn"]["fails"] is True and "respawn" in doc["summary"][0]
    assert "respawn" in old.stderr.splitlines()[-1]  # the answer's one line

    new = run_cli("--check", "latest", *common)
    assert new.returncode == 0, new.stdout + new.stderr
    doc = json.loads(new.stdout)
    assert doc["asked"] == "latest" and re.fullmatch(r"\d+\.\d+\.\d+", doc["check"])
    assert f"--check {doc['check']}" in doc["command"] and "latest" not in doc["command"]
    assert [s["scenario"] for s in doc["scenarios"]] == known_scenarios()
    assert all(s["ran"] and s["fails"] is False for s in doc["scenarios"]), doc["summary"]
    assert doc["tool"]["version"] == __version__
    assert len(list(tmp_path.glob("*-check-*.json"))) == 2  # a record per check


def test_osv_is_a_record_per_scenario_that_ran() -> None:
    c = checked(before=True)
    for e in c.entries[:2]:  # respawn and boots ran; reload-drops did not
        rep = report_for(["auto/unix"], scenario=e.scenario)
        rep.table.targets = [e.before.target, e.row.target]
        for r in (e.before, e.row):
            rep.table.put(r.target, "auto/unix", r)
        c.reports[e.scenario] = rep
    records = json.loads(render_checked(c, "osv"))
    assert [r["database_specific"]["scenario"] for r in records] == ["respawn", "boots"]
    assert len({r["id"] for r in records}) == 2  # (the id scheme is the OSV module's)
    assert records[0]["affected"][0]["versions"] == ["24.0.0"]
    assert records[1]["affected"][0]["versions"] == []
