"""The one root of every error this harness raises on purpose.

A ``HarnessError`` is something the user can act on: the CLI prints it as one line and
exits with its ``exit_status`` (2), never a traceback.  Modules subclass it so that
callers catch one type, and a bug of ours (anything else) stays distinguishable.
"""

from __future__ import annotations


class HarnessError(Exception):
    """A problem the user can fix (bad input, nothing that can run it, unreachable index)."""

    exit_status = 2
