"""One transition's commit bisection: the pure plan (model.search.plan) says what to
evaluate, the shared budget evaluates it. ``error``/``flaky`` are skips; a skipped commit is
re-tested with its repair picked on top, its whole stretch with it (git leaves that to a
human). ``History`` and ``Evaluator`` are what the jobs need from the world (real:
``host.git.Repo``, ``jobs.setup.Lab``; tests: in-memory fakes). ``--confidence P``
(``ConfidentBisector``), for racy scenarios: every run is one observation; the releases are
re-run until the transition is sure, then the mainline is tested where the posterior is
least sure until the likeliest first changed commit reaches P or ``--max-runs`` is spent.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Protocol

from packaging.version import InvalidVersion, Version

from harness.host.progress import Progress
from harness.jobs.budget import Budget
from harness.model import confidence, search
from harness.model.confidence import ContradictoryRuns, CulpritSearch
from harness.model.confidence import Finding as Estimate
from harness.model.errors import HarnessError
from harness.model.results import CommitInfo, Finding, Row, Step
from harness.model.search import (
    Outcome,
    Plan,
    Revision,
    ancestors,
    branch_of,
    first_parent_chain,
    plan,
    repair_line,
)
from harness.model.verdict import Axis, Verdict


class History(Protocol):
    spec: str

    def tag_for_version(self, version: str) -> str | None: ...

    def resolve(self, ref: str) -> str: ...

    def graph(self, old: str | Iterable[str], new: str) -> dict[str, tuple[str, ...]]: ...

    def is_ancestor(self, ancestor: str, sha: str) -> bool: ...

    def merge_bases(self, a: str, b: str) -> list[str]: ...

    def tags_containing(self, sha: str) -> list[str]: ...

    def version_at(self, sha: str) -> str | None: ...

    def info(self, sha: str) -> CommitInfo: ...

    def infos(self, shas: Iterable[str]) -> list[CommitInfo]: ...

    def web_url(self, sha: str) -> str | None: ...


class Evaluator(Protocol):
    """Evaluates one target in one deployment (by its label)."""

    package: str  # what the targets are releases and commits of: "gunicorn", or a --package

    def versions(self) -> Sequence[str]: ...  # the releases the package index knows

    def fetch(self, version: str) -> Any: ...  # a release's wheel, once for every deployment

    def fetch_ref(self, history: History, sha: str, label: str) -> Any: ...  # row ``label``

    def release(self, fetched: Any, deployment: str) -> Row: ...  # the newest Python that runs it

    def commit(
        self, history: History, sha: str, pick: str | None, deployment: str, python: str | None
    ) -> Step: ...  # ``pick`` on top, on the Python of the releases around it


def outcome(verdict: Verdict, axis: Axis, regression: bool) -> Outcome:
    """A commit's verdict on the transition's question (``regression``: False for a fix)."""
    state = axis.state(verdict)
    if state is None:
        return Outcome.SKIP
    return Outcome.OLD if state == regression else Outcome.NEW


@dataclass
class Bisector:
    history: History
    lab: Evaluator
    budget: Budget
    deployment: str
    python: str | None  # the Python that ran the release before the transition
    axis: Axis
    first_parent: bool = False
    progress: Progress = field(default_factory=Progress)
    picks: tuple[str, ...] = ()  # --pick: repairs applied from the start

    def run(self, before: str, after: str, regression: bool, older: Sequence[str] = ()) -> Finding:
        """Bisect ``before``..``after`` (``regression``: ``before`` is in the axis's old
        state). ``older``: the table's releases in ``before``'s state, newest first (see
        ``start_points``)."""
        kind = "regression" if regression else "fix"
        finding = Finding(
            kind, before, after, "skipped", first_parent=self.first_parent, axis=self.axis.key
        )
        tags = {v: self.history.tag_for_version(v) for v in (before, after)}
        missing = [v for v, t in tags.items() if t is None]
        if missing:
            finding.reason = f"no git tag for {', '.join(missing)} in {self.history.spec}"
            return finding
        old, new = self.history.resolve(tags[before]), self.history.resolve(tags[after])
        if not tags_agree(self.history, finding, {before: old, after: new}):
            return finding
        steps: dict[Revision, Step] = {}
        outcomes: dict[Revision, Outcome] = {}

        def judge(revs: Sequence[Revision]) -> list[Outcome]:
            for rev, step in zip(revs, self.budget.map(self._evaluate, revs)):
                steps[rev] = step
                outcomes[rev] = outcome(step.verdict, self.axis, regression)
            return [outcomes[r] for r in revs]

        by_sha = lambda shas: judge([Revision(sha) for sha in shas])  # noqa: E731
        olds = start_points(self.history, finding, old, new, older, by_sha)
        if olds is None:
            finding.steps = list(steps.values())
            return finding
        parents = self.history.graph(olds, new)
        outcomes = {p: o for p, o in outcomes.items() if p.sha in parents}
        picks = given_picks(self.history, finding, self.picks, olds)
        where = f"{kind} {before}..{after}"
        while not (
            p := plan(parents, olds, new, outcomes, self.budget.jobs, self.first_parent, picks)
        ).done:
            self._say(where, p)
            judge(p.todo)
            self.progress.advance(len(p.todo))
        finding.steps = list(steps.values())
        return self._conclude(finding, p, parents, new)

    def _say(self, where: str, p: Plan) -> None:
        shas = ", ".join(
            t.sha[:10] + (f" with {t.pick[:10]} on top" if t.pick else "") for t in p.todo
        )
        self.progress(
            f"{where}: {p.left} revisions left to test (roughly {p.steps_left} steps); "
            f"testing {shas}"
        )

    def _evaluate(self, rev: Revision) -> Step:
        return by_evidence(self.lab, self.history, rev.sha, rev.pick, self.deployment, self.python)

    def _conclude(self, finding: Finding, p: Plan, parents, new: str) -> Finding:
        if p.status == "found" and p.commit:
            finding.status = "found"
            finding.commit = self.history.info(p.commit)
            finding.url = self.history.web_url(p.commit)
            via = search.merged_via(parents, p.commit, new)
            finding.merge = self.history.info(via) if via else None
            finding.needed = list(p.needed)
        elif p.status == "ambiguous":
            finding.status = "ambiguous"
            finding.candidates = self.history.infos(p.candidates)
            why = "; ".join(_untestable(sha, finding.steps) for sha in p.candidates[:-1])
            finding.reason = (
                f"only untestable commits separate the boundary ({why}); "
                "the first could be any of the candidates"
            )
        elif p.status == "inconsistent":
            finding.status = "inconsistent"
            finding.reason = (
                f"verdicts contradict each other ({p.reason}); "
                "the bug may be flaky here: try --repeat 5"
            )
        else:
            finding.reason = "the search ended without a boundary (inconsistent verdicts?)"
        return finding


def _untestable(sha: str, steps: list[Step]) -> str:
    """Why a candidate could not tell: each way it was tried, and what that said."""
    tried = [
        f"{s.verdict.value} with {s.picked[:10]} on top" if s.picked else f"{s.verdict.value} alone"
        for s in steps
        if s.sha == sha
    ]
    return f"{sha[:10]}: {', '.join(tried) or 'not tested'}"


def start_points(
    history: History,
    finding: Finding,
    old: str,
    new: str,
    older: Sequence[str],
    judge: Callable[[list[str]], list[Outcome]],
) -> list[str] | None:
    """Where the bisection starts, as ``git bisect`` does with several good commits: ``old``
    when it is in ``new``'s history; else their merge bases once ``judge`` has them in
    ``old``'s state; else the newest release of ``older`` in ``new``'s history; else None.
    The finding says which was taken, or why there is none."""
    if history.is_ancestor(old, new):
        return [old]
    before, after = finding.before, finding.after
    said = f"{before} is not in {after}'s history (a maintenance release?)"
    bases = history.merge_bases(old, new)
    if bases:
        told = judge(bases)
        names = ", ".join(b[:12] for b in bases)
        if all(o is Outcome.OLD for o in told):
            finding.notes.append(
                f"{said}: bisected from their merge base {names}, tested like {before}"
            )
            return bases
        states = {Outcome.NEW: f"like {after}", Outcome.SKIP: "untestable"}
        why = "; ".join(
            f"their merge base {b[:12]} is {states[o]}" for b, o in zip(bases, told) if o in states
        )
    else:
        why = "they share no history"
    for version in older:
        tag = history.tag_for_version(version)
        sha = history.resolve(tag) if tag else None
        if sha is not None and history.is_ancestor(sha, new):
            finding.notes.append(
                f"{said}; {why}: bisected from {version}, the newest release like {before} "
                f"in {after}'s history"
            )
            return [sha]
    finding.reason = f"{said}; {why}; and no release like {before} of the table is in its history"
    return None


def given_picks(
    history: History, finding: Finding, picks: Sequence[str], olds: Sequence[str]
) -> tuple[str, ...]:
    """The ``--pick`` commits this range needs (one already in the older side is dropped);
    the finding's notes say what was applied."""
    kept = []
    for pick in picks:
        if any(history.is_ancestor(pick, o) for o in olds):
            finding.notes.append(f"--pick {pick[:12]} is already in {finding.before}: not applied")
        else:
            kept.append(pick)
            finding.notes.append(
                f"--pick {pick[:12]}: picked on top of every commit tested without it"
            )
    return tuple(kept)


