"""A hermetic, Gunicorn-like git history with a planted regression and fix.

No Gunicorn source may be committed to this project, so tests assemble a small
history at test time from the PyPI sdists of 19.5.0 and 19.6.0.  It reproduces
the shape that makes the real bisection hard: the regression arrives on a
branch, in a commit that cannot even boot, repaired by the next commit, and is
merged through a "Merge pull request" commit; the fix is a squash-merged PR.

Planted design (``git log --graph`` of the result)::

    master: R - m1 -------------- M - m2 - rel6 - f1 - F - f2 - rel7
                  \\             /
    branch:         b1 - b2 - b3

    R     19.5.0 sdist tree (tag 19.5.0, lightweight)                 good
    m1    docs only                                                   good
    b1    harmless comment in gunicorn/workers/gthread.py             good
    b2    gunicorn/sock.py := 19.6.0's (UnixSocket.close() unlinks in
          every process, workers included) + a typo that breaks
          gunicorn/glogging.py (SyntaxError, cannot boot)             broken
    b3    repairs the typo only                                       bad
    M     "Merge pull request #1270 from someone/unix-socket-cleanup" bad
    m2    docs only                                                   bad
    rel6  version 19.6.0 (annotated tag 19.6.0)                       bad
    f1    docs only                                                   bad
    F     "Refactor socket close (#1310)", body "Fix #1298":
          gunicorn/sock.py := 19.5.0's again                          good
    f2    harmless comment in gunicorn/util.py                        good
    rel7  version 19.7.0 (annotated tag 19.7.0)                       good
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tarfile
import tempfile
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

#: sdists used to build the trees, pinned by PyPI's sha256 so a tampered or
#: truncated download is never used.
SDISTS: dict[str, tuple[str, str]] = {
    "19.5.0": (
        "https://files.pythonhosted.org/packages/18/af/"
        "e959432746b30fa67902b81320d57f681da433761ba5def5797ccd31c70f/gunicorn-19.5.0.tar.gz",
        "1c62764ceea2d28602843e3e3abd459194f976b8f27627116787977ced47923f",
    ),
    "19.6.0": (
        "https://files.pythonhosted.org/packages/84/ce/"
        "7ea5396efad1cef682bbc4068e72a0276341d9d9d0f501da609fab9fcb80/gunicorn-19.6.0.tar.gz",
        "813f6916d18a4c8e90efde72f419308b357692f81333cb1125f80013d22fb618",
    ),
}

BRANCH = "someone/unix-socket-cleanup"
REGRESSION_PR = 1270
FIX_PR = 1310
FIXED_ISSUE = 1298

GOOD, BAD, BROKEN = "good", "bad", "broken"

_AUTHOR = "Test Author"
_EMAIL = "author@example.invalid"
_EPOCH = 1462104000  # 2016-05-01T12:00:00Z, around the real 19.6.0 release
_TYPO_FROM = "class Logger(object):"
_TYPO_TO = "class Logger(object)"


class HistoryError(Exception):
    """The test history could not be built (e.g. sdists unavailable offline)."""


@dataclass
class History:
    """The planted repository, its commits by role, and the answers tests expect."""

    path: Path
    root: str
    m1: str
    b1: str
    regression: str
    repair: str
    merge: str
    m2: str
    release_bad: str
    f1: str
    fix: str
    f2: str
    release_fixed: str
    branch: str = BRANCH
    regression_pr: int = REGRESSION_PR
    fix_pr: int = FIX_PR
    fix_fixes: tuple[int, ...] = (FIXED_ISSUE,)
    good_tag: str = "19.5.0"
    bad_tag: str = "19.6.0"
    fixed_tag: str = "19.7.0"
    #: Expected behaviour of every commit: "good", "bad" (socket lost) or "broken".
    behaviour: dict[str, str] = field(default_factory=dict)

    @property
    def tags(self) -> dict[str, str]:
        """Tag name -> commit sha."""
        return {
            self.good_tag: self.root,
            self.bad_tag: self.release_bad,
            self.fixed_tag: self.release_fixed,
        }

    @property
    def expected_first_bad(self) -> str:
        """The commit that introduced the bug (testable only with ``repair`` picked)."""
        return self.regression

    @property
    def expected_first_good(self) -> str:
        """The commit that fixed the bug."""
        return self.fix


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def fetch_sdist(version: str, download_dir: Path) -> Path:
    """Return the verified sdist of ``version``, downloading it only if absent."""
    url, sha256 = SDISTS[version]
    download_dir.mkdir(parents=True, exist_ok=True)
    target = download_dir / f"gunicorn-{version}.tar.gz"
    if target.exists() and _sha256(target) == sha256:
        return target
    fd, tmp_name = tempfile.mkstemp(dir=download_dir, prefix=f".{target.name}.", suffix=".part")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=60) as resp:
            shutil.copyfileobj(resp, out)
        if _sha256(tmp) != sha256:
            raise HistoryError(f"{url}: sha256 mismatch")
        os.replace(tmp, target)  # atomic: concurrent sessions never see half a file
    except OSError as exc:
        raise HistoryError(f"cannot download {url}: {exc}") from exc
    finally:
        tmp.unlink(missing_ok=True)
    return target


def _unpack(sdist: Path, dest: Path) -> Path:
    """Unpack an sdist and return its top directory, minus generated metadata."""
    with tarfile.open(sdist) as archive:
        if hasattr(tarfile, "data_filter"):
            archive.extractall(dest, filter="data")
        else:  # pragma: no cover - Pythons without extraction filters
            archive.extractall(dest)
    (top,) = [p for p in dest.iterdir() if p.is_dir()]
    # PKG-INFO and *.egg-info are generated by sdist builds, never in git.
    (top / "PKG-INFO").unlink(missing_ok=True)
    for egg_info in top.glob("*.egg-info"):
        shutil.rmtree(egg_info)
    return top


class _Builder:
    """Makes commits with fixed identities and dates, so shas never change."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.tick = 0
        self.env = {
            **os.environ,
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CONFIG_GLOBAL": os.devnull,
            "GIT_AUTHOR_NAME": _AUTHOR,
            "GIT_AUTHOR_EMAIL": _EMAIL,
            "GIT_COMMITTER_NAME": _AUTHOR,
            "GIT_COMMITTER_EMAIL": _EMAIL,
            "LC_ALL": "C",
        }
        for name in ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_OBJECT_DIRECTORY"):
            self.env.pop(name, None)

    def git(self, *args: str) -> str:
        self.tick += 1
        stamp = f"{_EPOCH + 3600 * self.tick} +0000"
        env = {**self.env, "GIT_AUTHOR_DATE": stamp, "GIT_COMMITTER_DATE": stamp}
        proc = subprocess.run(
            ["git", "-c", "commit.gpgsign=false", "-c", "tag.gpgsign=false", *args],
            cwd=self.path,
            env=env,
            capture_output=True,
            text=True,
        )
        if proc.returncode != 0:
            raise HistoryError(f"git {' '.join(args)}: {proc.stderr.strip()}")
        return proc.stdout.strip()

    def commit(self, message: str) -> str:
        self.git("add", "-A")
        self.git("commit", "-q", "--allow-empty", "-m", message)
        return self.git("rev-parse", "HEAD")

    def edit(self, rel: str, old: str | None, new: str) -> None:
        """Replace ``old`` by ``new`` in a file, or append ``new`` when ``old`` is None."""
        path = self.path / rel
        text = path.read_text(encoding="utf-8")
        if old is None:
            text = text + new
        else:
            if old not in text:
                raise HistoryError(f"{rel}: {old!r} not found")
            text = text.replace(old, new, 1)
        path.write_text(text, encoding="utf-8")

    def copy(self, src: Path, rel: str) -> None:
        shutil.copyfile(src, self.path / rel)


