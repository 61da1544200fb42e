"""What the jobs need from the world, as two small protocols: a git history and a lab
that evaluates targets.  The real ones are ``host.git.Repo`` and ``jobs.setup.Lab``;
tests pass an in-memory history and a fake lab, so the orchestration (release table,
commit bisection, healing, ``--check``, interrupts) runs in milliseconds."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Protocol

from harness.model.results import CommitInfo, Row, Step


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
