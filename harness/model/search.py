"""Pure, graph-aware bisection over a commit DAG (no I/O, no git), and the plan built on it.

Not ``git bisect``: we test k commits at once, re-test skipped ones healed, and property-test
the search without a repository.  The semantics are git's: candidates are reachable from the
NEW bound and not from an OLD commit; only SKIPs left between them is "ambiguous";
``first_parent`` follows first parents on the NEW side only, OLD commits still exclude their
whole history, so nothing outside ``old..new`` is proposed.  ``plan()`` replays every outcome
from scratch: arrival order does not matter, a caller can stop and resume.

Healing is a search: a skipped commit is re-tested with a *repair* picked on top, the first
testable commit after the last untestable one on its line (for a merged branch's commit,
the mainline it left), found by bisecting that line; every candidate of the *stretch* before
the repair is then tested with it: 66 unbootable commits cost a bisection, not 132 runs.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Literal

from harness.model.errors import HarnessError

Parents = Mapping[str, Sequence[str]]
Status = Literal["found", "ambiguous", "pending"]


class Outcome(str, Enum):
    """Result of testing one commit (str-valued so it serialises to JSON as is)."""

    OLD = "old"
    NEW = "new"
    SKIP = "skip"


class InconsistentOutcomes(HarnessError, ValueError):
    """Outcomes contradict each other (a NEW commit is an ancestor of an OLD one): the bug is
    flaky or the bounds are wrong; never a search of a meaningless range."""


@dataclass(frozen=True)
class Result:
    """Where the search stands; ``candidates``: ``(commit,)`` when found, the skipped ones and
    the NEW bound oldest first when ambiguous (git's "could be any of")."""

    status: Status
    commit: str | None = None
    candidates: tuple[str, ...] = ()


def _edges(parents: Parents, sha: str, first_parent: bool) -> Sequence[str]:
    ps = parents.get(sha, ())
    return ps[:1] if first_parent else ps


def _walk(
    parents: Parents,
    starts: Iterable[str],
    first_parent: bool = False,
    stop: frozenset[str] | set[str] = frozenset(),
    known_only: bool = False,
) -> set[str]:
    """Iterative DFS over parent edges (histories have thousands of commits); ``stop`` is
    neither visited nor crossed, nor with ``known_only`` what ``parents`` lacks."""
    seen: set[str] = set()
    stack = list(starts)
    while stack:
        sha = stack.pop()
        if sha in seen or sha in stop or (known_only and sha not in parents):
            continue
        seen.add(sha)
        stack.extend(_edges(parents, sha, first_parent))
    return seen


def ancestors(parents: Parents, sha: str, first_parent: bool = False) -> set[str]:
    """All ancestors of ``sha``, inclusive (parents missing from the mapping are leaves)."""
    return _walk(parents, [sha], first_parent)


def first_parent_chain(parents: Parents, tip: str) -> list[str]:
    """The mainline of ``tip``: tip, its first parent, ... newest first."""
    chain: list[str] = []
    seen: set[str] = set()
    sha: str | None = tip
    while sha is not None and sha not in seen:
        seen.add(sha)
        chain.append(sha)
        ps = parents.get(sha, ())
        sha = ps[0] if ps else None
    return chain


def _topo_order(
    parents: Parents, root: str, members: set[str] | frozenset[str], first_parent: bool
) -> list[str]:
    """Members reachable from ``root``, oldest first: a post-order DFS in git's parent order,
    so the first-parent history comes first (close to ``git log --topo-order --reverse``)."""
    if root not in members:
        return []
    order: list[str] = []
    visited = {root}
    stack = [(root, iter(_edges(parents, root, first_parent)))]
    while stack:
        _, it = stack[-1]
        for p in it:
            if p in members and p not in visited:
                visited.add(p)
                stack.append((p, iter(_edges(parents, p, first_parent))))
                break
        else:
            order.append(stack.pop()[0])
    return order


class Bisection:
    """Mutable bisection state; the caller tests.  ``parents`` holds at least ``old..new``;
    ``old`` may be several commits (several ``git bisect good``)."""

    def __init__(
        self, parents: Parents, old: str | Iterable[str], new: str, first_parent: bool = False
    ) -> None:
        olds = (old,) if isinstance(old, str) else tuple(old)
        if not olds:
            raise ValueError("at least one OLD commit is required")
        if new not in parents:
            raise ValueError(f"NEW commit {new!r} is not in the parents mapping")
        self._parents = parents
        self._first_parent = first_parent
        self._olds = frozenset(olds)
        self._new = new
        self._tested: dict[str, Outcome] = {}
        self._reach: dict[str, int] | None = None
        self._bound, self._order = self._compute(self._tested)

    def _reachable(self, start: str, excluded: set[str]) -> set[str]:
        return _walk(self._parents, [start], self._first_parent, stop=excluded, known_only=True)

    def _compute(self, tested: Mapping[str, Outcome]) -> tuple[str, tuple[str, ...]]:
        """The bound and the candidates oldest first, from scratch (so re-recording, which
        overrides, is trivially right)."""
        olds = {*self._olds, *(s for s, o in tested.items() if o is Outcome.OLD)}
        excluded = _walk(self._parents, olds)  # full history, as git does
        if self._new in excluded:
            raise InconsistentOutcomes(f"NEW commit {self._new} is reachable from an OLD commit")
        news = [s for s, o in tested.items() if o is Outcome.NEW]
        contradicting = sorted(s for s in news if s in excluded)
        if contradicting:
            raise InconsistentOutcomes(
                f"commits tested NEW are ancestors of OLD commits: {', '.join(contradicting)}"
            )
        candidates = self._reachable(self._new, excluded)
        bound = self._new
        inner = [s for s in news if s in candidates and s != self._new]
        if inner:
            # Several NEW results (parallel steps): the one with the smallest history
            # has no NEW-tested ancestor among the candidates, so one move suffices.
            bound = min(inner, key=lambda s: (len(self._reachable(s, excluded)), s))
            candidates = self._reachable(bound, excluded)
        return bound, tuple(_topo_order(self._parents, bound, candidates, self._first_parent))

    def record(self, sha: str, outcome: Outcome) -> None:
        """Recording again overrides (a skip healed later); a contradiction raises
        InconsistentOutcomes and keeps the previous state."""
        self.record_all({sha: outcome})

    def record_all(self, outcomes: Mapping[str, Outcome]) -> None:
        """Many outcomes, one recomputation (the plan replays them all)."""
        tested = dict(self._tested)
        for sha, outcome in outcomes.items():
            outcome = Outcome(outcome)
            given = Outcome.NEW if sha == self._new else Outcome.OLD if sha in self._olds else None
            if given is not None and given is not outcome:
                what = "the given NEW" if given is Outcome.NEW else "a given OLD"
                raise InconsistentOutcomes(f"{sha} is {what} commit, cannot be {outcome.value}")
            tested[sha] = outcome
        self._bound, self._order = self._compute(tested)
        self._tested = tested
        self._reach = None

    def tested(self) -> dict[str, Outcome]:
        return dict(self._tested)

    @property
    def bound(self) -> str:
        """The NEW commit whose history the candidates are."""
        return self._bound

    def candidates(self) -> tuple[str, ...]:
        """Commits that may still be the first NEW one, oldest first (bound last)."""
        return self._order

    def known(self) -> dict[str, Outcome]:
        """Recorded outcomes plus the given bounds (never re-tested)."""
        known = {sha: Outcome.OLD for sha in self._olds}
        known[self._new] = Outcome.NEW
        known.update(self._tested)
        return known

    def remaining(self) -> int:
        """How many commits may still be the first NEW one (bound and skips included)."""
        return len(self._order)

    def _untested(self) -> list[str]:
        return [c for c in self._order if c != self._bound and c not in self._tested]

    def steps_left(self) -> int:
        """Rough number of single-commit steps left (git's "roughly K steps")."""
        return len(self._untested()).bit_length()

    def _reach_counts(self) -> dict[str, int]:
        """Per candidate, how many candidates it reaches (inclusive): bitsets in topological
        order, O(N^2 / wordsize) instead of a walk per candidate."""
        if self._reach is None:
            bits: dict[str, int] = {}
            for i, c in enumerate(self._order):
                b = 1 << i
                for p in _edges(self._parents, c, self._first_parent):
                    pb = bits.get(p)
                    if pb is not None:
                        b |= pb
                bits[c] = b
            self._reach = {c: bin(b).count("1") for c, b in bits.items()}
        return self._reach

    def next_steps(self, k: int = 1) -> list[str]:
        """Up to ``k`` distinct untested candidates ([] when none is left).  k=1: git's rule,
        max min(reach, N - reach), ties by sha; k>1 aims at reach N*i/(k+1), cutting the set
        into about k+1 parts.  Any choice of untested candidates keeps the search correct."""
        if k < 1:
            raise ValueError("k must be >= 1")
        pool = self._untested()
        if len(pool) <= k:
            return pool
        n = len(self._order)
        reach = self._reach_counts()
        if k == 1:
            return [min(pool, key=lambda c: (-min(reach[c], n - reach[c]), c))]
        left = set(pool)
        picks: list[str] = []
        for i in range(1, k + 1):
            target = n * i / (k + 1)
            best = min(left, key=lambda c, t=target: (abs(reach[c] - t), c))
            left.remove(best)
            picks.append(best)
        return picks

    def result(self) -> Result:
        """found / ambiguous (only skipped commits separate) / pending."""
        rest = [c for c in self._order if c != self._bound]
        if not rest:
            return Result("found", self._bound, (self._bound,))
        if all(self._tested.get(c) is Outcome.SKIP for c in rest):
            return Result("ambiguous", None, self._order)
        return Result("pending")


def merged_via(parents: Parents, commit: str, tip: str) -> str | None:
    """The mainline merge of ``tip`` that brought ``commit`` in (None when it is on the
    mainline or not an ancestor).  Linear: the reachable set grows one merge at a time."""
    seen: set[str] = set()
    for mainline in reversed(first_parent_chain(parents, tip)):
        stack = [mainline]
        while stack:
            sha = stack.pop()
            if sha in seen:
                continue
            if sha == commit:
                return None if mainline == commit else mainline
            seen.add(sha)
            stack.extend(parents.get(sha, ()))
    return None


def next_testable_after(
    parents: Parents, skipped: str, tested: Mapping[str, Outcome], within: Iterable[str]
) -> str | None:
    """Nearest descendant of ``skipped`` in ``within`` tested OLD or NEW (untested ones are
    walked through); fewest edges wins, ties by sha."""
    children: dict[str, list[str]] = {}
    for c in set(within):
        for p in parents.get(c, ()):
            children.setdefault(p, []).append(c)
    seen = {skipped}
    frontier = [skipped]
    while frontier:
        layer = {c for sha in frontier for c in children.get(sha, ()) if c not in seen}
        seen |= layer
        hits = sorted(c for c in layer if tested.get(c) in (Outcome.OLD, Outcome.NEW))
        if hits:
            return hits[0]
        frontier = sorted(layer)
    return None


def branch_of(parents: Parents, merge: str) -> list[str]:
    """The commits a merge brings in (in its other parents' history, not in its first
    parent's), parents before children: what a mainline search cannot tell apart."""
    ps = parents.get(merge, ())
    if len(ps) < 2:
        return []
    held = ancestors(parents, ps[0])
    members = {c for p in ps[1:] for c in _walk(parents, [p], stop=held, known_only=True)}
    order: list[str] = []
    for p in ps[1:]:
        order += [c for c in _topo_order(parents, p, members, False) if c not in order]
    return order


def repair_line(parents: Parents, skipped: str, testable: str) -> list[str] | None:
    """The line where ``skipped``'s repair lies, oldest first, up to ``testable`` (a testable
    descendant): the first-parent chain between them, or for a branch commit ``testable``
    merges, the mainline from the branch's base (None without a base)."""
    chain = first_parent_chain(parents, testable)
    if skipped in chain:
        return list(reversed(chain[: chain.index(skipped) + 1]))
    first = parents.get(testable, ())
    mainline = [c for c in first_parent_chain(parents, first[0]) if c in parents] if first else []
    mine = ancestors(parents, skipped)
    base = next((i for i, c in enumerate(mainline) if c in mine), None)
    return None if base is None else list(reversed(mainline[: base + 1]))


@dataclass(frozen=True)
class Transition:
    """Two adjacent *testable* releases whose states differ.  ``regression``: ``before`` is
    in the old state; ``between``: the untestable releases in the gap (the change is in one
    of them or in ``after``)."""

    before: str
    after: str
    regression: bool
    between: tuple[str, ...] = ()


def transitions(table: Sequence[tuple[str, bool | None]]) -> list[Transition]:
    """Changes of state along an ordered table of (target, state or None for untestable)."""
    found: list[Transition] = []
    last: tuple[str, bool] | None = None
    gap: list[str] = []
    for target, state in table:
        if state is None:
            if last is not None:
                gap.append(target)
            continue
        if last is not None and last[1] != state:
            found.append(Transition(last[0], target, last[1], tuple(gap)))
        last = (target, state)
        gap = []
    return found


PlanStatus = Literal["pending", "found", "ambiguous", "inconsistent", "ended"]


@dataclass(frozen=True)
class Revision:
    """A commit to test, alone or with a later commit picked on top (a *heal*)."""

    sha: str
    pick: str | None = None

    @property
    def heal(self) -> bool:
        return self.pick is not None


@dataclass(frozen=True)
class Plan:
    """``todo`` next (empty when done), or the answer: ``commit`` when found, ``candidates``
    oldest first when ambiguous."""

    status: PlanStatus
    todo: tuple[Revision, ...] = ()
    commit: str | None = None
    candidates: tuple[str, ...] = ()
    needed: tuple[str, ...] = ()  # the picks the found commit was tested with
    reason: str = ""
    left: int = 0  # untested candidates (progress)
    steps_left: int = 0  # git's "roughly K steps"

    @property
    def done(self) -> bool:
        return not self.todo


def _settle(outcomes: Mapping[Revision, Outcome]) -> tuple[dict[str, Outcome], dict[str, str]]:
    """Per commit: what it said alone, else with the first pick that made it testable (and
    that pick), else ``skip`` once tried alone."""
    tried: dict[str, list[tuple[str | None, Outcome]]] = {}
    for rev, o in outcomes.items():
        tried.setdefault(rev.sha, []).append((rev.pick, Outcome(o)))
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


def _repair_step(
    parents: Parents, alone: Mapping[str, Outcome], tried: set[Revision], picks, skipped: str
) -> tuple[str, list[str]] | None:
    """("pick", [repair]) or ("test", the untested stretch of its line), or None.  ``alone``:
    what commits said without a pick (one that boots only with a pick is never a repair)."""
    for pick in picks:  # --pick: known repairs first
        if not _holds(parents, skipped, pick) and Revision(skipped, pick) not in tried:
            return "pick", [pick]
    testable = next_testable_after(parents, skipped, alone, parents)
    line = repair_line(parents, skipped, testable) if testable is not None else None
    if line is None:
        return None
    told = [alone.get(c) for c in line]
    testable_at = [i for i, o in enumerate(told) if o in (Outcome.OLD, Outcome.NEW)]
    if not testable_at:  # a branch's mainline, never tested: its newest end first
        return ("test", [line[-1]]) if told[-1] is None else None
    hi = testable_at[0]
    lo = max((i for i in range(hi) if told[i] is Outcome.SKIP), default=-1)
    gap = [line[i] for i in range(lo + 1, hi) if told[i] is None]
    if gap:
        return "test", gap
    if lo < 0:
        return None  # the branch's base can be tested: nothing to repair there
    return "pick", [line[hi]]


def _holds(parents: Parents, sha: str, pick: str) -> bool:
    """``pick`` is in ``sha``'s history (the caller drops picks older than the range)."""
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
    outcomes: Mapping[Revision, Outcome],
    k: int = 1,
    first_parent: bool = False,
    picks: Sequence[str] = (),
) -> Plan:
    """Up to ``k`` next steps or the result, from every outcome so far.  A commit counts as
    what it said alone, else with a repair on top; it is named only when nothing beside it
    is left untested or untestable."""
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
    left = len(set(bis.candidates()) - bis.tested().keys())
    if todo:
        return Plan("pending", todo, left=left, steps_left=max(bis.steps_left(), 1))
    if res.status == "ambiguous":
        return Plan("ambiguous", candidates=res.candidates)
    return Plan("ended", reason="the search ended without a boundary")


