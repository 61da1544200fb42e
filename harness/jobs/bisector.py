"""Commit bisection between two releases: drive the pure search with real evaluations.

The search (harness.search) proposes commits; this module builds them, runs the
scenario and feeds verdicts back.  ``error``/``flaky`` are skips, never pass or fail.
When only skipped commits separate the boundary, each is re-tested with the change of
the first testable commit after it picked on top (git's own "skip" leaves that to a
human); a commit is named only when the boundary is then one commit wide.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from harness.build import commit_wheels
from harness.build.interpreters import Interpreter
from harness.build.wheels import ArtifactError
from harness.host.git import Repo, SourceError
from harness.host.progress import Progress
from harness.jobs.evaluate import Runner
from harness.model import search
from harness.model.results import Finding, Row, Step
from harness.model.search import Outcome
from harness.model.verdict import Axis, Verdict


def _outcome(verdict: Verdict, axis: Axis, old_is_old: bool) -> Outcome:
    """A commit's verdict on the transition's question: ``old_is_old`` is False for a
    fix, where the older release is in the axis's new state."""
    state = axis.state(verdict)
    if state is None:
        return Outcome.SKIP
    return Outcome.OLD if state == old_is_old else Outcome.NEW


@dataclass
class CommitBisector:
    repo: Repo
    runner: Runner
    cache_dir: Path
    interpreter: Interpreter | None
    axis: Axis
    jobs: int = 1
    first_parent: bool = False
    progress: Progress = field(default_factory=Progress)

    def _evaluate(self, sha: str, pick: str | None = None) -> Step:
        t0 = time.monotonic()
        try:
            artifact = commit_wheels.commit_wheel(self.repo, sha, self.cache_dir, pick)
        except (ArtifactError, SourceError) as exc:
            return Step(sha, Verdict.ERROR, None, f"build failed: {exc}", pick)
        built = time.monotonic() - t0
        row: Row = self.runner.evaluate(artifact, kind="commit", interpreter=self.interpreter)
        return Step(
            sha,
            row.verdict,
            row.python,
            row.detail,
            pick,
            built,
            row.env_seconds,
            row.boot_seconds,
            row.seconds,
        )

    def run(self, before: str, after: str, old_is_pass: bool) -> Finding:
        """Bisect ``before``..``after``; ``old_is_pass`` says ``before`` is in the axis's
        old state (a regression) rather than its new one (a fix)."""
        kind = "regression" if old_is_pass else "fix"
        finding = Finding(
            kind, before, after, "skipped", first_parent=self.first_parent, axis=self.axis.key
        )
        tags = {v: self.repo.tag_for_version(v) for v in (before, after)}
        missing = [v for v, t in tags.items() if t is None]
        if missing:
            finding.reason = f"no git tag for {', '.join(missing)} in {self.repo.spec}"
            return finding
        old, new = self.repo.resolve(tags[before]), self.repo.resolve(tags[after])
        parents = self.repo.graph(old, new)
        bis = search.Bisection(parents, old, new, first_parent=self.first_parent)
        steps: dict[str, Step] = {}
        needed: dict[str, str] = {}
        healed: set[str] = set()
        self.progress.start(bis.steps_left() * max(1, self.jobs), "commits")
        try:
            with ThreadPoolExecutor(max_workers=max(1, self.jobs)) as pool:
                while True:
                    res = bis.result()
                    if res.status == "pending":
                        probes = bis.next_probes(self.jobs)
                        if not probes:
                            break
                        left = sum(1 for c in bis.candidates() if c not in bis.tested())
                        self.progress(
                            f"{kind} {before}..{after}: {left} revisions left to test "
                            f"(roughly {bis.steps_left()} steps); testing "
                            + ", ".join(p[:10] for p in probes)
                        )
                        for step in pool.map(self._evaluate, probes):
                            steps[step.sha] = step
                            bis.record(step.sha, _outcome(step.verdict, self.axis, old_is_pass))
                            self.progress.advance()
                        self.progress.set_total(len(steps) + bis.steps_left() * max(1, self.jobs))
                        continue
                    if res.status != "ambiguous":
                        break
                    # Only skipped commits separate the boundary: heal each with a later change.
                    todo = []
                    for cand in res.candidates:
                        if cand in healed or bis.tested().get(cand) is not Outcome.SKIP:
                            continue
                        source = bis.healing_source(cand)
                        healed.add(cand)
                        if source is not None:
                            todo.append((cand, source))
                    if not todo:
                        break
                    self.progress(
                        f"{kind} {before}..{after}: re-testing {len(todo)} untestable "
                        "commit(s) with the next testable change picked on top"
                    )
                    self.progress.set_total(len(steps) + len(todo))
                    for step in pool.map(lambda cs: self._evaluate(*cs), todo):
                        steps[f"{step.sha}+{step.picked}"] = step
                        self.progress.advance()
                        outcome = _outcome(step.verdict, self.axis, old_is_pass)
                        if outcome is not Outcome.SKIP:
                            needed[step.sha] = step.picked or ""
                            bis.record(step.sha, outcome)
        except search.InconsistentOutcomes as exc:
            finding.steps = list(steps.values())
            finding.status = "inconsistent"
            finding.reason = (
                f"verdicts contradict each other ({exc}); the bug may be flaky here: try --repeat 5"
            )
            return finding
        res = bis.result()
        finding.steps = list(steps.values())
        if res.status == "found" and res.commit:
            finding.status = "found"
            finding.commit = self.repo.info(res.commit)
            finding.url = self.repo.web_url(res.commit)
            via = search.merged_via(parents, res.commit, new)
            finding.merge = self.repo.info(via) if via else None
            if res.commit in needed:
                finding.needed = [needed[res.commit]]
        elif res.status == "ambiguous":
            finding.status = "ambiguous"
            finding.candidates = self.repo.infos(res.candidates)
            finding.reason = (
                "only untestable commits separate the boundary; "
                "the first could be any of the candidates"
            )
        else:
            finding.reason = "the search ended without a boundary (inconsistent verdicts?)"
        return finding
