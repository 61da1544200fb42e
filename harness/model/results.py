"""What a run establishes, as plain data (rows, bisection steps, findings), so that the
report and the runner need not import each other; and what a commit message and a
repository's address say, read without git (the PR and issues named, a GitHub link).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from typing import Any

from harness.model.verdict import Verdict

#: what a row's evidence ends with when the compat shim was used (the runner appends it;
#: the text and markdown tables show a mark and say it once, in a note)
COMPAT_NOTE = " (compat: SO_REUSEPORT on AF_UNIX accepted as a no-op)"
#: a gunicorn the index listed without a sha256: hashed at first download and pinned
UNVERIFIED_NOTE = " (unverified by the index: no sha256 listed; pinned at its first download)"


#: a row's JSON keys in the record's order (the facts follow)
_ROW_KEYS = (
    "target kind sha python verdict detail compat traceback reused_env seconds runs tried"
    " env_seconds boot_seconds"
).split()
_JSON = {Verdict: lambda v: v.value, float: lambda v: round(v, 3), tuple: list}


def _as_json(obj, names: Sequence[str]) -> dict:
    """The named fields: a verdict by its value, seconds to the millisecond, tuples as lists."""
    out = {}
    for name in names:
        value = getattr(obj, name)
        out[name] = _JSON[type(value)](value) if type(value) in _JSON else value
    return out


@dataclass(frozen=True)
class Row:
    """One line of the report: a target, where it ran, and what it did."""

    target: str
    verdict: Verdict
    detail: str
    python: str | None = None
    kind: str = "release"  # or "commit"
    sha: str | None = None
    compat: bool = False
    traceback: str = ""
    reused_env: bool = False
    seconds: float = 0.0
    runs: tuple[str, ...] = ()
    tried: tuple[str, ...] = ()  # interpreters that could not boot it, with why
    facts: dict[str, Any] = field(default_factory=dict)  # scenario facts (bottle, worker_class)
    env_seconds: float = 0.0  # finding or building the environment (bench/ breakdown)
    boot_seconds: float = 0.0  # of ``seconds``, waiting for gunicorn to listen

    def as_json(self) -> dict:
        return {**_as_json(self, _ROW_KEYS), **self.facts}


@dataclass(frozen=True)
class CommitInfo:
    """What a report needs to name a commit, parsed once from ``git log``."""

    sha: str
    short: str
    parents: tuple[str, ...]
    subject: str
    author: str
    date: str
    body: str
    pr: int | None
    fixes: tuple[int, ...]


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
        return _as_json(self, [f.name for f in fields(self)])


@dataclass
class Finding:
    """The answer for one transition: the first commit in the new state, with evidence."""

    kind: str  # "regression" (old -> new state) or "fix" (new -> old)
    before: str  # release in the old state
    after: str  # release in the new state
    status: str  # "found", "ambiguous", "skipped", "inconsistent"
    reason: str = ""
    commit: CommitInfo | None = None
    merge: CommitInfo | None = None
    url: str | None = None
    candidates: list[CommitInfo] = field(default_factory=list)
    needed: list[str] = field(default_factory=list)
    steps: list[Step] = field(default_factory=list)
    first_parent: bool = False
    axis: str = "primary"  # which question (see verdict.Axis); "outage" for another problem
    deployment: str = ""  # the deployment ("gthread/unix") when the run is a matrix
    #: --confidence: the search's answer (model.confidence.Finding as a dict): culprit,
    #: posterior, runs, fail tallies here and at the parent
    estimate: dict[str, Any] | None = None
    #: what the reader must know about how the answer was reached (several good commits,
    #: two interpreters across the transition, the release that ships the commit)
    notes: list[str] = field(default_factory=list)
    shipped_in: str | None = None  # the first release whose tag contains the commit
    still_fails: str | None = None  # a regression: the newest release, still in its state

    def as_json(self) -> dict:
        c = self.commit
        return {
            "status": self.status,
            "reason": self.reason,
            "axis": self.axis,
            **({"column": self.deployment} if self.deployment else {}),
            **{key: getattr(c, key, None) for key in ("sha", "short", "subject", "author", "date")},
            "pr": getattr(self.merge, "pr", None) or getattr(c, "pr", None),
            "fixes": list(c.fixes) if c else [],
            "merged_by": getattr(self.merge, "sha", None),
            "merged_by_subject": getattr(self.merge, "subject", None),
            "url": self.url,
            "candidates": [x.sha for x in self.candidates],
            "needed": list(self.needed),
            "steps": [s.as_json() for s in self.steps],
            "first_parent": self.first_parent,
            "notes": list(self.notes),
            "shipped_in": self.shipped_in,
            "still_fails_in": self.still_fails,
            **({"confidence": self.estimate} if self.estimate is not None else {}),
        }


_GITHUB_RE = re.compile(
    r"^(?:https?://(?:[^@/]+@)?github\.com/|git://github\.com/|ssh://(?:[^@/]+@)?github\.com(?::\d+)?/"
    r"|(?:[^@/:]+@)?github\.com:)(?P<owner>[A-Za-z0-9_.-]+)/(?P<name>[A-Za-z0-9_.-]+?)(?:\.git)?/?$"
)
_MERGE_PR_RE = re.compile(r"^Merge pull request #(\d+) from ", re.IGNORECASE)
_SQUASH_PR_RE = re.compile(r"\(#(\d+)\)\s*$")
_ISSUE = (
    r"(?:[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+)?#(\d+)|https?://github\.com/[^/\s]+/[^/\s]+/issues/(\d+)"
)
_FIX_RE = re.compile(
    r"\b(?:fix(?:e[sd])?|close[sd]?|resolve[sd]?)\b:?\s*"
    rf"((?:{_ISSUE})(?:\s*(?:,|and|&)\s*(?:{_ISSUE}))*)",
    re.IGNORECASE,
)
_ISSUE_RE = re.compile(_ISSUE)
_VERSION_INFO_RE = re.compile(r"^version_info\s*=\s*\(\s*(\d+(?:\s*,\s*\d+)*)\s*,?\s*\)", re.M)


def declared_version(init_py: str) -> str | None:
    """ "19.6.0" from gunicorn/__init__.py's ``version_info = (19, 6, 0)``, else None."""
    match = _VERSION_INFO_RE.search(init_py)
    return ".".join(p.strip() for p in match.group(1).split(",")) if match else None


def parse_refs(subject: str, body: str) -> tuple[int | None, tuple[int, ...]]:
    """(PR number, issues fixed) a commit message names: "Merge pull request #N from ..." or
    a squash merge's trailing "(#N)"; "Fix #N", "closes #N"."""
    match = _MERGE_PR_RE.match(subject) or _SQUASH_PR_RE.search(subject)
    pr = int(match.group(1)) if match else None
    fixes: list[int] = []
    for found in _FIX_RE.finditer(f"{subject}\n{body}"):
        for issue in _ISSUE_RE.finditer(found.group(1)):
            number = int(issue.group(1) or issue.group(2))
            if number not in fixes:
                fixes.append(number)
    return pr, tuple(fixes)


def github_commit_url(remote: str | None, sha: str) -> str | None:
    """Link to a commit on GitHub when ``remote`` is a GitHub repository URL."""
    match = _GITHUB_RE.match(remote.strip()) if remote else None
    return f"https://github.com/{match['owner']}/{match['name']}/commit/{sha}" if match else None
