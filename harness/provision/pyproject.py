"""What a source tree's pyproject.toml says it requires (no TOML parser: the harness
runs on 3.9, and gunicorn's ``[project] dependencies`` is a plain list of strings)."""

from __future__ import annotations

import re
from pathlib import Path

_PROJECT_DEPS = re.compile(r"^\[project\]$.*?^dependencies\s*=\s*\[(.*?)\]", re.M | re.S)


def project_dependencies(pyproject: Path) -> tuple[str, ...]:
    """``[project] dependencies`` of a commit's pyproject.toml (21.0+: ``packaging``), so
    a commit's wheel requires what its release would; () where there is none (setup.py)."""
    try:
        text = pyproject.read_text()
    except OSError:
        return ()
    found = _PROJECT_DEPS.search(text)
    if not found or "\n[" in found.group(0).split("[project]", 1)[1]:
        return ()  # no such key before the next table
    quoted = re.findall(r"'([^']*)'|\"([^\"]*)\"", found.group(1))
    return tuple(single or double for single, double in quoted)
