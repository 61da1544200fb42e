"""The real Evaluator: wheels from the index or built from commits, evaluated by each
column's Runner (harness.jobs.evaluate) in environments that are cached and verified.
With ``package`` another than gunicorn, the targets are that dependency's releases and
commits (harness.jobs.package), gunicorn pinned."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from packaging.utils import canonicalize_name

from harness.build import commit_wheels, index, wheels
from harness.build.interpreters import Interpreter
from harness.build.wheels import ArtifactError
from harness.host.git import Repo, SourceError
from harness.jobs.evaluate import NoInterpreter, Runner, Target
from harness.jobs.package import GUNICORN, Pin, PinnedGunicorn, is_gunicorn
from harness.model.results import Row, Step
from harness.model.verdict import Verdict


@dataclass
class Lab:
    cache: Path
    runners: Mapping[str, Runner]  # by column label
    interpreters: Sequence[Interpreter]
    override: Interpreter | None = None
    package: str = GUNICORN  # what the targets are releases (and commits) of
    gunicorn: str | None = None  # the pinned gunicorn when the package is another one
    _project: index.Project | None = field(default=None, repr=False)
    _pinned: PinnedGunicorn | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.package = canonicalize_name(self.package)
        if not is_gunicorn(self.package):
            self._pinned = PinnedGunicorn(self.cache, self.gunicorn)

    def _index(self) -> index.Project:
        if self._project is None:
            self._project = index.project(self.package, self.cache)
        return self._project

    def versions(self) -> Sequence[str]:
        return self._index().versions

    def fetch(self, version: str) -> Target:
        if self._pinned is None:
            return wheels.gunicorn_release(version, self.cache, self._index())
        return Pin(self.package, version, f"{self.package}=={version}", self._pinned)

    def _build(self, history: Repo, sha: str, pick: str | None = None) -> Target:
        """The commit's wheel: gunicorn's own build, or the dependency's PEP 517 one."""
        if self._pinned is None:
            return commit_wheels.commit_wheel(history, sha, self.cache, pick)
        built = commit_wheels.package_commit_wheel(history, sha, self.cache, self.package, pick)
        url = built.wheel.resolve().as_uri()
        return Pin(self.package, built.label, f"{self.package} @ {url}", self._pinned, sha)

    def release(self, fetched: Target, column: str) -> Row:
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
            artifact = self._build(history, sha, pick)
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
            artifact = self._build(history, sha)
        except ArtifactError as exc:
            return Row(label, Verdict.ERROR, str(exc), kind="commit", sha=sha)
        try:
            return self.runners[column].evaluate(artifact, kind="commit")
        except NoInterpreter as exc:
            if self.override is not None:
                raise  # --python names an interpreter that cannot run it: the user's to fix
            return Row(artifact.label, Verdict.ERROR, str(exc), kind="commit", sha=sha)
