"""An in-memory history and a fake lab: the jobs, the bisector and the healing run
against them in milliseconds, with no gunicorn, no git and no network."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from harness.host.processes import Cancelled
from harness.model.results import CommitInfo, Row, Step
from harness.model.search import ancestors
from harness.model.table import Deployment, Report, Table
from harness.model.verdict import Verdict

OLD_PYTHON = "3.9.18"
HOST = {"kernel": "6.1", "compat": "c", "pythons": ["3.9.18 (pyenv)"]}


@dataclass
class History:
    """Tags name commits of one parents mapping."""

    parents: dict[str, tuple[str, ...]]
    tags: dict[str, str]
    spec: str = "memory"
    declared: dict[str, str] = field(default_factory=dict)  # sha -> version its tree says

    def tag_for_version(self, version: str) -> str | None:
        return version if version in self.tags else None

    def resolve(self, ref: str) -> str:
        return self.tags.get(ref, ref)

    def graph(self, old, new: str) -> dict[str, tuple[str, ...]]:
        olds = [old] if isinstance(old, str) else list(old)
        keep = ancestors(self.parents, new).difference(*(ancestors(self.parents, o) for o in olds))
        return {sha: self.parents[sha] for sha in keep}

    def is_ancestor(self, ancestor: str, sha: str) -> bool:
        return ancestor in ancestors(self.parents, sha)

    def merge_bases(self, a: str, b: str) -> list[str]:
        common = ancestors(self.parents, a) & ancestors(self.parents, b)
        below = set().union(*(ancestors(self.parents, c) - {c} for c in common))
        return sorted(common - below)

    def version_at(self, sha: str) -> str | None:
        return self.declared.get(sha)

    def tags_containing(self, sha: str) -> list[str]:
        return [t for t, c in self.tags.items() if sha in ancestors(self.parents, c)]

    def info(self, sha: str) -> CommitInfo:
        return CommitInfo(
            sha,
            sha[:7],
            self.parents.get(sha, ()),
            f"change {sha}",
            "A <a@x>",
            "2016-05-01",
            "",
            None,
            (),
        )

    def infos(self, shas: Iterable[str]) -> list[CommitInfo]:
        return [self.info(s) for s in shas]

    def web_url(self, sha: str) -> str | None:
        return f"https://example.invalid/commit/{sha}"


def linear_history(n: int, releases: dict[str, int]) -> History:
    """c000..c{n-1} in a line; ``releases`` tags version -> commit index."""
    names = [f"c{i:03d}" for i in range(n)]
    parents = {names[0]: ()} | {cur: (prev,) for prev, cur in zip(names, names[1:])}
    return History(parents, {v: names[i] for v, i in releases.items()})


@dataclass(frozen=True)
class Ref:
    """A git ref the fake lab "built": it runs as the commit it names."""

    label: str
    sha: str


@dataclass
class Lab:
    """Releases get ``verdicts[(version, column)]`` (default pass); a commit fails from
    ``first_bad`` on (and passes again from ``first_good``), and a commit in
    ``unbootable`` is an error unless a pick is on top.  Each evaluation takes ``pause``
    seconds so that concurrency shows; ``stop_after`` evaluations raise Cancelled."""

    versions_known: list[str]
    history: History | None = None
    verdicts: dict[tuple[str, str], Verdict] = field(default_factory=dict)
    first_bad: str | None = None
    first_good: str | None = None
    unbootable: frozenset[str] = frozenset()
    repair: str | None = None  # when set, only this pick makes an unbootable commit boot
    old_python_only: frozenset[str] = frozenset()  # commits that boot only on OLD_PYTHON
    release_python: str = OLD_PYTHON  # the Python every release row ran on
    pause: float = 0.002
    stop_after: int | None = None
    row_facts: dict = field(default_factory=dict)
    package: str = "gunicorn"
    evaluated: list[tuple[str, str | None, str]] = field(default_factory=list)
    most_at_once: int = 0
    _now: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _refs: dict[str, Ref] = field(default_factory=dict)

    def versions(self) -> list[str]:
        return self.versions_known

    def fetch(self, version: str) -> str | Ref:
        return self._refs.get(version, version)

    def fetch_ref(self, history, sha: str, label: str) -> Ref:
        ref = self._refs[label] = Ref(label, sha)
        return ref

    def _busy(self, what: tuple[str, str | None, str], work: Callable[[], Verdict]) -> Verdict:
        with self._lock:
            if self.stop_after is not None and len(self.evaluated) >= self.stop_after:
                raise Cancelled
            self.evaluated.append(what)
            self._now += 1
            self.most_at_once = max(self.most_at_once, self._now)
        try:
            time.sleep(self.pause)
            return work()
        finally:
            with self._lock:
                self._now -= 1

    def release(self, fetched: str | Ref, deployment: str) -> Row:
        if isinstance(fetched, Ref):
            sha = fetched.sha
            v = self._busy((sha, None, deployment), lambda: self._commit_verdict(sha, None))
            python = OLD_PYTHON if sha in self.old_python_only else "3.13.0"
            return Row(
                fetched.label, v, f"{v.value} at {sha}", python=python, kind="commit", sha=sha,
                facts=dict(self.row_facts),
            )  # fmt: skip
        v = self._busy(
            (fetched, None, deployment),
            lambda: self.verdicts.get((fetched, deployment), Verdict.PASS),
        )
        return Row(
            fetched, v, f"{v.value} on {deployment}", python=self.release_python,
            facts=dict(self.row_facts),
        )  # fmt: skip

    def _commit_verdict(self, sha: str, pick: str | None) -> Verdict:
        if sha in self.unbootable and (pick is None or self.repair not in (None, pick)):
            return Verdict.ERROR
        seen = ancestors(self.history.parents, sha)
        bad = self.first_bad in seen and not (self.first_good and self.first_good in seen)
        return Verdict.FAIL if bad else Verdict.PASS

    def commit(
        self, history, sha: str, pick: str | None, deployment: str, python: str | None
    ) -> Step:
        if sha in self.old_python_only and python != OLD_PYTHON:
            self._busy((sha, pick, deployment), lambda: Verdict.ERROR)
            detail = f"cannot boot on Python {python}: ImportError: cannot import name 'x'"
            return Step(sha, Verdict.ERROR, python, detail, pick)
        v = self._busy((sha, pick, deployment), lambda: self._commit_verdict(sha, pick))
        return Step(sha, v, python, f"{v.value} at {sha}", pick)


def report_for(deployments: list[str], scenario: str = "socket-loss") -> Report:
    cols = [
        Deployment(c, None if c.startswith("auto") else c.split("/")[0], c.split("/")[1])
        for c in deployments
    ]
    return Report(
        "gunicorn-bisect 19.4.0..19.8.0",
        HOST,
        "workers=2",
        Table(cols),
        scenario={"name": scenario},
    )


@dataclass
class RacyLab(Lab):
    """A racy scenario: a broken target (by ``first_bad``/``first_good``, releases by
    their tags) fails with chance ``rate``, a healthy one with ``false_rate``; seeded,
    by (seed, target, column, how many runs it had there), so a test sees the same runs whatever
    order the threads run them in.  A release in ``verdicts`` always gets it
    (the release table shows the transition; the commits stay racy), only in its first
    run with ``first_only`` (the table saw a false failure, re-runs are honest)."""

    rate: float = 0.5
    first_only: bool = False
    unhealable: frozenset[str] = frozenset()  # an error even with a pick on top
    false_rate: float = 0.0
    seed: int = 0
    _rolls: dict[tuple[str, str], int] = field(default_factory=dict)

    def _racy(self, sha: str, pick: str | None, deployment: str) -> Verdict:
        if sha in self.unhealable or self._commit_verdict(sha, pick) is Verdict.ERROR:
            return Verdict.ERROR
        broken = self._commit_verdict(sha, pick) is Verdict.FAIL
        with self._lock:
            n = self._rolls[(sha, deployment)] = self._rolls.get((sha, deployment), 0) + 1
        roll = random.Random(f"{self.seed}:{sha}:{deployment}:{n}").random()
        return Verdict.FAIL if roll < (self.rate if broken else self.false_rate) else Verdict.PASS

    def release(self, fetched: str | Ref, deployment: str) -> Row:
        if isinstance(fetched, Ref):
            sha = fetched.sha
            v = self._busy((sha, None, deployment), lambda: self._racy(sha, None, deployment))
            return Row(fetched.label, v, f"{v.value} at {sha}", kind="commit", sha=sha)
        sha = self.history.tags[fetched]
        fixed = self.verdicts.get((fetched, deployment))
        if self.first_only and (fetched, None, deployment) in self.evaluated:
            fixed = None
        v = self._busy(
            (fetched, None, deployment), lambda: fixed or self._racy(sha, None, deployment)
        )
        return Row(fetched, v, f"{v.value} on {deployment}", python="3.9.18", runs=(v.value,))

    def commit(
        self, history, sha: str, pick: str | None, deployment: str, python: str | None
    ) -> Step:
        v = self._busy((sha, pick, deployment), lambda: self._racy(sha, pick, deployment))
        return Step(sha, v, python, f"{v.value} at {sha}", pick)

    def runs_of(self, target: str) -> int:
        return sum(1 for t, _, _ in self.evaluated if t == target)
