"""Read-only access to a Gunicorn git history through the ``git`` command line.

Every git effect of the project lives here and in host/clone.py (which runs git safely
and opens a clone) so that the rest of the code can stay pure and testable.  The user's
repository is never written to: no checkout, reset, bisect, ref update or even new
objects (picks are staged in a private object directory).  Remote URLs are mirrored once
into a bare cache clone.
"""

from __future__ import annotations

import re
import subprocess
import tarfile
import tempfile
from collections.abc import Iterable
from pathlib import Path

from harness.host.clone import (
    SAFE,
    SourceError,
    base_env,
    is_remote_spec,
    open_local,
    open_remote,
    run_git,
    stderr_line,
    unreachable,
)
from harness.host.fsutil import run_temp_dir
from harness.model.commit_refs import github_commit_url, parse_refs
from harness.model.errors import HarnessError
from harness.model.redact import redact_url
from harness.model.results import CommitInfo

DEFAULT_REPO = "https://github.com/benoitc/gunicorn.git"

_FIELD = "%x00"
_RECORD = "%x1e"
_LOG_FORMAT = _FIELD.join(["%H", "%h", "%P", "%s", "%an <%ae>", "%aI", "%b"]) + _RECORD

__all__ = ["DEFAULT_REPO", "Repo", "SourceError"]


_MISSING = re.compile(
    r"(invalid object|cannot read '|unable to read|not a tree object|bad object|missing (blob|tree))[^\n]*"
)


class DamagedRepo(HarnessError):
    """The history's clone lacks objects it names: no commit can be judged from it."""


