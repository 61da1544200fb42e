"""Flake-aware culprit finding: which revision changed a racy scenario, and how sure we are.

Pure.  With ``--repeat N`` a disagreement is ``flaky`` and bisection skips exactly the
revisions next to a racy culprit.  Here instead (Henderson et al., "Flake Aware Culprit
Finding", ICST 2023): a posterior over the first changed revision, runs chosen for
information, a stop at a stated confidence; the unknown fail rates of broken and healthy
revisions (``Prior``) are integrated over their grids.  Revisions are a list: the caller
linearises a DAG (the first-parent chain names a branch's culprit by its merge).
``Prior.deterministic()`` is plain bisection at its cost; the broad default is not (one
pass never rules out a 5% race), which is why ``--confidence`` is asked for.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from itertools import accumulate
from typing import Literal

from harness.model.errors import HarnessError

Status = Literal["pending", "confident", "budget spent", "no culprit"]
_NEG = float("-inf")
_MAX_BRANCHES = 32  # imagined outcomes kept while choosing k steps at once


def _log_grid(lo: float, hi: float, points: int) -> tuple[float, ...]:
    return tuple(round(lo * (hi / lo) ** (i / (points - 1)), 6) for i in range(points))


@dataclass(frozen=True)
class Prior:
    """Plausible failure rates, uniform over each grid; the answer is only as calibrated as
    this.  ``rates`` (broken): 5%-100% on a log scale (a linear grid weighs high rates and was
    overconfident about rare races in the bench); ``false_rates`` (healthy: a proxy's stray
    502): 0%-5%."""

    rates: tuple[float, ...] = field(default_factory=lambda: _log_grid(0.05, 1.0, 12))
    false_rates: tuple[float, ...] = (0.0, 0.01, 0.02, 0.03, 0.04, 0.05)

    def __post_init__(self) -> None:
        for name in ("rates", "false_rates"):
            grid = getattr(self, name)
            if not grid or any(not 0.0 <= r <= 1.0 for r in grid):
                raise ValueError(f"Prior.{name} must be rates in [0, 1], got {grid!r}")

    @classmethod
    def deterministic(cls) -> Prior:
        """A broken revision always fails, a healthy one never: plain bisection."""
        return cls(rates=(1.0,), false_rates=(0.0,))


class ContradictoryRuns(HarnessError, ValueError):
    """Runs impossible under the prior (a fail and a pass with the deterministic one): the
    scenario is racier than the prior says; never an answer from nothing."""


@dataclass(frozen=True)
class Tally:
    """Fails out of runs on one revision (``error`` runs are not runs)."""

    fails: int = 0
    runs: int = 0

    def __str__(self) -> str:
        return f"{self.fails}/{self.runs}"


class _Grid:
    """One rate grid, logs precomputed; masses remembered (every step asks for the same)."""

    def __init__(self, rates: Sequence[float]) -> None:
        lw = -math.log(len(rates))
        self._logs = tuple((lw, _log(r), _log(1.0 - r)) for r in rates)
        self._memo: dict[tuple[int, int], float] = {}

    def log_mass(self, fails: int, passes: int) -> float:
        """log of the prior-averaged probability of these fails and passes."""
        key = (fails, passes)
        if key not in self._memo:
            terms = [lw + _times(fails, lr) + _times(passes, l1r) for lw, lr, l1r in self._logs]
            self._memo[key] = _logsumexp(terms)
        return self._memo[key]

    def fail_chance(self, fails: int, passes: int) -> float:
        """The chance that the next run fails."""
        base = self.log_mass(fails, passes)
        return 0.0 if base == _NEG else math.exp(self.log_mass(fails + 1, passes) - base)


def _times(n: int, log_x: float) -> float:
    return n * log_x if n else 0.0  # no fails at rate 0 has probability 1, not 0 * -inf


def _log(x: float) -> float:
    return math.log(x) if x > 0.0 else _NEG


def _logsumexp(terms: Sequence[float]) -> float:
    top = max(terms, default=_NEG)
    return _NEG if top == _NEG else top + math.log(sum(math.exp(t - top) for t in terms))


def _xlogx(x: float) -> float:
    return x * math.log(x) if x > 0.0 else 0.0


def _prefix(values: Iterable[float]) -> list[float]:
    return list(accumulate(values, initial=0.0))


@dataclass(frozen=True)
class Finding:
    """Where a search stands, as a report prints it; ``culprit`` None: most likely no change."""

    status: Status
    culprit: str | None
    posterior: float
    runs: int
    here: Tally | None = None
    parent: str | None = None
    at_parent: Tally | None = None
    why: str = ""
    between: tuple[str, ...] = ()  # untestable revisions just before: it may be any of them

    def line(self) -> str:
        """'a1b2c3d: 0.97 after 31 runs; 7/9 fail here, 0/12 at its parent'."""
        p = f"{math.floor(self.posterior * 100) / 100:.2f}"  # never rounds up to a claim
        if self.culprit is None:
            return f"no culprit ({self.why}): {p} after {self.runs} runs"
        parent = f", {self.at_parent} at its parent" if self.at_parent is not None else ""
        tallies = f"{self.here} fail here{parent}"
        name = self.culprit
        if self.between:
            name += f" (or the untestable {', '.join(self.between)} before it)"
        if self.status == "budget spent":
            return f"{name}? {p} when the budget of {self.runs} runs ran out; {tallies}"
        return f"{name}: {p} after {self.runs} runs; {tallies}"


class CulpritSearch:
    """Posterior over the first changed revision of ``revisions`` (oldest first); the caller
    runs what ``next_steps`` names and ``record``s each run.  ``bounds_known``: the oldest is
    unchanged and the newest changed (only their rates are learnt); without it the answer
    may be "changed at the oldest" or "no change".  ``fix``: the failing ones come first."""

    def __init__(
        self,
        revisions: Sequence[str],
        prior: Prior | None = None,
        confidence: float = 0.95,
        max_runs: int = 200,
        fix: bool = False,
        bounds_known: bool = True,
    ) -> None:
        if len(revisions) < (2 if bounds_known else 1) or len(set(revisions)) != len(revisions):
            raise ValueError("revisions must be distinct, at least the two bounds")
        if not 0.5 < confidence < 1.0:
            raise ValueError("confidence must be in (0.5, 1)")
        prior = prior or Prior()
        self._revs = tuple(revisions)
        self._index = {r: i for i, r in enumerate(self._revs)}
        self._broken = _Grid(prior.rates)
        self._healthy = _Grid(prior.false_rates)
        self._fix = fix
        self._confidence = confidence
        self._max_runs = max_runs
        n = len(self._revs)
        self._hyps = tuple(range(1, n) if bounds_known else range(n + 1))
        self._fails = [0] * n
        self._passes = [0] * n
        self._untestable: set[int] = set()

    def record(self, revision: str, failed: bool, times: int = 1) -> None:
        """One run (or ``times`` identical ones); never an ``error`` run.  A run that no
        hypothesis explains raises ContradictoryRuns and is forgotten."""
        i = self._index[revision]
        counts = self._fails if failed else self._passes
        counts[i] += times
        if all(m == _NEG for m in self._log_masses(self._fails, self._passes)):
            counts[i] -= times
            raise ContradictoryRuns(
                f"{revision} {'failed' if failed else 'passed'}, which no first-changed "
                "revision explains under this prior: the scenario is racier than it says"
            )

    def untestable(self, revision: str, still: bool = True) -> None:
        """Every run was an ``error``: never test it again; its hypothesis merges into the
        next one's (``Finding.between``) until a ``record`` or ``still=False`` (repaired)."""
        (self._untestable.add if still else self._untestable.discard)(self._index[revision])

    def tally(self, revision: str) -> Tally:
        i = self._index[revision]
        return Tally(self._fails[i], self._fails[i] + self._passes[i])

    @property
    def runs(self) -> int:
        return sum(self._fails) + sum(self._passes)

    def _sides(self, fails: Sequence[int], passes: Sequence[int]):
        """Per hypothesis: (broken fails, broken passes, healthy fails, healthy passes)."""
        pf, pp = _prefix(fails), _prefix(passes)
        out = []
        for h in self._hyps:
            lo = (int(pf[h]), int(pp[h]))
            hi = (int(pf[-1] - pf[h]), int(pp[-1] - pp[h]))
            out.append(lo + hi if self._fix else hi + lo)
        return out

    def _log_masses(self, fails: Sequence[int], passes: Sequence[int]) -> list[float]:
        return [
            self._broken.log_mass(bf, bp) + self._healthy.log_mass(hf, hp)
            for bf, bp, hf, hp in self._sides(fails, passes)
        ]

    def _normalised(self, fails: Sequence[int], passes: Sequence[int]) -> list[float]:
        logs = self._log_masses(fails, passes)
        total = _logsumexp(logs)
        return [math.exp(m - total) for m in logs]

    def posterior(self) -> dict[str | None, float]:
        """Each hypothesis's probability by its first changed revision (None: no change)."""
        post = self._normalised(self._fails, self._passes)
        return {
            (self._revs[h] if h < len(self._revs) else None): p for h, p in zip(self._hyps, post)
        }

    def _expected_entropy(self, fails: Sequence[int], passes: Sequence[int]):
        """Per revision: the posterior's expected entropy after one more run of it, and
        the chance that run fails.  Exact one-step lookahead in O(revisions x grid)."""
        post = self._normalised(fails, passes)
        pb, ph = [], []
        for bf, bp, hf, hp in self._sides(fails, passes):
            pb.append(self._broken.fail_chance(bf, bp))
            ph.append(self._healthy.fail_chance(hf, hp))
        parts = {}
        for key, chance in (("b", pb), ("h", ph)):
            fail = [w * c for w, c in zip(post, chance)]
            ok = [w * (1.0 - c) for w, c in zip(post, chance)]
            parts[key] = [_prefix(v) for v in (fail, ok, map(_xlogx, fail), map(_xlogx, ok))]
        out = []
        cut = 0  # hypotheses [0, cut) have h <= j: revision j is on their changed side
        for j in range(len(self._revs)):
            while cut < len(self._hyps) and self._hyps[cut] <= j:
                cut += 1
            # a regression breaks j when h <= j; a fix leaves j broken when h > j
            lo, hi = ("h", "b") if self._fix else ("b", "h")
            sums = [pl[cut] + ph_[-1] - ph_[cut] for pl, ph_ in zip(parts[lo], parts[hi])]
            z_fail, z_ok, s_fail, s_ok = sums
            expected = _xlogx(z_fail) - s_fail + _xlogx(z_ok) - s_ok
            out.append((expected, z_fail))
        return out

    def next_steps(self, k: int = 1) -> list[str]:
        """Up to ``k`` revisions to run next, repeats allowed ([] once done), each minimising
        the posterior's expected entropy given every outcome of the earlier picks (weighted
        by its chance): the chain rule of information, greedily."""
        if k < 1:
            raise ValueError("k must be >= 1")
        if self.result().status != "pending":
            return []
        k = min(k, self._max_runs - self.runs)
        branches = [(1.0, list(self._fails), list(self._passes))]
        picks: list[str] = []
        for _ in range(k):
            scored = [(w, self._expected_entropy(f, p)) for w, f, p in branches]
            n = len(self._revs)
            score = [sum(w * ee[j][0] for w, ee in scored) for j in range(n)]
            pool = [x for x in range(n) if not self._is_untestable(x)]
            if not pool:
                break
            j = min(pool, key=lambda x: (score[x], abs(2 * x - n)))
            picks.append(self._revs[j])
            branches = _split(branches, scored, j)
        return picks

    def _groups(self, post: Sequence[float]) -> dict[int, tuple[list[int], float]]:
        """Key -> (hypotheses, probability): "changed at an untestable u" is "changed right
        after it" (nothing can tell them apart, as with git's skips), so they are one answer."""
        last = self._hyps[-1]
        groups: dict[int, tuple[list[int], float]] = {}
        for h, p in zip(self._hyps, post):
            key = h
            while key < last and self._is_untestable(key):
                key += 1
            members, total = groups.get(key, ([], 0.0))
            groups[key] = (members + [h], total + p)
        return groups

    def _is_untestable(self, i: int) -> bool:
        return i in self._untestable and self._fails[i] + self._passes[i] == 0

    def result(self) -> Finding:
        """The most likely answer and whether it is confident, out of budget or pending."""
        groups = self._groups(self._normalised(self._fails, self._passes))
        h, (members, p) = max(groups.items(), key=lambda g: (g[1][1], -g[0]))
        n, first = len(self._revs), members[0]
        named = 0 < h < n or (h == 0 and first != 0)
        if p >= self._confidence:
            status: Status = "confident" if named else "no culprit"
        else:
            status = "budget spent" if self.runs >= self._max_runs else "pending"
        if not named:
            why = f"no change up to {self._revs[-1]}" if h == n else f"changed at {self._revs[0]}"
            return Finding(status, None, p, self.runs, why=why)
        culprit, parent = self._revs[h], self._revs[first - 1] if first > 0 else None
        at_parent = self.tally(parent) if parent is not None else None
        between = tuple(self._revs[m] for m in members if m != h)
        return Finding(
            status, culprit, p, self.runs, self.tally(culprit), parent, at_parent, between=between
        )


