"""Shared pytest fixtures.  Engineers: append your own clearly separated block."""

from __future__ import annotations

# ---------------------------------------------------------------------------
# Planted Gunicorn-like git history (tests/history.py), built once per session.
# Sdists are cached in $GUNICORN_BISECT_TEST_CACHE when set, so repeated runs
# (and offline runs after one online run) do not download again.
# ---------------------------------------------------------------------------
import os
from pathlib import Path

import pytest

from tests.history import History, HistoryError, build_history


@pytest.fixture(scope="session")
def gunicorn_history(tmp_path_factory: pytest.TempPathFactory) -> History:
    """The planted history (read-only: clone it before changing anything)."""
    cache = os.environ.get("GUNICORN_BISECT_TEST_CACHE")
    downloads = Path(cache) / "sdists" if cache else tmp_path_factory.mktemp("sdists")
    try:
        return build_history(tmp_path_factory.mktemp("history") / "gunicorn", downloads)
    except HistoryError as exc:
        pytest.skip(f"cannot build the planted history: {exc}")
