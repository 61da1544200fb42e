"""What a commit's message and a repository's address say, read without git: the pull
request and issues a commit names, and a GitHub remote's web address for a commit.

Pure: the git layer (host/git.py) feeds it strings; tests read it on its own.
"""

from __future__ import annotations

import re

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
