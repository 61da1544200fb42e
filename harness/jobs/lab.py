"""The real Evaluator: wheels from the index or built from commits, evaluated by each
column's Runner (harness.jobs.evaluate) in environments that are cached and verified."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from harness.build import commit_wheels, index, wheels
from harness.build.interpreters import Interpreter
from harness.build.wheels import Artifact, ArtifactError
from harness.host.git import Repo, SourceError
from harness.jobs.evaluate import NoInterpreter, Runner
from harness.model.results import Row, Step
from harness.model.verdict import Verdict


@dataclass
class Lab:
    cache: Path
    runners: Mapping[str, Runner]  # by column label
    interpreters: Sequence[Interpreter]
    override: Interpreter | None = None
    _project: index.Project | None = field(default=None, repr=False)

    def _index(self) -> index.Project:
        if self._project is None:
            self._project = index.project("gunicorn", self.cache)
        return self._project

    def versions(self) -> Sequence[str]:
        return self._index().versions

    def fetch(self, version: str) -> Artifact:
        return wheels.gunicorn_release(version, self.cache, self._index())

    def release(self, fetched: Artifact, column: str) -> Row:
        return self.runners[column].evaluate(fetched)

    def _python(self, version: str | None) -> Interpreter | None:
        if self.override is not None and self.override.version == version:
            return self.override
        return next((i for i in self.interpreters if i.version == version), None)

    def commit(
        self, history: Repo, sha: str, pick: str | None, column: str, python: str | None
    ) -> Step:
        t0 = time.monotonic()
        try:
            artifact = commit_wheels.commit_wheel(history, sha, self.cache, pick)
        except (ArtifactError, SourceError) as exc:
            return Step(sha, Verdict.ERROR, None, f"build failed: {exc}", pick)
        built = time.monotonic() - t0
        runner = self.runners[column]
        row = runner.evaluate(artifact, kind="commit", interpreter=self._python(python))
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

    def ref(self, history: Repo, sha: str, column: str, label: str) -> Row:
        try:
            artifact = commit_wheels.commit_wheel(history, sha, self.cache)
        except ArtifactError as exc:
            return Row(label, Verdict.ERROR, str(exc), kind="commit", sha=sha)
        try:
            return self.runners[column].evaluate(artifact, kind="commit")
        except NoInterpreter as exc:
            if self.override is not None:
                raise  # --python names an interpreter that cannot run it: the user's to fix
            return Row(artifact.label, Verdict.ERROR, str(exc), kind="commit", sha=sha)
