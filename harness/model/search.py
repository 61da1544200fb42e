"""Pure, graph-aware bisection over a commit DAG: no I/O, no git calls.

Why not just drive ``git bisect``: the harness tests several commits in parallel
(k-ary search), re-tests skipped commits after "healing" them, and the search
must be unit- and property-testable without a repository.  The semantics follow
``git bisect --term-old/--term-new`` so results can be compared with git:

* candidates = commits reachable from the NEW bound (inclusive) and not
  reachable from any OLD commit (inclusive);
* a NEW result moves the bound to that commit, an OLD result cuts its history;
* SKIP commits are never treated as OLD or NEW; if only they separate the OLD
  side from the bound, the result is "ambiguous", as in git.

With ``first_parent=True`` the NEW side follows first parents only (like
``git bisect --first-parent``), while OLD commits still exclude their whole
history, exactly as git's revision walk propagates "uninteresting" to every
parent.  So no commit outside ``old..new`` is ever proposed for testing.

The commit bisection as a pure plan (``plan``): from the graph and the outcomes so far,
what to evaluate next and, once nothing is left, the answer.

Why a function of the outcomes and not a loop that tests: the loop (test k commits,
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
its *stretch* (after the skipped commit, before the repair) is tested with it picked
on top directly, so a stretch of 66 unbootable commits costs a bisection, not 66 runs
and 66 more.  ``picks`` (``--pick``) are repairs known from the start.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Literal

from harness.model.errors import HarnessError

Parents = Mapping[str, Sequence[str]]
Status = Literal["found", "ambiguous", "pending"]

__all__ = [
    "Bisection",
    "Plan",
    "PlanStatus",
    "Revision",
    "plan",
    "InconsistentOutcomes",
    "Outcome",
    "Parents",
    "Result",
    "ancestors",
    "branch_of",
    "first_parent_chain",
    "merged_via",
    "next_testable_after",
    "repair_line",
]


class Outcome(str, Enum):
    """Result of testing one commit (str-valued so it serialises to JSON as is)."""

    OLD = "old"
    NEW = "new"
    SKIP = "skip"


class InconsistentOutcomes(HarnessError, ValueError):
    """Outcomes contradict each other, e.g. a NEW commit is an ancestor of an OLD one.

    Raised instead of silently searching a meaningless range: it usually means the
    bug is flaky or the OLD/NEW bounds given to the search are wrong.
    """


@dataclass(frozen=True)
class Result:
    """Where the search stands.

    ``candidates`` is ``(commit,)`` when found; when ambiguous it is the skipped
    candidates plus the NEW bound, oldest first (git's "could be any of" list);
    empty while pending.
    """

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
    """Iterative DFS over parent edges (no recursion: histories have thousands of commits).

    Nodes in ``stop`` are neither visited nor crossed; with ``known_only`` nodes
    missing from ``parents`` (outside the range) are dropped too.
    """
    seen: set[str] = set()
    stack = [s for s in starts]
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
    """Members reachable from ``root``, parents before children (oldest first).

    Post-order DFS visiting parents in git order, so the first-parent history comes
    out first: deterministic and close to ``git log --topo-order --reverse``.
    """
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


@dataclass(frozen=True)
class _State:
    bound: str
    candidates: frozenset[str]
    order: tuple[str, ...]


class Bisection:
    """Mutable bisection state over a commit graph; the caller does the testing.

    ``parents`` must contain at least every commit of ``old..new``; ``old`` may be
    several commits (like several ``git bisect good``).
    """

    def __init__(
        self,
        parents: Parents,
        old: str | Iterable[str],
        new: str,
        first_parent: bool = False,
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
        self._state = self._compute(self._tested)

    # -- state -----------------------------------------------------------------

    def _reachable(self, start: str, excluded: set[str]) -> set[str]:
        return _walk(self._parents, [start], self._first_parent, stop=excluded, known_only=True)

    def _compute(self, tested: Mapping[str, Outcome]) -> _State:
        """Recompute candidates from scratch, so re-recording (overriding) is trivially right."""
        olds = set(self._olds)
        olds.update(s for s, o in tested.items() if o is Outcome.OLD)
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
            sized = sorted((len(self._reachable(s, excluded)), s) for s in inner)
            bound = sized[0][1]
            candidates = self._reachable(bound, excluded)
        order = _topo_order(self._parents, bound, candidates, self._first_parent)
        return _State(bound, frozenset(candidates), tuple(order))

    def record(self, sha: str, outcome: Outcome) -> None:
        """Record a test outcome; recording again overrides (e.g. a skip healed later).

        Raises InconsistentOutcomes (and keeps the previous state) when the outcome
        contradicts earlier ones.
        """
        self.record_all({sha: outcome})

    def record_all(self, outcomes: Mapping[str, Outcome]) -> None:
        """Record many outcomes at once (one recomputation: the plan replays them all)."""
        tested = dict(self._tested)
        for sha, outcome in outcomes.items():
            outcome = Outcome(outcome)
            if sha == self._new and outcome is not Outcome.NEW:
                raise InconsistentOutcomes(
                    f"{sha} is the given NEW commit, cannot be {outcome.value}"
                )
            if sha in self._olds and outcome is not Outcome.OLD:
                raise InconsistentOutcomes(
                    f"{sha} is a given OLD commit, cannot be {outcome.value}"
                )
            tested[sha] = outcome
        self._state = self._compute(tested)
        self._tested = tested
        self._reach = None

    def tested(self) -> dict[str, Outcome]:
        """A copy of the recorded outcomes."""
        return dict(self._tested)

    @property
    def bound(self) -> str:
        """The current NEW bound: the NEW commit whose history the candidates are."""
        return self._state.bound

    def candidates(self) -> tuple[str, ...]:
        """Commits that may still be the first NEW one, oldest first (bound last)."""
        return self._state.order

    def known(self) -> dict[str, Outcome]:
        """Recorded outcomes plus the given OLD/NEW bounds (which are never re-tested)."""
        known = {sha: Outcome.OLD for sha in self._olds}
        known[self._new] = Outcome.NEW
        known.update(self._tested)
        return known

    def remaining(self) -> int:
        """Number of commits that may still be the first NEW one (bound and skips included)."""
        return len(self._state.candidates)

    def _untested(self) -> list[str]:
        return [c for c in self._state.order if c != self._state.bound and c not in self._tested]

    def steps_left(self) -> int:
        """Rough number of single-commit steps left (git's "roughly K steps")."""
        return len(self._untested()).bit_length()

    # -- choosing steps ------------------------------------------------------------

    def _reach_counts(self) -> dict[str, int]:
        """Per candidate, how many candidates it reaches (inclusive).

        Bitsets in topological order make this O(N^2 / wordsize) instead of one
        graph walk per candidate.
        """
        if self._reach is None:
            order = self._state.order
            bits: dict[str, int] = {}
            for i, c in enumerate(order):
                b = 1 << i
                for p in _edges(self._parents, c, self._first_parent):
                    pb = bits.get(p)
                    if pb is not None:
                        b |= pb
                bits[c] = b
            self._reach = {c: bin(b).count("1") for c, b in bits.items()}
        return self._reach

    def next_steps(self, k: int = 1) -> list[str]:
        """Up to ``k`` distinct untested candidates to test next ([] when nothing is left).

        k=1 uses git's best-bisection rule, max min(reach, N - reach), ties by sha.
        k>1 aims at reach values N*i/(k+1) so the k results cut the set into about
        k+1 parts.  Any choice of untested candidates keeps the search correct.
        """
        if k < 1:
            raise ValueError("k must be >= 1")
        pool = self._untested()
        if len(pool) <= k:
            return pool
        n = len(self._state.candidates)
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
        st = self._state
        rest = [c for c in st.order if c != st.bound]
        if not rest:
            return Result("found", st.bound, (st.bound,))
        if all(self._tested.get(c) is Outcome.SKIP for c in rest):
            return Result("ambiguous", None, st.order)
        return Result("pending")


def merged_via(parents: Parents, commit: str, tip: str) -> str | None:
    """The mainline merge of ``tip`` that brought ``commit`` in (which PR shipped it).

    None when ``commit`` is on the first-parent chain itself or not an ancestor of
    ``tip``.  Walks the mainline oldest first, growing the set of reachable commits
    one merge at a time, so the whole thing is linear in the history size.
    """
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
    parents: Parents,
    skipped: str,
    tested: Mapping[str, Outcome],
    within: Iterable[str],
) -> str | None:
    """Nearest descendant of ``skipped`` in ``within`` already tested OLD or NEW.

    Used for healing: an unbootable commit is re-tested with the change of the first
    testable commit after it cherry-picked on top.  "Testable" means a recorded
    outcome other than SKIP; untested commits are walked through, not returned.
    Fewest edges wins, ties by sha.
    """
    members = set(within)
    children: dict[str, list[str]] = {}
    for c in members:
        for p in parents.get(c, ()):
            children.setdefault(p, []).append(c)
    seen = {skipped}
    frontier = [skipped]
    while frontier:
        layer: set[str] = set()
        for sha in frontier:
            for child in children.get(sha, ()):
                if child not in seen:
                    seen.add(child)
                    layer.add(child)
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
    """Where the repair of ``skipped`` lies, oldest first, up to ``testable`` (a testable
    descendant): the first commit of it that can be tested after the last one that cannot.

    On a straight line, the first-parent chain from ``skipped`` to ``testable``; for a
    branch commit that ``testable`` merges, the mainline the branch left: the chain of
    ``testable``'s first parent from the branch's base.  None when there is no base."""
    chain = first_parent_chain(parents, testable)
    if skipped in chain:
        return list(reversed(chain[: chain.index(skipped) + 1]))
    first = parents.get(testable, ())
    if not first:
        return None
    mainline = [c for c in first_parent_chain(parents, first[0]) if c in parents]
    mine = ancestors(parents, skipped)
    base = next((i for i, c in enumerate(mainline) if c in mine), None)
    if base is None:
        return None
    return list(reversed(mainline[: base + 1]))


# --------------------------------------------------------------------------- releases
@dataclass(frozen=True)
class Transition:
    """Two adjacent *testable* releases whose states differ.

    ``regression``: ``before`` is in the axis's old state ("pass"), ``after`` in its new
    one; else a fix.  ``between`` lists the releases in the gap whose verdict could not
    tell (error or flaky): the change happened in one of them or in ``after``.
    """

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
    """What one step of the bisection tests: a commit, alone or with a later commit's
    change picked on top (a *heal*: the later change makes an unbootable commit testable)."""

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
    """Per commit, what its steps say: alone first, else the first pick that made it
    testable (and that pick), else ``skip`` once anything was tried."""
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


@dataclass
class _Repairs:
    """For each skipped candidate: its known repair, or the commits whose test finds it.

    ``alone`` is what commits said without a pick: a commit that boots only with a
    pick is part of a stretch, never a repair."""

    parents: Parents
    alone: Mapping[str, Outcome]
    tried: set[Revision]
    picks: Sequence[str]

    def line_gap_or_pick(self, skipped: str) -> tuple[str, list[str]] | None:
        """("pick", [repair]) or ("test", the untested stretch of its line), or None."""
        for pick in self.picks:  # --pick: known repairs first
            if (
                not _holds(self.parents, skipped, pick)
                and Revision(skipped, pick) not in self.tried
            ):
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
    outcomes: Mapping[Revision, Outcome],
    k: int = 1,
    first_parent: bool = False,
    picks: Sequence[str] = (),
) -> Plan:
    """The next steps (up to ``k`` at once) or the result, given every outcome so far.

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
    bis: Bisection, shape: tuple, outcomes: Mapping[Revision, Outcome], k: int, picks
) -> tuple[Revision, ...]:
    """Repair-line steps first, then the bisection's own choice, each candidate of a
    repaired stretch with its repair on top."""
    parents, olds, new, first_parent = shape
    tried = set(outcomes)
    known = bis.known()
    alone = {**known, **{p.sha: Outcome(o) for p, o in outcomes.items() if not p.heal}}
    for sha in list(alone):
        if Revision(sha) not in tried and sha not in olds and sha != new:
            del alone[sha]  # known only through a pick: not testable alone
    candidates = bis.candidates()
    fixer = _Repairs(parents, alone, tried, tuple(picks))
    lines: list[Revision] = []
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
            lines += [
                Revision(sha) for sha in _spread(shas, max(k, 1)) if Revision(sha) not in tried
            ]
    if lines:  # the repair first: until it is known, steps in its stretch tell nothing
        return tuple(dict.fromkeys(lines))[: max(k, 1)]
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
    for c in chooser.next_steps(max(k, 1)):
        r = stretch.get(c)
        chosen.append(Revision(c, r) if r and Revision(c, r) not in tried else Revision(c))
    todo = [p for p in dict.fromkeys(chosen) if p not in tried]
    return tuple(todo[: max(k, 1)])
