"""Opening a git history safely, for host/git.py: the one way git is run here (no hooks,
no fsmonitor, no prompts, no lazy fetch, stable messages) and the checks that a --repo
path or URL is a full clone we may read.  A URL is mirrored once into a bare cache clone,
named without its credentials.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

from harness.host.fsutil import private_dir
from harness.model.errors import HarnessError
from harness.model.redact import redact_url, without_userinfo
from harness.model.verdict import last_line

_URL_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_SCP_RE = re.compile(r"^(?:[^@/:\s]+@)?[^/:\s]+:(?!//)[^\s]*$")


class SourceError(HarnessError):
    """A one-line, user-facing problem with the repository or a ref."""


def is_remote_spec(spec: str) -> bool:
    """True when ``spec`` is a URL (or scp-like ssh address) rather than a local path."""
    if Path(spec).expanduser().exists():
        return False
    if _URL_RE.match(spec):
        return True
    return bool(_SCP_RE.match(spec)) and not spec.startswith((".", "/", "~"))


def _slug(url: str) -> str:
    """Stable, filesystem-safe cache name for a remote URL (never its credentials)."""
    url = redact_url(url)
    stripped = re.sub(r"^[A-Za-z][A-Za-z0-9+.-]*://", "", url).rstrip("/")
    stripped = re.sub(r"\.git$", "", stripped)
    readable = re.sub(r"[^A-Za-z0-9_.-]+", "-", stripped).strip("-.")[-60:] or "repo"
    digest = hashlib.sha256(url.encode()).hexdigest()[:10]
    return f"{readable}-{digest}"


def stderr_line(text: str) -> str:
    """The line of git's error output worth showing, with no credentials in it."""
    return redact_url(last_line(text, default="no error output"))


def base_env() -> dict[str, str]:
    """Environment for every git call: no locks, no prompts, stable messages."""
    env = dict(os.environ)
    for name in ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_OBJECT_DIRECTORY"):
        env.pop(name, None)
    env.pop("GIT_ALTERNATE_OBJECT_DIRECTORIES", None)
    env.update(
        GIT_OPTIONAL_LOCKS="0",
        GIT_TERMINAL_PROMPT="0",
        GIT_ASKPASS="true",
        LC_ALL="C",
        LANGUAGE="C",
        # a partial clone must not fetch what it lacks from its promisor remote (git 2.44+)
        GIT_NO_LAZY_FETCH="1",
        # the history as its objects say, not as refs/replace (or a graft) rewrites it
        GIT_NO_REPLACE_OBJECTS="1",
    )
    env.pop("GIT_REPLACE_REF_BASE", None)
    env.pop("GIT_GRAFT_FILE", None)
    env.setdefault("GIT_SSH_COMMAND", "ssh -o BatchMode=yes")
    return env


#: Read-only means none of the repository's own code runs: no hook (read-tree with a
#: private index still fires post-index-change), no fsmonitor daemon or command.
SAFE = ("-c", "core.hooksPath=/dev/null", "-c", "core.fsmonitor=false")


def run_git(
    args: Sequence[str],
    *,
    env: dict[str, str] | None = None,
    input: bytes | None = None,
    cwd: Path | None = None,
) -> subprocess.CompletedProcess[bytes]:
    """Run git without raising; a missing git binary becomes a SourceError."""
    try:
        return subprocess.run(
            ["git", *SAFE, *args],
            env=env if env is not None else base_env(),
            input=input,
            cwd=cwd,
            capture_output=True,
            check=False,
        )
    except FileNotFoundError as exc:
        raise SourceError("git is not installed (needed to read Gunicorn's history)") from exc
    except OSError as exc:
        raise SourceError(f"cannot run git: {exc}") from exc


