"""The commit bisection as a pure plan: from the graph and the outcomes so far, what to
evaluate next and, once nothing is left, the answer.

Why a function of the outcomes and not a loop that tests: the loop (probe k commits,
re-test skipped ones with a later change picked on top, stop on contradictions) is the
part worth property-testing, and the part that must not care how a commit is built or
run.  ``plan()`` replays the outcomes from scratch each time, so any order of arrival
gives the same plan and a caller can stop and resume at will.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from harness.model.search import Bisection, InconsistentOutcomes, Outcome, Parents

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
    needed: tuple[str, ...] = ()  # the picks the found commit needed to be tested
    reason: str = ""
    left: int = 0  # untested candidates (progress)
    steps_left: int = 0  # git's "roughly K steps"

    @property
    def done(self) -> bool:
        return not self.todo


def _heals(bis: Bisection, candidates: tuple[str, ...], tried: set[str]) -> tuple[Probe, ...]:
    """Each skipped candidate not yet healed, with the nearest testable change after it."""
    out = []
    tested = bis.tested()
    for cand in candidates:
        if cand in tried or tested.get(cand) is not Outcome.SKIP:
            continue
        source = bis.healing_source(cand)
        if source is not None:
            out.append(Probe(cand, source))
    return tuple(out)


def plan(
    parents: Parents,
    old: str | Sequence[str],
    new: str,
    outcomes: Mapping[Probe, Outcome],
    k: int = 1,
    first_parent: bool = False,
) -> Plan:
    """The next probes (up to ``k`` at once) or the result, given every outcome so far.

    Plain probes are recorded first, then the heals that told something (a heal that is
    still untestable changes nothing); a commit already healed once is not healed again.
    """
    bis = Bisection(parents, old, new, first_parent=first_parent)
    plain = {p.sha: o for p, o in outcomes.items() if not p.heal}
    healed = {p.sha: (p.pick, o) for p, o in outcomes.items() if p.heal}
    needed = {sha: pick for sha, (pick, o) in healed.items() if o is not Outcome.SKIP}
    try:
        bis.record_all({**plain, **{sha: o for sha, (_, o) in healed.items() if sha in needed}})
    except InconsistentOutcomes as exc:
        return Plan("inconsistent", reason=str(exc))
    res = bis.result()
    left = sum(1 for c in bis.candidates() if c not in bis.tested())
    if res.status == "pending":
        probes = tuple(Probe(sha) for sha in bis.next_probes(k))
        if probes:
            return Plan("pending", probes, left=left, steps_left=bis.steps_left())
        return Plan("ended", reason="the search ended without a boundary")
    if res.status == "ambiguous":
        heals = _heals(bis, res.candidates, set(healed))
        if heals:
            return Plan("pending", heals, left=left, steps_left=len(heals))
        return Plan("ambiguous", candidates=res.candidates)
    commit = res.commit or new
    return Plan(
        "found",
        commit=commit,
        candidates=(commit,),
        needed=(needed[commit],) if commit in needed and needed[commit] else (),
    )
