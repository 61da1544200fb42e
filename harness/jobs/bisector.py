"""One transition's commit bisection: ask the pure plan (model.plan) what to evaluate,
evaluate it within the shared budget, feed the outcomes back, and name the commit.

``error``/``flaky`` are skips, never pass or fail.  When only skipped commits separate
the boundary, the plan re-tests each with the change of the first testable commit after
it picked on top (git's own "skip" leaves that to a human); a commit is named only when
the boundary is then one commit wide.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from harness.host.progress import Progress
from harness.jobs.budget import Budget
from harness.jobs.protocols import Evaluator, History
from harness.model import search
from harness.model.plan import Plan, Probe, plan
from harness.model.results import Finding, Step
from harness.model.search import Outcome
from harness.model.verdict import Axis, Verdict


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

    def run(self, before: str, after: str, old_is_pass: bool) -> Finding:
        """Bisect ``before``..``after``; ``old_is_pass`` says ``before`` is in the axis's
        old state (a regression) rather than its new one (a fix)."""
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
        parents = self.history.graph(old, new)
        steps: dict[Probe, Step] = {}
        outcomes: dict[Probe, Outcome] = {}
        where = f"{kind} {before}..{after}"
        while not (
            p := plan(parents, old, new, outcomes, self.budget.jobs, self.first_parent)
        ).done:
            self._say(where, p)
            for probe, step in zip(p.todo, self.budget.map(self._evaluate, p.todo)):
                steps[probe] = step
                outcomes[probe] = outcome(step.verdict, self.axis, old_is_pass)
                self.progress.advance()
        finding.steps = list(steps.values())
        return self._conclude(finding, p, parents, new)

    def _say(self, where: str, p: Plan) -> None:
        shas = ", ".join(t.sha[:10] for t in p.todo)
        if p.todo[0].heal:
            self.progress(
                f"{where}: re-testing {len(p.todo)} untestable commit(s) with the next "
                "testable change picked on top"
            )
        else:
            self.progress(
                f"{where}: {p.left} revisions left to test (roughly {p.steps_left} steps); "
                f"testing {shas}"
            )

    def _evaluate(self, probe: Probe) -> Step:
        return self.lab.commit(self.history, probe.sha, probe.pick, self.column, self.python)

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
            finding.reason = (
                "only untestable commits separate the boundary; "
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