def tags_agree(history: History, finding: Finding, commits: dict[str, str]) -> bool:
    """Each release's tag names a commit declaring that version; else the finding says which
    does not (a moved or rewritten tag). A git ref's row is its commit by definition."""
    for version, sha in commits.items():
        try:
            wanted = Version(version)
        except InvalidVersion:
            continue  # a git ref the user named, not a release the tag stands for
        declared = history.version_at(sha)
        try:
            same = declared is None or Version(declared) == wanted
        except InvalidVersion:
            same = declared == version
        if not same:
            finding.reason = (
                f"the tag of {version} names {sha[:12]}, whose gunicorn/__init__.py says "
                f"{declared}: a moved or rewritten tag? (not bisected)"
            )
            return False
    return True


#: what an ``error`` says when the interpreter, not the commit, may be the trouble
_INTERPRETER_TROUBLE = ("cannot boot on Python", "install failed", "SyntaxError", "ImportError")
_INTERPRETER_TROUBLE += ("ModuleNotFoundError", "AttributeError: module")


def by_evidence(
    lab: Evaluator,
    history: History,
    sha: str,
    pick: str | None,
    deployment: str,
    python: str | None,
) -> Step:
    """A commit on its pair's Python; when it cannot boot there for a reason another Python
    may not share (an import, the install), again on the newest that boots it, as releases
    are. The step says which Python ran it."""
    step = lab.commit(history, sha, pick, deployment, python)
    if step.verdict is not Verdict.ERROR or pick is not None or python is None:
        return step
    if not any(word in step.detail for word in _INTERPRETER_TROUBLE):
        return step
    try:
        row = lab.release(lab.fetch_ref(history, sha, sha[:10]), deployment)
    except HarnessError:  # --python names the one interpreter to use: no other is tried
        return step
    if row.python in (None, python):
        return step  # no other interpreter boots it: untestable, as first seen
    detail = f"{row.detail} (on Python {row.python}: {python} could not run it: {step.detail})"
    return replace(step, verdict=row.verdict, python=row.python, detail=detail)