class Repo:
    """A Gunicorn history, read through a git directory that is never modified."""

    def __init__(self, git_dir: Path, spec: str, remote: str | None, managed: bool) -> None:
        self.git_dir = git_dir
        self.spec = spec
        #: URL the history comes from: the spec itself or a local clone's origin.
        self.remote = remote
        #: True for our own cache clone, which may be fetched; False for the user's repo.
        self.managed = managed
        self._fetched = False
        self._fetch_url = "origin"

    def __repr__(self) -> str:
        return f"Repo({self.spec!r}, git_dir={str(self.git_dir)!r})"

    # ------------------------------------------------------------------ opening
    @classmethod
    def open(cls, spec: str, cache_dir: Path) -> Repo:
        """Open a local clone in place, or a remote URL through a cached bare clone."""
        if is_remote_spec(spec):
            shown = redact_url(spec)
            repo = cls(open_remote(spec, Path(cache_dir)), shown, shown, managed=True)
            repo._fetch_url = spec  # with its credentials, in memory only
            return repo
        git_dir, remote = open_local(spec)
        return cls(git_dir, spec, remote, managed=False)

    # ------------------------------------------------------------------ plumbing
    def _git(
        self,
        *args: str,
        input: bytes | None = None,
        env: dict[str, str] | None = None,
        what: str | None = None,
    ) -> bytes:
        """Run a git command on this repository; failures become one-line SourceErrors."""
        proc = run_git(["--git-dir", str(self.git_dir), *args], input=input, env=env)
        if proc.returncode != 0:
            reason = stderr_line(proc.stderr.decode(errors="replace"))
            raise SourceError(f"{what or 'git ' + args[0]} failed in {self.spec}: {reason}")
        return proc.stdout

    def _try_resolve(self, ref: str) -> str | None:
        proc = run_git(
            [
                "--git-dir",
                str(self.git_dir),
                "rev-parse",
                "--verify",
                "--quiet",
                "--end-of-options",
                f"{ref}^{{commit}}",
            ]
        )
        return proc.stdout.decode().strip() if proc.returncode == 0 else None

    def fetch(self) -> None:
        """Update our cache clone's tags and branches (never the user's repo)."""
        if not self.managed or self._fetched:
            return
        self._fetched = True
        proc = run_git(
            [
                "--git-dir",
                str(self.git_dir),
                "fetch",
                "--quiet",
                "--prune",
                self._fetch_url,  # the URL itself: its credentials are never kept on disk
                "+refs/tags/*:refs/tags/*",
                "+refs/heads/*:refs/heads/*",
            ]
        )
        if proc.returncode != 0:
            raise SourceError(unreachable(self.spec, proc.stderr))

    @staticmethod
    def _check_ref(ref: str) -> None:
        if not ref or ref.startswith("-") or any(c in ref for c in "\0\n"):
            raise SourceError(f"invalid ref {ref!r}")

    # ------------------------------------------------------------------ queries
    def resolve(self, ref: str) -> str:
        """Full commit sha of a branch, tag (peeled) or (abbreviated) sha."""
        self._check_ref(ref)
        sha = self._try_resolve(ref)
        if sha is None and self.managed and not self._fetched:
            self.fetch()
            sha = self._try_resolve(ref)
        if sha is None:
            raise SourceError(f"ref {ref!r} not found in {self.spec}")
        return sha

    def tag_for_version(self, version: str) -> str | None:
        """The tag naming a PyPI release: 19.6.0, else 19.0 for 19.0.0, else v-prefixed."""
        self._check_ref(version)
        candidates = [version]
        trimmed = version
        while trimmed.endswith(".0") and trimmed.count(".") > 1:
            trimmed = trimmed[: -len(".0")]
            candidates.append(trimmed)
        candidates += [f"v{c}" for c in candidates]
        for attempt in range(2):
            for tag in candidates:
                if self._try_resolve(f"refs/tags/{tag}") is not None:
                    return tag
            if attempt == 0 and self.managed and not self._fetched:
                self.fetch()
            else:
                break
        return None

    def graph(self, old: str | Iterable[str], new: str) -> dict[str, tuple[str, ...]]:
        """Parents of every commit in ``old..new`` (all parents, merges included)."""
        olds = [old] if isinstance(old, str) else list(old)
        for ref in [*olds, new]:
            self._check_ref(ref)
        for ref in olds:  # a moved tag: the older release is not in the newer one's past
            ancestor = ["--git-dir", str(self.git_dir), "merge-base", "--is-ancestor", ref, new]
            if run_git(ancestor).returncode == 1:
                raise SourceError(
                    f"{ref[:12]} is not an ancestor of {new[:12]} in {self.spec}: the history "
                    "contradicts the release tags (a moved or rewritten tag?)"
                )
        out = self._git(
            "rev-list",
            "--parents",
            new,
            *(f"^{ref}" for ref in olds),
            "--",
            what=f"listing {', '.join(olds) or 'root'}..{new}",
        )
        graph: dict[str, tuple[str, ...]] = {}
        for line in out.decode().splitlines():
            if line.strip():
                sha, *parents = line.split()
                graph[sha] = tuple(parents)
        return graph

    def info(self, sha: str) -> CommitInfo:
        """Subject, author, PR and fixed issues of one commit."""
        return self.infos([sha])[0]

    def infos(self, shas: Iterable[str]) -> list[CommitInfo]:
        """Batched ``info``: one ``git log`` call for many commits, in the given order."""
        wanted = list(shas)
        if not wanted:
            return []
        for ref in wanted:
            self._check_ref(ref)
        out = self._git(
            "-c",
            "log.showSignature=false",
            "log",
            "--no-walk=unsorted",
            "--no-color",
            f"--format={_LOG_FORMAT}",
            *wanted,
            "--",
            what="git log",
        )
        records = [r for r in out.decode(errors="replace").split("\x1e") if r.strip("\n")]
        result = []
        for record in records:
            fields = record.lstrip("\n").split("\x00")
            sha, short, parents, subject, author, date, body = fields[:7]
            body = body.rstrip("\n")
            pr, fixes = parse_refs(subject, body)
            result.append(
                CommitInfo(
                    sha=sha,
                    short=short,
                    parents=tuple(parents.split()),
                    subject=subject,
                    author=author,
                    date=date,
                    body=body,
                    pr=pr,
                    fixes=fixes,
                )
            )
        if len(result) != len(wanted):
            raise SourceError(f"git log returned {len(result)} of {len(wanted)} commits")
        return result

    def web_url(self, sha: str) -> str | None:
        """GitHub link for a commit when the history comes from GitHub."""
        return github_commit_url(self.remote, sha)

    # ------------------------------------------------------------------ trees
    def export(self, sha: str, dest: Path) -> None:
        """Write the tree of ``sha`` into ``dest`` without any checkout."""
        self._check_ref(sha)
        self._archive(sha, Path(dest), env=None)

    def export_with_pick(self, sha: str, pick: str, dest: Path) -> bool:
        """Write ``sha``'s tree plus the change of ``pick`` (vs its first parent) into dest.

        Used to test commits that only work with a later repair.  The patch is
        staged in a private index and object directory, so the repository and
        its index stay untouched.  False when the change does not apply cleanly.
        """
        self._check_ref(sha)
        self._check_ref(pick)
        base = self.resolve(sha)
        picked = self.info(self.resolve(pick))
        parent = picked.parents[0] if picked.parents else self._empty_tree()
        patch = self._git(
            "diff",
            "--binary",
            "--full-index",
            "--no-color",
            "--no-ext-diff",
            "--no-textconv",
            "--no-renames",
            parent,
            picked.sha,
            "--",
            what=f"diffing {pick}",
        )
        with tempfile.TemporaryDirectory(prefix="pick-", dir=run_temp_dir()) as tmp:
            objects = Path(tmp) / "objects"
            objects.mkdir()
            env = base_env()
            env.update(
                GIT_INDEX_FILE=str(Path(tmp) / "index"),
                GIT_OBJECT_DIRECTORY=str(objects),
                GIT_ALTERNATE_OBJECT_DIRECTORIES=str(self._objects_dir()),
            )
            self._git("read-tree", base, env=env, what="git read-tree")
            if patch.strip():
                proc = run_git(
                    ["--git-dir", str(self.git_dir), "apply", "--cached", "--whitespace=nowarn"],
                    env=env,
                    input=patch,
                )
                if proc.returncode != 0:
                    return False
            tree = self._git("write-tree", env=env, what="git write-tree").decode().strip()
            self._archive(tree, Path(dest), env=env)
        return True

    def _objects_dir(self) -> Path:
        out = self._git("rev-parse", "--git-path", "objects").decode().strip()
        return Path(out).resolve()  # relative answers are relative to our cwd

    def _empty_tree(self) -> str:
        return self._git("hash-object", "-t", "tree", "/dev/null").decode().strip()

    def _refuse_damaged(self, said: str) -> None:
        """A missing object is the clone's fault, not the commit's: one line for the run
        (a clone missing blobs gave 33 "cannot export" rows and exit 0)."""
        m = _MISSING.search(said)
        if m:
            raise DamagedRepo(
                f"--repo {self.spec}: the clone is missing objects (git: {m.group(0).strip()}); "
                "repair it (git fsck) or clone it again"
            )

    def _archive(self, treeish: str, dest: Path, env: dict[str, str] | None) -> None:
        dest.mkdir(parents=True, exist_ok=True)
        args = ["git", *SAFE, "--git-dir", str(self.git_dir), "archive", "--format=tar", treeish]
        try:
            proc = subprocess.Popen(
                args,
                env=env if env is not None else base_env(),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
        except OSError as exc:
            raise SourceError(f"cannot run git: {exc}") from exc
        assert proc.stdout is not None and proc.stderr is not None
        try:
            with tarfile.open(fileobj=proc.stdout, mode="r|") as archive:
                if hasattr(tarfile, "data_filter"):
                    archive.extractall(dest, filter="fully_trusted")
                else:  # pragma: no cover - Pythons without extraction filters
                    archive.extractall(dest)
        except (tarfile.TarError, OSError) as exc:
            proc.kill()
            proc.wait()
            said = proc.stderr.read().decode(errors="replace")
            self._refuse_damaged(said)
            reason = stderr_line(said)
            raise SourceError(f"cannot export {treeish} from {self.spec}: {reason or exc}") from exc
        else:
            # tarfile stops at the end-of-archive marker; git may still be writing the
            # record padding after it. Drain to EOF so git is never killed by SIGPIPE.
            while proc.stdout.read(65536):
                pass
        finally:
            proc.stdout.close()
        stderr = proc.stderr.read()
        proc.stderr.close()
        status = proc.wait()
        if status != 0:
            self._refuse_damaged(stderr.decode(errors="replace"))
            reason = stderr_line(stderr.decode(errors="replace"))
            raise SourceError(
                f"cannot export {treeish} from {self.spec}: git archive exited {status}: {reason}"
            )
