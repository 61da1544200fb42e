"""Text that fits a terminal: a table whose widest cells wrap to the width, and long
lines that wrap with a hanging indent.  ``width=None`` (not a terminal): everything
whole, as in JSON and markdown.  Pure."""

from __future__ import annotations

import re
import textwrap
from collections.abc import Sequence

from tabulate import tabulate

from harness.model.printable import printable

GAP = 2  # tabulate's "simple" format puts two spaces between columns
PAD = 2  # and makes a column at least its header + 2 wide (tabulate.MIN_PADDING)
MIN_CELL = 12  # a column is never wrapped narrower than this


def visible(text: str) -> int:
    """The width of the longest line of ``text`` on a terminal (colour codes count 0)."""
    return max((len(printable(line)) for line in str(text).split("\n")), default=0)


def widths(rows: Sequence[Sequence[str]], headers: Sequence[str], width: int) -> list[int]:
    """Each column's width so that the table fits ``width``: the widest one gives way
    first, none below ``MIN_CELL`` (nor below its header); a table whose narrow
    columns alone overflow stays as wide as that."""
    natural = [
        max([visible(h) + PAD] + [visible(r[i]) for r in rows]) for i, h in enumerate(headers)
    ]
    floor = [min(n, max(MIN_CELL, visible(h) + PAD)) for n, h in zip(natural, headers)]
    out = list(natural)
    room = width - GAP * (len(headers) - 1)
    while sum(out) > room:
        i = max(range(len(out)), key=lambda k: out[k] - floor[k])
        give = min(sum(out) - room, out[i] - floor[i])
        if give <= 0:
            break
        out[i] -= give
    return out


def _wrap(cell: str, width: int) -> str:
    if visible(cell) <= width or "\x1b" in cell:  # a coloured cell is a short verdict
        return cell
    lines = []
    for part in str(cell).split("\n"):
        lines += textwrap.wrap(part, width, break_on_hyphens=False) or [""]
    return "\n".join(lines)


def table(
    rows: Sequence[Sequence[str]],
    headers: Sequence[str],
    width: int | None = None,
    fmt: str = "simple",
) -> str:
    """``tabulate`` in ``fmt``; with ``width``, the cells wrapped so that it fits."""
    rows = [[str(c) for c in r] for r in rows]
    if fmt == "github":  # a "|" in a cell (a --run tail "a | b") would end the cell
        rows = [[c.replace("|", "\\|") for c in r] for r in rows]
    if width is not None and rows:
        w = widths(rows, headers, width)
        rows = [[_wrap(c, w[i]) for i, c in enumerate(r)] for r in rows]
    return tabulate(rows, headers=list(headers), tablefmt=fmt, disable_numparse=True)


def line(text: str, width: int | None, indent: int = 2) -> list[str]:
    """One long line as it prints: whole without a width, else wrapped with its own
    leading spaces kept and the continuation indented by ``indent``.  A word longer
    than the width (a URL) stays whole: cut, it would not work."""
    if width is None or len(text) <= width:
        return [text]
    body = text.lstrip(" ")
    lead = " " * (len(text) - len(body))
    wrapped = textwrap.wrap(
        body,
        width,
        initial_indent=lead,
        subsequent_indent=" " * indent,
        break_on_hyphens=False,
        break_long_words=False,
    )
    return wrapped or [text]


_SPACES = re.compile(r"\s+")


def shorten(text: str, width: int | None) -> str:
    """One line cut to ``width`` with `` ...`` (a header that must stay one line)."""
    if width is None or len(text) <= width:
        return text
    return textwrap.shorten(_SPACES.sub(" ", text), width, placeholder=" ...")