DEFAULT_MAX_RUNS = 60


@dataclass(frozen=True)
class Confidence:
    """What ``--confidence`` and ``--max-runs`` asked for (per finding)."""

    level: float
    max_runs: int = DEFAULT_MAX_RUNS


def changed(verdict: Verdict, axis: Axis) -> bool | None:
    """One run: True in the axis's new state, False in its old, None when it cannot tell."""
    state = axis.state(verdict)
    return None if state is None else not state


def row_runs(row: Row | None, axis: Axis) -> list[bool]:
    """A release row's runs as observations (``--repeat`` runs each count)."""
    if row is None:
        return []
    verdicts = [Verdict(v) for v in row.runs] or [row.verdict]
    return [c for c in (changed(v, axis) for v in verdicts) if c is not None]


def drive(
    search: CulpritSearch,
    budget: Budget,
    run: Callable[[str], Verdict],
    axis: Axis,
    say: Callable[[Sequence[str]], None] = lambda revs: None,
) -> Estimate:
    """The model's loop with each batch of ``-j`` steps run from the one budget."""

    def observe(revs: list[str]) -> list[bool | None]:
        say(revs)
        # a revision never run yet runs once first (it may not boot), again if it did
        once = [i for i, p in enumerate(revs) if search.tally(p).runs or p not in revs[:i]]
        out: list[bool | None] = [None] * len(revs)
        for i, v in zip(once, budget.map(run, [revs[i] for i in once])):
            out[i] = changed(v, axis)
        booted = {revs[i] for i in once if out[i] is not None}
        later = [i for i, p in enumerate(revs) if i not in once and p in booted]
        for i, v in zip(later, budget.map(run, [revs[i] for i in later])):
            out[i] = changed(v, axis)
        return out

    return confidence.drive(search, observe, budget.jobs)