def _replace_tree(src: Path, dest: Path) -> None:
    for child in dest.iterdir():
        if child.name != ".git":
            shutil.rmtree(child) if child.is_dir() else child.unlink()
    for child in src.iterdir():
        if child.is_dir():
            shutil.copytree(child, dest / child.name)
        else:
            shutil.copy2(child, dest / child.name)


def build_history(dest: Path, download_dir: Path) -> History:
    """Build the planted history at ``dest`` (a non-bare repo on master, at 19.7.0)."""
    dest = Path(dest)
    if dest.exists() and any(dest.iterdir()):
        raise HistoryError(f"{dest} is not empty")
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="gunicorn-sdists-") as tmp:
        old = _unpack(fetch_sdist("19.5.0", Path(download_dir)), Path(tmp) / "old")
        new = _unpack(fetch_sdist("19.6.0", Path(download_dir)), Path(tmp) / "new")
        return _build(dest, old, new)


def _build(dest: Path, old: Path, new: Path) -> History:
    b = _Builder(dest)
    b.git("init", "-q", "-b", "master")
    _replace_tree(old, dest)
    root = b.commit("Import gunicorn 19.5.0")
    b.git("tag", "19.5.0")

    b.edit("docs/source/deploy.rst", None, "\n.. note:: Unix sockets are created by the arbiter.\n")
    m1 = b.commit("docs: note who creates Unix sockets")

    b.git("checkout", "-q", "-b", BRANCH)
    b.edit(
        "gunicorn/workers/gthread.py",
        "from . import base",
        "# connections are queued in the poller until a thread is free\nfrom . import base",
    )
    b1 = b.commit("gthread: explain the connection queue")

    b.copy(new / "gunicorn/sock.py", "gunicorn/sock.py")
    b.edit("gunicorn/glogging.py", _TYPO_FROM, _TYPO_TO)
    regression = b.commit(
        "Simplify UnixSocket close\n\n"
        "Drop the lock dance: close() now always removes the socket file."
    )

    b.edit("gunicorn/glogging.py", _TYPO_TO, _TYPO_FROM)
    repair = b.commit("glogging: fix a typo in the Logger class")

    b.git("checkout", "-q", "master")
    b.git(
        "merge",
        "-q",
        "--no-ff",
        "-m",
        f"Merge pull request #{REGRESSION_PR} from {BRANCH}\n\nSimplify Unix socket handling",
        BRANCH,
    )
    merge = b.git("rev-parse", "HEAD")
    b.git("branch", "-q", "-D", BRANCH)  # like GitHub: the PR branch is gone

    b.edit("docs/source/news.rst", None, "\n- 19.6.0: simplified Unix socket handling\n")
    m2 = b.commit("docs: 19.6.0 changelog")

    b.edit("gunicorn/__init__.py", "version_info = (19, 5, 0)", "version_info = (19, 6, 0)")
    release_bad = b.commit("Release 19.6.0")
    b.git("tag", "-a", "-m", "19.6.0", "19.6.0")

    b.edit("docs/source/settings.rst", None, "\n.. note:: --threads selects the gthread worker.\n")
    f1 = b.commit("docs: mention that --threads implies gthread")

    b.copy(old / "gunicorn/sock.py", "gunicorn/sock.py")
    fix = b.commit(
        f"Refactor socket close (#{FIX_PR})\n\n"
        f"Fix #{FIXED_ISSUE}\n\n"
        "Only the arbiter that bound a Unix socket unlinks it: workers exiting\n"
        "after --max-requests used to remove the socket file."
    )

    b.edit(
        "gunicorn/util.py",
        "import os\n",
        "import os  # noqa: used by most helpers below\n",
    )
    f2 = b.commit("util: annotate imports")

    b.edit("gunicorn/__init__.py", "version_info = (19, 6, 0)", "version_info = (19, 7, 0)")
    release_fixed = b.commit("Release 19.7.0")
    b.git("tag", "-a", "-m", "19.7.0", "19.7.0")

    behaviour = {
        root: GOOD,
        m1: GOOD,
        b1: GOOD,
        regression: BROKEN,
        repair: BAD,
        merge: BAD,
        m2: BAD,
        release_bad: BAD,
        f1: BAD,
        fix: GOOD,
        f2: GOOD,
        release_fixed: GOOD,
    }
    return History(
        path=dest,
        root=root,
        m1=m1,
        b1=b1,
        regression=regression,
        repair=repair,
        merge=merge,
        m2=m2,
        release_bad=release_bad,
        f1=f1,
        fix=fix,
        f2=f2,
        release_fixed=release_fixed,
        behaviour=behaviour,
    )


