"""What a check, a --run command or a server prints never drives the user's terminal."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from harness.model.verdict import printable

pytestmark = pytest.mark.pure


def test_colour_title_and_cursor_escapes_are_removed_and_the_words_kept():
    text = "\x1b[31mred\x1b[0m \x1b]0;pwned\x07title \x1b]8;;http://x\x1b\\link\x1b]8;;\x1b\\ \x1b[2Jgone"
    assert printable(text) == "red title link gone"


def test_tabs_and_newlines_stay_other_controls_go():
    assert printable("a\tb\nc\rd\x00e\x08f\x85g") == "a\tb\ncdefg"


@given(st.text())
def test_what_is_left_has_no_escape_or_control(text):
    out = printable(text)
    assert "\x1b" not in out and "\x9b" not in out
    assert all(ch in "\t\n" or not (ord(ch) < 32 or 127 <= ord(ch) < 160) for ch in out)


@given(st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126)))
def test_plain_text_is_unchanged(text):
    assert printable(text) == text
