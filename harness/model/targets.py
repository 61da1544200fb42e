"""``A..B``, ``A,B,C`` or ``A`` as releases of the index, oldest first (pure); a range holds
final releases only.  With ``refs`` (a clone given) an unknown name is a git ref: a tag named
like a version (20.0.1) takes its place among the releases, a branch or sha adds itself.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from packaging.version import InvalidVersion, Version

from harness.model.errors import HarnessError

#: A range may end in ``latest`` (or be left open, ``A..``): the newest final release.
LATEST = "latest"


class TargetError(HarnessError):
    """A problem with the requested targets."""


@dataclass(frozen=True)
class Spec:
    """An inclusive range, or a list (of one for a single target)."""

    low: str | None = None
    high: str | None = None
    items: tuple[str, ...] = ()

    @property
    def is_range(self) -> bool:
        return self.low is not None


def parse(text: str, refs: bool = False) -> Spec:
    """The command-line form, syntax only (whether versions exist comes later)."""
    text = text.strip()
    if not text:
        raise TargetError("empty target: give a release like 19.6.0 or a range like 19.5.0..19.7.0")
    name = lambda part: _name(part, text, refs)  # noqa: E731
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


def _name(part: str, whole: str, refs: bool) -> str:
    """A version as it normalises, or with ``refs`` a release or git ref as written (git
    checks the ref itself)."""
    if refs and (any(c.isspace() for c in part) or part.startswith("-")):
        raise TargetError(f"{part!r} in {whole!r} is neither a version number nor a git ref")
    version = part if refs else _as_version(part)
    if version is None:
        raise TargetError(
            f"{part!r} in {whole!r} is not a version number (with --repo CLONE: a git ref)"
        )
    return str(version)


def _as_version(text: str) -> Version | None:
    try:
        return Version(text)
    except InvalidVersion:
        return None


def _finals(available: Iterable[str]) -> list[Version]:
    found = {v for v in map(_as_version, available) if v is not None}
    return sorted(v for v in found if not (v.is_prerelease or v.is_devrelease))


def nearest(wanted: str, available: Sequence[str], n: int = 2) -> list[str]:
    """The versions closest to ``wanted``: the one below and the one above."""
    finals, w = _finals(available), _as_version(wanted)
    if w is None:
        return [str(v) for v in finals[-n:]]
    below = [v for v in finals if v < w][-1:]
    above = [v for v in finals if v > w][:1]
    return [str(v) for v in below + above][:n] or [str(v) for v in finals[-n:]]


def _lookup(
    wanted: str, available: Sequence[str], package: str = "gunicorn", refs: bool | None = None
) -> str:
    """The index's spelling of ``wanted`` (19.0 is 19.0.0); an unknown name is a git ref with
    ``refs``, an error otherwise (with ``refs`` False, saying a clone would allow it)."""
    if wanted == LATEST:
        finals = _finals(available)
        if not finals:
            raise TargetError(f"the package index lists no final {package} release")
        wanted = str(finals[-1])
    w = _as_version(wanted)
    spelled = next((v for v in available if w is not None and _as_version(v) == w), None)
    if spelled is not None or refs:
        return wanted if spelled is None else spelled
    near = " or ".join(nearest(wanted, available)) or "none"
    hint = "; with --repo CLONE it is checked as a git ref" if refs is False else ""
    raise TargetError(
        f"{package} {wanted} is not a release on the package index (nearest: {near}){hint}"
    )


def resolve(
    spec: Spec, available: Sequence[str], package: str = "gunicorn", refs: bool | None = None
) -> list[str]:
    """A Spec as releases of ``package`` that exist (with ``refs``, any other name is a git
    ref), oldest first."""
    find = lambda name: _lookup(name, available, package, refs)  # noqa: E731
    if not spec.is_range:
        return sorted(dict.fromkeys(find(v) for v in spec.items), key=_order)
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
    """A plain version number (``--check`` takes a release or a git ref); "1234567" is more
    likely an abbreviated sha than release 1234567."""
    if text == LATEST:
        return True
    plain = all(c.isdigit() or c == "." for c in text)
    return "." in text and plain and _as_version(text) is not None