def _refuse_incomplete(git_dir: Path, spec: str) -> None:
    """A shallow or partial clone cannot name a commit: its boundary would look like the
    first commit of the history (a wrong answer, not an error), whatever form --repo takes."""
    shallow = run_git(["--git-dir", str(git_dir), "rev-parse", "--is-shallow-repository"])
    if shallow.stdout.decode().strip() == "true":
        raise SourceError(
            f"--repo {spec}: shallow clone lacks the history to bisect; "
            "point --repo at a full clone"
        )
    promisor = run_git(
        ["--git-dir", str(git_dir), "config", "--get-regexp", r"^remote\..*\.promisor$"]
    )
    extension = run_git(["--git-dir", str(git_dir), "config", "--get", "extensions.partialclone"])
    if b"true" in promisor.stdout.lower() or extension.stdout.strip():
        raise SourceError(
            f"--repo {spec}: partial clone (objects left on its remote) cannot be read "
            "without fetching into it; point --repo at a full clone"
        )


def open_local(spec: str) -> tuple[Path, str | None]:
    """A local clone (bare, or a work tree's top) read in place: its git directory and its
    origin URL (redacted), once it is known to be a full clone."""
    path = Path(spec).expanduser()
    if not path.exists():
        raise SourceError(f"--repo {spec}: no such directory")
    if not path.is_dir():
        raise SourceError(f"--repo {spec}: not a directory")
    proc = run_git(["-C", str(path), "rev-parse", "--absolute-git-dir"])
    if proc.returncode != 0:
        raise SourceError(f"--repo {spec}: not a git repository")
    git_dir = Path(proc.stdout.decode().strip())
    if git_dir.resolve() != path.resolve():  # not a bare repo: must be a work tree's top
        top = run_git(["-C", str(path), "rev-parse", "--show-toplevel"])
        toplevel = top.stdout.decode().strip()
        if top.returncode != 0 or Path(toplevel).resolve() != path.resolve():
            where = f" (it is inside {toplevel})" if toplevel else ""
            raise SourceError(f"--repo {spec}: not a git repository{where}")
    _refuse_incomplete(git_dir, spec)
    origin = run_git(["--git-dir", str(git_dir), "config", "--get", "remote.origin.url"])
    remote = (origin.stdout.decode().strip() or None) if origin.returncode == 0 else None
    return git_dir, redact_url(remote) if remote else None


def open_remote(url: str, cache_dir: Path) -> Path:
    """The bare cache clone of ``url`` under ``cache_dir``/repos, cloned on first use
    (into a temporary name, then renamed: a concurrent run's clone wins quietly)."""
    repos = cache_dir.expanduser().resolve() / "repos"
    final = repos / f"{_slug(url)}.git"
    if not (final / "HEAD").exists():
        try:
            private_dir(repos)
            tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".tmp", dir=repos))
        except OSError as exc:
            raise SourceError(f"cannot create the clone cache in {repos}: {exc}") from exc
        try:
            target = tmp / "repo.git"
            proc = run_git(["clone", "--bare", "--quiet", "--", url, str(target)])
            if proc.returncode != 0:
                raise SourceError(unreachable(url, proc.stderr))
            _refuse_incomplete(target, redact_url(url))  # never kept: refused every time
            if without_userinfo(url) != url:  # no secret on disk: fetch gets the URL per call
                run_git(
                    ["--git-dir", str(target), "config", "remote.origin.url", without_userinfo(url)]
                )
            try:
                os.rename(target, final)
            except OSError:
                if not (final / "HEAD").exists():  # not a concurrent winner: real failure
                    raise SourceError(
                        f"cannot move the clone of {redact_url(url)} into {final}"
                    ) from None
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    _refuse_incomplete(final, redact_url(url))
    return final


def unreachable(url: str, stderr: bytes) -> str:
    """The one line for a clone or fetch that could not reach its remote."""
    reason = stderr_line(stderr.decode(errors="replace")).removeprefix("fatal: ")
    url, reason = redact_url(url), redact_url(reason)
    return f"cannot reach {url} (no network? git said: {reason}): point --repo at a local clone"
