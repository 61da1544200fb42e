"""The commit bisection as a pure plan: from the graph and the outcomes so far, what to
evaluate next and, once nothing is left, the answer.

Why a function of the outcomes and not a loop that tests: the loop (probe k commits,
re-test skipped ones with a repair picked on top, stop on contradictions) is the part
worth property-testing, and the part that must not care how a commit is built or run.
``plan()`` replays the outcomes from scratch each time, so any order of arrival gives
the same plan and a caller can stop and resume at will.

Healing, as a search.  A commit that cannot be tested (``skip``) is re-tested with a
*repair* picked on top: the first commit that can be tested after the last one that
cannot, on the line from the skipped commit to a testable descendant (for a commit of a
merged branch, on the mainline the branch left: the branch's base is broken, not the
branch).  That repair is found by bisecting its line for "can be tested", not by
picking whatever tested commit is nearest.  Once a repair is known, every candidate of
its *stretch* (after the skipped commit, before the repair) is probed with it picked
on top directly, so a stretch of 66 unbootable commits costs a bisection, not 66 runs
and 66 more.  ``picks`` (``--pick``) are repairs known from the start.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from harness.model.search import (
    Bisection,
    InconsistentOutcomes,
    Outcome,
    Parents,
    ancestors,
    next_testable_after,
    repair_line,
)

PlanStatus = Literal["pending", "found", "ambiguous", "inconsistent", "ended"]

__all__ = ["Plan", "PlanStatus", "Probe", "plan"]


@dataclass(frozen=True)
class Probe:
    """One evaluation: a commit, alone or with a later commit's change picked on top
    (a *heal*: the later change makes an unbootable commit testable)."""

    sha: str
    pick: str | None = None

    @property
    def heal(self) -> bool:
        return self.pick is not None


@dataclass(frozen=True)
class Plan:
    """Where the bisection stands: ``todo`` to evaluate next (empty when done), or the
    answer (``commit`` when found; ``candidates`` oldest first when ambiguous)."""

    status: PlanStatus
    todo: tuple[Probe, ...] = ()
    commit: str | None = None
    candidates: tuple[str, ...] = ()
    needed: tuple[str, ...] = ()  # the picks the found commit was tested with
    reason: str = ""
    left: int = 0  # untested candidates (progress)
    steps_left: int = 0  # git's "roughly K steps"

    @property
    def done(self) -> bool:
        return not self.todo


def _settle(outcomes: Mapping[Probe, Outcome]) -> tuple[dict[str, Outcome], dict[str, str]]:
    """Per commit, what its probes say: alone first, else the first pick that made it
    testable (and that pick), else ``skip`` once anything was tried."""
    tried: dict[str, list[tuple[str | None, Outcome]]] = {}
    for probe, o in outcomes.items():
        tried.setdefault(probe.sha, []).append((probe.pick, Outcome(o)))
    settled: dict[str, Outcome] = {}
    needed: dict[str, str] = {}
    for sha, results in tried.items():
        told = sorted((pick is not None, pick or "", o) for pick, o in results if o != "skip")
        if told:
            healed, pick, o = told[0]
            settled[sha] = o
            if healed:
                needed[sha] = pick
        elif any(pick is None for pick, _ in results):
            settled[sha] = Outcome.SKIP  # a pick that did not help: alone is still to try
    return settled, needed


@dataclass
class _Repairs:
    """For each skipped candidate: its known repair, or the commits whose test finds it.

    ``alone`` is what commits said without a pick: a commit that boots only with a
    pick is part of a stretch, never a repair."""

    parents: Parents
    alone: Mapping[str, Outcome]
    tried: set[Probe]
    picks: Sequence[str]

    def line_gap_or_pick(self, skipped: str) -> tuple[str, list[str]] | None:
        """("pick", [repair]) or ("probe", the untested stretch of its line), or None."""
        for pick in self.picks:  # --pick: known repairs first
            if not _holds(self.parents, skipped, pick) and Probe(skipped, pick) not in self.tried:
                return "pick", [pick]
        testable = next_testable_after(self.parents, skipped, self.alone, self.parents)
        if testable is None:
            return None
        line = repair_line(self.parents, skipped, testable)
        if line is None:
            return None
        told = [self.alone.get(c) for c in line]
        testable_at = [i for i, o in enumerate(told) if o in (Outcome.OLD, Outcome.NEW)]
        if not testable_at:  # a branch's mainline, never tested: its newest end first
            return ("probe", [line[-1]]) if told[-1] is None else None
        hi = testable_at[0]
        lo = max((i for i in range(hi) if told[i] is Outcome.SKIP), default=-1)
        gap = [line[i] for i in range(lo + 1, hi) if told[i] is None]
        if gap:
            return "probe", gap
        if lo < 0:
            return None  # the branch's base can be tested: nothing to repair there
        return "pick", [line[hi]]


def _holds(parents: Parents, sha: str, pick: str) -> bool:
    """``pick`` is in ``sha``'s history (a pick from outside the range never is: the
    caller drops picks older than the range)."""
    return pick in parents and pick in ancestors(parents, sha)


def _spread(gap: list[str], k: int) -> list[str]:
    """``k`` commits cutting ``gap`` into about k+1 equal parts."""
    n = len(gap)
    return list(dict.fromkeys(gap[(i + 1) * n // (k + 1)] for i in range(min(k, n))))


def _stretches(parents: Parents, repairs: Mapping[str, str], within: Sequence[str]):
    """Candidate -> the repair of its stretch: a commit after a skipped one (itself
    included) that does not have that skipped commit's repair in its history yet."""
    out: dict[str, str] = {}
    for skipped, repair in sorted(repairs.items()):
        has_repair = {c for c in within if repair in ancestors(parents, c)}
        for c in within:
            if c not in out and c not in has_repair and skipped in ancestors(parents, c):
                out[c] = repair
    return out


