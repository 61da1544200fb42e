"""harness.report.osv: records valid against the published OSV schema, saying what the runs saw.

The schema is the official one, kept in the repository: ``tests/data/osv-schema.json`` is
``validation/schema.json`` of github.com/ossf/osv-schema (1.7.5, Apache-2.0), read as
is.  Every record is checked whole: no error of the schema's is filtered out.
"""

from __future__ import annotations

from datetime import datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from harness.model.results import Finding, Row
from harness.model.verdict import Verdict
from harness.report.osv import PREFIX, Advisory, advisory_url, local_id, record_id, to_osv
from tests.osv_records import FINDINGS, FIXED, INTRODUCED, ROWS, WHEN, check, commit

pytestmark = pytest.mark.local

jsonschema = pytest.importorskip("jsonschema")


def advisory(**kw) -> Advisory:
    base = dict(
        id="PYSEC-0000-1298",  # a registered prefix, as a database adopting the record sets
        summary="gthread worker unlinks the Unix socket",
        details="Reproduced with gunicorn-bisect.",
        published=WHEN,
        scenario="socket-loss",
        command="python bisect.py 19.5.0..19.7.0",
        references=(("REPORT", "https://github.com/benoitc/gunicorn/issues/1298"),),
    )
    base.update(kw)
    return Advisory(**base)


def test_the_seed_case_is_valid_and_names_versions_and_commits(schema: dict) -> None:
    record = to_osv(ROWS, FINDINGS, advisory())
    assert check(schema, record) == []
    (affected,) = record["affected"]
    assert affected["package"] == {
        "ecosystem": "PyPI",
        "name": "gunicorn",
        "purl": "pkg:pypi/gunicorn",
    }
    eco, git = affected["ranges"]
    assert eco == {"type": "ECOSYSTEM", "events": [{"introduced": "19.6.0"}, {"fixed": "19.7.0"}]}
    assert git["type"] == "GIT" and git["repo"] == "https://github.com/benoitc/gunicorn"
    assert git["events"] == [{"introduced": INTRODUCED}, {"fixed": FIXED}]
    assert affected["versions"] == ["19.6.0"]
    types = {r["type"] for r in record["references"]}
    assert {"REPORT", "INTRODUCED", "FIX"} <= types
    evidence = record["database_specific"]
    assert [r["verdict"] for r in evidence["rows"]] == ["pass", "fail", "pass"]
    assert [f["sha"] for f in evidence["findings"]] == [INTRODUCED, FIXED]
    assert record["published"] == record["modified"] == "2026-12-01T12:00:00Z"


def test_a_local_id_is_an_unregistered_databases_and_valid(schema: dict) -> None:
    ident = local_id("gunicorn", "socket-loss")
    assert ident.startswith("x_")
    assert check(schema, to_osv(ROWS, FINDINGS, advisory(id=ident))) == []
    bad = to_osv(ROWS, FINDINGS, advisory(id="GUNICORN-BISECT-gunicorn-socket-loss"))
    assert check(schema, bad)  # the old id: the schema refuses it, the test sees it


def test_the_prefixes_are_the_schemas(schema: dict) -> None:
    assert PREFIX.pattern == schema["$defs"]["prefix"]["pattern"]


@given(st.from_regex(r"[A-Za-z][A-Za-z0-9_.-]{0,20}", fullmatch=True))
def test_any_id_a_file_gives_becomes_one_the_schema_takes(ident: str) -> None:
    got = record_id(ident)
    assert PREFIX.match(got)
    assert got == ident or got == "x_" + ident


def test_an_advisorys_record_carries_its_aliases_and_links(schema: dict) -> None:
    aliases = ("CVE-2024-1135", "GHSA-w3h3-4rj7-4ph4")
    record = to_osv(ROWS, FINDINGS, advisory(id="PYSEC-2026-1434", aliases=aliases))
    assert check(schema, record) == []
    assert record["aliases"] == list(aliases)
    assert (
        advisory_url("GHSA-w3h3-4rj7-4ph4") == "https://github.com/advisories/GHSA-w3h3-4rj7-4ph4"
    )
    assert advisory_url("x_SNYK-PYTHON-GUNICORN-541164").endswith("/SNYK-PYTHON-GUNICORN-541164")
    assert advisory_url("x_gunicorn-bisect-gunicorn-socket-loss") == ""


def test_unfound_commits_and_untestable_rows_add_evidence_not_events(schema: dict) -> None:
    rows = [
        Row("20.1.0", Verdict.PASS, "0 failed"),
        Row("21.0.0", Verdict.ERROR, "did not boot"),
        Row("21.1.0", Verdict.FAIL, "4 failed"),
        Row("abc123", Verdict.FAIL, "a commit", kind="commit"),
    ]
    findings = [Finding("regression", "20.1.0", "21.1.0", "ambiguous", reason="2 candidates")]
    record = to_osv(rows, findings, advisory())
    assert check(schema, record) == []
    (affected,) = record["affected"]
    assert affected["ranges"] == [{"type": "ECOSYSTEM", "events": [{"introduced": "21.1.0"}]}]
    assert affected["versions"] == ["21.1.0"]
    (t,) = record["database_specific"]["transitions"]
    assert t["unknown_between"] == ["21.0.0"]


def test_a_run_that_starts_failing_is_introduced_at_its_first_release(schema: dict) -> None:
    rows = [Row("25.2.0", Verdict.FAIL, "12 -> 36 fds"), Row("26.1.0", Verdict.PASS, "flat")]
    fix = Finding("fix", "25.2.0", "26.1.0", "found", commit=commit(FIXED, "close it"))
    record = to_osv(rows, [fix], advisory())
    assert check(schema, record) == []
    (affected,) = record["affected"]
    # no introducing commit known: a GIT range would have to claim all history
    assert affected["ranges"] == [
        {"type": "ECOSYSTEM", "events": [{"introduced": "25.2.0"}, {"fixed": "26.1.0"}]}
    ]


def test_a_naive_timestamp_is_refused() -> None:
    with pytest.raises(ValueError):
        to_osv(ROWS, FINDINGS, advisory(published=datetime(2026, 1, 1)))


verdicts = st.sampled_from(list(Verdict))


@given(st.lists(verdicts, max_size=12))
def test_events_alternate_and_every_failing_release_is_inside_a_range(seq: list[Verdict]) -> None:
    rows = [Row(f"{i}.0.0", v, "") for i, v in enumerate(seq, start=1)]
    record = to_osv(rows, [], advisory())
    (affected,) = record["affected"]
    events = affected["ranges"][0]["events"] if affected["ranges"] else []
    kinds = [next(iter(e)) for e in events]
    assert kinds == ["introduced", "fixed"] * (len(kinds) // 2) + ["introduced"] * (len(kinds) % 2)
    order = {r.target: i for i, r in enumerate(rows)}
    bounds = [order[e[k]] for e, k in zip(events, kinds)] + [len(rows)]
    spans = [range(bounds[i], bounds[i + 1]) for i in range(0, len(kinds), 2)]
    for version in affected["versions"]:
        assert any(order[version] in span for span in spans)
    for r in rows:
        if r.verdict is Verdict.PASS:
            assert not any(order[r.target] in span for span in spans)
