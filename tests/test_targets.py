"""Tests for harness.targets: what "A..B", "A,B,C" and "A" resolve to.

The version list mirrors PyPI's gunicorn index (in the index's own, lexicographic
order: 19.10.0 sits before 19.2.0), with a few pre-releases added, and 19.0.0 spelled
"19.0" so that the index's spelling is what comes back.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from packaging.version import Version

from harness.model.targets import (
    Spec,
    TargetError,
    looks_like_version,
    nearest,
    parse,
    ref_label,
    resolve,
)

pytestmark = pytest.mark.pure

INDEX = [
    "0.17.4",
    "17.5",
    "18.0",
    "19.0",  # the release 19.0.0, spelled as some indexes do
    "19.0.0b1",
    "19.1.0",
    "19.1.1",
    "19.10.0",
    "19.2.0",
    "19.2.1",
    "19.3.0",
    "19.4.0",
    "19.4.1",
    "19.4.2",
    "19.4.3",
    "19.4.4",
    "19.4.5",
    "19.5.0",
    "19.6.0",
    "19.7.0.dev0",
    "19.7.0",
    "19.7.1",
    "19.8.0",
    "19.8.1",
    "19.9.0",
    "20.0.0rc1",
    "20.0.0",
    "20.0.2",
    "20.0.3",
    "20.0.4",
    "20.1.0",
    "not-a-version",
]


#: the final releases of INDEX (what a range may hold)
FINALS = [v for v in INDEX[:-1] if not (Version(v).is_prerelease or Version(v).is_devrelease)]


def targets(text: str) -> list[str]:
    return resolve(parse(text), INDEX)


# -- parse -----------------------------------------------------------------------


def test_parse_range():
    spec = parse("19.5.0..19.7.0")
    assert spec.is_range
    assert (spec.low, spec.high) == ("19.5.0", "19.7.0")


def test_parse_list_and_single():
    assert parse("19.7.0, 19.5.0") == Spec(items=("19.7.0", "19.5.0"))
    single = parse(" 19.6.0 ")
    assert single == Spec(items=("19.6.0",))
    assert not single.is_range


@pytest.mark.parametrize(
    "text",
    [
        "..19.7.0",
        "..",
        "a..b",
        "19.5.0...19.7.0",
        "19.5.0..19.6.0..19.7.0",
        "",
        "  ",
        "1,,2",
        "1,",
        "x",
    ],
)
def test_parse_rejects_malformed(text):
    with pytest.raises(TargetError) as err:
        parse(text)
    message = str(err.value)
    assert message and "\n" not in message


def test_parse_names_the_bad_part():
    with pytest.raises(TargetError, match="'a' in 'a..b' is not a version number"):
        parse("a..b")
    with pytest.raises(TargetError, match="malformed range"):
        parse("..19.5.0")
    with pytest.raises(TargetError, match="malformed list"):
        parse("1,,2")
    with pytest.raises(TargetError, match="empty target"):
        parse("")


# -- resolve: ranges -------------------------------------------------------------


def test_range_is_every_final_release_in_version_order():
    assert targets("19.5.0..19.7.0") == ["19.5.0", "19.6.0", "19.7.0"]


def test_range_orders_by_version_not_by_text():
    assert targets("19.8.0..20.0.0") == ["19.8.0", "19.8.1", "19.9.0", "19.10.0", "20.0.0"]


def test_range_excludes_pre_and_dev_releases():
    # 19.7.0.dev0 and 20.0.0rc1 sit inside this range in the index
    assert targets("19.6.0..20.0.2") == [
        "19.6.0",
        "19.7.0",
        "19.7.1",
        "19.8.0",
        "19.8.1",
        "19.9.0",
        "19.10.0",
        "20.0.0",
        "20.0.2",
    ]


def test_range_may_start_at_a_pre_release_but_keeps_only_finals():
    assert targets("20.0.0rc1..20.0.2") == ["20.0.0", "20.0.2"]
    assert targets("19.0.0b1..19.1.0") == ["19.0", "19.1.0"]


def test_single_release_range():
    assert targets("19.6.0..19.6.0") == ["19.6.0"]


def test_19_0_0_matches_an_index_spelling_19_0():
    assert targets("19.0.0") == ["19.0"]
    assert targets("18.0..19.0.0") == ["18.0", "19.0"]
    assert targets("19") == ["19.0"]


def test_reversed_range_suggests_the_swap():
    with pytest.raises(TargetError) as err:
        targets("19.7.0..19.5.0")
    msg = str(err.value)
    assert "reversed range 19.7.0..19.5.0" in msg
    assert "19.5.0..19.7.0" in msg


def test_unknown_range_end_names_nearest_releases():
    with pytest.raises(TargetError) as err:
        targets("19.5.0..19.6.5")
    msg = str(err.value)
    assert "19.6.5" in msg
    assert "nearest: 19.6.0 or 19.7.0" in msg


# -- resolve: lists and singles --------------------------------------------------


def test_list_is_sorted_and_deduplicated():
    assert targets("19.7.0,19.5.0,19.10.0,19.5.0") == ["19.5.0", "19.7.0", "19.10.0"]


def test_list_may_name_a_pre_release_explicitly():
    assert targets("20.0.0rc1") == ["20.0.0rc1"]


@pytest.mark.parametrize(
    "wanted, below, above",
    [
        ("19.6.5", "19.6.0", "19.7.0"),
        ("19.4.6", "19.4.5", "19.5.0"),
        ("19.9.1", "19.9.0", "19.10.0"),
        ("18.5", "18.0", "19.0"),
    ],
)
def test_unknown_version_names_the_release_below_and_above(wanted, below, above):
    with pytest.raises(TargetError) as err:
        targets(wanted)
    msg = str(err.value)
    assert f"gunicorn {wanted} is not a release" in msg
    assert f"nearest: {below} or {above}" in msg


def test_unknown_version_beyond_the_newest_names_the_newest():
    with pytest.raises(TargetError, match=r"nearest: 20\.1\.0\)"):
        targets("99.0.0")


def test_unknown_version_in_a_list_is_an_error():
    with pytest.raises(TargetError, match="19.6.5"):
        targets("19.5.0,19.6.5")


def test_nearest_ignores_pre_releases():
    assert nearest("20.0.0a1", INDEX) == ["19.10.0", "20.0.0"]


# -- looks_like_version ----------------------------------------------------------


@pytest.mark.parametrize("text", ["19.6.0", "19.0", "19.10.0"])
def test_plain_versions_are_releases(text):
    assert looks_like_version(text)


@pytest.mark.parametrize("text", ["20", "1234567"])
def test_all_digit_refs_are_commits_not_releases(text):
    """An abbreviated sha can be all digits; --check treats it as a git ref."""
    assert not looks_like_version(text)


@pytest.mark.parametrize(
    "text", ["abc123", "v19.6.0", "19.6.0rc1", "HEAD~3", "master", "19.x", "", "e5d8e1b"]
)
def test_everything_else_is_a_git_ref(text):
    assert not looks_like_version(text)


# -- latest and open ranges -------------------------------------------------------------


def test_latest_ends_a_range_at_the_newest_final_release():
    got = targets("19.9.0..latest")
    assert got == ["19.9.0", "19.10.0", "20.0.0", "20.0.2", "20.0.3", "20.0.4", "20.1.0"]  # no rc1
    assert targets("19.9.0..") == got  # an open range is the same


def test_latest_alone_is_the_newest_release():
    assert targets("latest") == [targets("19.9.0..latest")[-1]]
    assert looks_like_version("latest")


@pytest.mark.parametrize("text", ["latest..19.5.0", "..19.5.0", "..", "latest.."])
def test_latest_cannot_start_a_range(text):
    with pytest.raises(TargetError):
        parse(text)


# -- git refs (with --repo) -------------------------------------------------------------


def with_refs(text: str) -> list[str]:
    return resolve(parse(text, refs=True), INDEX, refs=True)


def test_a_tag_named_like_a_version_takes_its_place_among_the_releases():
    """20.0.1 is a git tag only: with a clone it ends (or starts) a range in its place."""
    assert with_refs("19.9.0..20.0.1") == ["19.9.0", "19.10.0", "20.0.0", "20.0.1"]
    assert with_refs("20.0.1..20.1.0") == ["20.0.1", "20.0.2", "20.0.3", "20.0.4", "20.1.0"]
    assert with_refs("20.0.1") == ["20.0.1"]
    assert with_refs("20.0.1..20.0.1") == ["20.0.1"]


def test_a_branch_or_sha_end_adds_only_itself():
    assert with_refs("19.5.0..master") == ["19.5.0", "master"]
    assert with_refs("e5d8e1b..19.6.0") == ["e5d8e1b", "19.6.0"]
    assert with_refs("master,20.0.1,19.6.0") == ["19.6.0", "20.0.1", "master"]


def test_a_reversed_range_of_refs_is_still_refused():
    with pytest.raises(TargetError, match="reversed range"):
        with_refs("20.0.1..19.5.0")


@given(st.sampled_from(FINALS), st.sampled_from(FINALS))
def test_refs_change_nothing_for_names_on_the_index(a: str, b: str):
    low, high = sorted([a, b], key=Version)
    for text in (f"{low}..{high}", f"{a},{b}", a):
        assert with_refs(text) == targets(text)


def test_without_a_clone_an_unknown_release_says_what_would_take_it():
    with pytest.raises(TargetError) as err:
        resolve(parse("20.0.1"), INDEX, refs=False)
    assert "20.0.1 is not a release on the package index" in str(err.value)
    assert "--repo" in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(TargetError, match="a git ref"):
        parse("19.5.0..master")
    with pytest.raises(TargetError) as pin:  # --gunicorn X: no clone would help
        resolve(parse("20.0.1"), INDEX)
    assert "--repo" not in str(pin.value)


@pytest.mark.parametrize("text", ["19.5.0..-x", "a b", "--upload-pack=x"])
def test_a_ref_is_neither_an_option_nor_spaced(text):
    with pytest.raises(TargetError, match="neither a version number nor a git ref"):
        parse(text, refs=True)


@pytest.mark.parametrize(
    ("ref", "sha", "label"),
    [
        ("20.0.1", "3e8a5b1c2d4f" + "0" * 28, "20.0.1 (3e8a5b1c2d4f)"),
        ("master", "abcdef0123456789" * 2 + "01234567", "master (abcdef012345)"),
        ("ABCDEF01", "abcdef0123456789" * 2 + "01234567", "abcdef012345"),
    ],
)
def test_a_ref_row_names_the_ref_and_its_sha(ref, sha, label):
    assert ref_label(ref, sha) == label