if __name__ == "__main__":  # manual checks: python -m tests.history DEST DOWNLOADS
    import sys

    built = build_history(Path(sys.argv[1]), Path(sys.argv[2]))
    for name, sha in vars(built).items():
        print(f"{name:14} {sha}")


@dataclass
class Shapes:
    """A tiny gunicorn-like history (no gunicorn source: a gunicorn/__init__.py with a
    version and a module that changes) with a maintenance branch, built at test time::

        master:  r0 (19.9.0) - r1 - r2 - r3 - r4 - r5 (20.0.0)
                                  \\
        19.x:                      m0 - m1 (19.10.0, tagged after 20.0.0)
    """

    path: Path
    commits: dict[str, str]  # name -> sha
    changed: str  # the commit that changes gunicorn/app.py (r4)


def build_shapes(dest: Path) -> Shapes:
    dest.mkdir(parents=True, exist_ok=True)
    b = _Builder(dest)
    b.git("init", "-q", "-b", "master")
    (dest / "gunicorn").mkdir()

    def release(version: str) -> None:
        numbers = ", ".join(version.split("."))
        (dest / "gunicorn" / "__init__.py").write_text(f"version_info = ({numbers})\n")

    commits: dict[str, str] = {}
    release("19.9.0")
    (dest / "gunicorn" / "app.py").write_text("ANSWER = 1\n")
    commits["r0"] = b.commit("Release 19.9.0")
    b.git("tag", "19.9.0")
    for i in (1, 2, 3):
        (dest / f"notes{i}.txt").write_text(f"note {i}\n")
        commits[f"r{i}"] = b.commit(f"docs: note {i}")
    (dest / "gunicorn" / "app.py").write_text("ANSWER = 2\n")
    commits["r4"] = b.commit("app: change the answer")
    release("20.0.0")
    commits["r5"] = b.commit("Release 20.0.0")
    b.git("tag", "-a", "-m", "20.0.0", "20.0.0")
    b.git("checkout", "-q", "-b", "19.x", commits["r2"])
    (dest / "backport.txt").write_text("backport\n")
    commits["m0"] = b.commit("backport a fix")
    release("19.10.0")
    commits["m1"] = b.commit("Release 19.10.0")
    b.git("tag", "-a", "-m", "19.10.0", "19.10.0")
    b.git("checkout", "-q", "master")
    return Shapes(dest, commits, commits["r4"])