@dataclass
class ConfidentBisector:
    """Releases then commits of one transition, each step decided at ``want.level``."""

    history: History
    lab: Evaluator
    budget: Budget
    deployment: str
    python: str | None
    axis: Axis
    want: Confidence
    before_row: Row | None = None
    after_row: Row | None = None
    progress: Progress = field(default_factory=Progress)
    steps: list[Step] = field(default_factory=list)
    picks: dict[str, str | None] = field(default_factory=dict)  # healed: sha -> change on top
    given: tuple[str, ...] = ()  # --pick: on top of every commit without it
    notes: list[str] = field(default_factory=list)
    merged: str | None = None  # the merge whose branch commits were searched
    _boots: dict[str, bool] = field(default_factory=dict)  # tested alone: could it tell?

    def run(self, before: str, after: str, regression: bool, older: Sequence[str] = ()) -> Finding:
        kind = "regression" if regression else "fix"
        finding = Finding(kind, before, after, "skipped", first_parent=True, axis=self.axis.key)
        tags = {v: self.history.tag_for_version(v) for v in (before, after)}
        missing = [v for v, t in tags.items() if t is None]
        if missing:
            finding.reason = f"no git tag for {', '.join(missing)} in {self.history.spec}"
            return finding
        try:
            releases = self._releases(before, after, kind)
            if releases.culprit != after or releases.status != "confident":
                return self._no_commit(finding, releases, "the release transition")
            old, new = self.history.resolve(tags[before]), self.history.resolve(tags[after])
            if not tags_agree(self.history, finding, {before: old, after: new}):
                return finding
            judged: dict[str, bool | None] = {}

            def judge(shas: list[str]) -> list[Outcome]:
                for sha, verdict in zip(shas, self.budget.map(self._commit, shas)):
                    judged[sha] = changed(verdict, self.axis)
                told = [judged[sha] for sha in shas]
                new_side = {None: Outcome.SKIP, regression: Outcome.NEW}
                return [new_side.get(c, Outcome.OLD) for c in told]

            olds = start_points(self.history, finding, old, new, older, judge)
            if olds is None:
                finding.steps = list(self.steps)
                return finding
            start = (olds[0], releases.at_parent if olds == [old] else None, judged)
            commits = self._commits(start, new, kind, releases, (before, after))
        except ContradictoryRuns as exc:
            finding.status, finding.reason = "inconsistent", str(exc)
            finding.steps = list(self.steps)
            return finding
        finding.steps = list(self.steps)
        return self._conclude(finding, commits)

    def _search(
        self, revs: list[str], kind: str, known=(), level=None, bounds=True
    ) -> CulpritSearch:
        """A search over ``revs`` at ``level``, given the runs ``known`` (sha, tally or None)."""
        want = level or self.want.level
        s = CulpritSearch(revs, None, want, self.want.max_runs, kind == "fix", bounds)
        for sha, tally in known:
            if tally is not None:
                s.record(sha, True, tally.fails)
                s.record(sha, False, tally.runs - tally.fails)
        return s

    def _releases(self, before: str, after: str, kind: str) -> Estimate:
        """Is the transition real? (the answer may be "no change": noise, or "changed
        already at ``before``")"""
        s = self._search([before, after], kind, bounds=False)
        for version, row in ((before, self.before_row), (after, self.after_row)):
            for failed in row_runs(row, self.axis):
                s.record(version, failed)
        fetched = {v: self.lab.fetch(v) for v in (before, after)}

        def run(version: str) -> Verdict:
            return self.lab.release(fetched[version], self.deployment).verdict

        where = f"{kind} {before}..{after}"
        return drive(
            s, self.budget, run, self.axis, lambda p: self.progress(f"{where}: re-running {p}")
        )

    def _commits(self, start, new: str, kind: str, releases: Estimate, labels) -> Estimate:
        """The mainline from ``start`` (a commit, its release's tally or None, the start
        points' single runs) to ``new``, seeded with the releases' runs."""
        old, old_tally, judged = start
        graph = self.history.graph(old, new)
        chain = [c for c in first_parent_chain(graph, new) if c in graph]
        revs = [old, *reversed(chain)]
        finding = Finding("", labels[0], labels[1], "")
        for pick in given_picks(self.history, finding, self.given, [old]):
            for rev in revs[1:]:
                if rev != new and not (pick in graph and pick in ancestors(graph, rev)):
                    self.picks.setdefault(rev, pick)
        self.notes += finding.notes
        s = self._search(revs, kind, ((old, old_tally), (new, releases.here)))
        if old_tally is None and judged.get(old) is not None:
            s.record(old, judged[old])
        where = f"{kind} {labels[0]}..{labels[1]}"

        def say(revs: Sequence[str]) -> None:
            top = s.result()
            self.progress(
                f"{where}: {top.culprit and top.culprit[:10]} at {top.posterior:.2f} after "
                f"{top.runs} runs; testing {', '.join(p[:10] for p in revs)}"
            )

        self._boots.update({old: True, new: True})  # their releases ran
        est = self._drive_healing(s, revs, say)
        while heal := [u for u in est.between if u not in self.picks]:
            est = self._heal(s, heal, est.culprit, say)
        if est.culprit in graph and branch_of(graph, est.culprit) and est.status == "confident":
            return self._branch(graph, est, kind, where)
        return est

    def _branch(self, graph, est: Estimate, kind: str, where: str) -> Estimate:
        """The mainline names a merge: its branch's commits decide which one (where the
        branch's base cannot be tested, with the mainline's repair on top); the posterior
        is the mainline's times the branch's, never more."""
        merge = est.culprit
        assert merge is not None
        first, branch = graph[merge][0], branch_of(graph, merge)
        self.merged = merge
        level = min(self.want.level / max(est.posterior, 1e-9), 0.999)
        known = ((first, est.at_parent), (merge, est.here))
        s = self._search([first, *branch, merge], kind, known, level)
        where = f"{where} (branch of {merge[:10]})"

        def say(revs: Sequence[str]) -> None:
            self.progress(f"{where}: testing {', '.join(p[:10] for p in revs)}")

        inner = drive(s, self.budget, self._commit, self.axis, say)
        broken = [b for b in branch if self._boots.get(b) is False and b not in self.picks]
        line = repair_line(graph, broken[0], merge) if broken else None
        repair = self._repair(line, broken[0]) if line else None
        if repair is not None:
            self.progress(f"{where}: re-testing {len(broken)} commit(s) with {repair[:10]} on top")
            self.picks.update({b: repair for b in broken})
            self._observe(s, broken)
            inner = drive(s, self.budget, self._commit, self.axis, say)
        posterior = inner.posterior * est.posterior
        status = inner.status
        if status == "confident" and posterior < self.want.level:
            status = "budget spent" if s.runs >= self.want.max_runs else "pending"
        return replace(inner, posterior=posterior, status=status)

    def _drive_healing(self, s: CulpritSearch, revs: list[str], say) -> Estimate:
        """``drive``, healing as a search: for a commit that cannot boot alone, its repair
        (the first later commit that boots, bisected) is picked on top of every commit up
        to it, so a long stretch costs a bisection, not a run each."""
        while s.result().status == "pending":
            batch = s.next_steps(self.budget.jobs)
            if not batch:
                break
            # a commit never run yet runs once first: it may not boot at all
            batch = [p for i, p in enumerate(batch) if s.tally(p).runs or p not in batch[:i]]
            say(batch)
            for rev in dict.fromkeys(self._observe(s, batch)):
                if rev in self.picks or not self._stretch(s, revs, rev):
                    s.untestable(rev)
        return s.result()

    def _stretch(self, s: CulpritSearch, revs: list[str], rev: str) -> bool:
        """Find ``rev``'s repair along ``revs`` and pick it on top of the stretch."""
        i = revs.index(rev)
        j = next((x for x in range(i + 1, len(revs)) if self._boots.get(revs[x])), None)
        if j is None:
            return False
        repair = self._repair(revs[i : j + 1], rev, s)
        if repair is None:
            return False
        start = i
        while start > 0 and self._boots.get(revs[start - 1]) is False:
            start -= 1  # commits before it that could not boot either: the same stretch
        for r in revs[start : revs.index(repair)]:
            if r not in self.picks:
                self.picks[r] = repair
                s.untestable(r, still=False)
        self.progress(f"{rev[:10]} and its stretch: tested with {repair[:10]} picked on top")
        return True

    def _repair(self, line: list[str], skipped: str, s: CulpritSearch | None = None) -> str | None:
        """The repair of ``skipped``: the first commit of ``line`` that boots after the last
        that does not, bisected, one plain run a commit (recorded in ``s``)."""
        while True:
            boots = [self._boots.get(c) for c in line]
            hi = next((i for i, b in enumerate(boots) if b), None)
            if hi is None:
                return None
            lo = max((i for i in range(hi) if boots[i] is False), default=-1)
            gap = [i for i in range(lo + 1, hi) if boots[i] is None]
            if not gap:
                return line[hi] if lo >= 0 else None
            rev = line[gap[len(gap) // 2]] if lo >= 0 or gap[0] != 0 else line[0]
            self.progress(f"looking for the repair of {skipped[:10]}: testing {rev[:10]}")
            (verdict,) = self.budget.map(lambda sha: self._run(sha, None), [rev])
            if s is not None and (failed := changed(verdict, self.axis)) is not None:
                s.record(rev, failed)

    def _heal(self, s: CulpritSearch, heal: list[str], culprit: str | None, say) -> Estimate:
        """Untestable commits just before the likeliest culprit, run once more with the
        culprit on top (as plain bisection heals); those that then boot count."""
        self.progress(f"re-testing {len(heal)} untestable commit(s) with {culprit} on top")
        self.picks.update({u: culprit for u in heal})
        self._observe(s, heal)
        return drive(s, self.budget, self._commit, self.axis, say)

    def _observe(self, s: CulpritSearch, revs: list[str]) -> list[str]:
        """Run ``revs`` (each with its pick) into ``s``; returns those that could not tell."""
        verdicts = self.budget.map(self._commit, revs)
        told = [(rev, changed(v, self.axis)) for rev, v in zip(revs, verdicts)]
        for rev, failed in told:
            if failed is not None:
                s.record(rev, failed)
        return [rev for rev, failed in told if failed is None]

    def _commit(self, sha: str) -> Verdict:
        return self._run(sha, self.picks.get(sha))

    def _run(self, sha: str, pick: str | None) -> Verdict:
        step = by_evidence(self.lab, self.history, sha, pick, self.deployment, self.python)
        if pick is None:
            self._boots[sha] = changed(step.verdict, self.axis) is not None
        self.steps.append(step)
        self.progress.advance()
        return step.verdict

    def _line(self, est: Estimate) -> str:
        """``est.line()`` with commits by their short names, releases as they are."""
        short = lambda rev: rev[:10] if rev and len(rev) == 40 else rev  # noqa: E731
        between = tuple(short(b) for b in est.between)
        return replace(
            est, culprit=short(est.culprit), parent=short(est.parent), between=between
        ).line()

    def _no_commit(self, finding: Finding, est: Estimate, what: str) -> Finding:
        finding.steps = list(self.steps)
        finding.estimate = asdict(est)
        finding.status = "no culprit" if est.status == "no culprit" else "uncertain"
        finding.reason = f"{what} is not settled at {self.want.level}: {self._line(est)}"
        return finding

    def _conclude(self, finding: Finding, est: Estimate) -> Finding:
        finding.estimate = asdict(est)
        if est.culprit is None:
            return self._no_commit(finding, est, "the commit range")
        finding.notes += self.notes
        if est.between:  # untestable commits beside it: the set is the answer, not one
            finding.status = "ambiguous"
            finding.candidates = self.history.infos([*est.between, est.culprit])
            finding.reason = (
                f"the first changed commit at {self.want.level} could be any of these, "
                f"as untestable commits come before it: {self._line(est)}"
            )
            return finding
        finding.commit = self.history.info(est.culprit)
        finding.url = self.history.web_url(est.culprit)
        if self.merged and self.merged != est.culprit:
            finding.merge = self.history.info(self.merged)
        if self.picks.get(est.culprit):
            finding.needed = [self.picks[est.culprit]]
        if est.status == "confident":
            finding.status = "found"
            finding.reason = self._line(est)
        else:
            finding.status = "uncertain"
            finding.reason = f"not settled at {self.want.level}: {self._line(est)}"
        return finding
