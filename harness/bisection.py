"""Commit bisection between two releases: drive the pure search with real evaluations.

The search (harness.search) proposes commits; this module builds them, runs the
scenario and feeds verdicts back.  ``error``/``flaky`` are skips, never pass or fail.
When only skipped commits separate the boundary, each is re-tested with the change of
the first testable commit after it picked on top (git's own "skip" leaves that to a
human); a commit is named only when the boundary is then one commit wide.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from . import builds, search
from .artifacts import ArtifactError
from .interpreters import Interpreter
from .runner import Row, Runner
from .search import Outcome
from .source import CommitInfo, Repo, SourceError
from .verdict import Verdict


@dataclass(frozen=True)
class Step:
    """One commit tested during a bisection."""

    sha: str
    verdict: Verdict
    python: str | None
    detail: str
    picked: str | None = None  # the later commit applied on top to make it testable
    build_seconds: float = 0.0
    env_seconds: float = 0.0
    boot_seconds: float = 0.0
    scenario_seconds: float = 0.0

    def as_json(self) -> dict:
        return {
            "sha": self.sha,
            "verdict": self.verdict.value,
            "python": self.python,
            "detail": self.detail,
            "picked": self.picked,
            "build_seconds": round(self.build_seconds, 3),
            "env_seconds": round(self.env_seconds, 3),
            "boot_seconds": round(self.boot_seconds, 3),
            "scenario_seconds": round(self.scenario_seconds, 3),
        }


@dataclass
class Finding:
    """The answer for one transition: the first commit in the new state, with evidence."""

    kind: str  # "regression" or "fix"
    before: str  # release in the old state
    after: str  # release in the new state
    status: str  # "found", "ambiguous", "skipped"
    reason: str = ""
    commit: CommitInfo | None = None
    merge: CommitInfo | None = None
    url: str | None = None
    candidates: list[CommitInfo] = field(default_factory=list)
    needed: list[str] = field(default_factory=list)
    steps: list[Step] = field(default_factory=list)
    first_parent: bool = False

    def as_json(self) -> dict:
        c = self.commit
        return {
            "status": self.status,
            "reason": self.reason,
            "sha": c.sha if c else None,
            "short": c.short if c else None,
            "subject": c.subject if c else None,
            "author": c.author if c else None,
            "date": c.date if c else None,
            "pr": (self.merge.pr if self.merge and self.merge.pr else (c.pr if c else None)),
            "fixes": list(c.fixes) if c else [],
            "merged_by": self.merge.sha if self.merge else None,
            "merged_by_subject": self.merge.subject if self.merge else None,
            "url": self.url,
            "candidates": [x.sha for x in self.candidates],
            "needed": list(self.needed),
            "steps": [s.as_json() for s in self.steps],
            "first_parent": self.first_parent,
        }


def _outcome(verdict: Verdict, old_is_pass: bool) -> Outcome:
    if not verdict.testable:
        return Outcome.SKIP
    return Outcome.OLD if (verdict is Verdict.PASS) == old_is_pass else Outcome.NEW


@dataclass
class CommitBisector:
    repo: Repo
    runner: Runner
    cache_dir: Path
    interpreter: Interpreter | None
    jobs: int = 1
    first_parent: bool = False
    progress: Callable[[str], None] = lambda msg: None

    def _evaluate(self, sha: str, pick: str | None = None) -> Step:
        t0 = time.monotonic()
        try:
            artifact = builds.commit_wheel(self.repo, sha, self.cache_dir, pick)
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
        kind = "regression" if old_is_pass else "fix"
        finding = Finding(kind, before, after, "skipped", first_parent=self.first_parent)
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
                            bis.record(step.sha, _outcome(step.verdict, old_is_pass))
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
                    for step in pool.map(lambda cs: self._evaluate(*cs), todo):
                        steps[f"{step.sha}+{step.picked}"] = step
                        outcome = _outcome(step.verdict, old_is_pass)
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
