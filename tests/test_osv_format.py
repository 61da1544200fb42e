"""``--format osv``: any run's findings as OSV records, valid against the published schema.

The pure path (a report in memory -> ``render(rep, "osv")``) and the report's own recipe
end to end: ``--load wrk --proxy h2o --gunicorn-config`` (the seed report's config) on
19.5.0..19.7.0, whose record must name 19.6.0 alone as affected, with wrk's counts.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.model.table import Deployment, Report, Table
from harness.report.osv import TRACKER_URL, local_id
from harness.report.render import render
from harness.scenarios import registry
from harness.scenarios.base import Options
from tests.conftest import run_cli
from tests.osv_records import FINDINGS, ROWS, check

pytestmark = pytest.mark.local


DATA = Path(__file__).parent / "data"


def report(scenario: dict, deployments: tuple[str, ...] = ("auto/unix",)) -> Report:
    table = Table(
        [Deployment(c, None, c.split("/")[1]) for c in deployments],
        targets=[r.target for r in ROWS],
    )
    for c in deployments:
        for r in ROWS:
            table.put(r.target, c, r)
    findings = FINDINGS if len(deployments) == 1 else []
    return Report(
        "python bisect.py 19.5.0..19.7.0", {}, "workers=2", table, scenario, findings=findings
    )


def test_a_run_is_one_valid_record_with_its_scenarios_id_and_tracker(schema):
    rep = report({"name": "reload-leak", "tracker": 3648, "id": "PYSEC-0000-3648"})
    record = json.loads(render(rep, "osv"))
    assert check(schema, record) == []
    assert record["id"] == "PYSEC-0000-3648"
    assert record["affected"][0]["versions"] == ["19.6.0"]
    assert {"type": "REPORT", "url": TRACKER_URL.format(3648)} in record["references"]
    assert record["database_specific"]["command"] == rep.command


def test_the_1298_record_names_its_tracker(schema):
    about = registry.create("socket-loss", Options()).about()
    rep = report(about.record)
    record = json.loads(render(rep, "osv"))
    assert check(schema, record) == []
    assert {"type": "REPORT", "url": TRACKER_URL.format(1298)} in record["references"]


def test_a_files_own_unregistered_id_is_made_valid(schema):
    record = json.loads(render(report({"name": "file", "id": "GUNICORN-BISECT-3648"}), "osv"))
    assert record["id"] == "x_GUNICORN-BISECT-3648"
    assert check(schema, record) == []


def test_without_an_id_the_scenario_names_the_record(schema):
    record = json.loads(render(report({"name": "socket-loss"}), "osv"))
    assert record["id"] == local_id("gunicorn", "socket-loss")
    assert check(schema, record) == []
    own = json.loads(render(report({"name": "file", "file": "checks/my_case.py"}), "osv"))
    assert own["id"] == local_id("gunicorn", "my_case")


def test_a_matrix_is_one_record_per_column(schema):
    rep = report({"name": "socket-loss"}, ("gthread/unix", "sync/tcp"))
    records = json.loads(render(rep, "osv"))
    assert [r["id"] for r in records] == [
        local_id("gunicorn", "socket-loss") + "-gthread-unix",
        local_id("gunicorn", "socket-loss") + "-sync-tcp",
    ]
    for r in records:
        assert check(schema, r) == []


@pytest.mark.real
def test_the_report_recipe_with_wrk_through_h2o_as_osv(schema, cache_dir, tmp_path, no_leaks):
    proc = run_cli(
        "19.5.0,19.6.0,19.7.0",
        "--no-commits",
        "--load",
        "wrk",
        "--proxy",
        "h2o",
        "--gunicorn-config",
        str(DATA / "report_config.py"),
        "--format",
        "osv",
        "--cache-dir",
        str(cache_dir),
        "--results-dir",
        str(tmp_path),
    )
    assert proc.returncode == 0, proc.stderr
    record = json.loads(proc.stdout)
    assert check(schema, record) == []
    assert record["affected"][0]["versions"] == ["19.6.0"]
    rows = {r["target"]: r for r in record["database_specific"]["rows"]}
    assert [rows[t]["verdict"] for t in ("19.5.0", "19.6.0", "19.7.0")] == ["pass", "fail", "pass"]
    bad = rows["19.6.0"]["detail"]
    assert "502" in bad and "wrk:" in bad
    non_2xx = int(bad.split("wrk: ")[1].split(" requests, ")[1].split(" non-2xx")[0])
    assert non_2xx > 0  # h2o's 502s, as wrk counted them
    assert "wrk: " in rows["19.5.0"]["detail"]  # its counts, whatever a recycle cost


def test_wrk_on_a_unix_bind_without_a_proxy_is_one_line():
    proc = run_cli("19.6.0", "--load", "wrk", "--no-commits")
    assert proc.returncode == 2
    assert (
        proc.stderr.strip()
        .splitlines()[-1]
        .endswith(
            "--load wrk: wrk speaks TCP only: with a Unix bind put --proxy h2o in front (or --bind tcp)"
        )
    )


def test_the_osv_format_is_offered():
    assert "osv" in run_cli("--help").stdout