def plan(
    parents: Parents,
    old: str | Sequence[str],
    new: str,
    outcomes: Mapping[Probe, Outcome],
    k: int = 1,
    first_parent: bool = False,
    picks: Sequence[str] = (),
) -> Plan:
    """The next probes (up to ``k`` at once) or the result, given every outcome so far.

    A commit counts as what it said alone, else what it said with a repair picked on
    top; it is named only when nothing beside it is left untested or untestable.
    """
    bis = Bisection(parents, old, new, first_parent=first_parent)
    settled, needed = _settle(outcomes)
    try:
        bis.record_all(settled)
    except InconsistentOutcomes as exc:
        return Plan("inconsistent", reason=str(exc))
    res = bis.result()
    if res.status == "found":
        commit = res.commit or new
        found = (needed[commit],) if commit in needed else ()
        return Plan("found", commit=commit, candidates=(commit,), needed=found)
    olds = (old,) if isinstance(old, str) else tuple(old)
    todo = _todo(bis, (parents, olds, new, first_parent), outcomes, k, picks)
    left = sum(1 for c in bis.candidates() if c not in bis.tested())
    if todo:
        return Plan("pending", todo, left=left, steps_left=max(bis.steps_left(), 1))
    if res.status == "ambiguous":
        return Plan("ambiguous", candidates=res.candidates)
    return Plan("ended", reason="the search ended without a boundary")


def _todo(
    bis: Bisection, shape: tuple, outcomes: Mapping[Probe, Outcome], k: int, picks
) -> tuple[Probe, ...]:
    """Repair-line probes first, then the bisection's own choice, each candidate of a
    repaired stretch with its repair on top."""
    parents, olds, new, first_parent = shape
    tried = set(outcomes)
    known = bis.known()
    alone = {**known, **{p.sha: Outcome(o) for p, o in outcomes.items() if not p.heal}}
    for sha in list(alone):
        if Probe(sha) not in tried and sha not in olds and sha != new:
            del alone[sha]  # known only through a pick: not testable alone
    candidates = bis.candidates()
    fixer = _Repairs(parents, alone, tried, tuple(picks))
    lines: list[Probe] = []
    repairs: dict[str, str] = {}
    # every skipped commit's repair covers its stretch, even once the commit itself is
    # out of the candidates; only a candidate's repair is worth runs to find
    inside = set(candidates)
    for c in sorted(sha for sha, o in alone.items() if o is Outcome.SKIP):
        step = fixer.line_gap_or_pick(c)
        if step is None:
            continue
        what, shas = step
        if what == "pick":
            repairs[c] = shas[0]
        elif c in inside:
            lines += [Probe(sha) for sha in _spread(shas, max(k, 1)) if Probe(sha) not in tried]
    if lines:  # the repair first: until it is known, probes in its stretch tell nothing
        return tuple(dict.fromkeys(lines))[: max(k, 1)]
    stretch = _stretches(parents, repairs, candidates)
    for pick in picks:  # --pick: every candidate without it in its history gets it
        for c in candidates:
            if not _holds(parents, c, pick):
                stretch.setdefault(c, pick)
    # choose as if every stretch commit not yet tried with its repair were untested
    redo = {c for c, r in stretch.items() if Probe(c, r) not in tried}
    chooser = Bisection(parents, olds, new, first_parent=first_parent)
    chooser.record_all({c: o for c, o in bis.tested().items() if c not in redo})
    chosen = []
    for c in chooser.next_probes(max(k, 1)):
        r = stretch.get(c)
        chosen.append(Probe(c, r) if r and Probe(c, r) not in tried else Probe(c))
    todo = [p for p in dict.fromkeys(chosen) if p not in tried]
    return tuple(todo[: max(k, 1)])
