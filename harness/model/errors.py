"""The one root of every error raised on purpose: one line and exit status 2 from the CLI,
never a traceback; anything else is a bug of ours."""

from __future__ import annotations


class HarnessError(Exception):
    """A problem the user can fix (bad input, nothing that can run it, unreachable index)."""

    exit_status = 2
