"""What a run establishes, as plain data: rows, bisection steps, findings.

Pure: the report formats these, the runner and the bisector produce them, and
neither side needs to import the other.
Also what a commit's message and a repository's address say, read without git: the
pull request and issues a commit names, a GitHub remote's web address for a commit.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from harness.model.verdict import Verdict

#: what a row's evidence ends with when the compat shim was used (the runner appends it;
#: the text and markdown tables show a mark and say it once, in a note)
COMPAT_NOTE = " (compat: SO_REUSEPORT on AF_UNIX accepted as a no-op)"
#: a gunicorn the index listed without a sha256: hashed at first download and pinned
UNVERIFIED_NOTE = " (unverified by the index: no sha256 listed; pinned at its first download)"


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
        out = {
            "target": self.target,
            "kind": self.kind,
            "sha": self.sha,
            "python": self.python,
            "verdict": self.verdict.value,
            "detail": self.detail,
            "compat": self.compat,
            "traceback": self.traceback,
            "reused_env": self.reused_env,
            "seconds": round(self.seconds, 3),
            "runs": list(self.runs),
            "tried": list(self.tried),
            "env_seconds": round(self.env_seconds, 3),
            "boot_seconds": round(self.boot_seconds, 3),
        }
        out.update(self.facts)
        return out


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
    if not match:
        return None
    return ".".join(part.strip() for part in match.group(1).split(","))


def parse_refs(subject: str, body: str) -> tuple[int | None, tuple[int, ...]]:
    """Return (pull request number, issues fixed) named by a commit message.

    GitHub writes PR numbers either as "Merge pull request #N from ..." or as a
    trailing "(#N)" on squash merges; "Fix #N"/"closes #N" name fixed issues.
    """
    pr: int | None = None
    match = _MERGE_PR_RE.match(subject) or _SQUASH_PR_RE.search(subject)
    if match:
        pr = int(match.group(1))
    fixes: list[int] = []
    for found in _FIX_RE.finditer(f"{subject}\n{body}"):
        for issue in _ISSUE_RE.finditer(found.group(1)):
            number = int(issue.group(1) or issue.group(2))
            if number not in fixes:
                fixes.append(number)
    return pr, tuple(fixes)


def github_commit_url(remote: str | None, sha: str) -> str | None:
    """Link to a commit on GitHub when ``remote`` is a GitHub repository URL."""
    if not remote:
        return None
    match = _GITHUB_RE.match(remote.strip())
    if not match:
        return None
    return f"https://github.com/{match['owner']}/{match['name']}/commit/{sha}"
