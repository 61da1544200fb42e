"""What the user asked for: ``A..B``, ``A,B,C`` or ``A`` -> an ordered list of releases.

Pure: resolution takes the list of versions the index knows, so it is unit-tested
without a network.  Only final releases count in a range (no pre/dev releases).  With
``refs`` (a clone was given) a name the index does not know is a git ref, kept as it was
written: a tag named like a version (20.0.1) is placed among the releases by it; a
branch or a sha adds only itself (the releases around it are not known by name).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from packaging.version import InvalidVersion, Version

from harness.model.errors import HarnessError

#: A range may end in ``latest`` (or be left open, ``A..``): the newest final release.
LATEST = "latest"


class TargetError(HarnessError):
    """A user-facing, one-line problem with the requested targets."""


@dataclass(frozen=True)
class Spec:
    """A parsed request: an inclusive range, or an explicit list (one item for a single)."""

    low: str | None = None
    high: str | None = None
    items: tuple[str, ...] = ()

    @property
    def is_range(self) -> bool:
        return self.low is not None


def parse(text: str, refs: bool = False) -> Spec:
    """Parse the command-line form.  Syntax only: whether versions exist comes later."""
    text = text.strip()
    if not text:
        raise TargetError("empty target: give a release like 19.6.0 or a range like 19.5.0..19.7.0")
    name = (lambda p: _name(p, text)) if refs else (lambda p: str(_version(p, text)))
    if ".." in text:
        parts = [p.strip() for p in text.split("..")]
        if len(parts) != 2 or not parts[0]:
            raise TargetError(f"malformed range {text!r}: expected A..B, e.g. 19.5.0..19.7.0")
        if parts[0] == LATEST:
            raise TargetError(f"malformed range {text!r}: 'latest' can only end a range")
        low = name(parts[0])
        return Spec(low=low, high=LATEST if parts[1] in ("", LATEST) else name(parts[1]))
    if text == LATEST:
        return Spec(items=(LATEST,))
    items = [p.strip() for p in text.split(",")]
    if any(not p for p in items):
        raise TargetError(f"malformed list {text!r}: expected A,B,C")
    return Spec(items=tuple(name(p) for p in items))


def _name(text: str, whole: str) -> str:
    """A release or a git ref, as written (git checks the ref itself)."""
    if any(c.isspace() for c in text) or text.startswith("-"):
        raise TargetError(f"{text!r} in {whole!r} is neither a version number nor a git ref")
    return text


def _version(text: str, whole: str) -> Version:
    try:
        return Version(text)
    except InvalidVersion:
        raise TargetError(
            f"{text!r} in {whole!r} is not a version number (with --repo CLONE: a git ref)"
        ) from None


def _as_version(text: str) -> Version | None:
    try:
        return Version(text)
    except InvalidVersion:
        return None


def _finals(available: Iterable[str]) -> list[Version]:
    found = {v for v in map(_as_version, available) if v is not None}
    return sorted(v for v in found if not (v.is_prerelease or v.is_devrelease))


def nearest(wanted: str, available: Sequence[str], n: int = 2) -> list[str]:
    """The real versions closest to ``wanted``: the one below and the one above it."""
    finals, w = _finals(available), _as_version(wanted)
    if w is None:
        return [str(v) for v in finals[-n:]]
    below = [v for v in finals if v < w][-1:]
    above = [v for v in finals if v > w][:1]
    return [str(v) for v in below + above][:n] or [str(v) for v in finals[-n:]]


def _lookup(
    wanted: str, available: Sequence[str], package: str = "gunicorn", refs: bool | None = None
) -> str:
    """The index's own spelling of ``wanted`` (19.0 and 19.0.0 are the same release);
    with ``refs``, a name the index does not know is returned as it is (a git ref); with
    ``refs`` False, the error says that a clone would allow it (None: not a choice here)."""
    if wanted == LATEST:
        finals = _finals(available)
        if not finals:
            raise TargetError(f"the package index lists no final {package} release")
        wanted = str(finals[-1])
    w = _as_version(wanted)
    for v in available:
        if w is not None and _as_version(v) == w:
            return v
    if refs:
        return wanted
    near = " or ".join(nearest(wanted, available)) or "none"
    hint = "; with --repo CLONE it is checked as a git ref" if refs is False else ""
    raise TargetError(
        f"{package} {wanted} is not a release on the package index (nearest: {near}){hint}"
    )


def resolve(
    spec: Spec, available: Sequence[str], package: str = "gunicorn", refs: bool | None = None
) -> list[str]:
    """Turn a Spec into releases of ``package`` that exist (and, with ``refs``, git refs:
    every name not in ``available``), oldest first."""
    find = lambda name: _lookup(name, available, package, refs)  # noqa: E731
    if not spec.is_range:
        found = [find(v) for v in spec.items]
        if found and spec.items == (LATEST,):
            return found
        return sorted(dict.fromkeys(found), key=_order)
    low, high = find(spec.low), find(spec.high)
    lo, hi = _as_version(low), _as_version(high)
    if lo is None or hi is None:  # a branch or a sha: the releases around it are unknown
        return list(dict.fromkeys([low, high]))
    if lo > hi:
        raise TargetError(f"reversed range {spec.low}..{spec.high}: did you mean {high}..{low}?")
    spelled = {_as_version(v): v for v in available}
    chosen = [spelled[v] for v in _finals(available) if lo <= v <= hi]
    out = [low] if low not in available else []  # a git ref end, in its place
    out += chosen + ([high] if high not in available and high != low else [])
    if not out:
        raise TargetError(f"no final release between {spec.low} and {spec.high}")
    return out


def _order(name: str) -> tuple[int, Version]:
    """Releases (and refs named like them) by version; branches and shas after them."""
    v = _as_version(name)
    return (0, v) if v is not None else (1, Version("0"))


def ref_label(ref: str, sha: str) -> str:
    """A git ref's row: the ref and its sha ("20.0.1 (3e8a5b1c2d4f)"), a sha once."""
    return sha[:12] if sha.startswith(ref.lower()) else f"{ref} ({sha[:12]})"


def looks_like_version(text: str) -> bool:
    """``--check`` takes a release or a git ref; a plain version number means a release."""
    # "1234567" is more likely an abbreviated commit sha than release 1234567
    if text == LATEST:
        return True
    plain = all(c.isdigit() or c == "." for c in text)
    return "." in text and plain and _as_version(text) is not None
