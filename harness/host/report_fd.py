"""The report's own descriptor: while a run goes on, fd 1 is a copy of stderr.

A program a check starts (``subprocess.run(["echo", ...])``) inherits fd 1, not Python's
``sys.stdout``: redirecting ``sys.stdout`` alone let its output into ``--format json``.
The report is written to a private duplicate of the original fd 1; ``--output
/dev/stdout`` means that one too.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO

_report_fd = 1


def stdout_fd() -> int:
    """The descriptor that is the user's stdout (fd 1, unless a run holds it aside)."""
    return _report_fd


@contextmanager
def own_stdout() -> Iterator[TextIO]:
    """fd 1 pointed at stderr for the run's duration; the report's stream on the original.
    In-process callers whose ``sys.stdout`` is not fd 1 (a test's capture) keep theirs."""
    global _report_fd
    if sys.stdout is not sys.__stdout__ or sys.stdout is None:
        yield sys.stdout
        return
    sys.stdout.flush()
    try:
        saved = os.dup(1)
        os.dup2(2, 1)
    except OSError:
        yield sys.stdout
        return
    _report_fd = saved
    stream = os.fdopen(os.dup(saved), "w", encoding=sys.stdout.encoding, errors=sys.stdout.errors)
    try:
        yield stream
    finally:
        try:
            stream.flush()
        except OSError:
            pass
        _report_fd = 1
        try:
            stream.close()
        except OSError:
            pass
        os.dup2(saved, 1)
        os.close(saved)
