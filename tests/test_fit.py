"""Tables that fit a terminal (harness.report.common): pure, with properties."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.report.common import GAP, MIN_CELL, PAD, fit_line, fit_table, visible

pytestmark = pytest.mark.pure

WORD = st.text(alphabet="abcdefghij:;/()'", min_size=1, max_size=10)  # < MIN_CELL: never broken
CELL = st.lists(WORD, min_size=1, max_size=12).map(" ".join)
HEADERS = ["release", "python", "verdict", "evidence"]


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.lists(CELL, min_size=4, max_size=4), min_size=1, max_size=4),
    st.integers(20, 160),
)
def test_every_line_fits_and_no_word_is_lost(rows, width) -> None:
    out = fit_table(rows, HEADERS, width)
    narrowest = sum(max(len(h) + PAD, MIN_CELL) for h in HEADERS) + GAP * 3
    if width >= narrowest:  # a narrower terminal cannot hold four columns at all
        assert all(len(line) <= width for line in out.splitlines()), out
    for r in rows:
        for cell in r:
            for word in cell.split():
                assert word in out.replace("\n", " ")


def test_without_a_width_every_cell_is_whole() -> None:
    long = "socket file gone after the 1st worker restart; " * 6
    out = fit_table([["19.6.0", "3.9.18", "FAIL", long]], HEADERS)
    assert long.strip() in out and len(out.splitlines()) == 3


def test_the_widest_column_gives_way_first() -> None:
    long = "evidence " * 30
    out = fit_table([["19.6.0", "3.9.18", "FAIL", long]], HEADERS, 80)
    first = out.splitlines()[2]
    assert first.startswith("19.6.0") and "3.9.18" in first and "FAIL" in first
    assert max(len(line) for line in out.splitlines()) <= 80


def test_colour_codes_take_no_width() -> None:
    red = "\033[31mFAIL\033[0m"
    assert visible(red) == 4
    out = fit_table([["19.6.0", "3.9.18", red, "x " * 60]], HEADERS, 60)
    assert red in out and all(visible(line) <= 60 for line in out.splitlines())


def test_a_long_line_wraps_with_its_continuation_indented() -> None:
    lines = fit_line("note: " + "word " * 40, 50, indent=6)
    assert len(lines) > 1 and all(len(line) <= 50 for line in lines)
    assert all(line.startswith("      ") for line in lines[1:])
    assert fit_line("short", 50) == ["short"] and fit_line("x " * 80, None) == ["x " * 80]


def test_a_url_is_never_cut_and_a_line_keeps_its_own_indent() -> None:
    url = "https://github.com/benoitc/gunicorn/commit/" + "418f140445c0" * 4
    assert fit_line(" " * 30 + url, 60, indent=30) == [" " * 30 + url]
    lines = fit_line("    " + "word " * 30, 40, indent=4)
    assert all(ln.startswith("    w") for ln in lines) and all(len(ln) <= 40 for ln in lines)
