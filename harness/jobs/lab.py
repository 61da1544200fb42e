"""The real Evaluator: targets (harness.jobs.target) made by the run's one Maker,
evaluated by each column's Runner (harness.jobs.evaluate) in environments that are cached
and verified."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from harness.build import index
from harness.host.git import Repo
from harness.jobs.evaluate import Runner
from harness.jobs.target import BuildFailed, Maker, Target
from harness.model.results import Row, Step
from harness.model.verdict import Verdict


@dataclass
class Lab:
    cache: Path
    runners: Mapping[str, Runner]  # by column label
    make: Maker  # gunicorn's releases and commits, or a dependency's (--package)
    _project: index.Project | None = field(default=None, repr=False)
    _refs: dict[str, Target] = field(default_factory=dict, repr=False)  # by row name

    @property
    def package(self) -> str:
        return self.make.package

    def versions(self) -> list[str]:
        if self._project is None:
            self._project = index.project(self.package, self.cache)
        return self._project.versions

    def fetch(self, version: str) -> Target:
        """A release on the index (or a git ref the table holds, by its row's name)."""
        if version in self._refs:
            return self._refs[version]
        self.versions()
        return self.make.release(version, self._project)

    def fetch_ref(self, history: Repo, sha: str, label: str) -> Target:
        target = self._refs[label] = self.make.ref(history, sha, label)
        return target

    def release(self, fetched: Target, column: str) -> Row:
        return self.runners[column].evaluate(fetched)

    def commit(
        self, history: Repo, sha: str, pick: str | None, column: str, python: str | None
    ) -> Step:
        t0 = time.monotonic()
        target = self.make.commit(history, sha, pick, python)
        try:
            target.prepare()
        except BuildFailed as exc:
            return Step(sha, Verdict.ERROR, None, str(exc), pick)
        built = time.monotonic() - t0
        row = self.runners[column].evaluate(target)
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
