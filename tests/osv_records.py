"""OSV records for the tests: the published OSV schema (kept in tests/data), a validator,
and a seed run's rows and findings.  Shared by tests/test_osv.py and
test_osv_format.py; the ``schema`` fixture reaches them through tests/conftest.py."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import pytest

from harness.model.results import CommitInfo, Finding, Row
from harness.model.verdict import Verdict

SCHEMA_FILE = Path(__file__).parent / "data" / "osv-schema.json"
WHEN = datetime(2026, 12, 1, 12, 0, tzinfo=timezone.utc)
INTRODUCED = "a" * 40
FIXED = "b" * 40


@pytest.fixture(scope="module")
def schema() -> dict:
    """``validation/schema.json`` of github.com/ossf/osv-schema (1.7.5, Apache-2.0), kept
    in tests/data and read as is."""
    return json.loads(SCHEMA_FILE.read_text())


def check(schema: dict, record: dict) -> list[str]:
    """Every complaint the schema has about ``record``: none is filtered out."""
    jsonschema = pytest.importorskip("jsonschema")
    validator = jsonschema.Draft202012Validator(
        schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )
    return [f"{list(e.path)}: {e.message}" for e in validator.iter_errors(record)]


def commit(sha: str, subject: str) -> CommitInfo:
    return CommitInfo(sha, sha[:8], ("c" * 40,), subject, "A U Thor", "2016-07-01", "", None, ())


ROWS = [
    Row("19.5.0", Verdict.PASS, "kept"),
    Row("19.6.0", Verdict.FAIL, "gone"),
    Row("19.7.0", Verdict.PASS, "kept"),
]
FINDINGS = [
    Finding("regression", "19.5.0", "19.6.0", "found", commit=commit(INTRODUCED, "gthread: x"),
            url=f"https://github.com/benoitc/gunicorn/commit/{INTRODUCED}"),
    Finding("fix", "19.6.0", "19.7.0", "found", commit=commit(FIXED, "fix x"),
            url=f"https://github.com/benoitc/gunicorn/commit/{FIXED}"),
]  # fmt: skip
