"""Text from the server under test or the user's own code, made safe to print.

A check's message, a ``--run`` command's output and gunicorn's log reach the terminal and
the markdown report: an ANSI or OSC escape in them could recolour, retitle or rewrite the
user's terminal (or hide lines), and other control characters garble a table. Pure.
"""

from __future__ import annotations

import re

# ESC [ ... final (CSI), ESC ] ... BEL or ESC \ (OSC), ESC P/X/^/_ ... ESC \ (DCS and the
# other strings), then any other two-byte ESC sequence
_ESCAPES = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]"
    r"|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?"
    r"|\x1b[PX^_][^\x1b]*(?:\x1b\\)?"
    r"|\x1b[@-Z\\-_]?"
    r"|\x9b[0-?]*[ -/]*[@-~]"
)
# C0 and C1 controls except tab and newline
_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def printable(text: str) -> str:
    """``text`` without terminal escape sequences or control characters (tab, newline kept)."""
    return _CONTROLS.sub("", _ESCAPES.sub("", text))
