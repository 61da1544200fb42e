"""``--confidence P``: one transition decided by the flake-aware search (model.confidence)
instead of plain bisection, for scenarios whose verdicts are races.

Why a second driver beside ``bisector.Bisector``: plain bisection trusts one run and
skips a ``flaky`` target; here every run is one observation, the two releases are
re-run until the transition itself is sure (it may be noise), then the mainline between
them is probed where the posterior is least sure, all from the one ``-j`` budget, until
the likeliest first changed commit reaches P or ``--max-runs`` is spent.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace

from harness.host.progress import Progress
from harness.jobs.bisector import start_points
from harness.jobs.budget import Budget
from harness.jobs.protocols import Evaluator, History
from harness.model import confidence
from harness.model.confidence import ContradictoryRuns, CulpritSearch
from harness.model.confidence import Finding as Estimate
from harness.model.results import Finding, Row, Step
from harness.model.search import Outcome, first_parent_chain
from harness.model.verdict import Axis, Verdict

DEFAULT_MAX_RUNS = 60


@dataclass(frozen=True)
class Confidence:
    """What ``--confidence`` and ``--max-runs`` asked for (per finding)."""

    level: float
    max_runs: int = DEFAULT_MAX_RUNS


def changed(verdict: Verdict, axis: Axis) -> bool | None:
    """One run on the search's question: True in the axis's new state, False in its old
    one, None when it cannot tell (``error``, ``flaky``, another axis's state)."""
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
    say: Callable[[Sequence[str]], None] = lambda probes: None,
) -> Estimate:
    """The model's loop with each batch of ``-j`` probes run from the one budget."""

    def observe(probes: list[str]) -> list[bool | None]:
        say(probes)
        return [changed(v, axis) for v in budget.map(run, probes)]

    return confidence.drive(search, observe, budget.jobs)


@dataclass
class ConfidentBisector:
    """Releases then commits of one transition, each step decided at ``want.level``."""

    history: History
    lab: Evaluator
    budget: Budget
    column: str
    python: str | None
    axis: Axis
    want: Confidence
    before_row: Row | None = None
    after_row: Row | None = None
    progress: Progress = field(default_factory=Progress)
    steps: list[Step] = field(default_factory=list)
    picks: dict[str, str | None] = field(default_factory=dict)  # healed: sha -> change on top

    def run(self, before: str, after: str, old_is_pass: bool, older: Sequence[str] = ()) -> Finding:
        kind = "regression" if old_is_pass else "fix"
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
            judged: dict[str, bool | None] = {}

            def judge(shas: list[str]) -> list[Outcome]:
                for sha, verdict in zip(shas, self.budget.map(self._commit, shas)):
                    judged[sha] = changed(verdict, self.axis)
                told = [judged[sha] for sha in shas]
                new_side = {None: Outcome.SKIP, old_is_pass: Outcome.NEW}
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

    def _search(self, revs: Sequence[str], kind: str, bounds_known: bool) -> CulpritSearch:
        return CulpritSearch(
            revs, None, self.want.level, self.want.max_runs, kind == "fix", bounds_known
        )

    def _releases(self, before: str, after: str, kind: str) -> Estimate:
        """Is the transition real?  Without known bounds the search may answer "no
        change" (the table's transition was noise) or "changed already at ``before``"."""
        s = self._search([before, after], kind, bounds_known=False)
        for version, row in ((before, self.before_row), (after, self.after_row)):
            for failed in row_runs(row, self.axis):
                s.record(version, failed)
        fetched = {v: self.lab.fetch(v) for v in (before, after)}

        def run(version: str) -> Verdict:
            return self.lab.release(fetched[version], self.column).verdict

        where = f"{kind} {before}..{after}"
        return drive(
            s, self.budget, run, self.axis, lambda p: self.progress(f"{where}: re-running {p}")
        )

    def _commits(self, start, new: str, kind: str, releases: Estimate, labels) -> Estimate:
        """The mainline from ``start`` (a commit, its release's tally or None, and the
        single runs of the start points) to ``new``, seeded with the releases' runs."""
        old, old_tally, judged = start
        graph = self.history.graph(old, new)
        chain = [c for c in first_parent_chain(graph, new) if c in graph]
        revs = [old, *reversed(chain)]
        s = self._search(revs, kind, bounds_known=True)
        for sha, tally in ((old, old_tally), (new, releases.here)):
            if tally is not None:
                s.record(sha, True, tally.fails)
                s.record(sha, False, tally.runs - tally.fails)
        if old_tally is None and judged.get(old) is not None:
            s.record(old, judged[old])
        where = f"{kind} {labels[0]}..{labels[1]}"

        def say(probes: Sequence[str]) -> None:
            top = s.result()
            self.progress(
                f"{where}: {top.culprit and top.culprit[:10]} at {top.posterior:.2f} after "
                f"{top.runs} runs; testing {', '.join(p[:10] for p in probes)}"
            )

        est = drive(s, self.budget, self._commit, self.axis, say)
        while heal := [u for u in est.between if u not in self.picks]:
            est = self._heal(s, heal, est.culprit, say)
        return est

    def _heal(self, s: CulpritSearch, heal: list[str], culprit: str | None, say) -> Estimate:
        """Untestable commits just before the likeliest culprit: each run once with the
        culprit's change picked on top (as plain bisection heals); those that then boot
        count with their runs, and the search goes on."""
        self.progress(f"re-testing {len(heal)} untestable commit(s) with {culprit} on top")
        self.picks.update({u: culprit for u in heal})
        for u, verdict in zip(heal, self.budget.map(self._commit, heal)):
            if (failed := changed(verdict, self.axis)) is not None:
                s.record(u, failed)
        return drive(s, self.budget, self._commit, self.axis, say)

    def _commit(self, sha: str) -> Verdict:
        pick = self.picks.get(sha)
        step = self.lab.commit(self.history, sha, pick, self.column, self.python)
        self.steps.append(step)
        self.progress.advance()
        return step.verdict

    def _line(self, est: Estimate) -> str:
        """``est.line()`` with commits by their short names, releases as they are."""

        def short(rev: str | None) -> str | None:
            return rev[:10] if rev and len(rev) == 40 else rev

        named = replace(
            est,
            culprit=short(est.culprit),
            parent=short(est.parent),
            between=tuple(short(b) or b for b in est.between),
        )
        return named.line()

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
        finding.commit = self.history.info(est.culprit)
        finding.url = self.history.web_url(est.culprit)
        if self.picks.get(est.culprit):
            finding.needed = [self.picks[est.culprit]]
        if est.status == "confident":
            finding.status = "found"
            finding.reason = self._line(est)
        else:
            finding.status = "uncertain"
            finding.reason = f"not settled at {self.want.level}: {self._line(est)}"
        return finding
