"""What the user asked for: ``A..B``, ``A,B,C`` or ``A`` -> an ordered list of releases.

Pure: resolution takes the list of versions the index knows, so it is unit-tested
without a network.  Only final releases count in a range (no pre/dev releases).
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


def parse(text: str) -> Spec:
    """Parse the command-line form.  Syntax only: whether versions exist comes later."""
    text = text.strip()
    if not text:
        raise TargetError("empty target: give a release like 19.6.0 or a range like 19.5.0..19.7.0")
    if ".." in text:
        parts = [p.strip() for p in text.split("..")]
        if len(parts) != 2 or not parts[0]:
            raise TargetError(f"malformed range {text!r}: expected A..B, e.g. 19.5.0..19.7.0")
        if parts[0] == LATEST:
            raise TargetError(f"malformed range {text!r}: 'latest' can only end a range")
        low = str(_version(parts[0], text))
        high = LATEST if parts[1] in ("", LATEST) else str(_version(parts[1], text))
        return Spec(low=low, high=high)
    if text == LATEST:
        return Spec(items=(LATEST,))
    items = [p.strip() for p in text.split(",")]
    if any(not p for p in items):
        raise TargetError(f"malformed list {text!r}: expected A,B,C")
    return Spec(items=tuple(str(_version(p, text)) for p in items))


def _version(text: str, whole: str) -> Version:
    try:
        return Version(text)
    except InvalidVersion:
        raise TargetError(f"{text!r} in {whole!r} is not a version number") from None


def _finals(available: Iterable[str]) -> list[Version]:
    out = []
    for v in available:
        try:
            ver = Version(v)
        except InvalidVersion:
            continue
        if not (ver.is_prerelease or ver.is_devrelease):
            out.append(ver)
    return sorted(set(out))


def nearest(wanted: str, available: Sequence[str], n: int = 2) -> list[str]:
    """The real versions closest to ``wanted``: the one below and the one above it."""
    finals = _finals(available)
    try:
        w = Version(wanted)
    except InvalidVersion:
        return [str(v) for v in finals[-n:]]
    below = [v for v in finals if v < w][-1:]
    above = [v for v in finals if v > w][:1]
    return [str(v) for v in below + above][:n] or [str(v) for v in finals[-n:]]


def _lookup(wanted: str, available: Sequence[str], package: str = "gunicorn") -> str:
    """The index's own spelling of ``wanted`` (19.0 and 19.0.0 are the same release)."""
    if wanted == LATEST:
        finals = _finals(available)
        if not finals:
            raise TargetError(f"the package index lists no final {package} release")
        wanted = str(finals[-1])
    w = Version(wanted)
    for v in available:
        try:
            if Version(v) == w:
                return v
        except InvalidVersion:
            continue
    near = " or ".join(nearest(wanted, available)) or "none"
    raise TargetError(f"{package} {wanted} is not a release on the package index (nearest: {near})")


def resolve(spec: Spec, available: Sequence[str], package: str = "gunicorn") -> list[str]:
    """Turn a Spec into releases of ``package`` that exist, oldest first."""
    if not spec.is_range:
        found = [_lookup(v, available, package) for v in spec.items]
        if found and spec.items == (LATEST,):
            return found
        return sorted(dict.fromkeys(found), key=Version)
    low, high = _lookup(spec.low, available, package), _lookup(spec.high, available, package)
    if Version(low) > Version(high):
        raise TargetError(f"reversed range {spec.low}..{spec.high}: did you mean {high}..{low}?")
    lo, hi = Version(low), Version(high)
    chosen = [v for v in _finals(available) if lo <= v <= hi]
    if not chosen:
        raise TargetError(f"no final release between {spec.low} and {spec.high}")
    spelled = {Version(v): v for v in available if _is_version(v)}
    return [spelled[v] for v in chosen]


def _is_version(v: str) -> bool:
    try:
        Version(v)
    except InvalidVersion:
        return False
    return True


def looks_like_version(text: str) -> bool:
    """``--check`` takes a release or a git ref; a plain version number means a release."""
    # "1234567" is more likely an abbreviated commit sha than release 1234567
    if text == LATEST:
        return True
    return "." in text and _is_version(text) and all(c.isdigit() or c == "." for c in text)
