"""redact: credentials in URLs never reach a printed or recorded line."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from harness.model.redact import redact_argv, redact_url

pytestmark = pytest.mark.pure

SECRET = st.text(st.characters(blacklist_characters="/?#@ \t\n:", min_codepoint=33), min_size=1)
# a password as urllib and pip read it: anything up to the last '@' before the path
PASSWORD = st.text(st.characters(blacklist_characters="/?# \t\n", min_codepoint=33), min_size=1)


def test_userinfo_is_hidden_and_the_rest_kept() -> None:
    assert redact_url("https://u:p4ss@pypi.example/simple/") == "https://***@pypi.example/simple/"
    assert redact_url("https://token@github.com/x/y.git") == "https://***@github.com/x/y.git"
    assert redact_url("https://pypi.org/simple/") == "https://pypi.org/simple/"
    assert redact_url("/home/me/src/gunicorn") == "/home/me/src/gunicorn"
    assert (
        redact_url("git@github.com:benoitc/gunicorn.git") == "git@github.com:benoitc/gunicorn.git"
    )


def test_argv_in_both_option_spellings() -> None:
    argv = ["19.5.0..19.7.0", "--index-url", "https://a:b@h/s", "--repo=https://t@g/r.git"]
    assert redact_argv(argv) == [
        "19.5.0..19.7.0",
        "--index-url",
        "https://***@h/s",
        "--repo=https://***@g/r.git",
    ]


def test_a_password_with_at_signs_is_hidden_up_to_the_last_one() -> None:
    from urllib.parse import urlsplit

    url = "http://bob:p@ss@S3cret@host:8080/simple/"
    assert urlsplit(url).hostname == "host"  # where urllib (and pip) split it
    assert redact_url(f"error: {url}: 401") == "error: http://***@host:8080/simple/: 401"


@given(SECRET, PASSWORD, st.sampled_from(["https", "http", "git+https"]))
def test_property_no_password_survives(user: str, password: str, scheme: str) -> None:
    url = f"{scheme}://{user}:{password}@index.example/simple/"
    out = redact_url(f"error: cannot read {url}: 401")
    assert f"{user}:{password}@" not in out
    assert "index.example/simple/" in out