def _split(branches, scored, j: int):
    """Every branch imagined both ways at revision j; the likeliest ``_MAX_BRANCHES`` kept."""
    out = []
    for (w, fails, passes), (_, ee) in zip(branches, scored):
        chance = ee[j][1]
        for failed, wo in ((True, chance), (False, 1.0 - chance)):
            if w * wo <= 1e-12:
                continue
            f, p = list(fails), list(passes)
            (f if failed else p)[j] += 1
            out.append((w * wo, f, p))
    out.sort(key=lambda b: -b[0])
    kept = out[:_MAX_BRANCHES]
    total = sum(b[0] for b in kept)
    return [(w / total, f, p) for w, f, p in kept]


def drive(
    search: CulpritSearch, observe: Callable[[list[str]], Sequence[bool | None]], k: int = 1
) -> Finding:
    """The whole loop: ``observe`` runs a batch, one outcome each (failed, passed, None for
    ``error``); an ``error`` on a revision never run makes it untestable, never a run."""
    while search.result().status == "pending":
        revs = search.next_steps(k)
        if not revs:  # only untestable revisions left
            break
        for revision, failed in zip(revs, observe(revs)):
            if failed is None:
                search.untestable(revision)
            else:
                search.record(revision, failed)
    return search.result()


@dataclass(frozen=True)
class CheckAnswer:
    """``--check`` from a few runs: pass (exit 0), fail (1) or cannot tell (125)."""

    verdict: Literal["pass", "fail", "cannot tell"]
    broken: float  # posterior that the target is broken
    tally: Tally

    @property
    def exit_status(self) -> int:
        return {"pass": 0, "fail": 1}.get(self.verdict, 125)

    def line(self) -> str:
        return f"{self.verdict}: broken at {self.broken:.2f}; {self.tally} runs failed"


def judge(
    fails: int, runs: int, confidence: float = 0.95, prior: Prior | None = None
) -> CheckAnswer:
    """Is one target broken, at ``confidence``, from ``fails`` out of ``runs``?  Even odds
    before any run; the rates are the prior's."""
    prior = prior or Prior()
    passes = runs - fails
    broken = _Grid(prior.rates).log_mass(fails, passes)
    healthy = _Grid(prior.false_rates).log_mass(fails, passes)
    total = _logsumexp([broken, healthy])
    if total == _NEG:
        raise ContradictoryRuns(f"{fails}/{runs} failing runs are impossible under this prior")
    p = math.exp(broken - total)
    verdict = "fail" if p >= confidence else "pass" if 1.0 - p >= confidence else "cannot tell"
    return CheckAnswer(verdict, p, Tally(fails, runs))


def passes_to_clear(confidence: float = 0.95, prior: Prior | None = None, limit: int = 1000) -> int:
    """How many passes in a row ``judge`` needs to say pass (``limit`` if never): what
    ``--check`` should plan for (a 5% race takes many to rule out)."""
    for runs in range(limit):
        if judge(0, runs, confidence, prior).verdict == "pass":
            return runs
    return limit
