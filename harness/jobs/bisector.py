"""One transition's commit bisection: ask the pure plan (model.plan) what to evaluate,
evaluate it within the shared budget, feed the outcomes back, and name the commit.

``error``/``flaky`` are skips, never pass or fail.  A skipped commit is re-tested with
its repair picked on top, and its whole stretch with it (model.plan: healing as a
search; git's own "skip" leaves that to a human); a commit is named only when the
boundary is then one commit wide.  Where the bisection starts follows git with several
good commits (``start_points``); each commit runs on its pair's Python, or by evidence
on another (``by_evidence``); a tag must name its release's code (``tags_agree``).

What the jobs need from the world, as two small protocols: a git ``History`` and an
``Evaluator`` of targets.  The real ones are ``host.git.Repo`` and ``jobs.setup.Lab``;
tests pass an in-memory history and a fake lab, so the orchestration (release table,
commit bisection, healing, ``--check``, interrupts) runs in milliseconds.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from packaging.version import InvalidVersion, Version

from harness.host.progress import Progress
from harness.jobs.budget import Budget
from harness.model import search
from harness.model.errors import HarnessError
from harness.model.plan import Plan, Probe, plan
from harness.model.results import CommitInfo, Finding, Row, Step
from harness.model.search import Outcome
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
    """Evaluates one target in one column (a deployment, by its label)."""

    #: what the targets are releases and commits of: "gunicorn", or a --package
    package: str

    def versions(self) -> Sequence[str]:
        """The releases the package index knows."""
        ...

    def fetch(self, version: str) -> Any:
        """What ``release`` evaluates (the wheel), fetched once for every column."""
        ...

    def fetch_ref(self, history: History, sha: str, label: str) -> Any:
        """A git ref (or commit), to be built from ``history``; its row is ``label``."""
        ...

    def release(self, fetched: Any, column: str) -> Row:
        """A fetched release or git ref, on the newest Python that runs it."""
        ...

    def commit(
        self, history: History, sha: str, pick: str | None, column: str, python: str | None
    ) -> Step:
        """A commit (with ``pick`` on top) on the Python that ran the releases around it."""
        ...


def outcome(verdict: Verdict, axis: Axis, old_is_old: bool) -> Outcome:
    """A commit's verdict on the transition's question: ``old_is_old`` is False for a
    fix, where the older release is in the axis's new state."""
    state = axis.state(verdict)
    if state is None:
        return Outcome.SKIP
    return Outcome.OLD if state == old_is_old else Outcome.NEW


@dataclass
class Bisector:
    history: History
    lab: Evaluator
    budget: Budget
    column: str
    python: str | None  # the Python that ran the release before the transition
    axis: Axis
    first_parent: bool = False
    progress: Progress = field(default_factory=Progress)
    picks: tuple[str, ...] = ()  # --pick: repairs applied from the start

    def run(self, before: str, after: str, old_is_pass: bool, older: Sequence[str] = ()) -> Finding:
        """Bisect ``before``..``after``; ``old_is_pass`` says ``before`` is in the axis's
        old state (a regression) rather than its new one (a fix).  ``older``: releases
        of the table in ``before``'s state, newest first, to start from when ``before``
        is not in ``after``'s history and their merge base is not in that state."""
        kind = "regression" if old_is_pass else "fix"
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
        steps: dict[Probe, Step] = {}
        outcomes: dict[Probe, Outcome] = {}

        def judge(shas: list[str]) -> list[Outcome]:
            probes = [Probe(sha) for sha in shas]
            for probe, step in zip(probes, self.budget.map(self._evaluate, probes)):
                steps[probe] = step
                outcomes[probe] = outcome(step.verdict, self.axis, old_is_pass)
            return [outcomes[p] for p in probes]

        olds = start_points(self.history, finding, old, new, older, judge)
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
            for probe, step in zip(p.todo, self.budget.map(self._evaluate, p.todo)):
                steps[probe] = step
                outcomes[probe] = outcome(step.verdict, self.axis, old_is_pass)
                self.progress.advance()
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

    def _evaluate(self, probe: Probe) -> Step:
        return by_evidence(self.lab, self.history, probe.sha, probe.pick, self.column, self.python)

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
    """Where the bisection of ``finding`` starts, as ``git bisect`` does with several
    good commits: ``old`` itself when it is in ``new``'s history; else their merge bases
    once ``judge`` has them in ``old``'s state; else the newest release of ``older`` in
    ``new``'s history.  None (the finding says why) when there is none; the finding's
    notes say which was taken."""
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
    """The ``--pick`` commits this range needs: one already in the older side's history
    changes nothing there and is dropped; the finding's notes say what was applied."""
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
    """Each release's tag names a commit that declares that release's version; else the
    finding says which does not (a moved or rewritten tag) and nothing is bisected."""
    for version, sha in commits.items():
        declared = history.version_at(sha)
        try:
            same = declared is None or Version(declared) == Version(version)
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
    lab: Evaluator, history: History, sha: str, pick: str | None, column: str, python: str | None
) -> Step:
    """A commit on its pair's Python; when it cannot boot there for a reason an older
    or newer interpreter may not share (an import, the install), once more on the
    newest Python that boots it, as releases are.  The step says which Python ran it."""
    step = lab.commit(history, sha, pick, column, python)
    if step.verdict is not Verdict.ERROR or pick is not None or python is None:
        return step
    if not any(word in step.detail for word in _INTERPRETER_TROUBLE):
        return step
    try:
        row = lab.release(lab.fetch_ref(history, sha, sha[:10]), column)
    except HarnessError:  # --python names the one interpreter to use: no other is tried
        return step
    if row.python in (None, python):
        return step  # no other interpreter boots it: untestable, as first seen
    detail = f"{row.detail} (on Python {row.python}: {python} could not run it: {step.detail})"
    return replace(step, verdict=row.verdict, python=row.python, detail=detail)
