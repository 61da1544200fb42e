"""Run records: the JSON document and the markdown report side by side in results/,
each written atomically so a reader never sees half a file."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from harness.host.fsutil import atomic_write_text
from harness.model.candidate import Checked
from harness.model.table import Report
from harness.report.candidate import as_json_checked
from harness.report.candidate import render_markdown as checked_markdown
from harness.report.json import as_json
from harness.report.markdown import render_markdown


def write_document(doc: dict, markdown: str, results_dir: Path, label: str) -> Path:
    """``<stamp>-<label>-<pid>.json`` and its ``.md`` beside it; the JSON's path."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    safe = "".join(c if c.isalnum() or c in ".-_" else "_" for c in label)[:60]
    base = results_dir / f"{stamp}-{safe}-{os.getpid()}"
    record = Path(f"{base}.json")
    atomic_write_text(record, json.dumps(doc, indent=2) + "\n")
    atomic_write_text(Path(f"{base}.md"), markdown + "\n")
    return record


def write_record(rep: Report, results_dir: Path, label: str) -> Path:
    """Save the run's record (JSON) and its markdown report beside it."""
    return write_document(as_json(rep), render_markdown(rep), results_dir, label)


def write_checked(c: Checked, results_dir: Path) -> Path:
    """A check-all's record: ``check-<release>``."""
    return write_document(
        as_json_checked(c), checked_markdown(c), results_dir, f"check-{c.candidate}"
    )
