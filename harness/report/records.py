"""Run records: the JSON document and the markdown report side by side in results/,
each written atomically so a reader never sees half a file."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from harness.host.fsutil import atomic_write_text
from harness.model.table import Report
from harness.report.json import as_json
from harness.report.markdown import render_markdown


def write_record(rep: Report, results_dir: Path, label: str) -> Path:
    """Save the run's record (JSON) and its markdown report beside it."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    safe = "".join(c if c.isalnum() or c in ".-_" else "_" for c in label)[:60]
    base = results_dir / f"{stamp}-{safe}-{os.getpid()}"
    record = Path(f"{base}.json")
    atomic_write_text(record, json.dumps(as_json(rep), indent=2) + "\n")
    atomic_write_text(Path(f"{base}.md"), render_markdown(rep) + "\n")
    return record