def _todo(
    bis: Bisection, shape: tuple, outcomes: Mapping[Revision, Outcome], k: int, picks
) -> tuple[Revision, ...]:
    """Repair-line steps first, then the bisection's own choice, each candidate of a
    repaired stretch with its repair on top."""
    parents, olds, new, first_parent = shape
    k = max(k, 1)
    tried = set(outcomes)
    alone = {**bis.known(), **{p.sha: Outcome(o) for p, o in outcomes.items() if not p.heal}}
    for sha in list(alone):
        if Revision(sha) not in tried and sha not in olds and sha != new:
            del alone[sha]  # known only through a pick: not testable alone
    candidates = bis.candidates()
    lines: list[Revision] = []
    repairs: dict[str, str] = {}
    # every skipped commit's repair covers its stretch, even once the commit itself is
    # out of the candidates; only a candidate's repair is worth runs to find
    inside = set(candidates)
    for c in sorted(sha for sha, o in alone.items() if o is Outcome.SKIP):
        step = _repair_step(parents, alone, tried, picks, c)
        if step is None:
            continue
        what, shas = step
        if what == "pick":
            repairs[c] = shas[0]
        elif c in inside:
            lines += [Revision(sha) for sha in _spread(shas, k) if Revision(sha) not in tried]
    if lines:  # the repair first: until it is known, steps in its stretch tell nothing
        return tuple(dict.fromkeys(lines))[:k]
    stretch = _stretches(parents, repairs, candidates)
    for pick in picks:  # --pick: every candidate without it in its history gets it
        for c in candidates:
            if not _holds(parents, c, pick):
                stretch.setdefault(c, pick)
    # choose as if every stretch commit not yet tried with its repair were untested
    redo = {c for c, r in stretch.items() if Revision(c, r) not in tried}
    chooser = Bisection(parents, olds, new, first_parent=first_parent)
    chooser.record_all({c: o for c, o in bis.tested().items() if c not in redo})
    chosen = []
    for c in chooser.next_steps(k):
        r = stretch.get(c)
        chosen.append(Revision(c, r) if r and Revision(c, r) not in tried else Revision(c))
    todo = [p for p in dict.fromkeys(chosen) if p not in tried]
    return tuple(todo[:k])
