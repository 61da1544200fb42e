"""Verdicts, their evidence, and how several runs combine (pure): each scenario decides
with its own rules, but what a verdict is, how runs agree and which verdicts a bisection
may use are the same for all.  And ``printable``: foreign text without terminal escapes.
"""

from __future__ import annotations

import enum
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field


class Verdict(str, enum.Enum):
    """What a target did; ``error`` means *cannot tell*.  ``outage`` is another failure than
    the scenario's (the socket stays, nothing answers after the workers restart): untestable
    for the scenario's own bisection, followed on its own axis."""

    PASS = "pass"
    FAIL = "fail"
    OUTAGE = "outage"
    ERROR = "error"
    FLAKY = "flaky"

    def __str__(self) -> str:  # pragma: no cover - trivial
        return self.value

    @property
    def testable(self) -> bool:
        """Only pass and fail say something about the scenario's own problem."""
        return self in (Verdict.PASS, Verdict.FAIL)


@dataclass(frozen=True)
class Decision:
    """A verdict, its one-line evidence and any traceback."""

    verdict: Verdict
    detail: str
    traceback: str = ""
    runs: tuple[Verdict, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class Axis:
    """One question a release table answers: which targets are ``old``, which ``new``.  The
    primary axis is pass -> fail; socket-loss adds pass -> outage, bisected on its own.
    ``old_term``/``new_term`` are what users see (``--terms``)."""

    key: str
    old: Verdict
    new: Verdict
    old_term: str
    new_term: str
    label: str = ""  # a sentence for another problem than the primary one

    def state(self, verdict: Verdict) -> bool | None:
        """True in the old state, False in the new one, None when it cannot tell."""
        return True if verdict is self.old else False if verdict is self.new else None

    @property
    def primary(self) -> bool:
        return not self.label


DEFAULT_AXIS = Axis("primary", Verdict.PASS, Verdict.FAIL, "pass", "fail")


def primary_axis(terms: tuple[str, str] | None) -> Axis:
    """pass -> fail, under the names the user chose with --terms."""
    return DEFAULT_AXIS if terms is None else Axis("primary", Verdict.PASS, Verdict.FAIL, *terms)


def ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def last_line(text: str, *, prefer: Sequence[str] = (), default: str = "") -> str:
    """The line of a tool's output that says why: the last containing any of ``prefer``, else
    the last non-empty one, else ``default``."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    telling = [ln for ln in lines if any(word in ln for word in prefer)]
    return (telling or lines or [default])[-1]


def combine(decisions: Sequence[Decision]) -> Decision:
    """Several runs of one target: agreement keeps the verdict; any disagreement (an
    ``error`` among passes too) is ``flaky``: a verdict we rely on must repeat."""
    if not decisions:
        raise ValueError("combine() needs at least one decision")
    verdicts = tuple(d.verdict for d in decisions)
    if len(set(verdicts)) == 1:
        first = decisions[0]
        n = len(decisions)
        detail = first.detail if n == 1 else f"{first.detail} (same in {n}/{n} runs)"
        return Decision(first.verdict, detail, first.traceback, verdicts)
    counts = Counter(v.value for v in verdicts)
    summary = ", ".join(f"{n} {v}" for v, n in sorted(counts.items()))
    failed = [d for d in decisions if d.verdict in (Verdict.FAIL, Verdict.OUTAGE)]
    sample = (failed or decisions)[0]
    detail = f"verdicts disagree over {len(decisions)} runs: {summary}; e.g. {sample.detail}"
    return Decision(Verdict.FLAKY, detail, sample.traceback, verdicts)


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
